"""The GPT on the tape against the naive mutable reference (tests/reference_microgpt.py).

The reference is an independent restatement of microgpt.py with one mutable Value per scalar
operation. Same documents and seed must give the same parameters, the same loss and the same
gradient for every parameter (to 1e-9), the same losses step after step, and the same samples.
"""

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_microgpt import Reference

import functional_gpt.tape as T
from functional_gpt import model, train
from functional_gpt import rng as R
from functional_gpt import sample as S
from functional_gpt import tokenizer as tk

SHARED_NAMES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "names.txt"

words = st.text(alphabet="abcdefg", min_size=1, max_size=9)
doc_lists = st.lists(words, min_size=1, max_size=6)


@st.composite
def configs(draw):
    n_head = draw(st.integers(1, 3))
    return dict(
        n_layer=draw(st.integers(1, 3)),
        n_embd=n_head * draw(st.integers(1, 3)),
        n_head=n_head,
        block_size=draw(st.integers(1, 6)),
    )


def both(docs, config, seed, steps=10):
    """The reference and our run set up from the same documents and seed."""
    ref = Reference(docs, seed=seed, steps=steps, **config)
    run = train.prepare(docs, seed, **config)
    return ref, run


def rel_close(a, b, tol=1e-9):
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


@given(doc_lists, configs(), st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_loss_and_every_gradient_match_the_reference(docs, config, seed):
    """Same initial parameters, loss and gradient of every parameter, for random shapes."""
    ref, run = both(docs, config, seed)
    assert train.param_values(run.state) == tuple(ref.params_flat())
    tokens = run.tokens[0]
    assert list(tokens) == ref.tokenize(ref.docs[0])
    loss, grads = train.loss_and_grads(run.state, tokens)
    ref_loss, ref_grads = ref.loss_and_grads(list(tokens))
    assert rel_close(loss, ref_loss)
    assert len(grads) == len(ref_grads)
    assert all(rel_close(a, b) for a, b in zip(grads, ref_grads))


@given(doc_lists, configs(), st.integers(0, 2**32 - 1))
@settings(max_examples=25)
def test_the_forward_pass_is_bit_exact(docs, config, seed):
    """For the same parameters the loss of every document is microgpt.py's float, to the bit.

    (Gradients are compared above to rounding: fused nodes gather them in another order.)"""
    ref, run = both(docs, config, seed)
    for tokens in run.tokens[:3]:
        loss, _ = train.loss_and_grads(run.state, tokens)
        ref_loss, _ = ref.loss_and_grads(list(tokens))
        assert float.hex(loss) == float.hex(ref_loss)


@given(doc_lists, configs(), st.integers(0, 2**32 - 1))
@settings(max_examples=10)
def test_training_and_sampling_match_the_reference(docs, config, seed):
    """Several Adam steps give the same losses and parameters; then the same samples."""
    steps = 4
    ref, run = both(docs, config, seed, steps)
    events = list(train.training(run.state, run.tokens, steps))
    ref_losses = [ref.step() for _ in range(steps)]
    assert all(rel_close(e.loss, r) for e, r in zip(events, ref_losses))
    state = events[-1].state
    params = train.param_values(state)
    assert all(rel_close(a, b) for a, b in zip(params, ref.params_flat()))
    _, names = S.samples(state.tape, state.config, run.tokenizer, run.rng, 5)
    assert list(names) == ref.sample(5)


@given(doc_lists, configs(), st.integers(0, 2**32 - 1))
@settings(max_examples=10)
def test_training_is_pure(docs, config, seed):
    """The same state and documents give the same stream, and the start state is untouched."""
    run = train.prepare(docs, seed, **config)
    before = (run.state.tape.nodes, run.state.adam)
    first = [(e.step, e.loss, e.lr) for e in train.training(run.state, run.tokens, 3)]
    second = [(e.step, e.loss, e.lr) for e in train.training(run.state, run.tokens, 3)]
    assert first == second
    assert (run.state.tape.nodes, run.state.adam) == before


@given(doc_lists, configs(), st.integers(0, 2**32 - 1), st.data())
@settings(max_examples=25)
def test_samples_respect_prompt_and_block_size(docs, config, seed, data):
    """A sample starts with its prompt, uses known characters, and has at most block_size."""
    run = train.prepare(docs, seed, **config)
    chars = run.tokenizer.chars
    prompt = data.draw(st.text(alphabet=chars, max_size=config["block_size"]))
    rng, text = S.sample(run.state.tape, run.state.config, run.tokenizer, run.rng, 0.7, prompt)
    assert text.startswith(prompt)
    assert len(text) <= config["block_size"]
    assert set(text) <= set(chars)
    if len(prompt) == config["block_size"]:  # nothing left to draw
        assert text == prompt and rng == run.rng


def test_prompt_errors():
    """Unknown characters and prompts longer than the block size are ValueErrors."""
    run = train.prepare(["abc", "cab"], 1, n_embd=4, n_head=2, block_size=3)
    cfg = run.state.config
    with pytest.raises(ValueError, match="z"):
        S.sample(run.state.tape, cfg, run.tokenizer, run.rng, 0.5, "az")
    with pytest.raises(ValueError, match="block size"):
        S.sample(run.state.tape, cfg, run.tokenizer, run.rng, 0.5, "abca")
    with pytest.raises(ValueError, match="temperature"):
        S.sample(run.state.tape, cfg, run.tokenizer, run.rng, 0.0, "a")


def test_gradient_matches_finite_differences():
    """d(loss)/d(param) of the whole model against central differences, on a few parameters."""
    config = model.Config(vocab_size=4, n_layer=2, n_embd=4, n_head=2, block_size=4)
    _, tape = model.init(R.seed(3), config)
    params = model.layout(config)
    tokens = (3, 0, 1, 2, 0, 3)
    grads = T.backward(*model.doc_loss(tape, params, config, tokens))
    values = T.values(tape, range(len(tape)))

    def loss_at(i, x):
        shifted = T.update(tape, values[:i] + (x,) + values[i + 1:])
        return T.data(*model.doc_loss(shifted, params, config, tokens))

    h = 1e-6
    for i in range(0, len(tape), 37):
        numeric = (loss_at(i, values[i] + h) - loss_at(i, values[i] - h)) / (2 * h)
        assert math.isclose(T.grad(grads, i), numeric, rel_tol=1e-4, abs_tol=1e-7), i


def test_config_errors():
    """Shapes that describe no model are refused with a reason."""
    with pytest.raises(ValueError, match="divisible"):
        model.check_config(model.Config(vocab_size=5, n_embd=6, n_head=4))
    with pytest.raises(ValueError, match="block_size"):
        model.check_config(model.Config(vocab_size=5, block_size=0))


@pytest.mark.skipif(not SHARED_NAMES.exists(), reason="../shared/data/names.txt is absent")
def test_names_first_steps_match_the_published_losses_and_the_reference():
    """On microgpt.py's own names.txt: its published first two losses, then the reference."""
    docs = [line.strip() for line in SHARED_NAMES.read_text().split("\n") if line.strip()]
    run = train.prepare(docs, 42)
    assert len(run.docs) == 32033 and run.tokenizer.vocab_size == 27
    assert len(run.state.tape) == 4192
    events = train.training(run.state, run.tokens, 1000)
    losses = [next(events).loss for _ in range(6)]
    assert abs(losses[0] - 3.3659669475848504) < 1e-12
    assert abs(losses[1] - 3.4242727838717717) < 1e-12
    ref = Reference(docs)
    assert all(abs(a - ref.step()) < 1e-9 for a in losses)


def test_doc_tokens_frame_each_document():
    """The training tokens are BOS, the characters, BOS."""
    tok = tk.build(["ab"])
    assert tk.doc_tokens(tok, "ba") == (tok.bos, 1, 0, tok.bos)
