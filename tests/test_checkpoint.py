"""Checkpoints: exact round trips (text, JSON data, files) and a CheckpointError for every fault."""

from __future__ import annotations

import copy
import json
import math
import os
import re
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_gpt import checkpoint as C
from functional_gpt import rng as R
from functional_gpt import tape as T
from functional_gpt import tokenizer as tk
from functional_gpt.datasets import DataSource
from functional_gpt.limits import MAX_WEIGHT
from functional_gpt.model import Config
from functional_gpt.optim import Adam, AdamState
from functional_gpt.train import TrainState, init_state, train_step

# ------------------------------------------------------------------ strategies

# Any finite float, including -0.0, subnormals and the extremes: all must survive bit for bit.
finite = st.floats(allow_nan=False, allow_infinity=False)
nonneg = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)
# Any character that can be written as UTF-8 (not a lone surrogate).
chars_utf8 = st.characters().filter(lambda c: not 0xD800 <= ord(c) <= 0xDFFF)
# A vocabulary's characters: printable ones (tokenizer.unprintable_chars).
printable = chars_utf8.filter(str.isprintable)
# A weight: any finite float within the limit a checkpoint holds.
weights = st.floats(min_value=-MAX_WEIGHT, max_value=MAX_WEIGHT)


def _count(cfg: Config) -> int:
    """Parameters of a GPT, from the architecture (independent of model.num_params)."""
    v, e, b, n = cfg.vocab_size, cfg.n_embd, cfg.block_size, cfg.n_layer
    return 2 * v * e + b * e + n * (4 * e * e + 8 * e * e)


@st.composite
def checkpoints(draw: st.DrawFn) -> C.Checkpoint:
    chars = "".join(sorted(draw(st.sets(printable, min_size=1, max_size=4))))
    tok = tk.Tokenizer(chars)
    n_head = draw(st.integers(1, 2))
    cfg = Config(
        vocab_size=tok.vocab_size,
        n_layer=draw(st.integers(1, 2)),
        n_embd=n_head * draw(st.integers(1, 2)),
        n_head=n_head,
        block_size=draw(st.integers(1, 3)),
    )
    n = _count(cfg)
    values = draw(st.lists(weights, min_size=n, max_size=n))
    m = draw(st.lists(finite, min_size=n, max_size=n))
    v = draw(st.lists(nonneg, min_size=n, max_size=n))
    steps = draw(st.integers(1, 10**6))
    step = draw(st.integers(0, steps))
    rng, _ = R.gauss_many(R.seed(draw(st.integers(0, 2**40))), draw(st.integers(0, 5)))
    positive = st.floats(min_value=1e-12, max_value=1.0)
    beta = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
    hyper = Adam(draw(positive), draw(beta), draw(beta), draw(positive))
    tape, _ = T.push_many(T.new(), [(x, (), (), "var") for x in values])  # leaves, not a base
    state = TrainState(cfg, tape, AdamState(tuple(m), tuple(v), step))
    seed = draw(st.integers(-(2**70), 2**70))
    data = draw(st.one_of(st.none(), st.builds(
        DataSource,
        st.sampled_from(["path", "url"]),
        st.text(chars_utf8, min_size=1, max_size=30),
        st.text("0123456789abcdef", min_size=64, max_size=64),
        st.integers(1, 10**6),
    ), st.builds(DataSource, st.just("bundled"), st.none(),
                 st.text("0123456789abcdef", min_size=64, max_size=64), st.integers(1, 10**6))))
    holdout = draw(st.integers(0, 1000 if data is None else data.docs - 1))
    return C.Checkpoint(state, tok, seed, rng, steps, hyper, data, holdout)


def bits(xs) -> tuple[bytes, ...]:
    """The exact bit patterns of floats (so -0.0 differs from 0.0)."""
    return tuple(struct.pack("<d", x) for x in xs)


def assert_same(a: C.Checkpoint, b: C.Checkpoint) -> None:
    assert a.state.config == b.state.config
    assert a.tokenizer.chars == b.tokenizer.chars
    assert bits(n[0] for n in a.state.tape.nodes) == bits(n[0] for n in b.state.tape.nodes)
    assert all(inputs == () and op == "var" for _, inputs, _, op in b.state.tape.nodes)
    assert bits(a.state.adam.m) == bits(b.state.adam.m)
    assert bits(a.state.adam.v) == bits(b.state.adam.v)
    assert a.state.adam.step == b.state.adam.step
    assert (a.seed, a.steps, a.hyper) == (b.seed, b.steps, b.hyper)
    assert (a.data, a.holdout) == (b.data, b.holdout)
    assert R.to_cpython(a.rng) == R.to_cpython(b.rng)
    # The restored random state draws the same numbers.
    assert R.gauss_many(a.rng, 3)[1] == R.gauss_many(b.rng, 3)[1]


# ------------------------------------------------------------------ round trips


@given(checkpoints())
def test_text_round_trip_is_exact(ckpt):
    assert_same(ckpt, C.loads(C.dumps(ckpt)))


@given(checkpoints())
def test_json_data_round_trip_through_plain_json(ckpt):
    obj = C.to_json_obj(ckpt)
    text = json.dumps(obj, default=dict)
    assert_same(ckpt, C.from_json_obj(json.loads(text)))


@given(checkpoints())
def test_json_layout_follows_the_architecture(ckpt):
    obj = json.loads(C.dumps(ckpt))
    cfg = ckpt.state.config
    v, e, b = cfg.vocab_size, cfg.n_embd, cfg.block_size
    expected = {"wte": (v, e), "wpe": (b, e), "lm_head": (v, e)}
    for i in range(cfg.n_layer):
        for name, shape in (("attn_wq", (e, e)), ("attn_wk", (e, e)), ("attn_wv", (e, e)),
                            ("attn_wo", (e, e)), ("mlp_fc1", (4 * e, e)),
                            ("mlp_fc2", (e, 4 * e))):
            expected[f"layer{i}.{name}"] = shape
    for key in ("params",):
        mats = obj[key]
        assert list(mats) == list(expected)  # names, in initialisation order
        assert {k: (len(m), len(m[0])) for k, m in mats.items()} == expected
        flat = [x for m in mats.values() for row in m for x in row]
        assert bits(flat) == bits(n[0] for n in ckpt.state.tape.nodes)
    assert obj["format"] == "functional-gpt-checkpoint" and obj["version"] == 2
    assert "".join(obj["vocab"]) == ckpt.tokenizer.chars
    assert len(obj["rng"]["mt"]) == 624


@given(checkpoints())
def test_from_json_obj_leaves_its_input_alone(ckpt):
    obj = json.loads(C.dumps(ckpt))
    before = copy.deepcopy(obj)
    C.from_json_obj(obj)
    assert obj == before


def test_file_round_trip_after_training(tmp_path):
    tok = tk.build(["ann", "bob"])
    rng, state = init_state(R.seed(3), Config(tok.vocab_size, n_embd=4, n_head=2, block_size=4))
    for doc in ("ann", "bob"):
        state, _ = train_step(state, tk.doc_tokens(tok, doc), lr=0.01)
    ckpt = C.Checkpoint(state, tok, seed=3, rng=rng, steps=2)
    path = tmp_path / "model.json"
    C.save(path, ckpt)
    assert_same(ckpt, C.load(path))
    assert os.listdir(tmp_path) == ["model.json"]  # no temp file left behind


def test_save_replaces_an_existing_file_atomically(tmp_path):
    tok = tk.build(["ab"])
    cfg = Config(tok.vocab_size, n_embd=2, n_head=1, block_size=2)
    rng, state = init_state(R.seed(0), cfg)
    path = tmp_path / "model.json"
    path.write_text("old")
    C.save(path, C.Checkpoint(state, tok, 0, rng, 5))
    assert C.load(path).steps == 5
    # A checkpoint that cannot be written leaves the old file as it was, and no temp file.
    bad = C.Checkpoint(state._replace(adam=state.adam._replace(m=(math.nan,) * len(state.adam.m))),
                       tok, 0, rng, 5)
    old = path.read_bytes()
    with pytest.raises(C.CheckpointError, match="non-finite"):
        C.save(path, bad)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ["model.json"]


# ------------------------------------------------------------------ faults


def _valid_obj() -> dict:
    tok = tk.build(["ann", "bob"])
    rng, state = init_state(R.seed(1), Config(tok.vocab_size, n_embd=2, n_head=1, block_size=3))
    data = DataSource("path", "/data/names.txt", "ab" * 32, 2)
    return json.loads(C.dumps(C.Checkpoint(state, tok, 1, rng, 10, Adam(), data, 1)))


def _set(obj: dict, path: str, value) -> dict:
    """A deep copy of ``obj`` with the field at dotted ``path`` set (or deleted if value is DEL)."""
    out = copy.deepcopy(obj)
    *parents, last = path.split("/")
    node = out
    for p in parents:
        node = node[int(p)] if isinstance(node, list) else node[p]
    if value is DEL:
        del node[int(last) if isinstance(node, list) else last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


DEL = object()

FAULTS = [
    ("format", "something-else", "not a functional-gpt checkpoint"),
    ("format", DEL, "not a functional-gpt checkpoint"),
    ("version", 3, "version 3 is not supported"),
    ("version", "1", "version '1' is not supported"),
    ("version", True, "version True is not supported"),
    ("config", DEL, "missing field 'config'"),
    ("config/n_head", 4, "divisible"),
    ("config/n_layer", 0, "n_layer"),
    ("config/n_head", DEL, "missing field 'config.n_head'"),
    ("config/n_head", 1.0, "wrong type"),
    ("config/block_size", True, "wrong type"),
    ("config/extra", 1, "unknown fields"),
    ("config/vocab_size", 6, "'vocab' has 4 characters"),
    ("vocab", ["a", "b", "n"], "'vocab' has 3 characters"),
    ("vocab", ["a", "b", "n", "n"], "repeats"),
    ("vocab", ["b", "a", "n", "o"], "sorted"),
    ("vocab", ["ab", "b", "n", "o"], "single characters"),
    ("vocab", "abno", "single characters"),
    ("vocab", DEL, "missing field 'vocab'"),
    ("vocab", ["\n", "a", "b", "n"], "printable characters only"),
    ("vocab", ["\t", "a", "b", "n"], "printable characters only"),
    ("params/wpe/0/1", 10**400, "integer of 401 digits, too large for a float"),
    ("params/wpe/0/1", -1e7, "larger than the limit of 1e+06"),
    ("params/wpe/0/1", 1e154, "larger than the limit of 1e+06"),
    ("optimizer/lr", 10**400, "too large for a float"),
    ("rng/gauss_next", 10**400, "too large for a float"),
    ("seed", "42", "wrong type"),
    ("steps", DEL, "missing field 'steps'"),
    ("steps", 0, "not within"),
    ("params", DEL, "missing field 'params'"),
    ("params/wte", DEL, "missing the matrix 'wte'"),
    ("params/layer1.attn_wq", [[0.0, 0.0], [0.0, 0.0]], "unknown matrices"),
    ("params/wpe", [[0.0, 0.0], [0.0, 0.0]], "'params.wpe' must be 3 rows of 2"),
    ("params/wpe/0", [0.0], "'params.wpe' must be 3 rows of 2"),
    ("params/wpe/0", "ab", "'params.wpe' must be 3 rows of 2"),
    ("params/wpe/0/1", "0.5", "not a number"),
    ("params/wpe/0/1", None, "not a number"),
    ("params/wpe/0/1", float("inf"), "non-finite"),
    ("params/wpe/0/1", False, "not a number"),
    ("optimizer/name", "sgd", "optimizer 'sgd' is not supported"),
    ("optimizer/step", 11, "not within"),
    ("optimizer/step", -1, "not within"),
    ("optimizer/lr", float("nan"), "non-finite"),
    ("optimizer/beta1", DEL, "missing field 'optimizer.beta1'"),
    ("optimizer/m/lm_head/0", [0.0], "'optimizer.m.lm_head' must be"),
    ("optimizer/v/wte/0/0", -1.0, "negative second moment"),
    ("optimizer/v", DEL, "missing field 'optimizer.v'"),
    ("rng", DEL, "missing field 'rng'"),
    ("rng/mt/5", 2**32, "bad 'rng'"),
    ("rng/mt/5", True, "624 ints"),
    ("rng/mt", [1, 2, 3], "bad 'rng'"),
    ("rng/pos", 625, "bad 'rng'"),
    ("rng/gauss_next", "x", "not a number"),
    ("data", 5, "'data' has the wrong type"),
    ("data/kind", "ftp", "'data.kind' is 'ftp'"),
    ("data/kind", DEL, "missing field 'data.kind'"),
    ("data/location", None, "'data.location'"),
    ("data/location", 7, "'data.location'"),
    ("data/sha256", "xyz", "not a SHA-256"),
    ("data/sha256", "AB" * 32, "not a SHA-256"),
    ("data/docs", "2", "wrong type"),
    ("holdout", -1, "'holdout' is -1"),
    ("holdout", DEL, "missing field 'holdout'"),
    ("holdout", 1.5, "wrong type"),
]


@pytest.mark.parametrize(("path", "value", "message"), FAULTS)
def test_each_fault_raises_checkpoint_error(path, value, message):
    bad = _set(_valid_obj(), path, value)
    with pytest.raises(C.CheckpointError, match=f"^checkpoint: .*{re.escape(message)}"):
        C.from_json_obj(bad)


def test_a_faulty_obj_would_have_been_fine_without_the_fault():
    C.from_json_obj(_valid_obj())  # so the faults above are what is refused


@pytest.mark.parametrize("obj", [None, [], "checkpoint", 3, {}])
def test_non_objects_are_refused(obj):
    with pytest.raises(C.CheckpointError, match="not a functional-gpt checkpoint"):
        C.from_json_obj(obj)


@given(st.data())
def test_every_truncation_is_refused(data):
    text = json.dumps(_valid_obj())
    cut = data.draw(st.integers(0, len(text) - 1))
    with pytest.raises(C.CheckpointError):
        C.loads(text[:cut])


@given(st.data())
def test_one_changed_character_gives_a_checkpoint_or_a_checkpoint_error(data):
    text = C.dumps(C.from_json_obj(_valid_obj()))
    i = data.draw(st.integers(0, len(text) - 1))
    c = data.draw(chars_utf8)
    try:
        result = C.loads(text[:i] + c + text[i + 1 :])
    except C.CheckpointError:
        return
    assert isinstance(result, C.Checkpoint)


@pytest.mark.parametrize("word", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_in_the_text_are_refused(word):
    text = json.dumps(_valid_obj()).replace('"seed": 1', f'"seed": {word}', 1)
    text = text.replace('"lr": 0.01', f'"lr": {word}', 1)
    with pytest.raises(C.CheckpointError, match="finite|type"):
        C.loads(text)


def test_to_json_obj_refuses_inconsistent_checkpoints():
    tok = tk.build(["ab"])
    rng, state = init_state(R.seed(0), Config(tok.vocab_size, n_embd=2, n_head=1, block_size=2))
    with pytest.raises(C.CheckpointError, match="vocabulary of 4 tokens"):
        C.to_json_obj(C.Checkpoint(state, tk.Tokenizer("abc"), 0, rng, 5))
    short = state._replace(adam=AdamState((0.0,), (0.0,), 0))
    with pytest.raises(C.CheckpointError, match="parameters"):
        C.to_json_obj(C.Checkpoint(short, tok, 0, rng, 5))
    big = state._replace(tape=T.leaves([2 * MAX_WEIGHT] * len(state.tape)))
    with pytest.raises(C.CheckpointError, match="larger than the limit"):
        C.to_json_obj(C.Checkpoint(big, tok, 0, rng, 5))
    with pytest.raises(C.CheckpointError, match="printable"):
        C.to_json_obj(C.Checkpoint(state, tk.Tokenizer("a\n"), 0, rng, 5))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        (b"", "empty"),
        (b"  \n", "empty"),
        (b"\xff\xfe\x00b", "not UTF-8"),
        (b'{"format": "functional-gpt-checkpoint", "version": 1, "con', "truncated"),
        (b"\x00\x01\x02garbage", "not valid JSON"),
    ],
)
def test_load_names_the_file_and_the_fault(tmp_path, content, message):
    path = tmp_path / "model.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(C.CheckpointError, match=message) as info:
        C.load(path)
    assert str(path) in str(info.value)


def test_load_of_a_directory_is_a_checkpoint_error(tmp_path):
    with pytest.raises(C.CheckpointError, match="directory"):
        C.load(tmp_path)


# ------------------------------------------------------------------ version 1

V1 = Path(__file__).resolve().parent / "data" / "checkpoint_v1.json"
V1_NAMES = V1.parent / "v1_names.txt"


def test_a_version_1_file_still_loads() -> None:
    """tests/data/checkpoint_v1.json was written by the version-1 code (8 steps on
    v1_names.txt, seed 5, n_embd 4, 2 heads, block size 6); it loads with no data record, and
    its parameters are those of the naive mutable reference trained the same way."""
    from reference_microgpt import Reference

    ckpt = C.load(V1)
    assert ckpt.data is None and ckpt.holdout == 0
    assert (ckpt.seed, ckpt.steps, ckpt.state.adam.step) == (5, 8, 8)
    docs = V1_NAMES.read_text().split()
    ref = Reference(docs, seed=5, steps=8, n_layer=1, n_embd=4, n_head=2, block_size=6)
    for _ in range(8):
        ref.step()
    got = [n[0] for n in ckpt.state.tape.nodes]
    assert all(abs(a - b) <= 1e-12 * max(1.0, abs(b)) for a, b in zip(got, ref.params_flat()))
    assert len(got) == len(ref.params_flat())
    # written again, it becomes version 2 and reads back the same
    again = C.loads(C.dumps(ckpt))
    assert json.loads(C.dumps(ckpt))["version"] == 2
    assert_same(ckpt, again)


def test_more_lists_or_values_than_any_checkpoint_holds_are_refused_before_parsing():
    from functional_gpt import limits

    lists = "[" + ",".join(["[]"] * limits.MAX_CHECKPOINT_LISTS) + "]"
    with pytest.raises(C.CheckpointError, match="lists .* more than a checkpoint of at most"):
        C.loads(lists)
    numbers = "[" + "0," * (limits.MAX_CHECKPOINT_COMMAS + 1) + "0]"
    with pytest.raises(C.CheckpointError, match="commas, more than a checkpoint"):
        C.loads(numbers)
    # Just under the bounds, the text is parsed (and refused for what it is).
    with pytest.raises(C.CheckpointError, match="not a functional-gpt checkpoint"):
        C.loads("[" + ",".join(["[]"] * (limits.MAX_CHECKPOINT_LISTS - 1)) + "]")
