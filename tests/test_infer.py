"""The float-only forward (infer) against the tape's forward: bit for bit, on random models.

The tape forward is the oracle here (it is itself checked against the naive
mutable reference in test_model.py); ``infer`` must reproduce every logit and
every per-token loss exactly, not merely closely, and refuse overflowing
weights as the tape does.
"""

import pytest
from bits import bits
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import gpt_models

import functional_gpt.layers as L
import functional_gpt.tape as T
from functional_gpt import infer, model, train
from functional_gpt import rng as R
from functional_gpt import sample as S
from functional_gpt import tokenizer as tk


def models():
    """A random config, its initial parameters (maybe scaled up) and a token sequence."""
    return gpt_models(max_head=3, max_vocab=7, max_layer=3, max_head_size=4, max_block=6,
                      scales=(1.0, 5.0, 25.0))  # larger weights: sharper, riskier floats


def float_weights(tape, config):
    return infer.weights(T.values(tape, range(model.num_params(config))), config)


@given(models())
@settings(max_examples=40)
def test_logits_and_cache_equal_the_tapes_bit_for_bit(case) -> None:
    config, tape, tokens = case
    params, w = model.layout(config), float_weights(tape, config)
    tape_cache, float_cache = model.empty_cache(config), infer.empty_cache(config)
    for pos, token in enumerate(tokens[: config.block_size]):
        tape, (ids, tape_cache) = model.gpt(tape, params, config, token, pos, tape_cache)
        logits, float_cache = infer.gpt(w, config, token, pos, float_cache)
        assert bits(logits) == bits(T.values(tape, ids))  # by their bits, not approximately
        for (tk_, tv), (fk, fv) in zip(tape_cache, float_cache):
            assert bits([T.values(tape, k) for k in tk_]) == bits(fk)
            assert bits([T.values(tape, v) for v in tv]) == bits(fv)


def outcome(f, *args):
    """``("ok", result)`` or ``("error", message)``: both forwards must agree on which."""
    try:
        return "ok", f(*args)
    except ValueError as e:
        return "error", str(e)


@given(models())
@settings(max_examples=40)
def test_token_nlls_are_the_tapes_cross_entropy_nodes(case) -> None:
    config, tape, tokens = case
    got = outcome(infer.token_nlls, float_weights(tape, config), config, tokens)
    want = outcome(model.doc_loss, tape, model.layout(config), config, tokens)
    assert got[0] == want[0], (got, want)
    if got[0] == "error":  # e.g. a probability underflowing with large weights
        assert got[1] == want[1]
        return
    nlls, (tape2, loss) = got[1], want[1]
    n = min(config.block_size, len(tokens) - 1)
    assert len(nlls) == n
    ce = [i for i in range(len(tape), len(tape2)) if T.node(tape2, i).op == "cross_entropy"]
    assert bits(nlls) == bits(T.values(tape2, ce))
    total = T.node(tape2, loss).inputs[0]  # scale(sum(losses), 1/n)
    assert bits(T.fold_sum(nlls)) == bits(T.data(tape2, total))


@given(models(), st.integers(0, 2**32 - 1))
@settings(max_examples=20)
def test_inference_builds_no_tape_and_leaves_its_inputs(case, seed) -> None:
    config, tape, _ = case
    before = tape.nodes
    tok = tk.Tokenizer("abcdefghij"[: config.vocab_size - 1])
    S.samples(tape, config, tok, R.seed(seed), 3)
    assert tape.nodes == before and len(tape) == model.num_params(config)


def overflowing(config, where="wte", value=1e308):
    """Initial parameters with one matrix set to ``value``."""
    _, tape = model.init(R.seed(0), config)
    values = list(T.values(tape, range(len(tape))))
    start = 0
    for name, rows, cols in model.matrix_shapes(config):
        if name == where:
            values[start : start + rows * cols] = [value] * (rows * cols)
        start += rows * cols
    return T.update(tape, values)


@pytest.mark.parametrize("where", ["wte", "wpe"])
def test_overflowing_weights_are_refused_by_both_forwards(where) -> None:
    config = model.Config(vocab_size=3, n_embd=4, n_head=2, block_size=3)
    tape = overflowing(config, where)
    w = float_weights(tape, config)
    with pytest.raises(ValueError, match="not finite") as float_error:
        infer.token_nlls(w, config, (2, 0, 1, 2))
    with pytest.raises(ValueError, match="not finite") as tape_error:
        model.doc_loss(tape, model.layout(config), config, (2, 0, 1, 2))
    assert "\n" not in str(float_error.value)
    assert str(float_error.value).split(":")[0] == str(tape_error.value).split(":")[0]
    with pytest.raises(ValueError, match="not finite"):
        S.samples(tape, config, tk.Tokenizer("ab"), R.seed(1), 2)


def test_weights_and_token_nlls_refuse_bad_arguments() -> None:
    config = model.Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    with pytest.raises(ValueError, match="weights: 5 values"):
        infer.weights([0.0] * 5, config)
    w = infer.weights([0.0] * model.num_params(config), config)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        infer.token_nlls(w, config, (2,))
    with pytest.raises(ValueError, match="token 3"):
        infer.token_nlls(w, config, (3, 0))
    with pytest.raises(ValueError, match="position 3"):
        infer.gpt(w, config, 0, 3, infer.empty_cache(config))


def test_cross_entropy_value_is_the_layers_node_value() -> None:
    tape, xs = T.map_tape(T.new(), [0.3, -1.2, 2.5], T.var)
    tape, loss = L.cross_entropy(tape, xs, 2)
    assert T.data(tape, loss) == L.cross_entropy_value(L.softmax_values([0.3, -1.2, 2.5]), 2)


def test_training_then_float_sampling_keeps_the_old_samples() -> None:
    """The float sampler draws exactly what sampling on the tape drew (tape forward oracle)."""
    run = train.prepare(["emma", "olivia", "ava", "isabella", "sophia"], 7, n_embd=8, n_head=2)
    *_, last = train.training(run.state, run.tokens, 15)
    state = last.state
    config, tok = state.config, run.tokenizer
    rng, names = S.samples(state.tape, config, tok, run.rng, 4)

    def tape_sample(rng):  # the old sampler: logits read back from tape nodes
        params, cache = model.layout(config), model.empty_cache(config)
        tape, token, out = state.tape, tok.bos, []
        for pos in range(config.block_size):
            tape, (ids, cache) = model.gpt(tape, params, config, token, pos, cache)
            rng, token = R.choices_index(rng, S.next_token_probs(T.values(tape, ids), 0.5))
            if token == tok.bos:
                break
            out.append(token)
        return rng, tk.decode(tok, out)

    old_rng, old = run.rng, []
    for _ in range(4):
        old_rng, name = tape_sample(old_rng)
        old.append(name)
    assert names == tuple(old) and rng == old_rng
