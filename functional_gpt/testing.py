"""Property tests for your own tape functions: hypothesis strategies and a gradient check.

Write a tape function, then test it in three lines: its gradients must match
central differences on random finite inputs, and it must leave the tape it
was given as it was (it may only append to it) and read its inputs through
the ids it is given.

>>> import functional_gpt.tape as T
>>> from hypothesis import given
>>> def softplus(tape, ids):                 # log(1 + e**x)
...     (x,) = ids
...     tape, e = T.exp(tape, x)
...     tape, one = T.constant(tape, 1.0)
...     tape, s = T.add(tape, one, e)
...     return T.log(tape, s)
>>> @given(inputs(1))
... def test_softplus(xs):
...     assert_grads_ok(softplus, xs)
>>> test_softplus()                          # hypothesis runs it on many inputs

Needs hypothesis (``pip install 'functional_gpt[test]'``); the rest of the
package does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import repl
from . import tape as T
from .repl import GradCheck
from .tape import Tape

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "functional_gpt.testing needs hypothesis: pip install 'functional_gpt[test]'"
    ) from e

__all__ = ["finite_floats", "inputs", "check_tape_function", "assert_grads_ok"]

TapeFunction = Callable[[Tape, tuple[int, ...]], tuple[Tape, int]]


def finite_floats(min_value: float = -10.0, max_value: float = 10.0) -> st.SearchStrategy[float]:
    """Return a strategy for ordinary floats in ``[min_value, max_value]``: no nan, inf, subnormal.

    >>> from hypothesis import given
    >>> @given(finite_floats(0.5, 2.0))
    ... def test_in_range(x):
    ...     assert 0.5 <= x <= 2.0
    >>> test_in_range()
    """
    return st.floats(
        min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )


def inputs(
    n: int, min_value: float = -10.0, max_value: float = 10.0
) -> st.SearchStrategy[tuple[float, ...]]:
    """Return a strategy for tuples of ``n`` finite floats: inputs of an ``n``-ary tape function.

    >>> from hypothesis import given
    >>> @given(inputs(3, -1.0, 1.0))
    ... def test_three(xs):
    ...     assert len(xs) == 3 and all(-1.0 <= x <= 1.0 for x in xs)
    >>> test_three()
    """
    if type(n) is not int or n < 0:
        raise ValueError(f"inputs: n must be a whole number of at least 0, got {n!r}")
    return st.tuples(*[finite_floats(min_value, max_value)] * n)


def _snapshot(tape: Tape) -> tuple[T.Node, ...]:
    """Every node of ``tape`` as a record, to compare before and after a call."""
    return tuple(T.node(tape, i) for i in range(len(tape)))


# The value of a leaf put before the inputs, to see that f reads them through their ids:
# an odd number (the fixed point of cos), so that it is not one of hypothesis's favourites.
_DECOY = 0.7390851332151607


def _run(f: TapeFunction, tape: Tape, ids: tuple[int, ...]) -> tuple[float, tuple[float, ...]]:
    """Return ``f``'s value on ``tape`` and its gradient per id, after checking it only appended."""
    before = _snapshot(tape)
    out_tape, out = f(tape, ids)
    if _snapshot(tape) != before:
        raise AssertionError("the tape passed in was changed")
    if len(out_tape) < len(before) or _snapshot(out_tape)[: len(before)] != before:
        raise AssertionError(
            f"the tape returned does not start with the {len(before)} nodes passed in"
        )
    value = T.data(out_tape, out)  # IndexError when the result id is not on the returned tape
    grads = T.backward(out_tape, out)
    return value, tuple(T.grad(grads, i) for i in ids)


def check_tape_function(f: TapeFunction, xs: Sequence[float], **tolerance: Any) -> GradCheck:
    """Return ``repl.check_grads(f, xs)``, after checking that ``f`` treats its tape as a value.

    Raises AssertionError when ``f`` changes the tape it was given, returns a
    tape that does not start with that tape's nodes (a tape function only
    appends), or computes another value or gradient when its inputs sit after
    another node (it must read its inputs through the ids it is given).
    ``tolerance`` goes to ``check_grads`` (``eps``, ``rtol``, ``atol``, ``kinks``).

    >>> import functional_gpt.tape as T
    >>> def forgetful(tape, ids):               # builds on a fresh tape: not a tape function
    ...     return T.var(T.new(), 1.0)
    >>> check_tape_function(forgetful, [2.0])
    Traceback (most recent call last):
    ...
    AssertionError: the tape returned does not start with the 1 nodes passed in
    >>> def first_node(tape, ids):              # reads node 0, whatever its inputs are
    ...     return T.scale(tape, T.Id(0), 2.0)
    >>> check_tape_function(first_node, [3.0])
    Traceback (most recent call last):
    ...
    AssertionError: with another node before the inputs, (6.0, (2.0,)) became (1.47..., (0.0,))
    """
    xs = tuple(xs)
    tape, ids = T.map_tape(T.new(), xs, T.var)
    alone = _run(f, tape, ids)
    decoy, _ = T.constant(T.new(), _DECOY)
    moved = _run(f, *T.map_tape(decoy, xs, T.var))
    if moved != alone:
        raise AssertionError(f"with another node before the inputs, {alone!r} became {moved!r}")
    return repl.check_grads(f, xs, **tolerance)


def assert_grads_ok(f: TapeFunction, xs: Sequence[float], **tolerance: Any) -> None:
    """Raise AssertionError showing the ``GradCheck`` table unless ``f`` passes the check.

    The check is ``check_tape_function``: the tape is treated as a value and the
    gradients match central differences.

    >>> import functional_gpt.tape as T
    >>> def wrong_square(tape, ids):
    ...     (x,) = ids
    ...     v = T.data(tape, x)
    ...     return T.push(tape, "square", v * v, (x,), (3 * v,))
    >>> assert_grads_ok(wrong_square, [1.0])
    Traceback (most recent call last):
    ...
    AssertionError: gradients differ from central differences at (1.0,):
    GradCheck(ok=False): 1 of 1 inputs differ from central differences; max error 1, rel 0.333
      input  analytic  numeric  abs error
          0         3        2          1  <- differs
    """
    check = check_tape_function(f, xs, **tolerance)
    if not check.ok:
        raise AssertionError(
            f"gradients differ from central differences at {tuple(xs)}:\n{check!r}"
        )
