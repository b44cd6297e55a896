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
from functional_gpt import layers as L

Call = Callable[[T.Tape, object], object]

# Each entry: (op name in messages, a call that puts the id under test in one argument slot).
ZERO = T.Id(0)  # node 0, in the slots not under test
ID_SLOTS: list[tuple[str, Call]] = [
    ("add", lambda t, i: T.add(t, i, ZERO)),
    ("add", lambda t, i: T.add(t, ZERO, i)),
    ("sub", lambda t, i: T.sub(t, i, ZERO)),
    ("sub", lambda t, i: T.sub(t, ZERO, i)),
    ("mul", lambda t, i: T.mul(t, i, ZERO)),
    ("mul", lambda t, i: T.mul(t, ZERO, i)),
    ("div", lambda t, i: T.div(t, i, ZERO)),
    ("div", lambda t, i: T.div(t, ZERO, i)),
    ("neg", lambda t, i: T.neg(t, i)),
    ("scale", lambda t, i: T.scale(t, i, 2.0)),
    ("add_constant", lambda t, i: T.add_constant(t, i, 2.0)),
    ("pow", lambda t, i: T.pow(t, i, 2.0)),
    ("log", lambda t, i: T.log(t, i)),
    ("exp", lambda t, i: T.exp(t, i)),
    ("relu", lambda t, i: T.relu(t, i)),
    ("tanh", lambda t, i: T.tanh(t, i)),
    ("sigmoid", lambda t, i: T.sigmoid(t, i)),
    ("sqrt", lambda t, i: T.sqrt(t, i)),
    ("abs", lambda t, i: T.abs(t, i)),
]
PRIMITIVE_SLOTS = list(ID_SLOTS)  # where a node belongs: these take an Id, never a plain int
ID_SLOTS += [
    ("sum", lambda t, i: T.sum(t, [i])),
    ("sum", lambda t, i: T.sum(t, [T.Id(0), i, T.Id(0)])),
    ("dot", lambda t, i: T.dot(t, [T.Id(0), i], [T.Id(0), T.Id(0)])),
    ("dot", lambda t, i: T.dot(t, [T.Id(0), T.Id(0)], [i, T.Id(0)])),
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
    bad = T.Id(bad) if isinstance(bad, int) else bad
    message = refused(tape, lambda: call(tape, bad), IndexError)
    assert message.startswith(f"{op}:") and repr(bad) in message


@given(st.sampled_from([slot for slot in ID_SLOTS if slot[0] != "grad"]), programs(),
       st.floats(allow_nan=False))
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
    refused(tape, lambda: T.add(tape, i, T.Id(len(tape))), IndexError)
    assert T.grad(T.backward(tape, j), i) == 2 * x


# ----------------------------------------------- what a custom op can get wrong


def test_push_refuses_fewer_local_gradients_than_inputs() -> None:
    tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    message = refused(tape, lambda: T.push(tape, "mine", 7.0, (x, y), (1.0,)), ValueError)
    assert message == "mine: 2 inputs but 1 local gradients; give one local gradient per input"
    message = refused(tape, lambda: T.push(tape, "mine", 7.0, (x,), (1.0, 1.0)), ValueError)
    assert message.startswith("mine: 1 inputs but 2 local gradients")


@given(st.integers(2, 50))
def test_push_refuses_an_input_not_on_the_tape_and_its_own_id(n: int) -> None:
    """An input id at or past len(tape), the new node's own id included, is refused at push."""
    tape = T.leaves([1.0] * n)
    for bad in (n, n + 7, -1):
        message = refused(tape, lambda b=bad: T.push(tape, "mine", 1.0, (0, b), (1.0, 1.0)),
                          IndexError)
        assert message == f"mine: node id {bad} is not on this tape of {n} nodes"


@given(st.sampled_from([math.nan, math.inf, -math.inf]))
def test_push_refuses_a_local_gradient_that_is_not_finite(bad: float) -> None:
    tape, x = T.var(T.new(), 1.0)
    message = refused(tape, lambda: T.push(tape, "mine", 1.0, (x,), (bad,)), T.NonFiniteError)
    assert message == f"mine: local gradient: value {bad!r} is not finite"


def test_push_refuses_a_local_gradient_that_is_not_a_number() -> None:
    tape, x = T.var(T.new(), 1.0)
    message = refused(tape, lambda: T.push(tape, "mine", 1.0, (x,), ("1",)), TypeError)
    assert message == "mine: local gradient: expected a number, got '1'"


def test_numpy_scalars_are_numbers_and_ids() -> None:
    np = pytest.importorskip("numpy")
    tape, x = T.var(T.new(), np.float64(2.0))
    tape, y = T.scale(tape, x, np.int64(-1))
    assert T.data(tape, np.int64(1)) == -2.0  # reads take numpy's ints as ids
    message = refused(tape, lambda: T.neg(tape, np.int64(0)), TypeError)  # a node takes an Id
    assert message.startswith(f"neg: {np.int64(0)!r} is a plain int, not a node id")
    tape, z = T.push(tape, "mine", np.float32(3.0), (np.int64(x), y), (np.float64(1.0), 2))
    assert T.data(tape, y) == -2.0 and type(T.data(tape, y)) is float
    assert T.node(tape, z) == T.Node(3.0, (0, 1), (1.0, 2.0), "mine")
    assert all(type(i) is int for i in T.node(tape, z).inputs)
    assert T.backward(tape, z)[x] == 1.0 + 2.0 * -1.0


def test_a_list_where_one_id_belongs_says_how_to_map() -> None:
    tape, xs = T.map_tape(T.new(), [1.0, -1.0], T.var)
    message = refused(tape, lambda: T.relu(tape, list(xs)), TypeError)
    assert message == ("relu: expected one node id, got list [0, 1]; for one node per id, map "
                       "over them: T.map_tape(tape, ids, T.relu)")


@pytest.mark.parametrize("bad, error", [(0.0, ValueError), (-1.0, ValueError)])
def test_sqrt_outside_its_domain(bad: float, error: type[Exception]) -> None:
    tape, x = T.var(T.new(), bad)
    message = refused(tape, lambda: T.sqrt(tape, x), error)
    assert message.startswith(f"sqrt: needs a positive number, got {bad!r}")


@given(st.sampled_from(PRIMITIVE_SLOTS), programs(), st.integers(-5, 50))
def test_a_plain_int_where_a_node_belongs_is_refused(
    slot: tuple[str, Call], program: Program, k: int
) -> None:
    """T.mul(tape, x, 2) must not multiply by node 2: a plain int is refused, whatever its value,
    with the message naming both readings (the number k.0, the node T.Id(k))."""
    op, call = slot
    tape = run_on_tape(program)
    message = refused(tape, lambda: call(tape, k), TypeError)
    assert message.startswith(f"{op}: {k} is a plain int, not a node id")
    assert f"write {float(k)!r}" in message and f"write T.Id({k})" in message


@given(programs())
def test_reads_take_plain_ints_and_ids_alike(program: Program) -> None:
    tape = run_on_tape(program)
    for i in range(len(tape)):
        assert T.data(tape, i) == T.data(tape, T.Id(i))
        assert T.node(tape, i) == T.node(tape, T.Id(i))
    grads = T.backward(tape, len(tape) - 1)
    assert grads == T.backward(tape, T.Id(len(tape) - 1))
    assert [T.grad(grads, i) for i in range(len(tape))] == list(grads)


def test_ids_mark_a_layers_plain_ints() -> None:
    tape, xs = T.map_tape(T.new(), [1.0, -2.0], T.var)
    tape, run = T.push_many(tape, [(2.0, (0,), (2.0,), "double")])
    assert type(run[0]) is int and all(type(i) is T.Id for i in T.as_ids(run))
    assert T.as_ids(run) == (2,) and all(type(x) is T.Id for x in xs)


def test_weighted_sum_refuses_other_lengths_and_ids_for_weights() -> None:
    tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    message = refused(tape, lambda: T.weighted_sum(tape, xs, [1.0]), ValueError)
    assert message == "weighted_sum: lengths differ (2 ids and 1 weights)"
    refused(tape, lambda: T.weighted_sum(tape, xs, [1.0, "2"]), TypeError)


# ------------------------------------------------------- the one rule for ids


def two_leaves() -> tuple[T.Tape, T.Id, T.Id]:
    tape, (x, half) = T.map_tape(T.new(), [3.0, 0.5], T.var)
    return tape, x, half


@pytest.mark.parametrize("call", [
    lambda t, x: T.sum(t, [0, 1]),
    lambda t, x: T.dot(t, [x, 1], [x, x]),
    lambda t, x: T.weighted_sum(t, [0], [1.0]),
    lambda t, x: L.linear(t, [0, 1], [[x, x]]),
    lambda t, x: L.softmax(t, [0, 1]),
    lambda t, x: L.rmsnorm(t, (0, 1)),
    lambda t, x: L.vector_add(t, [0], [1]),
    lambda t, x: L.vector_relu(t, [0]),
    lambda t, x: L.cross_entropy(t, [0, 1], 0),
    lambda t, x: L.attention(t, [x], [[0]], [[x]], 1),
], ids=["sum", "dot", "weighted_sum", "linear", "softmax", "rmsnorm", "vector_add",
        "vector_relu", "cross_entropy", "attention"])
def test_a_plain_int_where_nodes_belong_offers_both_readings(call) -> None:
    """sum(tape, [0, 1]) once summed nodes 0 and 1; a user may have meant the numbers."""
    tape, x, _ = two_leaves()
    message = refused(tape, lambda: call(tape, x), TypeError)
    assert "is a plain int, not a node id" in message
    assert "for the number write" in message and "T.Id(" in message


@pytest.mark.parametrize("call", [
    lambda t, x, h: T.pow(t, x, h),
    lambda t, x, h: T.scale(t, x, h),
    lambda t, x, h: T.add_constant(t, x, h),
    lambda t, x, h: T.var(t, h),
    lambda t, x, h: T.constant(t, h),
    lambda t, x, h: T.weighted_sum(t, [x], [h]),
    lambda t, x, h: T.push(t, "mine", 1.0, [x], [h]),
    lambda t, x, h: T.push(t, "mine", h, [x], [1.0]),
    lambda t, x, h: T.push_many(t, [(1.0, (x,), (h,), "mine")]),
], ids=["pow", "scale", "add_constant", "var", "constant", "weighted_sum", "push grad",
        "push value", "push_many"])
def test_an_id_where_a_number_belongs_is_refused(call) -> None:
    """pow(tape, x, half) with half a node once used the id 1 as the exponent."""
    tape, x, half = two_leaves()
    message = refused(tape, lambda: call(tape, x, half), TypeError)
    assert "1 is a node id, not a number" in message and "T.data(tape, 1)" in message


@pytest.mark.parametrize("call", [
    lambda t: T.values(t, [True, False]),
    lambda t: T.data(t, True),
    lambda t: T.node(t, False),
    lambda t: T.as_ids([True]),
    lambda t: T.sum(t, [True]),
    lambda t: T.push(t, "mine", 1.0, [True], [1.0]),
    lambda t: T.Run.of([True]),
    lambda t: L.cross_entropy(t, T.as_ids([0, 1]), True),
])
def test_a_bool_is_never_an_id_nor_an_index(call) -> None:
    tape, _, _ = two_leaves()
    message = refused(tape, lambda: call(tape), TypeError)
    assert "bool" in message or "True" in message or "False" in message
