"""Floats compared by their bits: what "bit for bit" means in this suite.

``==`` cannot tell ``0.0`` from ``-0.0`` (and never equates a NaN with itself), so a test that
claims two computations give the same floats compares ``bits(a) == bits(b)``: every float is
replaced by ``float.hex`` of it, inside any nesting of tuples, lists and NamedTuples.
"""

from __future__ import annotations

from typing import Any


def bits(x: Any) -> Any:
    """``x`` with every float replaced by its exact bits (``float.hex``), nested tuples and lists
    rebuilt as tuples; anything else (ints, strings, None) as it is.

    >>> bits((0.0, [-0.0, 1.5], "op", 3))
    ('0x0.0p+0', ('-0x0.0p+0', '0x1.8000000000000p+0'), 'op', 3)
    >>> bits(0.0) == bits(-0.0)
    False
    """
    if type(x) is float:
        return float.hex(x)
    if isinstance(x, (tuple, list)):
        return tuple(bits(item) for item in x)
    return x
