"""The numbers behind the pictures and ``sample --explain``, against independent computations.

- attention weights: the tape's own ``softmax`` nodes (the forward that
  training differentiates), bit for bit, and each row sums to 1;
- next-token probabilities: ``evaluate.score``'s log-probability of the text;
- PCA: the closed form of a 2 x 2 covariance matrix, and numpy's ``eigh``;
- explained sampling: ``sample.samples`` (the same names, the same RNG after).
"""

import math

import pytest
from bits import bits
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import finite

import functional_gpt.tape as T
from functional_gpt import infer, inside, model
from functional_gpt import rng as R
from functional_gpt import sample as S
from functional_gpt import tokenizer as tk
from functional_gpt.evaluate import score
from functional_gpt.model import Config


@st.composite
def models(draw, max_block=6):
    """A random config, its initial parameters (maybe scaled up) and their tokenizer."""
    n_head = draw(st.integers(1, 3))
    config = Config(
        vocab_size=draw(st.integers(2, 7)),
        n_layer=draw(st.integers(1, 2)),
        n_embd=n_head * draw(st.integers(1, 3)),
        n_head=n_head,
        block_size=draw(st.integers(1, max_block)),
    )
    _, tape = model.init(R.seed(draw(st.integers(0, 2**32 - 1))), config)
    scale = draw(st.sampled_from([1.0, 4.0, 12.0]))  # larger weights: sharper attention
    tape = T.update(tape, [x * scale for x in T.values(tape, range(len(tape)))])
    tok = tk.Tokenizer("abcdefg"[: config.vocab_size - 1])
    return config, tape, tok


def float_weights(tape, config):
    return infer.weights(T.values(tape, range(model.num_params(config))), config)


def texts(tok, config):
    """Texts of the tokenizer's characters that fit, with their end, in the block size."""
    return st.text(alphabet=tok.chars, max_size=config.block_size - 1)


# ------------------------------------------------------------------ attention


@given(models(), st.data())
@settings(max_examples=50)
def test_attention_weights_are_the_tapes_softmax_nodes_bit_for_bit(case, data) -> None:
    config, tape, tok = case
    tokens = data.draw(st.lists(st.integers(0, config.vocab_size - 1), min_size=1,
                                max_size=config.block_size))
    params, w = model.layout(config), float_weights(tape, config)
    tape_cache, float_cache = model.empty_cache(config), infer.empty_cache(config)
    for pos, token in enumerate(tokens):
        before = len(tape)
        tape, (ids, tape_cache) = model.gpt(tape, params, config, token, pos, tape_cache)
        logits, attention, float_cache = inside.attention_forward(w, config, token, pos,
                                                                  float_cache)
        assert bits(logits) == bits(T.values(tape, ids))
        # Only attention pushes softmax nodes: layer by layer, head by head, pos + 1 per head.
        softmax = [T.data(tape, i) for i in range(before, len(tape))
                   if T.node(tape, i).op == "softmax"]
        flat = [p for layer in attention for head in layer for p in head]
        assert bits(flat) == bits(softmax)  # the same floats, by their bits
        assert len(attention) == config.n_layer
        for layer in attention:
            assert len(layer) == config.n_head
            for head in layer:
                assert len(head) == pos + 1
                assert math.fsum(head) == pytest.approx(1.0, abs=1e-12)
                assert all(0.0 <= p <= 1.0 for p in head)


@given(models(), st.data())
@settings(max_examples=40)
def test_a_readings_probabilities_give_the_texts_score(case, data) -> None:
    config, tape, tok = case
    text = data.draw(texts(tok, config))
    w = float_weights(tape, config)
    reading = inside.read(w, config, tok, text)
    n = len(text) + 1
    assert reading.labels == (".", *text) and len(reading.probs) == n
    assert reading.targets == tk.doc_tokens(tok, text)[1:]
    assert reading.vocabulary == (*tok.chars, ".")
    for layer in reading.attention:
        for head in layer:
            assert [len(row) for row in head] == list(range(1, n + 1))
    for probs in reading.probs:
        assert len(probs) == config.vocab_size
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12)
    try:
        want = score(w, config, tok, text).logprob  # -log p summed by the cross-entropy kernel
    except ValueError:  # a probability underflowing to 0 with the scaled-up weights
        assume(False)
    got = math.fsum(math.log(p[t]) for p, t in zip(reading.probs, reading.targets))
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_read_refuses_a_text_outside_the_vocabulary_or_too_long() -> None:
    config = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    w = infer.weights([0.0] * model.num_params(config), config)
    tok = tk.Tokenizer("ab")
    with pytest.raises(ValueError, match="characters not in the vocabulary: 'z'"):
        inside.read(w, config, tok, "az")
    with pytest.raises(ValueError, match="does not fit in the block size 3"):
        inside.read(w, config, tok, "aba")
    assert len(inside.read(w, config, tok, "ab").labels) == 3  # exactly fits


def test_bos_is_labelled_with_a_character_the_vocabulary_lacks() -> None:
    assert inside.label_of(tk.Tokenizer("ab"), 2) == "."
    assert inside.label_of(tk.Tokenizer(".ab"), 3) == "<BOS>"
    assert inside.label_of(tk.Tokenizer(".ab"), 0) == "."
    assert inside.label_of(tk.Tokenizer(" a"), 0) == "␣"


# ------------------------------------------------------------------------ PCA


def covariance_2x2(points):
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    a = sum((p[0] - mx) ** 2 for p in points) / n
    b = sum((p[0] - mx) * (p[1] - my) for p in points) / n
    c = sum((p[1] - my) ** 2 for p in points) / n
    return a, b, c


@given(st.lists(st.tuples(finite(-10.0, 10.0), finite(-10.0, 10.0)), min_size=2, max_size=12))
def test_pca_of_points_in_the_plane_is_the_closed_form(points) -> None:
    a, b, c = covariance_2x2(points)
    half_gap = math.hypot((a - c) / 2, b)
    big, small = (a + c) / 2 + half_gap, (a + c) / 2 - half_gap
    p = inside.principal_components(points)
    scale = max(a + c, 1e-300)
    assert p.variances[0] == pytest.approx(big, abs=1e-9 * scale + 1e-12)
    assert p.variances[1] == pytest.approx(max(small, 0.0), abs=1e-9 * scale + 1e-12)
    assert p.total_variance == pytest.approx(a + c, abs=1e-12 * scale + 1e-15)
    size = max(x * x + y * y for x, y in points)
    # A clear first direction, at angle atan2(2b, a - c) / 2; not where the spread is no more
    # than the rounding of the coordinates themselves (identical points, say), which has none.
    if half_gap > 1e-6 * scale and scale > 1e-12 * size:
        angle = math.atan2(2 * b, a - c) / 2
        along = p.components[0][0] * math.cos(angle) + p.components[0][1] * math.sin(angle)
        assert abs(along) == pytest.approx(1.0, abs=1e-7)
    for comp in p.components:
        assert math.hypot(*comp) == pytest.approx(1.0, abs=1e-12)
        biggest = max(comp, key=abs)
        assert biggest > 0 or biggest == 0  # the sign convention
    assert sum(x * y for x, y in zip(*p.components)) == pytest.approx(0.0, abs=1e-12)


@given(st.integers(1, 6), st.data())
@settings(max_examples=40)
def test_pca_matches_numpys_symmetric_eigen_solver(d, data) -> None:
    np = pytest.importorskip("numpy")
    rows = data.draw(st.lists(st.lists(finite(-5.0, 5.0), min_size=d, max_size=d),
                              min_size=1, max_size=10))
    k = data.draw(st.integers(1, d))
    p = inside.principal_components(rows, k)
    x = np.array(rows, dtype=float)
    centred = x - x.mean(axis=0)
    values, vectors = np.linalg.eigh(centred.T @ centred / len(rows))
    order = np.argsort(values)[::-1]
    scale = max(float(values.sum()), 1e-300)
    assert p.variances == pytest.approx([max(v, 0.0) for v in values[order][:k]],
                                        abs=1e-9 * scale + 1e-12)
    assert p.mean == pytest.approx(x.mean(axis=0).tolist(), abs=1e-12)
    basis = np.array(p.components)
    assert basis @ basis.T == pytest.approx(np.eye(k), abs=1e-9)
    assert np.array(p.coords) == pytest.approx(centred @ basis.T, abs=1e-9)
    ranked = values[order]
    for i in range(k):  # a direction is only defined where its eigenvalue stands alone
        gaps = [abs(ranked[i] - ranked[j]) for j in range(d) if j != i]
        if min(gaps, default=scale) > 1e-6 * scale:
            assert abs(float(basis[i] @ vectors[:, order[i]])) == pytest.approx(1.0, abs=1e-6)


def test_pca_of_points_on_a_line_has_one_direction() -> None:
    direction = (1 / 3, 2 / 3, 2 / 3)  # a unit vector
    points = [tuple(1.0 + t * c for c in direction) for t in (-3.0, -1.0, 0.0, 4.0)]
    p = inside.principal_components(points, 3)
    assert p.components[0] == pytest.approx(direction, abs=1e-12)
    assert p.variances[0] == pytest.approx((9 + 1 + 0 + 16) / 4, rel=1e-12)
    assert p.variances[1:] == pytest.approx((0.0, 0.0), abs=1e-12)
    assert [c[0] for c in p.coords] == pytest.approx([-3.0, -1.0, 0.0, 4.0], abs=1e-12)


def test_pca_leaves_its_input_and_refuses_bad_shapes() -> None:
    rows = [[1.0, 2.0], [3.0, 5.0], [0.0, -1.0]]
    copy = [list(r) for r in rows]
    inside.principal_components(rows)
    assert rows == copy
    with pytest.raises(ValueError, match="differ in length"):
        inside.principal_components([[1.0, 2.0], [1.0]])
    with pytest.raises(ValueError, match="at least one point"):
        inside.principal_components([])
    with pytest.raises(ValueError, match="k must be between 1 and 2"):
        inside.principal_components(rows, 0)


@given(models())
@settings(max_examples=20)
def test_embeddings_project_the_rows_of_wte_and_wpe(case) -> None:
    config, tape, tok = case
    w = float_weights(tape, config)
    e = inside.embeddings(w, tok)
    k = 2 if config.n_embd > 1 else 1
    assert e.tokens == inside.principal_components(w.wte, k)
    assert e.positions == inside.principal_components(w.wpe, k)
    assert len(e.tokens.coords) == config.vocab_size == len(e.token_labels)
    assert e.position_labels == tuple(str(i) for i in range(config.block_size))


# ---------------------------------------------------------------- explanation


@given(models(max_block=8), st.integers(0, 2**32 - 1),
       st.sampled_from([0.3, 0.5, 1.0, 1.7]), st.data())
@settings(max_examples=40)
def test_explained_samples_are_the_samples(case, seed, temperature, data) -> None:
    config, tape, tok = case
    prompt = data.draw(st.text(alphabet=tok.chars, max_size=min(2, config.block_size)))
    top = data.draw(st.integers(0, 4))
    w = float_weights(tape, config)
    want_rng, want = S.samples(tape, config, tok, R.seed(seed), 4, temperature, prompt)
    got_rng, got = inside.explain_samples(w, config, tok, R.seed(seed), 4, temperature,
                                          prompt, top)
    assert tuple(e.text for e in got) == want and got_rng == want_rng
    for e in got:
        assert e.text.startswith(prompt)
        kinds = [c.kind for c in e.choices]
        assert kinds[: len(prompt)] == ["prompt"] * len(prompt)
        assert set(kinds[len(prompt):-1]) <= {"drawn"}
        assert kinds[-1] == "end" or len(e.choices) == config.block_size
        running = 0.0
        for c in e.choices:
            running += math.log(c.prob)
            assert c.logprob == pytest.approx(running, rel=1e-12, abs=1e-12)
            assert len(c.alternatives) == min(top, config.vocab_size - 1)
            assert c.label not in [label for label, _ in c.alternatives]
            ps = [p for _, p in c.alternatives]
            assert ps == sorted(ps, reverse=True)


@given(models(max_block=8), st.integers(0, 2**32 - 1))
@settings(max_examples=30)
def test_at_temperature_one_a_finished_names_log_probability_is_its_score(case, seed) -> None:
    config, tape, tok = case
    w = float_weights(tape, config)
    _, explained = inside.explain_sample(w, config, tok, R.seed(seed), 1.0)
    assume(explained.choices[-1].kind == "end")
    assert explained.choices[-1].logprob == pytest.approx(
        score(w, config, tok, explained.text).logprob, rel=1e-12, abs=1e-12)


def test_explaining_refuses_what_sampling_refuses() -> None:
    config = Config(vocab_size=3, n_embd=2, n_head=1, block_size=2)
    _, tape = model.init(R.seed(0), config)
    w, tok = float_weights(tape, config), tk.Tokenizer("ab")
    for prompt, temperature in (("aba", 0.5), ("a", 0.0), ("z", 0.5)):
        with pytest.raises(ValueError) as want:
            S.sample(tape, config, tok, R.seed(1), temperature, prompt)
        with pytest.raises(ValueError) as got:
            inside.explain_sample(w, config, tok, R.seed(1), temperature, prompt)
        assert str(got.value) == str(want.value)


@given(st.integers(8, 40), st.data())
@settings(max_examples=60)
def test_pca_of_fewer_points_than_dimensions_matches_numpy(d, data) -> None:
    # The Gram-matrix route: a wide model's few tokens or positions.
    np = pytest.importorskip("numpy")
    n = data.draw(st.integers(1, d - 1))
    distinct = data.draw(st.lists(st.lists(finite(-5.0, 5.0), min_size=d, max_size=d),
                                  min_size=1, max_size=n))
    rows = [distinct[i % len(distinct)] for i in range(n)]  # repeated points: a lower rank
    k = data.draw(st.integers(1, min(d, 4)))
    p = inside.principal_components(rows, k)
    x = np.array(rows, dtype=float)
    centred = x - x.mean(axis=0)
    values = np.sort(np.linalg.eigvalsh(centred.T @ centred / n))[::-1]
    scale = max(float(values.sum()), 1e-300)
    assert p.variances == pytest.approx([max(v, 0.0) for v in values[:k]],
                                        abs=1e-9 * scale + 1e-12)
    assert p.total_variance == pytest.approx(float(values.sum()), abs=1e-9 * scale + 1e-12)
    basis = np.array(p.components)
    assert basis @ basis.T == pytest.approx(np.eye(k), abs=1e-9)
    coords = np.array(p.coords)
    assert coords == pytest.approx(centred @ basis.T, abs=1e-9)
    # the variance along each direction is the variance it reports
    assert (coords ** 2).mean(axis=0) == pytest.approx(p.variances, abs=1e-9 * scale + 1e-12)
