"""The GPT in plain tape primitives (``model.PLAIN_OPS``) is the fused GPT's twin.

Both run ``model.forward`` and ``model.doc_loss``; only the layers differ. The fused kernels of
``layers`` do the float operations of ``plain_layers``'s primitives in the same order, so every
loss must be the same float, bit for bit (compared as ``float.hex``); the gradients come from
different groupings of the same products and must agree to rounding. Neither side is computed
from the other: the plain side's gradients come from ``T.backward`` over primitives whose local
gradients are one line each, the fused side's from the hand-derived ones of ``layers``.
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import gpt_models

import functional_gpt.tape as T
from functional_gpt import layers as L
from functional_gpt import model
from functional_gpt import plain_layers as P

PRIMITIVES = {"add", "add_constant", "div", "dot", "exp", "log", "mul", "neg", "pow", "relu",
              "scale", "sum"}


def models():
    """A small random config, its initial parameters (maybe scaled up) and a token sequence."""
    return gpt_models(max_head=2, max_vocab=5, max_layer=2, max_head_size=3, max_block=4,
                      scales=(1.0, 4.0, 12.0))  # larger weights: sharper softmaxes


def loss_and_grads(tape, config, tokens, ops):
    tape2, loss = model.doc_loss(tape, model.layout(config), config, tokens, ops)
    grads = T.backward(tape2, loss)
    return tape2, T.data(tape2, loss), grads[: model.num_params(config)]


def assert_close(got, want, what):
    """Equal to rounding: within a few ulps of the largest gradient's size."""
    size = max(1.0, *map(abs, want))
    bad = [(i, a, b) for i, (a, b) in enumerate(zip(got, want)) if abs(a - b) > 1e-12 * size]
    assert not bad, f"{what}: {len(bad)} differ, first {bad[0]}"


@given(models())
@settings(max_examples=30)
def test_plain_gpt_has_the_fused_loss_bit_for_bit_and_its_gradients(case) -> None:
    config, tape, tokens = case
    _, fused_loss, fused_grads = loss_and_grads(tape, config, tokens, model.TAPE_OPS)
    plain_tape, plain_loss, plain_grads = loss_and_grads(tape, config, tokens, model.PLAIN_OPS)
    assert plain_loss.hex() == fused_loss.hex()
    assert_close(plain_grads, fused_grads, "gradients")
    ops = {T.node(plain_tape, i).op for i in range(model.num_params(config), len(plain_tape))}
    assert ops <= PRIMITIVES, ops - PRIMITIVES


@given(models())
@settings(max_examples=20)
def test_plain_gpt_has_the_fused_logits_and_cache_bit_for_bit(case) -> None:
    config, tape, tokens = case
    params = model.layout(config)
    fused, plain = (tape, model.empty_cache(config)), (tape, model.empty_cache(config))
    for pos, token in enumerate(tokens[: config.block_size]):
        f_tape, (f_logits, f_cache) = model.forward(model.TAPE_OPS, fused[0], params, config,
                                                    token, pos, fused[1])
        p_tape, (p_logits, p_cache) = model.forward(model.PLAIN_OPS, plain[0], params, config,
                                                    token, pos, plain[1])
        assert T.values(p_tape, p_logits) == T.values(f_tape, f_logits)
        for (fk, fv), (pk, pv) in zip(f_cache, p_cache):
            assert [T.values(p_tape, k) for k in pk] == [T.values(f_tape, k) for k in fk]
            assert [T.values(p_tape, v) for v in pv] == [T.values(f_tape, v) for v in fv]
        fused, plain = (f_tape, f_cache), (p_tape, p_cache)


floats = st.floats(min_value=-4.0, max_value=4.0, allow_nan=False, allow_infinity=False)


def layer_outputs_and_grads(layer, inputs, weights):
    """Values of a layer's outputs and d(sum_k weights_k * out_k)/d(input) for every input."""
    tape, ids = T.map_tape(T.new(), inputs, T.var)
    tape, outs = layer(tape, ids)
    outs = outs if isinstance(outs, tuple) else (outs,)
    tape, obj = T.weighted_sum(tape, outs, weights[: len(outs)])
    grads = T.backward(tape, obj)
    return T.values(tape, outs), [T.grad(grads, i) for i in ids]


def assert_twins(fused, plain, inputs, weights):
    fused_values, fused_grads = layer_outputs_and_grads(fused, inputs, weights)
    plain_values, plain_grads = layer_outputs_and_grads(plain, inputs, weights)
    assert [v.hex() for v in plain_values] == [v.hex() for v in fused_values]
    assert_close(plain_grads, fused_grads, "gradients")


@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.data())
@settings(max_examples=40)
def test_plain_linear_is_the_fused_linear_with_or_without_a_bias(n_in, n_out, with_bias, data):
    n = n_in + n_out * n_in + n_out
    inputs = data.draw(st.lists(floats, min_size=n, max_size=n))
    weights = data.draw(st.lists(floats, min_size=n_out, max_size=n_out))

    def split(ids):
        rows = [ids[n_in + k * n_in : n_in + (k + 1) * n_in] for k in range(n_out)]
        return ids[:n_in], rows, (ids[-n_out:] if with_bias else None)

    assert_twins(lambda t, ids: L.linear(t, *split(ids)), lambda t, ids: P.linear(t, *split(ids)),
                 inputs, weights)


@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4), st.data())
@settings(max_examples=40)
def test_plain_attention_is_the_fused_attention(n_head, head_dim, n_keys, data):
    width = n_head * head_dim
    n = width * (1 + 2 * n_keys)
    inputs = data.draw(st.lists(floats, min_size=n, max_size=n))
    weights = data.draw(st.lists(floats, min_size=width, max_size=width))

    def split(ids):
        keys = [ids[width * (1 + t) : width * (2 + t)] for t in range(n_keys)]
        vals = [ids[width * (1 + n_keys + t) : width * (2 + n_keys + t)] for t in range(n_keys)]
        return ids[:width], keys, vals, n_head

    assert_twins(lambda t, ids: L.attention(t, *split(ids)),
                 lambda t, ids: P.attention(t, *split(ids)), inputs, weights)


@pytest.mark.parametrize("name", ["rmsnorm", "softmax", "vector_relu"])
@given(xs=st.lists(floats, min_size=1, max_size=6), weights=st.lists(floats, min_size=6,
                                                                      max_size=6))
@settings(max_examples=30)
def test_plain_vector_layers_are_the_fused_ones(name, xs, weights):
    assert_twins(getattr(L, name), getattr(P, name), xs, weights)


@given(st.lists(floats, min_size=1, max_size=6), st.data())
@settings(max_examples=30)
def test_plain_cross_entropy_is_the_fused_one(xs, data):
    target = data.draw(st.integers(0, len(xs) - 1))
    assert_twins(lambda t, ids: L.cross_entropy(t, ids, target),
                 lambda t, ids: P.cross_entropy(t, ids, target), xs, [1.0])


def test_plain_layers_refuse_what_the_fused_ones_refuse() -> None:
    tape, ids = T.map_tape(T.new(), [1.0, 2.0, 3.0, 4.0], T.var)
    with pytest.raises(ValueError, match="cross_entropy: target 2 is not in 0..1"):
        P.cross_entropy(tape, ids[:2], 2)
    with pytest.raises(ValueError, match="linear: 1 biases for 2 rows"):
        P.linear(tape, ids[:2], [ids[:2], ids[2:]], bias=ids[:1])
    with pytest.raises(ValueError, match="attention: 1 keys and 1 values for a query of 2 in 3"):
        P.attention(tape, ids[:2], [ids[:2]], [ids[2:]], 3)
    with pytest.raises(ValueError, match="dot: lengths differ"):
        P.linear(tape, ids[:2], [ids[:3]])


def test_training_in_plain_layers_follows_the_fused_training() -> None:
    """The first loss is the same float; the later ones differ only by the gradients' rounding."""
    from functional_gpt import train

    run = train.prepare(["emma", "olivia", "ava", "mia"], seed=3, n_embd=4, n_head=2,
                        block_size=6)
    fused = [e.loss for e in train.training(run.state, run.tokens, 4)]
    plain = [e.loss for e in train.training(run.state, run.tokens, 4, ops=model.PLAIN_OPS)]
    assert plain[0].hex() == fused[0].hex()
    assert all(abs(a - b) < 1e-9 for a, b in zip(plain, fused)), (plain, fused)
