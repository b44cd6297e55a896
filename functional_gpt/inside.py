"""Inside a trained model, as numbers: attention weights, next-token probabilities, embeddings.

Every function here is pure and returns the numbers that ``pictures`` draws
and ``sample --explain`` prints, so a REPL or a notebook can read them too:

- ``attention_forward`` is ``infer.gpt`` that also returns every head's
  attention weights, from the same float kernels as training (the weights
  are bit for bit the tape's ``softmax`` nodes; tests check this);
- ``read`` runs it over a text: a ``Reading`` holds the attention weights
  per layer, head and position and the next-token probabilities;
- ``principal_components`` is PCA in plain Python (a covariance matrix and
  Jacobi rotations: no numpy), and ``embeddings`` projects the token and the
  position embeddings (``wte``, ``wpe``) onto their first two components;
- ``explain_sample`` draws a name exactly as ``sample.sample`` does and keeps,
  for every character, its probability, the best alternatives and the running
  log-probability; ``explanation_lines`` writes that as text.

BOS, the token that starts and ends every name, is shown as ``.`` (as in
makemore), or as ``<BOS>`` when ``.`` is a character of the vocabulary.

>>> from functional_gpt import train
>>> from functional_gpt.evaluate import weights_of
>>> run = train.prepare(["ann", "bob", "eve"], seed=1, n_embd=4, n_head=2, block_size=4)
>>> w = weights_of(run.state)
>>> reading = read(w, run.state.config, run.tokenizer, "bob")
>>> reading.labels, [label_of(run.tokenizer, t) for t in reading.targets]
(('.', 'b', 'o', 'b'), ['b', 'o', 'b', '.'])
>>> [len(row) for row in reading.attention[0][1]]   # layer 0, head 1: one row per query
[1, 2, 3, 4]
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import NamedTuple

from . import evaluate, infer, model
from . import layers as L
from . import rng as R
from . import tokenizer as tk
from .model import Cache, Config
from .sample import next_token_probs

__all__ = [
    "label_of",
    "attention_forward",
    "Reading",
    "read",
    "Projection",
    "principal_components",
    "Embeddings",
    "embeddings",
    "Choice",
    "Explained",
    "explain_sample",
    "explain_stream",
    "explain_samples",
    "explanation_lines",
]

# One head's attention: for each query position, its weights over the key positions 0..query.
HeadMap = tuple[tuple[float, ...], ...]


def label_of(tok: tk.Tokenizer, token: int) -> str:
    """Return how a token is shown: its character, ``.`` for BOS, ``␣`` for a space.

    BOS is ``<BOS>`` instead when ``.`` is itself in the vocabulary.

    >>> tok = tk.Tokenizer("ab ")
    >>> [label_of(tok, t) for t in range(tok.vocab_size)]
    ['a', 'b', '␣', '.']
    >>> label_of(tk.Tokenizer(".a"), 2)
    '<BOS>'
    """
    if token == tok.bos:
        return "<BOS>" if "." in tok.chars else "."
    char = tok.chars[token]
    return "␣" if char == " " else char


# --------------------------------------------------------------- attention


def _recording_attention(
    seen: tuple[tuple[tuple[float, ...], ...], ...], q: Sequence[float],
    keys: Sequence[Sequence[float]], vals: Sequence[Sequence[float]], n_head: int,
) -> tuple[tuple[tuple[tuple[float, ...], ...], ...], tuple[float, ...]]:
    """``infer``'s attention, its state the heads' weights of every layer read so far."""
    _, out = infer.FLOAT_OPS.attention(None, q, keys, vals, n_head)  # with infer's checks
    # The same kernel again for the weights: a reading is a few positions, so twice is cheap.
    weights = tuple(probs for _, probs, _ in L.attention_values(q, keys, vals, n_head))
    return seen + (weights,), out


_RECORDING_OPS = infer.FLOAT_OPS._replace(attention=_recording_attention)


def attention_forward(
    w: infer.Weights, config: Config, token: int, pos: int, cache: Cache
) -> tuple[tuple[float, ...], tuple[tuple[tuple[float, ...], ...], ...], Cache]:
    """Return ``(logits, attention, cache)``: ``infer.gpt`` and every head's attention weights.

    ``attention[layer][head]`` holds the weights this position's query gives
    to the keys of positions ``0..pos``: the softmax of the head's logits,
    which sums to 1. The logits and the cache are ``infer.gpt``'s.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=2, block_size=4)
    >>> w = infer.weights([0.0] * model.num_params(cfg), cfg)   # all zero: equal weights
    >>> _, attention, cache = attention_forward(w, cfg, 2, 0, infer.empty_cache(cfg))
    >>> attention_forward(w, cfg, 0, 1, cache)[1]
    (((0.5, 0.5), (0.5, 0.5)),)
    """
    seen, (logits, cache) = model.forward(_RECORDING_OPS, (), w, config, token, pos, cache)
    return logits, seen, cache


class Reading(NamedTuple):
    """What a model computes while it reads a text, position by position.

    Position 0 reads BOS, position ``i`` the text's ``i``-th character;
    ``targets[i]`` is the token that truly comes next (the text's next
    character, and BOS after its last).
    """

    text: str
    labels: tuple[str, ...]  # the token read at each position, as ``label_of`` shows it
    attention: tuple[tuple[HeadMap, ...], ...]  # [layer][head][query] -> weights over keys
    probs: tuple[tuple[float, ...], ...]  # [position] -> probability of each token next
    targets: tuple[int, ...]  # [position] -> the token that comes next
    vocabulary: tuple[str, ...]  # label_of every token id, BOS last


def read(w: infer.Weights, config: Config, tok: tk.Tokenizer, text: str) -> Reading:
    """Return the ``Reading`` of ``text``: attention weights and next-token probabilities.

    The model reads BOS and the text's characters, one position each, so the
    text and its end must fit in ``block_size`` positions (as for
    ``evaluate.score``). The probabilities are the softmax of the logits
    (temperature 1).

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    >>> w = infer.weights([0.0] * model.num_params(cfg), cfg)
    >>> r = read(w, cfg, tk.Tokenizer("ab"), "ba")
    >>> [round(p, 4) for p in r.attention[0][0][2]]      # query 2 over keys 0, 1 and 2
    [0.3333, 0.3333, 0.3333]
    >>> [round(p, 4) for p in r.probs[0]], r.targets     # after BOS; what truly comes next
    ([0.3333, 0.3333, 0.3333], (1, 0, 2))
    >>> read(w, cfg, tk.Tokenizer("ab"), "abc")
    Traceback (most recent call last):
    ...
    ValueError: encode: characters not in the vocabulary: 'c'
    >>> read(w, cfg, tk.Tokenizer("ab"), "abab")
    Traceback (most recent call last):
    ...
    ValueError: 'abab' does not fit in the block size 3: 4 characters and its end need 5 positions
    """
    tokens = evaluate.fitting_tokens(config, tok, text)
    cache = infer.empty_cache(config)
    per_position, probs = [], []  # local transients, frozen into tuples below
    for pos, token in enumerate(tokens[:-1]):
        logits, attention, cache = attention_forward(w, config, token, pos, cache)
        per_position.append(attention)
        probs.append(L.softmax_values(logits))
    attention_maps = tuple(
        tuple(tuple(at[layer][head] for at in per_position) for head in range(config.n_head))
        for layer in range(config.n_layer)
    )
    return Reading(
        text,
        tuple(label_of(tok, t) for t in tokens[:-1]),
        attention_maps,
        tuple(probs),
        tokens[1:],
        tuple(label_of(tok, t) for t in range(tok.vocab_size)),
    )


# --------------------------------------------------------------------- PCA


class Projection(NamedTuple):
    """Points projected onto their principal components (PCA), largest variance first."""

    mean: tuple[float, ...]  # the points' mean, the projection's origin
    components: tuple[tuple[float, ...], ...]  # orthonormal directions
    variances: tuple[float, ...]  # the points' variance along each direction
    total_variance: float  # the variance summed over every dimension
    coords: tuple[tuple[float, ...], ...]  # each point's coordinates along the directions


def _covariance(rows: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], list[list[float]]]:
    """The mean of ``rows`` and their covariance matrix (divided by the number of rows)."""
    n, d = len(rows), len(rows[0])
    mean = tuple(math.fsum(r[j] for r in rows) / n for j in range(d))
    centred = [[r[j] - mean[j] for j in range(d)] for r in rows]
    cov = [[math.fsum(c[i] * c[j] for c in centred) / n for j in range(d)] for i in range(d)]
    return mean, cov


def _jacobi_eigen(a: list[list[float]]) -> tuple[list[float], list[list[float]]]:
    """Eigenvalues and eigenvectors (as columns) of the symmetric matrix ``a``, by Jacobi.

    Each rotation in a plane (p, q) zeroes ``a[p][q]``; sweeps repeat until
    the off-diagonal part is negligible. ``a`` is the caller's local copy and
    is changed in place, as is the local ``v``.
    """
    d = len(a)
    v = [[1.0 if i == j else 0.0 for j in range(d)] for i in range(d)]
    scale = math.fsum(a[i][i] ** 2 for i in range(d)) + math.fsum(
        a[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    for _ in range(100):
        off = math.fsum(a[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
        if off <= 1e-30 * scale:
            break
        for p in range(d - 1):
            for q in range(p + 1, d):
                if a[p][q] == 0.0:
                    continue
                theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q])
                t = math.copysign(1.0, theta) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                for k in range(d):  # a <- a J, then v <- v J (columns p and q)
                    akp, akq = a[k][p], a[k][q]
                    a[k][p], a[k][q] = c * akp - s * akq, s * akp + c * akq
                    vkp, vkq = v[k][p], v[k][q]
                    v[k][p], v[k][q] = c * vkp - s * vkq, s * vkp + c * vkq
                for k in range(d):  # a <- J^T a (rows p and q)
                    apk, aqk = a[p][k], a[q][k]
                    a[p][k], a[q][k] = c * apk - s * aqk, s * apk + c * aqk
    return [a[i][i] for i in range(d)], v


def _orthonormal(vector: list[float], basis: list[list[float]]) -> tuple[list[float], float]:
    """``vector`` less its parts along the orthonormal ``basis``, made unit; and the norm it had."""
    rest = list(vector)  # local transient
    for q in basis:
        along = math.fsum(a * b for a, b in zip(rest, q))
        rest = [a - along * b for a, b in zip(rest, q)]
    norm = math.sqrt(math.fsum(a * a for a in rest))
    return ([a / norm for a in rest] if norm > 0.0 else rest), norm


def _gram_directions(
    points: list[tuple[float, ...]], k: int
) -> tuple[tuple[float, ...], float, list[float], list[list[float]]]:
    """The mean, total variance, ``k`` largest variances and their directions, for fewer
    points (n) than dimensions (d), from the n x n Gram matrix of the centred points.

    The Gram matrix ``G = C C^T / n`` has the covariance ``C^T C / n``'s nonzero
    eigenvalues, and for each eigenvector ``u`` of G, ``C^T u`` is the
    covariance's eigenvector: the cost grows as n * n * d, not as d cubed.
    Directions of variance 0 (beyond the points' span) are any orthonormal
    completion: unit axes, less their parts along the directions before.
    """
    n, d = len(points), len(points[0])
    mean = tuple(math.fsum(p[j] for p in points) / n for j in range(d))
    centred = [[x - m for x, m in zip(p, mean)] for p in points]  # local transient
    total = math.fsum(math.fsum(c[j] * c[j] for c in centred) / n for j in range(d))
    gram = [[math.fsum(a * b for a, b in zip(ci, cj)) / n for cj in centred] for ci in centred]
    eigenvalues, vectors = _jacobi_eigen(gram)
    order = sorted(range(n), key=lambda i: -eigenvalues[i])[:k]
    largest = max(eigenvalues[order[0]], 0.0)
    values: list[float] = []  # local transient
    columns: list[list[float]] = []  # local transient
    for i in order:
        if eigenvalues[i] <= 1e-9 * largest or eigenvalues[i] <= 0.0:
            break  # rounding, not a direction of the points: completed below
        u = [vectors[r][i] for r in range(n)]
        along = [math.fsum(u[r] * centred[r][j] for r in range(n)) for j in range(d)]
        direction, rest = _orthonormal(along, columns)
        if not rest > 0.5 * math.sqrt(math.fsum(a * a for a in along)):
            break  # not a new direction (an eigen-solver lost in rounding): completed below
        values.append(eigenvalues[i])
        columns.append(direction)
    while len(columns) < k:  # the axis that stands out most from the directions so far
        axes = [_orthonormal([float(t == j) for t in range(d)], columns) for j in range(d)]
        columns.append(max(axes, key=lambda axis: axis[1])[0])  # the first of equals
        values.append(0.0)
    return mean, total, values, columns


def principal_components(rows: Sequence[Sequence[float]], k: int = 2) -> Projection:
    """Return the ``Projection`` of ``rows`` (points of equal length) on ``k`` principal components.

    The components are the unit eigenvectors of the covariance matrix (the
    mean outer product of the centred points, divided by their number) with
    the ``k`` largest eigenvalues, which are the variances along them. Each
    component's sign makes its largest entry (by size, the first of equals)
    positive, so the result does not depend on the rounding of the
    eigen-solver. Plain Python: Jacobi rotations on the covariance matrix, or
    on the smaller Gram matrix of the points when they are fewer than their
    dimensions (a wide model's few tokens or positions), so that the time
    grows with the points' size, not with the cube of their dimension.

    Points spread along the diagonal, with a little noise across it:

    >>> p = principal_components([(2.0, 2.0), (-2.0, -2.0), (1.0, -1.0), (-1.0, 1.0)])
    >>> [[round(x, 6) for x in c] for c in p.components]
    [[0.707107, 0.707107], [0.707107, -0.707107]]
    >>> [round(x, 6) for x in p.variances], round(p.total_variance, 6)
    ([4.0, 1.0], 5.0)
    >>> [[round(x, 6) for x in c] for c in p.coords]
    [[2.828427, 0.0], [-2.828427, 0.0], [0.0, 1.414214], [0.0, -1.414214]]
    >>> principal_components([(1.0, 2.0)], k=3)
    Traceback (most recent call last):
    ...
    ValueError: principal_components: k must be between 1 and 2, got 3
    """
    points = [tuple(map(float, r)) for r in rows]
    if not points or not points[0]:
        raise ValueError("principal_components: needs at least one point of at least one number")
    d = len(points[0])
    if any(len(p) != d for p in points):
        raise ValueError("principal_components: the points differ in length")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"principal_components: k must be between 1 and {d}, got {k!r}")
    if len(points) < d:  # fewer points than dimensions: the small Gram matrix instead
        mean, total, values, columns = _gram_directions(points, k)
    else:
        mean, cov = _covariance(points)
        total = math.fsum(cov[i][i] for i in range(d))
        eigenvalues, vectors = _jacobi_eigen(cov)
        order = sorted(range(d), key=lambda i: -eigenvalues[i])[:k]
        values = [eigenvalues[i] for i in order]
        columns = [[vectors[r][i] for r in range(d)] for i in order]
    components = []  # local transient
    for column in columns:
        biggest = max(range(d), key=lambda r: abs(column[r]))  # the first of equals
        sign = 1.0 if column[biggest] >= 0 else -1.0
        components.append(tuple(sign * x for x in column))
    coords = tuple(
        tuple(math.fsum((x - m) * c for x, m, c in zip(p, mean, comp)) for comp in components)
        for p in points
    )
    variances = tuple(max(0.0, v) for v in values)
    return Projection(mean, tuple(components), variances, total, coords)


class Embeddings(NamedTuple):
    """The token embeddings (``wte``) and position embeddings (``wpe``), each on two components."""

    tokens: Projection  # one point per token id, BOS last
    token_labels: tuple[str, ...]  # label_of each token
    positions: Projection  # one point per position 0..block_size-1
    position_labels: tuple[str, ...]  # "0", "1", ...


def embeddings(w: infer.Weights, tok: tk.Tokenizer) -> Embeddings:
    """Return the ``Embeddings``: ``principal_components`` of the rows of ``wte`` and of ``wpe``.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=2)
    >>> w = infer.weights(range(model.num_params(cfg)), cfg)
    >>> e = embeddings(w, tk.Tokenizer("ab"))
    >>> e.token_labels, e.position_labels, [round(x, 6) for x in e.tokens.components[0]]
    (('a', 'b', '.'), ('0', '1'), [0.707107, 0.707107])
    """
    if len(w.wte) != tok.vocab_size:
        raise ValueError(f"embeddings: {len(w.wte)} token embeddings for a vocabulary of "
                         f"{tok.vocab_size}")
    return Embeddings(
        principal_components(w.wte, 2 if len(w.wte[0]) > 1 else 1),
        tuple(label_of(tok, t) for t in range(tok.vocab_size)),
        principal_components(w.wpe, 2 if len(w.wpe[0]) > 1 else 1),
        tuple(str(p) for p in range(len(w.wpe))),
    )


# ---------------------------------------------------------------- sampling


class Choice(NamedTuple):
    """One character of a sampled name (or its end, BOS) and what the model thought of it."""

    token: int
    label: str  # label_of the token
    prob: float  # its probability at the sampling temperature
    logprob: float  # the running ln p of the name: this and every earlier choice
    alternatives: tuple[tuple[str, float], ...]  # the likeliest other tokens, best first
    kind: str  # "prompt" (given, not drawn), "drawn", or "end" (BOS drawn: the name ends)


class Explained(NamedTuple):
    """A sampled name and the ``Choice`` behind each character; the last is BOS, its end,
    unless the name ran to the block size."""

    text: str
    choices: tuple[Choice, ...]


def _checked_prompt(config: Config, tok: tk.Tokenizer, prompt: str, temperature: float) -> tuple:
    """The prompt's tokens, or ``sample.sample``'s ValueError for it or the temperature."""
    forced = tk.encode(tok, prompt)
    if len(forced) > config.block_size:
        raise ValueError(
            f"prompt of {len(forced)} characters is longer than the block size {config.block_size}"
        )
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    return forced


def _explained_draw(
    w: infer.Weights, config: Config, tok: tk.Tokenizer, rng: R.RNG, temperature: float,
    forced: tuple[int, ...], top: int,
) -> tuple[R.RNG, Explained]:
    """One name drawn as ``sample``'s draw does it (the same calls in the same order), explained."""
    cache = infer.empty_cache(config)
    token, logprob = tok.bos, 0.0
    choices, out = [], []  # local transients, frozen below
    for pos in range(config.block_size):
        logits, cache = infer.gpt(w, config, token, pos, cache)
        probs = next_token_probs(logits, temperature)
        if pos < len(forced):
            token, kind = forced[pos], "prompt"
        else:
            rng, token = R.choices_index(rng, probs)
            kind = "end" if token == tok.bos else "drawn"
        p = probs[token]
        logprob = logprob + math.log(p) if p > 0.0 else -math.inf
        ranked = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
        others = tuple((label_of(tok, i), probs[i]) for i in ranked if i != token)[:top]
        choices.append(Choice(token, label_of(tok, token), p, logprob, others, kind))
        if token == tok.bos:
            break
        out.append(token)
    return rng, Explained(tk.decode(tok, out), tuple(choices))


def explain_sample(
    w: infer.Weights, config: Config, tok: tk.Tokenizer, rng: R.RNG, temperature: float = 0.5,
    prompt: str = "", top: int = 3,
) -> tuple[R.RNG, Explained]:
    """Return ``(rng, Explained)``: the name ``sample.sample`` draws from ``rng``, explained.

    The draws are ``sample.sample``'s, so the name and the returned ``rng``
    are the same as there; ``top`` alternatives are kept per character.
    Characters of the prompt are not drawn, but their probability counts in
    the running log-probability.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    >>> w = infer.weights([0.0] * model.num_params(cfg), cfg)   # every token equally likely
    >>> _, ex = explain_sample(w, cfg, tk.Tokenizer("ab"), R.seed(5), 1.0, prompt="a", top=1)
    >>> ex.text, [(c.label, round(c.prob, 4), c.kind) for c in ex.choices]
    ('ab', [('a', 0.3333, 'prompt'), ('b', 0.3333, 'drawn'), ('.', 0.3333, 'end')])
    >>> round(ex.choices[-1].logprob, 6) == round(3 * math.log(1 / 3), 6)
    True
    """
    forced = _checked_prompt(config, tok, prompt, temperature)
    return _explained_draw(w, config, tok, rng, temperature, forced, top)


def explain_stream(
    w: infer.Weights, config: Config, tok: tk.Tokenizer, rng: R.RNG, temperature: float = 0.5,
    prompt: str = "", top: int = 3,
) -> Iterator[tuple[R.RNG, Explained]]:
    """Return the endless lazy stream of ``(rng, Explained)``, as ``sample.sample_stream`` draws.

    Each name is drawn only when it is asked for, so a caller can print one
    explanation at a time (``itertools.islice`` takes as many as needed) and
    nothing is kept. The prompt and temperature are checked before the first
    draw; each ``rng`` is the state after its name.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    >>> w = infer.weights([0.0] * model.num_params(cfg), cfg)
    >>> stream = explain_stream(w, cfg, tk.Tokenizer("ab"), R.seed(3))
    >>> [ex.text for _, ex in islice(stream, 3)] == [
    ...     ex.text for ex in explain_samples(w, cfg, tk.Tokenizer("ab"), R.seed(3), 3)[1]]
    True
    """
    forced = _checked_prompt(config, tok, prompt, temperature)

    def draws(rng: R.RNG) -> Iterator[tuple[R.RNG, Explained]]:
        while True:
            rng, explained = _explained_draw(w, config, tok, rng, temperature, forced, top)
            yield rng, explained

    return draws(rng)


def explain_samples(
    w: infer.Weights, config: Config, tok: tk.Tokenizer, rng: R.RNG, count: int,
    temperature: float = 0.5, prompt: str = "", top: int = 3,
) -> tuple[R.RNG, tuple[Explained, ...]]:
    """Return ``(rng, explained)``: ``count`` names drawn as ``sample.samples`` draws them.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    >>> w = infer.weights([0.0] * model.num_params(cfg), cfg)
    >>> _, names = explain_samples(w, cfg, tk.Tokenizer("ab"), R.seed(3), 2)
    >>> len(names), all(n.choices for n in names)
    (2, True)
    """
    drawn = tuple(islice(explain_stream(w, config, tok, rng, temperature, prompt, top), count))
    return (drawn[-1][0] if drawn else rng), tuple(explained for _, explained in drawn)


def explanation_lines(explained: Explained) -> tuple[str, ...]:
    """Return one line per choice: the token, its probability, the running ln p, alternatives.

    >>> c = Choice(0, "a", 0.5, math.log(0.5), (("b", 0.25), (".", 0.125)), "drawn")
    >>> for line in explanation_lines(Explained("a", (c, c._replace(label=".", kind="end")))):
    ...     print(line)
        a  p 0.5000  ln p  -0.6931   next best: b 0.2500  . 0.1250
        .  p 0.5000  ln p  -0.6931   next best: b 0.2500  . 0.1250   (the end)
    """
    lines = []  # local transient
    for c in explained.choices:
        others = "  ".join(f"{label} {p:.4f}" for label, p in c.alternatives)
        note = {"prompt": "   (prompt)", "end": "   (the end)"}.get(c.kind, "")
        lines.append(f"    {c.label:>5}  p {c.prob:.4f}  ln p {c.logprob:8.4f}   "
                     f"next best: {others}{note}")
    return tuple(lines)
