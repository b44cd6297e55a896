"""Each primitive's forward value and local gradients, checked one primitive at a time.

The law for every primitive ``op``: the local gradient it records for input
``k`` equals the central finite difference of ``op``'s own forward value with
respect to input ``k``, on random inputs from ``op``'s domain (|x| <= 10,
away from kinks and poles). The forward value is also checked against plain
Python arithmetic, and ``backward`` of the single node against the local
gradients (summed, when one leaf feeds an op twice). Each primitive also passes
the public helper a user would run on their own functions
(``functional_gpt.testing.assert_grads_ok``), on the public strategies.
"""

import math
from collections.abc import Callable, Sequence

from hypothesis import assume, given
from hypothesis import strategies as st
from reference_autograd import central_difference

import functional_gpt.tape as T
from functional_gpt.testing import assert_grads_ok
from functional_gpt.testing import finite_floats as finite

TapeFn = Callable[[T.Tape, tuple[int, ...]], tuple[T.Tape, int]]

small = finite(-10.0, 10.0)
away_from_zero = finite(0.1, 10.0).flatmap(lambda x: st.sampled_from([x, -x]))


def forward(f: TapeFn, xs: Sequence[float]) -> float:
    """Return the value ``f`` computes from leaves holding ``xs``."""
    tape, ids = T.map_tape(T.new(), xs, T.var)
    tape, out = f(tape, ids)
    return T.data(tape, out)


def assert_gradients_match_differences(f: TapeFn, xs: Sequence[float]) -> None:
    """Check the op node's local gradients, and backward, against central differences.

    The differences come from the tests' own ``central_difference``; then the
    public helper checks the same function end to end (tape kept, gradients).
    """
    tape, ids = T.map_tape(T.new(), xs, T.var)
    tape, out = f(tape, ids)
    node = T.node(tape, out)
    assert node.inputs == ids
    assert len(node.local_grads) == len(ids)
    grads = T.backward(tape, out)
    for k, local in enumerate(node.local_grads):
        numeric = central_difference(lambda v: forward(f, v), xs, k)
        assert math.isclose(local, numeric, rel_tol=1e-6, abs_tol=1e-6), (k, local, numeric)
        assert T.grad(grads, ids[k]) == local
    assert_grads_ok(f, xs)


def unary(op: Callable[[T.Tape, int], tuple[T.Tape, int]]) -> TapeFn:
    return lambda tape, ids: op(tape, ids[0])


def binary(op: Callable[[T.Tape, int, int], tuple[T.Tape, int]]) -> TapeFn:
    return lambda tape, ids: op(tape, ids[0], ids[1])


@given(x=small, y=small)
def test_add(x: float, y: float) -> None:
    """add(x, y) = x + y, with d/dx = d/dy = 1."""
    assert forward(binary(T.add), [x, y]) == x + y
    assert_gradients_match_differences(binary(T.add), [x, y])


@given(x=small, y=small)
def test_sub(x: float, y: float) -> None:
    """sub(x, y) = x - y, with d/dx = 1 and d/dy = -1."""
    assert forward(binary(T.sub), [x, y]) == x - y
    assert_gradients_match_differences(binary(T.sub), [x, y])


@given(x=small, y=small)
def test_mul(x: float, y: float) -> None:
    """mul(x, y) = x * y, with d/dx = y and d/dy = x."""
    assert forward(binary(T.mul), [x, y]) == x * y
    assert_gradients_match_differences(binary(T.mul), [x, y])


@given(x=small, y=away_from_zero)
def test_div(x: float, y: float) -> None:
    """div(x, y) = x / y (to rounding), with d/dx = 1/y and d/dy = -x/y**2, for |y| >= 0.1."""
    assert math.isclose(forward(binary(T.div), [x, y]), x / y, rel_tol=1e-15, abs_tol=1e-300)
    assert_gradients_match_differences(binary(T.div), [x, y])


@given(x=small)
def test_neg(x: float) -> None:
    """neg(x) = -x, with d/dx = -1."""
    assert forward(unary(T.neg), [x]) == -x
    assert_gradients_match_differences(unary(T.neg), [x])


@given(x=small, s=small)
def test_scale(x: float, s: float) -> None:
    """scale(x, s) = x * s for a plain float s (no node for s), with d/dx = s."""
    f: TapeFn = lambda tape, ids: T.scale(tape, ids[0], s)  # noqa: E731
    assert forward(f, [x]) == x * s
    assert_gradients_match_differences(f, [x])


@given(x=small, p=st.integers(-4, 5))
def test_pow_integer_exponent(x: float, p: int) -> None:
    """pow(x, p) = x ** p for integer p on any x (|x| >= 0.1 when p < 0), d/dx = p x**(p-1).

    p = 0 included, even at x = 0: x ** 0 is the constant 1 and its gradient is 0.
    """
    assume(p >= 0 or abs(x) >= 0.1)
    f: TapeFn = lambda tape, ids: T.pow(tape, ids[0], float(p))  # noqa: E731
    assert math.isclose(forward(f, [x]), x**p, rel_tol=1e-15)
    assert_gradients_match_differences(f, [x])


@given(p=st.integers(0, 5))
def test_pow_at_zero(p: int) -> None:
    """pow(0, p) for integer p >= 0 is 0 ** p with gradient p * 0 ** (p-1), and 0 for p = 0."""
    tape, x = T.var(T.new(), 0.0)
    tape, y = T.pow(tape, x, float(p))
    assert T.data(tape, y) == 0.0**p
    assert T.node(tape, y).local_grads == (1.0 if p == 1 else 0.0,)


@given(x=finite(0.1, 10.0), p=finite(-3.0, 3.0))
def test_pow_real_exponent(x: float, p: float) -> None:
    """pow(x, p) = x ** p for any real p on x >= 0.1, with d/dx = p x**(p-1)."""
    f: TapeFn = lambda tape, ids: T.pow(tape, ids[0], p)  # noqa: E731
    assert math.isclose(forward(f, [x]), x**p, rel_tol=1e-15)
    assert_gradients_match_differences(f, [x])


@given(x=finite(0.01, 10.0))
def test_log(x: float) -> None:
    """log(x) = ln x for x > 0, with d/dx = 1/x."""
    assert forward(unary(T.log), [x]) == math.log(x)
    assert_gradients_match_differences(unary(T.log), [x])


@given(x=small)
def test_exp(x: float) -> None:
    """exp(x) = e ** x, with d/dx = e ** x."""
    assert forward(unary(T.exp), [x]) == math.exp(x)
    assert_gradients_match_differences(unary(T.exp), [x])


@given(x=small.filter(lambda x: abs(x) > 1e-3))
def test_relu(x: float) -> None:
    """relu(x) = max(x, 0), with d/dx = 1 for x > 0 and 0 for x < 0 (away from the kink)."""
    assert forward(unary(T.relu), [x]) == max(x, 0.0)
    assert_gradients_match_differences(unary(T.relu), [x])


@given(xs=st.lists(small, max_size=8))
def test_sum(xs: list[float]) -> None:
    """sum(xs) is one node equal to the left-to-right sum, with d/dx_i = 1 for each input."""
    f: TapeFn = lambda tape, ids: T.sum(tape, ids)  # noqa: E731
    assert math.isclose(forward(f, xs), math.fsum(xs), rel_tol=1e-12, abs_tol=1e-12)
    assert_gradients_match_differences(f, xs)


@given(pairs=st.lists(st.tuples(small, small), max_size=8))
def test_dot(pairs: list[tuple[float, float]]) -> None:
    """dot(xs, ys) = sum of x_i * y_i as one node, with d/dx_i = y_i and d/dy_i = x_i."""
    xs, ys = [x for x, _ in pairs], [y for _, y in pairs]
    k = len(pairs)
    f: TapeFn = lambda tape, ids: T.dot(tape, ids[:k], ids[k:])  # noqa: E731
    exact = math.fsum(x * y for x, y in pairs)
    assert math.isclose(forward(f, xs + ys), exact, rel_tol=1e-12, abs_tol=1e-10)
    assert_gradients_match_differences(f, xs + ys)


@given(x=small, y=small)
def test_an_input_used_twice_gets_both_gradients(x: float, y: float) -> None:
    """When one node feeds an op in two places, backward adds both local gradients.

    mul(x, x) has d/dx = 2x; dot([x, y], [x, x]) has d/dx = 2x + y.
    """
    tape, (a, b) = T.map_tape(T.new(), [x, y], T.var)
    tape, sq = T.mul(tape, a, a)
    assert T.grad(T.backward(tape, sq), a) == 2 * x
    tape, d = T.dot(tape, [a, b], [a, a])
    assert math.isclose(T.grad(T.backward(tape, d), a), 2 * x + y, rel_tol=1e-12, abs_tol=1e-12)


@given(x=small)
def test_leaves(x: float) -> None:
    """var(x) and constant(x) are leaves holding float(x): no inputs, no local gradients."""
    for make in (T.var, T.constant):
        tape, i = make(T.new(), x)
        assert T.data(tape, i) == x
        assert T.node(tape, i).inputs == () and T.node(tape, i).local_grads == ()
        assert T.backward(tape, i)[i] == 1.0


wide = finite(-50.0, 50.0)


@given(x=wide)
def test_tanh(x: float) -> None:
    """tanh(x) = math.tanh(x), with d/dx = 1 - tanh(x)**2."""
    assert forward(unary(T.tanh), [x]) == math.tanh(x)
    assert_gradients_match_differences(unary(T.tanh), [x])


@given(x=wide)
def test_sigmoid(x: float) -> None:
    """sigmoid(x) = 1 / (1 + e**-x) (to rounding, against the exact expression), d/dx = s(1-s)."""
    exact = 1.0 / (1.0 + math.exp(-x))
    assert math.isclose(forward(unary(T.sigmoid), [x]), exact, rel_tol=1e-15, abs_tol=1e-300)
    assert_gradients_match_differences(unary(T.sigmoid), [x])


@given(x=finite(0.01, 100.0))
def test_sqrt(x: float) -> None:
    """sqrt(x) = math.sqrt(x) for x > 0, with d/dx = 1 / (2 sqrt x)."""
    assert forward(unary(T.sqrt), [x]) == math.sqrt(x)
    assert_gradients_match_differences(unary(T.sqrt), [x])


@given(x=away_from_zero)
def test_abs(x: float) -> None:
    """abs(x) = |x|, with d/dx = sign(x) away from the kink; at 0 the value is 0.0, slope 0."""
    assert forward(unary(T.abs), [x]) == abs(x)
    assert_gradients_match_differences(unary(T.abs), [x])
    for zero in (0.0, -0.0):
        tape, z = T.abs(*T.var(T.new(), zero))
        assert float.hex(T.data(tape, z)) == float.hex(0.0)
        assert T.node(tape, z).local_grads == (0.0,)


@given(x=small, c=small)
def test_add_constant(x: float, c: float) -> None:
    """add_constant(x, c) = x + c for a plain number c (no node for c), with d/dx = 1."""
    f: TapeFn = lambda tape, ids: T.add_constant(tape, ids[0], c)  # noqa: E731
    assert forward(f, [x]) == x + c
    assert_gradients_match_differences(f, [x])


@given(x=st.sampled_from([-1e6, -800.0, -355.0, 355.0, 800.0, 1e6]))
def test_tanh_and_sigmoid_are_finite_where_a_chain_of_exp_overflows(x: float) -> None:
    """Built from exp, tanh overflows past |x| > 355; the primitives stay finite.

    tanh is exactly ±1 with slope 0 there; sigmoid is within its open range, and exactly 1 or 0
    with slope 0 once e**-|x| underflows."""
    tape, y = T.tanh(*T.var(T.new(), x))
    assert T.data(tape, y) == math.copysign(1.0, x) and T.node(tape, y).local_grads == (0.0,)
    tape, s = T.sigmoid(*T.var(T.new(), x))
    value, (slope,) = T.data(tape, s), T.node(tape, s).local_grads
    assert 0.0 <= value <= 1.0 and 0.0 <= slope <= 0.25
    if abs(x) >= 800.0:
        assert (value, slope) == (1.0 if x > 0 else 0.0, 0.0)


@given(pairs=st.lists(st.tuples(small, small), max_size=8))
def test_weighted_sum(pairs: list[tuple[float, float]]) -> None:
    """weighted_sum(xs, ws) for plain weights is dot(xs, constants ws) without the constants:
    the same value to the bit, and d/dx_i = w_i."""
    xs, ws = [x for x, _ in pairs], [w for _, w in pairs]
    f: TapeFn = lambda tape, ids: T.weighted_sum(tape, ids, ws)  # noqa: E731
    tape, ids = T.map_tape(T.new(), xs, T.var)
    tape, cs = T.map_tape(tape, ws, T.constant)
    assert float.hex(forward(f, xs)) == float.hex(T.data(*T.dot(tape, ids, cs)))
    assert_gradients_match_differences(f, xs)
