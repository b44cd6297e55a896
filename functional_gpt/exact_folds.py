"""Exact left folds, in the fastest form each interpreter offers: the sums every value goes through.

microgpt.py sums its Values with Python's ``sum``, a left fold from 0:
``((0 + x0) + x1) + ...``. Float addition is not associative, so to give the same losses we
must add the same numbers in the same order. ``fold_sum``, ``fold_dot`` and ``fold_dots`` do,
and how fast they run decides how fast a training step is. The fastest exact form differs
between interpreters:

- up to 3.11, builtin ``sum`` over floats is that very left fold, done in C (``0 + x0`` is
  ``x0`` exactly, then one double addition per item); from 3.12 on it is compensated
  (Neumaier) and rounds differently, so it is not used there;
- from 3.11 on, a fold of width n is a function compiled once per width,
  ``lambda x, y: 0.0 + x[0] * y[0] + ... + x[n-1] * y[n-1]``: Python's ``+`` is
  left-associative, so this is the same fold with no loop (about half the instructions of the
  loop on 3.12 and 3.13);
- anything else (wider than ``WRITTEN_OUT_MAX``, or an iterator) takes the plain loop.

The plain twins are ``loop_sum``, ``loop_dot`` and ``loop_dots`` below: the definitions, as
loops. ``tests/test_folds.py`` checks every form against a naive loop bit for bit, at widths on
both sides of the compiled limit.

>>> fold_sum([0.1, 0.2, 0.3]) == loop_sum([0.1, 0.2, 0.3]) == (0.0 + 0.1 + 0.2) + 0.3
True
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from operator import mul as _mul

__all__ = [
    "fold_sum",
    "fold_dot",
    "fold_dots",
    "loop_sum",
    "loop_dot",
    "loop_dots",
    "written_out_dot",
    "WRITTEN_OUT_MAX",
]

WRITTEN_OUT_MAX = 64  # the widest fold (or block hand-over) compiled as straight-line code


def loop_sum(xs: Iterable[float]) -> float:
    """Return the left fold ``((0.0 + x0) + x1) + ...``: how microgpt.py sums its Values.

    >>> loop_sum([0.1, 0.2, 0.3])      # ((0.0 + 0.1) + 0.2) + 0.3, not the exact 0.6
    0.6000000000000001
    """
    total = 0.0
    for x in xs:
        total += x
    return total


def loop_dot(xs: Iterable[float], ys: Iterable[float]) -> float:
    """Return the left fold of ``x_i * y_i`` from 0.0: the float operations of microgpt.py's dots.

    >>> loop_dot([1.0, 2.0], [3.0, 4.0])
    11.0
    """
    total = 0.0
    for x, y in zip(xs, ys):
        total += x * y
    return total


def loop_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:
    """Return ``loop_dot(row, xs)`` for each row: a matrix-vector product, row by row.

    >>> loop_dots([1.0, 2.0], [[3.0, 4.0], [-1.0, 0.5]])
    (11.0, 0.0)
    """
    out = []  # local transient, frozen into a tuple below
    for row in rows:
        total = 0.0
        for x, y in zip(row, xs):
            total += x * y
        out.append(total)
    return tuple(out)


@cache  # a pure function of a small int, compiled once per width
def written_out_dot(n: int) -> Callable[[Sequence[float], Sequence[float]], float]:
    """Return ``lambda x, y: 0.0 + x[0] * y[0] + ... + x[n-1] * y[n-1]``, compiled for width n.

    ``loop_dot`` of the first n entries, written out: no loop, no iterator,
    one specialised float operation per term.

    >>> written_out_dot(2)([1.0, 2.0], [3.0, 4.0])
    11.0
    >>> written_out_dot(0)([], [])
    0.0
    >>> written_out_dot(65)
    Traceback (most recent call last):
    ...
    ValueError: written_out_dot: width 65 is not in 0..64
    """
    if type(n) is not int or not 0 <= n <= WRITTEN_OUT_MAX:
        raise ValueError(f"written_out_dot: width {n!r} is not in 0..{WRITTEN_OUT_MAX}")
    terms = "".join(f" + x[{i}] * y[{i}]" for i in range(n))
    return eval(f"lambda x, y: 0.0{terms}")  # our own text, made from an int


# The forms each interpreter runs. Each makes the float operations of the loops above, in
# their order; the doctests below hold on every interpreter.
if sys.version_info < (3, 12):

    def fold_sum(xs: Iterable[float]) -> float:
        """Return ``loop_sum(xs)``, computed by builtin ``sum`` in C (the same fold up to 3.11).

        >>> fold_sum([0.1, 0.2, 0.3])
        0.6000000000000001
        """
        return float(builtins.sum(xs))

else:
    _ONES = (1.0,) * WRITTEN_OUT_MAX

    def fold_sum(xs: Iterable[float]) -> float:
        """Return ``loop_sum(xs)``, computed as a written-out dot with ones (3.12+).

        >>> fold_sum([0.1, 0.2, 0.3])
        0.6000000000000001
        """
        if isinstance(xs, (tuple, list)) and len(xs) <= WRITTEN_OUT_MAX:
            return written_out_dot(len(xs))(xs, _ONES)
        return loop_sum(xs)


if sys.version_info < (3, 11):
    # 3.10's interpreter does not specialise: builtin sum in C is its fastest dot.

    def fold_dot(xs: Iterable[float], ys: Iterable[float]) -> float:
        """Return ``loop_dot(xs, ys)``, computed by builtin ``sum`` in C (3.10).

        >>> fold_dot([1.0, 2.0], [3.0, 4.0])
        11.0
        """
        return float(builtins.sum(map(_mul, xs, ys)))

    def fold_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:
        """Return ``loop_dots(xs, rows)``, each row by builtin ``sum`` in C (3.10).

        >>> fold_dots([1.0, 2.0], [[3.0, 4.0], [-1.0, 0.5]])
        (11.0, 0.0)
        """
        return tuple([builtins.sum(map(_mul, row, xs), 0.0) for row in rows])

else:

    def fold_dot(xs: Iterable[float], ys: Iterable[float]) -> float:
        """Return ``loop_dot(xs, ys)``, written out for its width (3.11+).

        >>> fold_dot([1.0, 2.0], [3.0, 4.0])
        11.0
        """
        if isinstance(xs, (tuple, list)) and isinstance(ys, (tuple, list)):
            n = min(len(xs), len(ys))  # as zip pairs them
            if n <= WRITTEN_OUT_MAX:
                return written_out_dot(n)(xs, ys)
        return loop_dot(xs, ys)

    def fold_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:
        """Return ``loop_dots(xs, rows)``, each row written out for the width of ``xs`` (3.11+).

        >>> fold_dots([1.0, 2.0], [[3.0, 4.0], [-1.0, 0.5]])
        (11.0, 0.0)
        """
        rows = rows if isinstance(rows, (tuple, list)) else tuple(rows)
        if len(xs) <= WRITTEN_OUT_MAX:
            dot = written_out_dot(len(xs))
            try:
                return tuple([dot(row, xs) for row in rows])
            except IndexError:  # a row shorter than xs: pair them as zip does
                pass
        return loop_dots(xs, rows)
