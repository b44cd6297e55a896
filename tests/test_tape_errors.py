"""Bad inputs are refused loudly, with the op named, and the tape given is left as it was.

* a node id not on the tape (too large, negative, not an int) -> IndexError
  naming the op and the id;
* a value outside an op's domain (log of x <= 0, a negative base to a
  fractional power, division by zero, exp overflow) or a non-finite number
  (nan, inf) -> ValueError naming the op and the value;
* a result or gradient that would not be finite -> ValueError naming the op.
"""

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import Program, bad_ids, finite, programs, run_on_tape, snapshot

import functional_gpt.tape as T

Call = Callable[[T.Tape, object], object]

# Each entry: (op name in messages, a call that puts the id under test in one argument slot).
ID_SLOTS: list[tuple[str, Call]] = [
    ("add", lambda t, i: T.add(t, i, 0)),
    ("add", lambda t, i: T.add(t, 0, i)),
    ("sub", lambda t, i: T.sub(t, i, 0)),
    ("sub", lambda t, i: T.sub(t, 0, i)),
    ("mul", lambda t, i: T.mul(t, i, 0)),
    ("mul", lambda t, i: T.mul(t, 0, i)),
    ("div", lambda t, i: T.div(t, i, 0)),
    ("div", lambda t, i: T.div(t, 0, i)),
    ("neg", lambda t, i: T.neg(t, i)),
    ("scale", lambda t, i: T.scale(t, i, 2.0)),
    ("pow", lambda t, i: T.pow(t, i, 2.0)),
    ("log", lambda t, i: T.log(t, i)),
    ("exp", lambda t, i: T.exp(t, i)),
    ("relu", lambda t, i: T.relu(t, i)),
    ("sum", lambda t, i: T.sum(t, [i])),
    ("sum", lambda t, i: T.sum(t, [0, i, 0])),
    ("dot", lambda t, i: T.dot(t, [0, i], [0, 0])),
    ("dot", lambda t, i: T.dot(t, [0, 0], [i, 0])),
    ("data", lambda t, i: T.data(t, i)),
    ("values", lambda t, i: T.values(t, [0, i])),
    ("backward", lambda t, i: T.backward(t, i)),
    ("grad", lambda t, i: T.grad(T.backward(t, 0), i)),
]


def refused(tape: T.Tape, call: Callable[[], object], error: type[Exception]) -> str:
    """Run ``call`` (an op on ``tape``), insist it raises ``error`` and leaves ``tape`` as it was.

    Returns the error message.
    """
    before = snapshot(tape)
    with pytest.raises(error) as info:
        call()
    assert snapshot(tape) == before
    return str(info.value)


@given(st.sampled_from(ID_SLOTS), programs(), st.data())
def test_an_id_not_on_the_tape_raises_index_error(
    slot: tuple[str, Call], program: Program, data: st.DataObject
) -> None:
    """Any op given an id that is not on the tape raises IndexError naming the op and the id."""
    op, call = slot
    tape = run_on_tape(program)
    bad = data.draw(bad_ids(len(tape)).filter(lambda b: not isinstance(b, float)), label="bad id")
    message = refused(tape, lambda: call(tape, bad), IndexError)
    assert message.startswith(f"{op}:") and repr(bad) in message


@given(st.sampled_from(ID_SLOTS), programs(), st.floats(allow_nan=False))
def test_a_number_where_an_id_belongs_says_how_to_write_a_constant(
    slot: tuple[str, Call], program: Program, x: float
) -> None:
    """A float given as a node id raises TypeError naming the op and the number, and T.constant."""
    op, call = slot
    tape = run_on_tape(program)
    message = refused(tape, lambda: call(tape, x), TypeError)
    assert message.startswith(f"{op}: {x!r} is a number, not a node id")
    assert f"T.constant(tape, {x!r})" in message


@given(finite(-1e6, 0.0))
def test_log_of_a_non_positive_number(x: float) -> None:
    """log(x) for x <= 0 raises ValueError naming log and x."""
    tape, i = T.var(T.new(), x)
    message = refused(tape, lambda: T.log(tape, i), ValueError)
    assert message.startswith("log:") and repr(x) in message


@given(finite(-1e3, -1e-3), finite(-5.0, 5.0).filter(lambda p: not p.is_integer()))
def test_negative_base_to_a_fractional_power(x: float, p: float) -> None:
    """pow(x, p) for x < 0 and non-integer p raises ValueError naming pow, x and p."""
    tape, i = T.var(T.new(), x)
    message = refused(tape, lambda: T.pow(tape, i, p), ValueError)
    assert message.startswith("pow:") and repr(x) in message and repr(p) in message


@given(finite(-5.0, 1.0).filter(lambda p: p < 1.0 and p != 0.0))
def test_zero_base_to_a_power_below_one(p: float) -> None:
    """pow(0, p) for p < 1 (p != 0) has no finite gradient: ValueError naming pow and p."""
    tape, i = T.var(T.new(), 0.0)
    message = refused(tape, lambda: T.pow(tape, i, p), ValueError)
    assert message.startswith("pow:") and repr(p) in message


@given(finite(-10.0, 10.0), st.sampled_from([0.0, -0.0]))
def test_division_by_zero(x: float, zero: float) -> None:
    """div(x, 0) raises ValueError naming div and the zero divisor."""
    tape, (a, b) = T.map_tape(T.new(), [x, zero], T.var)
    message = refused(tape, lambda: T.div(tape, a, b), ValueError)
    assert message.startswith("div:") and repr(zero) in message


@given(st.floats(5e-324, 1e-200), st.sampled_from([1.0, -1.0]))
def test_division_by_a_tiny_number(tiny: float, sign: float) -> None:
    """div(1, y) for y so small that 1/y**2 (the gradient) overflows: ValueError naming div."""
    tape, (a, b) = T.map_tape(T.new(), [1.0, sign * tiny], T.var)
    assert refused(tape, lambda: T.div(tape, a, b), ValueError).startswith("div:")


@given(finite(709.8, 1e6))
def test_exp_overflow(x: float) -> None:
    """exp(x) for x beyond ln(max float) raises ValueError naming exp and x."""
    tape, i = T.var(T.new(), x)
    message = refused(tape, lambda: T.exp(tape, i), ValueError)
    assert message.startswith("exp:") and repr(x) in message


NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


@given(NON_FINITE)
def test_non_finite_numbers_are_refused(x: float) -> None:
    """var, constant, scale and pow refuse nan and inf with ValueError naming the op and value."""
    tape, i = T.var(T.new(), 2.0)
    calls: list[tuple[str, Callable[[], object]]] = [
        ("var", lambda: T.var(tape, x)),
        ("constant", lambda: T.constant(tape, x)),
        ("scale", lambda: T.scale(tape, i, x)),
        ("pow", lambda: T.pow(tape, i, x)),
        ("update", lambda: T.update(tape, [x])),
    ]
    for op, call in calls:
        message = refused(tape, call, ValueError)
        assert message.startswith(f"{op}:") and repr(x) in message


@given(st.one_of(st.text(max_size=3), st.none(), st.booleans(), st.just([1.0])))
def test_non_numbers_are_refused(x: object) -> None:
    """var, constant, scale and pow refuse things that are not numbers with TypeError."""
    tape, i = T.var(T.new(), 2.0)
    for op, call in [
        ("var", lambda: T.var(tape, x)),
        ("constant", lambda: T.constant(tape, x)),
        ("scale", lambda: T.scale(tape, i, x)),
        ("pow", lambda: T.pow(tape, i, x)),
    ]:
        assert refused(tape, call, TypeError).startswith(f"{op}:")


@given(st.floats(1e155, 1e300), st.sampled_from([1.0, -1.0]))
def test_results_that_overflow_are_refused(big: float, sign: float) -> None:
    """An op whose result would be inf raises ValueError naming the op: tapes hold finite values."""
    start = [sign * big, big, sign * 1.7e308, -sign * 1.7e308, 0.5]
    tape, (a, b, h, minus_h, half) = T.map_tape(T.new(), start, T.var)
    for op, call in [
        ("mul", lambda: T.mul(tape, a, b)),
        ("dot", lambda: T.dot(tape, [a], [b])),
        ("pow", lambda: T.pow(tape, a, 3.0)),
        ("scale", lambda: T.scale(tape, h, 10.0)),
        ("add", lambda: T.add(tape, h, h)),
        ("sub", lambda: T.sub(tape, h, minus_h)),
        ("sum", lambda: T.sum(tape, [h, h])),
        ("div", lambda: T.div(tape, h, half)),
    ]:
        assert refused(tape, call, ValueError).startswith(f"{op}:")


@given(finite(-3.0, 3.0).filter(lambda x: x != 0.0))
def test_a_failed_op_leaves_its_tape_usable(x: float) -> None:
    """After a refused op, the same tape still works and gives the same results as before."""
    tape, i = T.var(T.new(), x)
    tape, j = T.mul(tape, i, i)
    negated, k = T.neg(tape, j)
    refused(negated, lambda: T.log(negated, k), ValueError)
    refused(tape, lambda: T.add(tape, i, len(tape)), IndexError)
    assert T.grad(T.backward(tape, j), i) == 2 * x
