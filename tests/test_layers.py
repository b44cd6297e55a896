"""Each fused layer equals its unfused composition of tape primitives, in value and gradient.

The unfused versions below are written with the tape's scalar primitives only, step by step as
microgpt.py does them; the fused layers must agree with them to rounding, in the forward value
and in the gradient of a random downstream scalar with respect to every input.
"""

import decimal
import math

import pytest
from bits import bits
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import finite

import functional_gpt.tape as T
from functional_gpt import layers as L

floats = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)
vectors = st.lists(floats, min_size=1, max_size=8)


def close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


# ---------------------------------------------------------------- unfused versions (oracles)


def unfused_sum(tape, ids):
    """Left fold of add from a constant 0, as Python's sum over Values."""
    tape, acc = T.constant(tape, 0.0)
    for i in ids:
        tape, acc = T.add(tape, acc, i)
    return tape, acc


def unfused_softmax(tape, logits):
    top = max(T.values(tape, logits))
    tape, shifted = T.map_tape(tape, logits, lambda t, i: T.add(*T.constant(t, -top), i))
    tape, exps = T.map_tape(tape, shifted, T.exp)
    tape, total = unfused_sum(tape, exps)
    tape, inv = T.pow(tape, total, -1.0)
    return T.map_tape(tape, exps, lambda t, e: T.mul(t, e, inv))


def unfused_cross_entropy(tape, logits, target):
    tape, probs = unfused_softmax(tape, logits)
    tape, lp = T.log(tape, probs[target])
    return T.scale(tape, lp, -1.0)


def unfused_rmsnorm(tape, x):
    tape, squares = T.map_tape(tape, x, lambda t, i: T.mul(t, i, i))
    tape, ss = unfused_sum(tape, squares)
    tape, ms = T.scale(tape, ss, len(x) ** -1)
    tape, eps = T.constant(tape, L.RMS_EPS)
    tape, ms_eps = T.add(tape, ms, eps)
    tape, scale = T.pow(tape, ms_eps, -0.5)
    return T.map_tape(tape, x, lambda t, i: T.mul(t, i, scale))


def unfused_linear(tape, x, w):
    def row(t, r):
        t, prods = T.zip_map_tape(t, r, x, T.mul)
        return unfused_sum(t, prods)

    return T.map_tape(tape, w, row)


# ------------------------------------------------------------------------------- harness


def outputs_and_grads(layer, inputs, weights):
    """Values of the layer's outputs, and d(sum_k weights_k * out_k)/d(input) for each input."""
    tape, ids = T.map_tape(T.new(), inputs, T.var)
    tape, outs = layer(tape, ids)
    outs = outs if isinstance(outs, tuple) else (outs,)
    tape, ws = T.map_tape(tape, weights[: len(outs)], T.constant)
    tape, obj = T.dot(tape, outs, ws)
    grads = T.backward(tape, obj)
    return T.values(tape, outs), [T.grad(grads, i) for i in ids]


def assert_same(fused, unfused, inputs, weights):
    v1, g1 = outputs_and_grads(fused, inputs, weights)
    v2, g2 = outputs_and_grads(unfused, inputs, weights)
    assert len(v1) == len(v2)
    assert all(close(a, b) for a, b in zip(v1, v2)), (v1, v2)
    assert all(close(a, b) for a, b in zip(g1, g2)), (g1, g2)


weights_for = st.lists(floats, min_size=64, max_size=64)


@given(vectors, weights_for)
def test_softmax_equals_unfused(xs, ws):
    """softmax: one n-ary node per output equals exp / sum / pow(-1) / mul."""
    assert_same(L.softmax, unfused_softmax, xs, ws)


@given(vectors, weights_for)
def test_softmax_values_exactly_as_unfused(xs, ws):
    """The fused forward values are bit-for-bit those of the unfused chain (same float ops)."""
    tape, ids = T.map_tape(T.new(), xs, T.var)
    t1, a = L.softmax(tape, ids)
    t2, b = unfused_softmax(tape, ids)
    assert bits(T.values(t1, a)) == bits(T.values(t2, b))


@given(vectors, st.data(), weights_for)
def test_cross_entropy_equals_unfused(xs, data, ws):
    """cross_entropy: one node equals -log(softmax(logits)[target])."""
    target = data.draw(st.integers(0, len(xs) - 1))
    tape, ids = T.map_tape(T.new(), xs, T.var)
    t1, a = L.cross_entropy(tape, ids, target)
    t2, b = unfused_cross_entropy(tape, ids, target)
    assert T.data(t1, a) == T.data(t2, b)
    assert_same(lambda t, i: L.cross_entropy(t, i, target),
                lambda t, i: unfused_cross_entropy(t, i, target), xs, ws)


@given(vectors, weights_for)
def test_rmsnorm_equals_unfused(xs, ws):
    """rmsnorm: dot + one fused scale node + muls equals the scalar chain, bit for bit forward."""
    tape, ids = T.map_tape(T.new(), xs, T.var)
    t1, a = L.rmsnorm(tape, ids)
    t2, b = unfused_rmsnorm(tape, ids)
    assert T.values(t1, a) == T.values(t2, b)
    assert_same(L.rmsnorm, unfused_rmsnorm, xs, ws)


@given(st.integers(1, 5), st.integers(1, 5), st.data(), weights_for)
def test_linear_equals_unfused(n_in, n_out, data, ws):
    """linear: one dot node per row equals mul and add nodes, bit for bit forward."""
    xs = data.draw(st.lists(floats, min_size=n_in, max_size=n_in))
    wflat = data.draw(st.lists(floats, min_size=n_in * n_out, max_size=n_in * n_out))

    def split(tape, ids):
        x, w = ids[:n_in], ids[n_in:]
        return x, [w[r * n_in:(r + 1) * n_in] for r in range(n_out)]

    def fused(tape, ids):
        return L.linear(tape, *split(tape, ids))

    def unfused(tape, ids):
        return unfused_linear(tape, *split(tape, ids))

    tape, ids = T.map_tape(T.new(), xs + wflat, T.var)
    t1, a = fused(tape, ids)
    t2, b = unfused(tape, ids)
    assert T.values(t1, a) == T.values(t2, b)
    assert_same(fused, unfused, xs + wflat, ws)


def test_cross_entropy_rejects_bad_target():
    """A target outside the logits is a ValueError naming the op."""
    tape, ids = T.map_tape(T.new(), [0.0, 1.0], T.var)
    with pytest.raises(ValueError, match="cross_entropy"):
        L.cross_entropy(tape, ids, 2)


@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_linear_reads_a_run_matrix_as_its_rows(n_in, n_out, data):
    """A matrix of parameters given as a RunMatrix (one slice) builds the same tape as its rows."""
    flat = data.draw(st.lists(floats, min_size=n_out * n_in, max_size=n_out * n_in))
    tape = T.leaves(flat)
    tape, x = T.map_tape(tape, data.draw(st.lists(floats, min_size=n_in, max_size=n_in)), T.var)
    w = T.RunMatrix(0, n_out, n_in)
    assert L.linear(tape, x, w) == L.linear(tape, x, [T.as_ids(row) for row in w])
    with pytest.raises(ValueError, match=f"linear: row of {n_in} weights for an input of"):
        L.linear(tape, x[:-1] + x + x, w)


def test_linear_rejects_ragged_rows():
    """A weight row of the wrong width is a ValueError, not a silent truncation."""
    tape, ids = T.map_tape(T.new(), [1.0, 2.0, 3.0], T.var)
    with pytest.raises(ValueError, match="linear"):
        L.linear(tape, ids[:2], [ids[:1]])


@given(vectors)
def test_softmax_values_is_a_distribution(xs):
    """softmax_values sums to 1 and keeps the order of its inputs."""
    ps = L.softmax_values(xs)
    assert math.isclose(math.fsum(ps), 1.0, rel_tol=1e-12)
    for (a, pa), (b, pb) in zip(zip(xs, ps), zip(xs[1:], ps[1:])):
        assume(a != b)
        assert (a < b) == (pa <= pb) or pa == pb


@given(st.integers(1, 4), st.integers(1, 4), st.data(), weights_for)
def test_scaled_dots_equal_dot_then_scale(width, n_keys, data, ws):
    """scaled_dots: one node per key equals a dot node followed by a scale node."""
    scale = data.draw(st.floats(min_value=0.1, max_value=2.0))
    flat = data.draw(st.lists(floats, min_size=width * (n_keys + 1),
                              max_size=width * (n_keys + 1)))

    def split(ids):
        return ids[:width], [ids[width * (i + 1):width * (i + 2)] for i in range(n_keys)]

    def fused(tape, ids):
        return L.scaled_dots(tape, *split(ids), scale)

    def unfused(tape, ids):
        q, keys = split(ids)
        return T.map_tape(tape, keys, lambda t, k: T.scale(*T.dot(t, q, k), scale))

    tape, ids = T.map_tape(T.new(), flat, T.var)
    t1, a = fused(tape, ids)
    t2, b = unfused(tape, ids)
    assert T.values(t1, a) == T.values(t2, b)
    assert_same(fused, unfused, flat, ws)


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.data())
def test_attention_builds_the_tape_of_its_heads_one_by_one(n_head, width, n_keys, data):
    """L.attention pushes exactly the nodes of scaled_dots, softmax and linear, head by head."""
    n = n_head * width
    flat = data.draw(st.lists(floats, min_size=n * (1 + 2 * n_keys), max_size=n * (1 + 2 * n_keys)))
    tape, ids = T.map_tape(T.new(), flat, T.var)
    q = ids[:n]
    keys = [ids[n * (1 + i):n * (2 + i)] for i in range(n_keys)]
    vals = [ids[n * (1 + n_keys + i):n * (2 + n_keys + i)] for i in range(n_keys)]

    composed, outs = tape, []
    for lo in range(0, n, width):
        hi = lo + width
        composed, logits = L.scaled_dots(composed, q[lo:hi], [k[lo:hi] for k in keys],
                                         1 / math.sqrt(width))
        composed, probs = L.softmax(composed, logits)
        composed, out = L.linear(composed, probs, [[v[j] for v in vals] for j in range(lo, hi)])
        outs += out
    fused, out = L.attention(tape, q, keys, vals, n_head)
    assert out == tuple(outs)
    assert fused == composed and fused.nodes == composed.nodes
    root = out[data.draw(st.integers(0, len(out) - 1))]
    assert T.backward_as_tuple(fused, root) == T.backward_as_tuple(composed, root)
    # The float kernel gives the same values, head by head.
    floats_out = L.attention_values(T.values(tape, q), [T.values(tape, k) for k in keys],
                                    [T.values(tape, v) for v in vals], n_head)
    assert tuple(x for _, _, head in floats_out for x in head) == T.values(fused, out)


def test_attention_rejects_bad_shapes():
    """Heads that do not divide the query, ragged keys or values, or no keys at all."""
    tape, ids = T.map_tape(T.new(), [1.0] * 8, T.var)
    q, k, v = ids[0:2], ids[2:4], ids[4:6]
    for args, n_head in [((q, [k], [v]), 3), ((q, [k[:1]], [v]), 1), ((q, [k], [v, v]), 1),
                         ((q, [], []), 1), ((q, [k], [v]), 0)]:
        with pytest.raises(ValueError, match="attention: "):
            L.attention(tape, *args, n_head)
    with pytest.raises(IndexError, match="attention: node id 99"):
        L.attention(tape, q, [k], [(T.Id(4), T.Id(99))], 1)


@given(vectors)
def test_rmsnorm_builds_a_dot_a_scale_and_vector_mul(xs):
    """L.rmsnorm pushes exactly the nodes of T.dot(x, x), one rms_scale node, then vector_mul."""
    tape, x = T.map_tape(T.new(), xs, T.var)
    composed, ss = T.dot(tape, x, x)
    n, ss_value = len(x), T.data(composed, ss)
    local = -0.5 * (ss_value * n**-1 + L.RMS_EPS) ** -1.5 * n**-1
    composed, scale = T.push(composed, L.RMS_SCALE, L.rms_scale(ss_value, n), (ss,), (local,), (n,))
    assert L.rmsnorm(tape, x) == L.vector_mul(composed, x, scale)


@given(st.data())
def test_vector_ops_build_the_same_nodes_as_mapping_the_primitive(data):
    """L.vector_add, L.vector_relu and L.vector_mul append exactly the nodes of the primitives
    they map."""
    n = data.draw(st.integers(0, 6))
    xs = data.draw(st.lists(floats, min_size=n, max_size=n))
    ys = data.draw(st.lists(floats, min_size=n, max_size=n))
    tape, a = T.map_tape(T.new(), xs, T.var)
    tape, b = T.map_tape(tape, ys, T.var)
    tape, s = T.var(tape, data.draw(floats))
    assert L.vector_add(tape, a, b) == T.zip_map_tape(tape, a, b, T.add)
    assert L.vector_relu(tape, a) == T.map_tape(tape, a, T.relu)
    assert L.vector_mul(tape, a, s) == T.map_tape(tape, a, lambda t, i: T.mul(t, i, s))


def test_vector_ops_reject_bad_input():
    """Different lengths and ids not on the tape are refused, naming the op."""
    tape, ids = T.map_tape(T.new(), [1.0, 2.0], T.var)
    with pytest.raises(ValueError, match="add: lengths differ"):
        L.vector_add(tape, ids, ids[:1])
    with pytest.raises(IndexError, match="relu"):
        L.vector_relu(tape, [T.Id(5)])
    with pytest.raises(IndexError, match="mul"):
        L.vector_mul(tape, ids, T.Id(-1))


# ------------------------------------------------- cross-entropy near underflow


def microgpt_loss(logits: list[float], target: int) -> float:
    """microgpt.py's float operations: exp(x - max), a left-fold sum, e * total**-1, -log."""
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = 0.0
    for e in exps:
        total += e
    return -math.log(exps[target] * total**-1)


def exact_loss(logits: list[float], target: int) -> float:
    """-log softmax(logits)[target] in 60-digit decimal arithmetic, rounded once."""
    with decimal.localcontext() as ctx:
        ctx.prec = 60
        xs = [decimal.Decimal(x) for x in logits]
        return float(sum((x - xs[target]).exp() for x in xs).ln())


@given(st.lists(finite(-30.0, 30.0), min_size=1, max_size=6), st.data())
def test_cross_entropy_is_microgpts_where_the_probability_is_normal(logits, data) -> None:
    target = data.draw(st.integers(0, len(logits) - 1))
    tape, ids = T.map_tape(T.new(), logits, T.var)
    tape, loss = L.cross_entropy(tape, ids, target)
    assert float.hex(T.data(tape, loss)) == float.hex(microgpt_loss(logits, target))


@given(finite(708.5, 745.0), st.lists(finite(-5.0, 5.0), max_size=4))
def test_cross_entropy_is_accurate_where_the_probability_would_be_subnormal(gap, others) -> None:
    """Logits 0, the others, and -gap at the target: the probability is a subnormal (or close
    to one), where -log(p) has lost digits; the loss is the exact one to a few ulps."""
    logits = [0.0, *others, -gap]
    target = len(logits) - 1
    tape, ids = T.map_tape(T.new(), logits, T.var)
    p = L.softmax_values(logits)[target]
    if 0.0 < p < 2.0**-1022:
        tape, loss = L.cross_entropy(tape, ids, target)
        assert math.isclose(T.data(tape, loss), exact_loss(logits, target), rel_tol=1e-15)


def test_cross_entropy_near_underflow_is_the_gap() -> None:
    """The issue's numbers: logits [0, -g] at target 1 give g, not 739.9974 or 743.75."""
    for g in (700.0, 708.0, 740.0, 744.0, 745.0):
        tape, ids = T.map_tape(T.new(), [0.0, -g], T.var)
        assert T.data(*L.cross_entropy(tape, ids, 1)) == g
    tape, ids = T.map_tape(T.new(), [0.0, -746.0], T.var)
    with pytest.raises(T.NonFiniteError, match="underflows to 0"):
        L.cross_entropy(tape, ids, 1)


def test_cross_entropy_target_is_a_plain_index() -> None:
    tape, ids = T.map_tape(T.new(), [0.0, 1.0], T.var)
    for bad in (True, T.Id(1), 1.0):
        with pytest.raises(TypeError, match="cross_entropy: target .* must be a plain int"):
            L.cross_entropy(tape, ids, bad)


def test_the_old_names_of_the_vector_ops_still_work_with_a_deprecation_warning():
    """layers.add, layers.relu and layers.mul_scalar are the renamed ops, for one release."""
    for old, new in [("add", L.vector_add), ("relu", L.vector_relu), ("mul_scalar", L.vector_mul)]:
        with pytest.warns(DeprecationWarning, match=f"layers.{old} is now layers.{new.__name__}"):
            assert getattr(L, old) is new
    with pytest.raises(AttributeError, match="no attribute 'mul_vector'"):
        L.mul_vector  # noqa: B018
