"""Property tests for your own tape functions: hypothesis strategies and a gradient check.

Write a tape function, then test it in three lines: its gradients must match
central differences on random finite inputs, and it must leave the tape it
was given as it was (it may only append to it).

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

from . import tape as T
from .tape import GradCheck, Tape

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "functional_gpt.testing needs hypothesis: pip install 'functional_gpt[test]'"
    ) from e

__all__ = ["finite_floats", "inputs", "check_tape_function", "assert_grads_ok"]

TapeFunction = Callable[[Tape, tuple[int, ...]], tuple[Tape, int]]


def finite_floats(min_value: float = -10.0, max_value: float = 10.0) -> st.SearchStrategy[float]:
    """Return a strategy for finite floats in ``[min_value, max_value]`` (no nan, no inf).

    >>> from hypothesis import given
    >>> @given(finite_floats(0.5, 2.0))
    ... def test_in_range(x):
    ...     assert 0.5 <= x <= 2.0
    >>> test_in_range()
    """
    return st.floats(min_value, max_value, allow_nan=False, allow_infinity=False)


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


def check_tape_function(f: TapeFunction, xs: Sequence[float], **tolerance: float) -> GradCheck:
    """Return ``T.check_grads(f, xs)``, after checking that ``f`` treats its tape as a value.

    Raises AssertionError when ``f`` returns a tape that does not start with
    the nodes it was given (a tape function only appends), when that tape
    changed, or when ``f`` changed ``xs``. ``tolerance`` goes to
    ``check_grads`` (``eps``, ``rtol``, ``atol``).

    >>> import functional_gpt.tape as T
    >>> def forgetful(tape, ids):               # builds on a fresh tape: not a tape function
    ...     return T.var(T.new(), 1.0)
    >>> check_tape_function(forgetful, [2.0])
    Traceback (most recent call last):
    ...
    AssertionError: the tape returned does not start with the 1 nodes passed in
    """
    given_xs = tuple(xs)
    tape, ids = T.map_tape(T.new(), given_xs, T.var)
    before = _snapshot(tape)
    out_tape, out = f(tape, ids)
    if _snapshot(tape) != before:
        raise AssertionError("the tape passed in was changed")
    if len(out_tape) < len(before) or _snapshot(out_tape)[: len(before)] != before:
        raise AssertionError(
            f"the tape returned does not start with the {len(before)} nodes passed in"
        )
    T.data(out_tape, out)  # the result id is on the returned tape
    if tuple(xs) != given_xs:
        raise AssertionError("the inputs were changed")
    return T.check_grads(f, given_xs, **tolerance)


def assert_grads_ok(f: TapeFunction, xs: Sequence[float], **tolerance: float) -> None:
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
    GradCheck(ok=False, max_abs_error=1, max_rel_error=0.333)
      input  analytic  numeric  abs error
          0         3        2          1  <- differs
    """
    check = check_tape_function(f, xs, **tolerance)
    if not check.ok:
        raise AssertionError(
            f"gradients differ from central differences at {tuple(xs)}:\n{check!r}"
        )
