"""layers.linear with a bias against its unfused chain, T.dot then T.add: bit for bit.

The oracle is written with the tape's primitives only. Both tapes start from the same pool of
nodes (leaves and a few products of them, so that gradients flow on below the layer); the ids the
layer reads are drawn from the pool with repetition, so one node may be a weight, an input and a
bias at once. Values and the gradient of every pool node must be equal as floats, not merely close.
"""

from __future__ import annotations

import pytest
from bits import bits
from hypothesis import given
from hypothesis import strategies as st

import functional_gpt.tape as T
from functional_gpt import layers as L

floats = st.floats(min_value=-5.0, max_value=5.0, allow_nan=False, allow_infinity=False)


def pool_tape(values: list[float]) -> tuple[T.Tape, tuple[int, ...]]:
    """A tape of the leaves ``values`` and the product of each neighbouring pair: the pool."""
    tape, leaves = T.map_tape(T.new(), values, T.var)
    tape, products = T.zip_map_tape(tape, leaves[:-1], leaves[1:], T.mul)
    return tape, leaves + products


def dot_then_add(tape, x, w, bias):
    """The unfused chain, row by row: ``T.dot(row, x)``, then ``T.add(that, b)``."""
    outs = []
    for row, b in zip(w, bias):
        tape, d = T.dot(tape, row, x)
        tape, y = T.add(tape, d, T.Id(b))
        outs.append(y)
    return tape, tuple(outs)


def all_dots_then_all_adds(tape, x, w, bias):
    """The unfused chain in another order: every row's ``T.dot``, then every ``T.add``."""
    tape, dots = T.map_tape(tape, w, lambda t, row: T.dot(t, row, x))
    return T.zip_map_tape(tape, dots, T.as_ids(bias), T.add)


def values_and_pool_grads(tape, pool, layer, x, w, bias, out_weights):
    """The layer's output values and d(out . out_weights)/d(node) for every pool node."""
    tape, outs = layer(tape, x, w, bias)
    tape, ws = T.map_tape(tape, out_weights[: len(outs)], T.constant)
    tape, root = T.dot(tape, outs, ws)
    grads = T.backward_as_tuple(tape, root)
    return T.values(tape, outs), grads[: len(pool)]


@st.composite
def layer_on_a_pool(draw, distinct: bool = False):
    """``(values, n_in, x, w, bias, out_weights)``: a pool and a layer's ids drawn from it."""
    n_in, n_out = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    need = n_in * (n_out + 1) + n_out
    size = need if distinct else draw(st.integers(1, need))
    values = draw(st.lists(floats, min_size=size, max_size=size))
    n_pool = 2 * size - 1
    if distinct:
        ids = T.as_ids(draw(st.permutations(range(n_pool)))[:need])
    else:
        ids = T.as_ids(draw(st.lists(st.integers(0, n_pool - 1), min_size=need, max_size=need)))
    x, rest = tuple(ids[:n_in]), ids[n_in:]
    w = [tuple(rest[r * n_in : (r + 1) * n_in]) for r in range(n_out)]
    bias = tuple(rest[n_out * n_in :])
    out_weights = draw(st.lists(floats, min_size=n_out, max_size=n_out))
    return values, x, w, bias, out_weights


@given(layer_on_a_pool())
def test_linear_with_bias_is_dot_then_add_bit_for_bit(case):
    values, x, w, bias, out_weights = case
    tape, pool = pool_tape(values)
    fused = values_and_pool_grads(tape, pool, L.linear, x, w, bias, out_weights)
    unfused = values_and_pool_grads(tape, pool, dot_then_add, x, w, bias, out_weights)
    assert bits(fused) == bits(unfused)


@given(layer_on_a_pool(distinct=True))
def test_linear_with_bias_is_every_dot_then_every_add_bit_for_bit(case):
    # with no id read twice, the order of the unfused nodes on the tape does not matter
    values, x, w, bias, out_weights = case
    tape, pool = pool_tape(values)
    fused = values_and_pool_grads(tape, pool, L.linear, x, w, bias, out_weights)
    unfused = values_and_pool_grads(tape, pool, all_dots_then_all_adds, x, w, bias, out_weights)
    assert bits(fused) == bits(unfused)


@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_linear_with_bias_reads_a_run_matrix_as_its_rows(n_in, n_out, data):
    flat = data.draw(st.lists(floats, min_size=n_out * (n_in + 1), max_size=n_out * (n_in + 1)))
    tape = T.leaves(flat)
    w, bias = T.RunMatrix(0, n_out, n_in), T.Run(n_out * n_in, n_out * (n_in + 1))
    tape, x = T.map_tape(tape, data.draw(st.lists(floats, min_size=n_in, max_size=n_in)), T.var)
    by_matrix = L.linear(tape, x, w, bias)
    by_rows = L.linear(tape, x, [list(T.as_ids(row)) for row in w], list(T.as_ids(bias)))
    assert T.values(*by_matrix) == T.values(*by_rows)
    assert [T.node(by_matrix[0], i) for i in by_matrix[1]] == [
        T.node(by_rows[0], i) for i in by_rows[1]]


@given(layer_on_a_pool())
def test_linear_with_bias_leaves_its_tape_and_arguments_as_they_were(case):
    values, x, w, bias, _ = case
    tape, _ = pool_tape(values)
    before = (len(tape), T.values(tape, range(len(tape))), x, list(w), bias)
    w_list, bias_list = [list(row) for row in w], list(bias)
    new_tape, outs = L.linear(tape, x, w_list, bias_list)
    assert (len(tape), T.values(tape, range(len(tape))), x, list(w), bias) == before
    assert w_list == [list(row) for row in w] and bias_list == list(bias)
    assert len(new_tape) == len(tape) + len(w) and len(outs) == len(w)


@given(layer_on_a_pool())
def test_linear_without_bias_is_unchanged_by_the_bias_option(case):
    values, x, w, _, _ = case
    tape, _ = pool_tape(values)
    plain, with_none = L.linear(tape, x, w), L.linear(tape, x, w, None)
    assert plain[1] == with_none[1]
    assert [T.node(plain[0], i) for i in plain[1]] == [T.node(with_none[0], i)
                                                        for i in with_none[1]]
    assert {T.node(plain[0], i).op for i in plain[1]} == {"dot"}


def bad_case():
    tape, ids = T.map_tape(T.new(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], T.var)
    return tape, ids[:2], [ids[2:4], ids[4:6]]


def test_linear_rejects_too_few_biases():
    tape, x, w = bad_case()
    with pytest.raises(ValueError, match="linear: 1 biases for 2 rows"):
        L.linear(tape, x, w, bias=T.as_ids((0,)))


def test_linear_rejects_too_many_biases():
    tape, x, w = bad_case()
    with pytest.raises(ValueError, match="linear: 3 biases for 2 rows"):
        L.linear(tape, x, w, bias=T.as_ids((0, 1, 2)))


def test_linear_rejects_a_bias_id_not_on_the_tape():
    tape, x, w = bad_case()
    with pytest.raises(IndexError, match="linear: node id 6 is not on this tape of 6 nodes"):
        L.linear(tape, x, w, bias=T.as_ids((0, 6)))


def test_linear_rejects_a_bias_given_as_a_number():
    tape, x, w = bad_case()
    with pytest.raises(TypeError, match=r"linear: 0\.5 is a number, not a node id"):
        L.linear(tape, x, w, bias=(0.5, T.Id(1)))


def test_linear_rejects_ragged_rows_with_a_bias():
    tape, x, w = bad_case()
    with pytest.raises(ValueError, match="linear: row of 1 weights for an input of 2"):
        L.linear(tape, x, [w[0], w[1][:1]], bias=T.as_ids((0, 1)))
