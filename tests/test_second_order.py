"""Gradients that are tape values: backward_on_tape, tape_gradient, hessian and hvp.

The oracles are independent of the code under test: central differences of the first-order
gradient (``backward``, itself checked against a naive mutable autograd elsewhere), closed forms
of third derivatives, plain compositions of primitives for the fused ops, and ``backward_spec``
(bits) for the adjoints' values at first order.
"""

import math
from collections.abc import Callable, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Instr, apply_instr

import functional_gpt.tape as T
from functional_gpt import layers as L
from functional_gpt import model as M
from functional_gpt import repl, train
from functional_gpt import rng as R
from functional_gpt.fused_adjoints import fused_backward_on_tape
from functional_gpt.transforms import hessian, hvp, inputs_on_tape, tape_gradient

# ----------------------------------------------------------- random programs
# Straight-line programs over every primitive, each step kept well inside its op's domain
# (away from relu's and abs's kinks, from 0 for log, sqrt, div and reciprocal) with values of
# moderate size, so that the second derivatives exist and finite differences apply.

ONE_INPUT = ("neg", "exp", "log", "relu", "tanh", "sigmoid", "sqrt", "abs", "reciprocal",
             "scale", "add_constant", "pow")  # fmt: skip
TWO_INPUTS = ("add", "sub", "mul", "div")
MANY_INPUTS = ("sum", "dot", "weighted_sum")
Step = tuple[str, tuple[int, ...], float]  # an op, the positions it reads, its parameter
POWERS = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 0.5, 1.5, -0.5)


def in_domain(op: str, args: Sequence[float], p: float) -> bool:
    """Whether ``op`` of ``args`` is smooth there, with a moderate value."""
    x = args[0] if args else 0.0
    if op in ("log", "sqrt") or (op == "pow" and not p.is_integer()):
        ok = x > 0.2
    elif op in ("relu", "abs", "reciprocal") or (op == "pow" and p < 0):
        ok = abs(x) > 0.2
    elif op == "div":
        ok = abs(args[1]) > 0.2
    elif op == "exp":
        ok = x < 4.0
    else:
        ok = True
    return ok and all(abs(a) < 30 for a in args)


@st.composite
def programs(draw: st.DrawFn) -> tuple[tuple[float, ...], tuple[Step, ...]]:
    """Inputs, and steps (op, argument positions, parameter) whose values stay in domain."""
    inputs = tuple(draw(st.lists(st.floats(-2.0, 2.0).filter(lambda x: abs(x) > 0.3),
                                 min_size=1, max_size=3)))
    tape, ids = T.map_tape(T.new(), inputs, T.var)
    steps = []
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(ONE_INPUT + TWO_INPUTS + MANY_INPUTS))
        n = len(tape)
        if op in ONE_INPUT:
            args = (draw(st.integers(0, n - 1)),)
        elif op in TWO_INPUTS:
            args = (draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)))
        else:
            k = draw(st.integers(1, 3))
            args = tuple(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k)))
            if op == "dot":
                args = args + tuple(draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k)))
        p = draw(st.sampled_from(POWERS)) if op == "pow" else draw(st.floats(-2.0, 2.0))
        if not in_domain(op, T.values(tape, args), p):
            continue
        longer, out = apply_instr(tape, Instr(op, args, p))
        if abs(T.data(longer, out)) > 50:  # too large: drop the step, keep the tape before it
            continue
        tape = longer
        steps.append(Instr(op, args, p))
    return inputs, tuple(steps)


def program_function(steps) -> Callable[[T.Tape, Sequence[T.Id]], tuple[T.Tape, T.Id]]:
    """The program as a tape function of its inputs; its output sums every node after them."""

    def f(tape: T.Tape, ids: Sequence[T.Id]) -> tuple[T.Tape, T.Id]:
        first = len(tape) - len(ids)  # the steps address inputs as 0..n-1
        assert first == 0
        tape, outs = T.map_tape(tape, steps, apply_instr)
        return T.sum(tape, T.as_ids(range(len(tape))))

    return f


def gradient_floats(f, xs: Sequence[float]) -> tuple[float, ...]:
    """The first-order gradient, by ``backward``."""
    return repl.gradient(f)(list(xs))


def close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


@settings(max_examples=150)
@given(programs())
def test_hessians_match_central_differences_of_the_gradient(program) -> None:
    """H[i][j] = d(grad_j)/dx_i, against central differences of backward's gradient."""
    inputs, steps = program
    f = program_function(steps)
    h_tape = hessian(f)(list(inputs))
    for i, x in enumerate(inputs):
        step = 1e-5 * max(1.0, abs(x))
        up = gradient_floats(f, inputs[:i] + (x + step,) + inputs[i + 1:])
        down = gradient_floats(f, inputs[:i] + (x - step,) + inputs[i + 1:])
        scale = max([1.0] + [abs(g) for g in up])
        for j in range(len(inputs)):
            numeric = (up[j] - down[j]) / (2 * step)
            assert abs(h_tape[i][j] - numeric) <= 1e-4 * max(scale, abs(numeric)), (i, j)


@settings(max_examples=150)
@given(programs(), st.data())
def test_the_hessian_is_symmetric_and_hvp_is_hessian_times_v(program, data) -> None:
    inputs, steps = program
    f = program_function(steps)
    h = hessian(f)(list(inputs))
    n = len(inputs)
    for i in range(n):
        for j in range(n):
            assert close(h[i][j], h[j][i], 1e-9), (i, j, h)
    vs = data.draw(st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n))
    product = hvp(f)(list(inputs), vs)
    for i in range(n):
        expected = math.fsum(h[i][j] * vs[j] for j in range(n))
        assert close(product[i], expected, 1e-9), (i, product, expected)


def bits(xs: Sequence[float]) -> list[str]:
    return [float(x).hex() for x in xs]


def program_tape(program) -> tuple[T.Tape, tuple[T.Id, ...], T.Id]:
    """The program run on a new tape: the tape, its inputs' ids and its output's id."""
    inputs, steps = program
    tape, ids = T.map_tape(T.new(), inputs, T.var)
    tape, root = program_function(steps)(tape, ids)
    return tape, ids, root


def adjoint_values(after: T.Tape, adjoints, n: int) -> list[float]:
    """The values of the adjoints of nodes 0..n-1 (0.0 where a node has none)."""
    return [T.data(after, adjoints[i]) if i in adjoints else 0.0 for i in range(n)]


def assert_same_hessians(layers, layer_function, xs: Sequence[float], ws: Sequence[float],
                         name: str) -> None:
    """The Hessians of ws . layer(xs) agree to rounding for every layer in ``layers``, where
    ``layer_function(layer)(tape, ids) -> (tape, outputs)``."""
    def weighted(run):
        def f(tape, ids):
            tape, outs = run(tape, ids)
            return T.weighted_sum(tape, T.as_ids(outs), ws[: len(outs)])
        return f

    hs = [hessian(weighted(layer_function(layer)))(list(xs)) for layer in layers]
    for row_a, row_b in zip(*hs):
        for a, b in zip(row_a, row_b):
            assert close(a, b, 1e-9), name


@settings(max_examples=150)
@given(programs())
def test_first_order_adjoints_on_the_tape_are_backward_spec_bit_for_bit(program) -> None:
    """backward_on_tape (the spec) and fused_backward_on_tape both give backward_spec's floats."""
    tape, _, root = program_tape(program)
    spec = T.backward_spec(tape, root)
    for on_tape in (T.backward_on_tape, fused_backward_on_tape):
        after, adjoints = on_tape(tape, root)
        assert bits(adjoint_values(after, adjoints, len(tape))) == bits(spec), on_tape.__name__
        assert after.nodes[: len(tape)] == tape.nodes  # the tape passed in is a prefix, unchanged


@settings(max_examples=100)
@given(programs())
def test_the_fused_adjoints_differentiate_as_the_spec_does(program) -> None:
    """Second derivatives through fused adjoints equal those through the spec's, to rounding."""
    tape, ids, root = program_tape(program)
    plain, plain_adj = T.backward_on_tape(tape, root)
    fused, fused_adj = fused_backward_on_tape(tape, root)
    for i in ids:
        if i not in plain_adj:
            continue
        a = T.backward(plain, plain_adj[i])
        b = T.backward(fused, fused_adj[i])
        for j in ids:
            assert close(a[j], b[j], 1e-12), (i, j)


# ------------------------------------------------------- third derivatives


def one_variable(op: str, p: float = 0.0):
    def f(tape, ids):
        (x,) = ids
        return apply_instr(tape, Instr(op, (x,), p))

    return f


def nth_derivative(f, n: int):
    """The n-th derivative of a one-variable tape function, as a tape function."""
    for _ in range(n):
        f = _derivative(f)
    return f


def _derivative(f):
    """The derivative of a one-variable tape function, as a one-variable tape function."""

    def d(tape, ids):
        tape, (g,) = tape_gradient(f)(tape, ids)
        return tape, g

    return d


THIRD = {
    "exp": lambda x: math.exp(x),
    "log": lambda x: 2 / x**3,
    "tanh": lambda x: -2 * (1 - math.tanh(x) ** 2) * (1 - 3 * math.tanh(x) ** 2),
    "sigmoid": lambda x: (lambda s: s * (1 - s) * (1 - 6 * s + 6 * s * s))(1 / (1 + math.exp(-x))),
    "sqrt": lambda x: 3 / 8 * x**-2.5,
    "reciprocal": lambda x: -6 / x**4,
    "relu": lambda x: 0.0,
    "abs": lambda x: 0.0,
}


@given(st.sampled_from(sorted(THIRD)), st.floats(0.3, 3.0))
def test_third_derivatives_match_closed_forms(op, x) -> None:
    tape, (xid,) = inputs_on_tape([x])
    tape, d3 = nth_derivative(one_variable(op), 3)(tape, (xid,))
    assert close(T.data(tape, d3), THIRD[op](x), 1e-10), (op, x)


@given(st.sampled_from([-2.0, -1.0, 0.5, 1.5, 2.0, 3.0, 4.0]), st.floats(0.3, 3.0))
def test_third_and_fourth_derivatives_of_pow(p, x) -> None:
    tape, ids = inputs_on_tape([x])
    for n in (3, 4):
        t, dn = nth_derivative(one_variable("pow", p), n)(tape, ids)
        expected = math.prod(p - k for k in range(n)) * x ** (p - n)
        assert close(T.data(t, dn), expected, 1e-10), (p, x, n)


# ------------------------------------------------------------- the fused ops
# Each fused layer against a plain composition of primitives computing the same function: the
# Hessian of a random weighted sum of its outputs, to rounding.


def plain_softmax(tape, xs):
    top = max(T.values(tape, xs))
    tape, shifted = T.map_tape(tape, xs, lambda t, x: T.add_constant(t, x, -top))
    tape, es = T.map_tape(tape, shifted, T.exp)
    tape, total = T.sum(tape, es)
    return T.map_tape(tape, es, lambda t, e: T.div(t, e, total))


def plain_rmsnorm(tape, xs):
    tape, ss = T.dot(tape, xs, xs)
    tape, mean = T.scale(tape, ss, len(xs) ** -1)
    tape, u = T.add_constant(tape, mean, L.RMS_EPS)
    tape, s = T.pow(tape, u, -0.5)
    return T.map_tape(tape, xs, lambda t, x: T.mul(t, x, s))


def plain_cross_entropy(tape, xs, target):
    tape, ps = plain_softmax(tape, xs)
    tape, lp = T.log(tape, ps[target])
    return T.neg(tape, lp)


def plain_attention(tape, q, keys, vals, n_head):
    d = len(q) // n_head
    out = []
    for lo in range(0, len(q), d):
        tape, logits = T.map_tape(tape, keys, lambda t, k, lo=lo: T.scale(
            *T.dot(t, q[lo:lo + d], k[lo:lo + d]), (d**0.5) ** -1))
        tape, ps = plain_softmax(tape, logits)
        for j in range(lo, lo + d):
            tape, o = T.dot(tape, ps, [v[j] for v in vals])
            out.append(o)
    return tape, tuple(out)


def layer_cases(n: int):
    """(name, fused tape function, plain tape function) of n inputs, each giving a vector."""
    ids = lambda xs: T.as_ids(xs)  # noqa: E731
    half = n // 2
    return [
        ("softmax", lambda t, xs: L.softmax(t, xs), plain_softmax),
        ("rmsnorm", lambda t, xs: L.rmsnorm(t, xs), plain_rmsnorm),
        ("cross_entropy", lambda t, xs: (lambda r: (r[0], (r[1],)))(L.cross_entropy(t, xs, 0)),
         lambda t, xs: (lambda r: (r[0], (r[1],)))(plain_cross_entropy(t, ids(xs), 0))),
        ("linear+bias", lambda t, xs: L.linear(t, xs[:half], [xs[half:2 * half]] * 2,
                                              bias=[xs[-1], xs[0]]),
         lambda t, xs: T.map_tape(t, [xs[-1], xs[0]], lambda t2, b: T.add(
             *T.dot(t2, ids(xs[:half]), ids(xs[half:2 * half])), b))),
        ("scaled_dots", lambda t, xs: L.scaled_dots(t, xs[:half], [xs[half:2 * half]] * 2, 0.7),
         lambda t, xs: T.map_tape(t, [0, 1], lambda t2, _: T.scale(
             *T.dot(t2, ids(xs[:half]), ids(xs[half:2 * half])), 0.7))),
    ]


@settings(max_examples=40)
@given(st.integers(4, 6).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-2.0, 2.0), min_size=n, max_size=n),
    st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n))))
def test_fused_layers_second_derivatives_equal_their_plain_compositions(xs_ws) -> None:
    xs, ws = xs_ws
    for name, fused, plain in layer_cases(len(xs)):
        assert_same_hessians((fused, plain), lambda layer: lambda tape, ids: layer(
            tape, T.as_ids(ids)), xs, ws, name)


@settings(max_examples=30)
@given(st.integers(1, 2), st.integers(1, 3), st.data())
def test_attention_second_derivatives_equal_the_plain_composition(n_head, t, data) -> None:
    d = 2 * n_head
    xs = data.draw(st.lists(st.floats(-1.5, 1.5), min_size=d * (1 + 2 * t),
                            max_size=d * (1 + 2 * t)))
    ws = data.draw(st.lists(st.floats(-1.0, 1.0), min_size=d, max_size=d))

    def split(ids):
        ids = T.as_ids(ids)
        q = ids[:d]
        keys = [ids[d + k * d: d + (k + 1) * d] for k in range(t)]
        vals = [ids[d * (1 + t) + k * d: d * (1 + t) + (k + 1) * d] for k in range(t)]
        return q, keys, vals

    assert_same_hessians((L.attention, plain_attention), lambda layer: lambda tape, ids: layer(
        tape, *split(ids), n_head), xs, ws, "attention")


def test_a_doc_loss_tape_is_differentiable_twice_and_its_adjoints_are_backward_bit_for_bit():
    config = M.Config(vocab_size=5, n_layer=2, n_embd=4, n_head=2, block_size=4)
    _, tape = M.init(R.seed(3), config)
    tape, loss = M.doc_loss(tape, M.layout(config), config, (4, 0, 1, 2, 4))
    first = T.backward_as_tuple(tape, loss)
    for on_tape in (T.backward_on_tape, fused_backward_on_tape):
        after, adjoints = on_tape(tape, loss)
        assert bits(adjoint_values(after, adjoints, len(tape))) == bits(first)
    # and again: the adjoints' own gradients exist for every node with a rule
    second = T.backward(after, adjoints[0])
    assert len(second) == len(after)


# ----------------------------------------------------------- hvp of the GPT


@pytest.mark.parametrize("n_layer", [1, 2])
def test_hvp_of_doc_loss_matches_central_differences_of_loss_and_grads(n_layer) -> None:
    """H v of the GPT's loss, against (grad(x + h v) - grad(x - h v)) / 2h of train's gradient."""
    config = M.Config(vocab_size=27, n_layer=n_layer)
    _, state = train.init_state(R.seed(7), config)
    tokens = (26, 4, 12, 12, 0, 26)
    xs = train.param_values(state)
    _, vs = R.gauss_many(R.seed(8), len(xs), 0.0, 1.0)

    def loss(tape, ids):
        return M.doc_loss(tape, M.layout(config), config, tokens)

    product = hvp(loss)(list(xs), list(vs))
    h = 1e-4

    def grads_at(sign):
        moved = T.leaves([x + sign * h * v for x, v in zip(xs, vs)])
        return train.loss_and_grads(state._replace(tape=moved), tokens)[1]

    up, down = grads_at(1.0), grads_at(-1.0)
    numeric = [(a - b) / (2 * h) for a, b in zip(up, down)]
    scale = max(abs(x) for x in numeric)
    worst = max(abs(a - b) for a, b in zip(product, numeric))
    assert worst <= 1e-5 * scale, (worst, scale)


# ---------------------------------------------------------------- the rules


def test_a_float_only_op_differentiated_twice_raises_a_clear_error() -> None:
    def f(tape, ids):
        (x,) = ids
        v = T.data(tape, x)
        return T.push(tape, "square", v * v, (x,), (2 * v,))

    assert repl.gradient(f)([3.0]) == (6.0,)  # first order works
    with pytest.raises(T.NoRuleError, match=r"square: node \d+ .*float local grad.*T\.Op"):
        hessian(f)([3.0])


def test_a_custom_op_with_a_rule_works_at_every_order() -> None:
    def cube_rule(tape, i, node):  # d(x**3)/dx = 3 * x * x
        (x,) = T.as_ids(node.inputs)
        tape, xx = T.mul(tape, x, x)
        tape, local = T.scale(tape, xx, 3.0)
        return tape, (local,)

    CUBE = T.Op("cube", cube_rule)

    def f(tape, ids):
        (x,) = ids
        v = T.data(tape, x)
        return T.push(tape, CUBE, v**3, (x,), (3 * v * v,))

    assert T.node(*f(*inputs_on_tape([2.0]))).op == "cube"
    assert hessian(f)([2.0]) == ((12.0,),)
    tape, ids = inputs_on_tape([2.0])
    tape, d3 = nth_derivative(f, 3)(tape, ids)
    assert T.data(tape, d3) == 6.0


def test_push_refuses_a_built_in_name_and_a_custom_op_named_like_one() -> None:
    tape, x = T.var(T.new(), 1.0)
    with pytest.raises(ValueError, match="'exp' is the name of a built-in op"):
        T.push(tape, "exp", 1.0, (x,), (1.0,))
    with pytest.raises(ValueError, match="'softmax' is the name of a built-in op"):
        T.push(tape, T.Op("softmax", lambda t, i, n: (t, (1.0,))), 1.0, (x,), (1.0,))


def test_bad_input_gets_one_clear_error() -> None:
    def two_outputs(tape, ids):
        return tape, (ids[0], ids[1])

    with pytest.raises(TypeError, match="must return one node, a scalar"):
        hessian(two_outputs)([1.0, 2.0])
    with pytest.raises(IndexError, match="not on its tape"):
        hessian(lambda tape, ids: (tape, T.Id(99)))([1.0])
    with pytest.raises(ValueError, match="vs has 3 numbers for 2 inputs"):
        hvp(lambda tape, ids: T.mul(tape, *ids))([1.0, 2.0], [1.0, 2.0, 3.0])


def test_trees_and_aux() -> None:
    def f(tape, p):  # f = w0 * w1 * b, aux: the value of w0 * w1
        tape, ww = T.mul(tape, *p["w"])
        tape, out = T.mul(tape, ww, p["b"])
        return tape, (out, T.data(tape, ww))

    params = {"w": (2.0, 3.0), "b": 4.0}  # leaves in flatten order: b, w0, w1
    h, aux = hessian(f, has_aux=True)(params)
    assert aux == 6.0
    assert h == ((0.0, 3.0, 2.0), (3.0, 0.0, 4.0), (2.0, 4.0, 0.0))
    product, aux = hvp(f, has_aux=True)(params, {"w": (1.0, 0.0), "b": 0.0})
    assert product == {"b": 3.0, "w": (0.0, 4.0)} and aux == 6.0


def test_nothing_passed_in_is_changed() -> None:
    tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    tape, z = T.tanh(*T.mul(tape, x, y))
    before = tape.nodes
    for on_tape in (T.backward_on_tape, fused_backward_on_tape):
        on_tape(tape, z)
        assert tape.nodes == before and len(tape) == 4
    g = tape_gradient(lambda t, ids: T.tanh(*T.mul(t, *ids)))
    g(tape, (x, y))
    assert tape.nodes == before


@settings(max_examples=10)
@given(st.integers(0, 10_000), st.integers(1, 2), st.sampled_from([1, 2]))
def test_hvp_of_the_fused_gpt_equals_hvp_of_the_plain_gpt(seed, n_layer, n_head) -> None:
    """The GPT in fused layers and in plain primitives (model.PLAIN_OPS): the same H v."""
    config = M.Config(vocab_size=4, n_layer=n_layer, n_embd=4, n_head=n_head, block_size=3)
    _, state = train.init_state(R.seed(seed), config)
    xs = list(train.param_values(state))
    _, vs = R.gauss_many(R.seed(seed + 1), len(xs), 0.0, 1.0)
    tokens = (3, 0, 2, 1)
    products = [
        hvp(lambda tape, ids, ops=ops: M.doc_loss(tape, M.layout(config), config, tokens, ops))(
            xs, list(vs))
        for ops in (M.TAPE_OPS, M.PLAIN_OPS)
    ]
    scale = max(map(abs, products[1]))
    assert all(abs(a - b) <= 1e-9 * scale for a, b in zip(*products))
