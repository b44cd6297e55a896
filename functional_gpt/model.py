"""The GPT of microgpt.py as pure tape functions: config, parameters, forward pass, loss.

The parameters are the first ``num_params(config)`` nodes of every tape, in a
fixed order (wte, wpe, lm_head, then per layer attn_wq, attn_wk, attn_wv,
attn_wo, mlp_fc1, mlp_fc2, row by row), so a ``Params`` record of node ids is
a pure function of the config. The key/value cache is a value threaded through
the forward pass, not a list that grows in place.

>>> from functional_gpt import rng as R
>>> config = Config(vocab_size=5, n_embd=8, n_head=2, block_size=4)
>>> num_params(config)
880
>>> _, tape = init(R.seed(42), config)
>>> params = layout(config)
>>> tape, loss = doc_loss(tape, params, config, (4, 0, 1, 4))
>>> round(T.data(tape, loss), 1)   # near ln(5) = 1.609: an untrained model guesses
1.6
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, TypeVar

from . import layers as L
from . import plain_layers as P
from . import rng as R
from . import tape as T
from .tape import Tape

__all__ = [
    "Config",
    "LayerParams",
    "Params",
    "Cache",
    "INIT_STD",
    "check_config",
    "matrix_shapes",
    "num_params",
    "layout",
    "named_matrices",
    "init_values",
    "init",
    "empty_cache",
    "Ops",
    "TAPE_OPS",
    "PLAIN_OPS",
    "forward",
    "gpt",
    "doc_loss",
]

INIT_STD = 0.08

S = TypeVar("S")  # the state a forward pass threads: a Tape, or None on plain floats
# Rows of node ids on the tape; rows of floats for ``infer``.
Matrix = tuple[Sequence[Any], ...]
# Per layer: (keys, values), each a tuple with one vector (ids or floats) per position so far.
Cache = tuple[tuple[tuple[tuple[Any, ...], ...], tuple[tuple[Any, ...], ...]], ...]


class Config(NamedTuple):
    """The shape of a model; microgpt.py's defaults except ``vocab_size``.

    >>> Config(vocab_size=27)
    Config(vocab_size=27, n_layer=1, n_embd=16, n_head=4, block_size=16)
    >>> Config(vocab_size=27).head_dim
    4
    """

    vocab_size: int
    n_layer: int = 1
    n_embd: int = 16
    n_head: int = 4
    block_size: int = 16

    @property
    def head_dim(self) -> int:
        """Width of one attention head."""
        return self.n_embd // self.n_head


def check_config(config: Config) -> Config:
    """Return ``config`` unchanged if it describes a model, else raise ValueError saying why.

    >>> check_config(Config(vocab_size=27, n_embd=10, n_head=4))
    Traceback (most recent call last):
    ...
    ValueError: n_embd (10) must be divisible by n_head (4)
    """
    for name in ("vocab_size", "n_layer", "n_embd", "n_head", "block_size"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if config.vocab_size < 2:
        raise ValueError(f"vocab_size must be at least 2, got {config.vocab_size}")
    if config.n_embd % config.n_head:
        raise ValueError(
            f"n_embd ({config.n_embd}) must be divisible by n_head ({config.n_head})"
        )
    return config


class LayerParams(NamedTuple):
    """Node ids of one transformer block's weight matrices (rows of ids)."""

    attn_wq: Matrix
    attn_wk: Matrix
    attn_wv: Matrix
    attn_wo: Matrix
    mlp_fc1: Matrix
    mlp_fc2: Matrix


class Params(NamedTuple):
    """Node ids of all weight matrices; see ``layout``."""

    wte: Matrix
    wpe: Matrix
    lm_head: Matrix
    layers: tuple[LayerParams, ...]


def matrix_shapes(config: Config) -> tuple[tuple[str, int, int], ...]:
    """Return ``(name, rows, cols)`` of every weight matrix, in initialisation order.

    >>> matrix_shapes(Config(vocab_size=3, n_embd=4, n_head=1, block_size=2))[:4]
    (('wte', 3, 4), ('wpe', 2, 4), ('lm_head', 3, 4), ('layer0.attn_wq', 4, 4))
    """
    v, e, b = config.vocab_size, config.n_embd, config.block_size
    head = (("wte", v, e), ("wpe", b, e), ("lm_head", v, e))
    per_layer = (
        ("attn_wq", e, e),
        ("attn_wk", e, e),
        ("attn_wv", e, e),
        ("attn_wo", e, e),
        ("mlp_fc1", 4 * e, e),
        ("mlp_fc2", e, 4 * e),
    )
    return head + tuple(
        (f"layer{i}.{name}", r, c) for i in range(config.n_layer) for name, r, c in per_layer
    )


def num_params(config: Config) -> int:
    """Return the number of scalar parameters.

    >>> num_params(Config(vocab_size=27))
    4192
    """
    return sum(r * c for _, r, c in matrix_shapes(config))


def named_matrices(config: Config) -> tuple[tuple[str, Matrix], ...]:
    """Return ``(name, matrix of node ids)`` for every weight matrix, in order.

    Each matrix is a ``tape.RunMatrix``: its rows are ``tape.Run``s of
    consecutive ids (tuples of ints that know they are consecutive), one after
    the other, which lets ``layers.linear`` read a whole matrix of parameters
    as one slice.

    >>> named_matrices(Config(vocab_size=2, n_embd=2, n_head=1, block_size=1))[:2]
    (('wte', ((0, 1), (2, 3))), ('wpe', ((4, 5),)))
    """
    out = []  # local transient
    start = 0
    for name, rows, cols in matrix_shapes(config):
        out.append((name, T.RunMatrix(start, rows, cols)))
        start += rows * cols
    return tuple(out)


@lru_cache(maxsize=16)  # a pure function of a hashable config, read every step and sample
def layout(config: Config) -> Params:
    """Return the ``Params`` record of node ids: where each weight lives on the tape.

    >>> params = layout(Config(vocab_size=27))
    >>> tuple(params.wte[0][:3]), params.layers[0].mlp_fc2[-1][-1]
    ((0, 1, 2), 4191)
    """
    mats = dict(named_matrices(config))
    layers = tuple(
        LayerParams(*(mats[f"layer{i}.{name}"] for name in LayerParams._fields))
        for i in range(config.n_layer)
    )
    return Params(mats["wte"], mats["wpe"], mats["lm_head"], layers)


def init_values(rng: R.RNG, config: Config) -> tuple[R.RNG, tuple[float, ...]]:
    """Return ``(rng, initial parameter values)``: gauss(0, 0.08) draws in layout order.

    >>> rng, ws = init_values(R.seed(1), Config(vocab_size=2, n_embd=2, n_head=1, block_size=1))
    >>> len(ws)
    58
    """
    return R.gauss_many(rng, num_params(check_config(config)), 0.0, INIT_STD)


def init(rng: R.RNG, config: Config) -> tuple[R.RNG, Tape]:
    """Return ``(rng, tape)`` whose nodes are the freshly initialised parameters.

    >>> rng, tape = init(R.seed(42), Config(vocab_size=27))
    >>> tape
    <Tape: 4192 nodes (4192 leaves), 0 edges>
    """
    rng, ws = init_values(rng, config)
    return rng, T.leaves(ws)


def empty_cache(config: Config) -> Cache:
    """Return the key/value cache before the first position: empty for every layer.

    >>> empty_cache(Config(vocab_size=3, n_layer=2))
    (((), ()), ((), ()))
    """
    return tuple(((), ()) for _ in range(config.n_layer))


class Ops(NamedTuple):
    """The layer functions a forward pass is written in: ``TAPE_OPS``, ``PLAIN_OPS``, ``FLOAT_OPS``.

    Each takes a state first and returns ``(state, result)``: on the tape the
    state is the tape and vectors are tuples of node ids; on plain floats the
    state is unused (None) and vectors are tuples of floats. ``forward`` and
    ``doc_loss`` are written once against this record, so every reading of
    the model runs the same code: ``TAPE_OPS`` (``layers``, fused nodes, what
    training runs), ``PLAIN_OPS`` (``plain_layers``, nothing but the tape's
    primitives, the one to read) and ``infer.FLOAT_OPS`` (no tape at all).
    """

    add: Callable[..., Any]  # (state, xs, ys) -> (state, xs + ys)
    rmsnorm: Callable[..., Any]  # (state, x) -> (state, x / rms(x))
    linear: Callable[..., Any]  # (state, x, rows) -> (state, rows @ x)
    relu: Callable[..., Any]  # (state, xs) -> (state, max(0, xs))
    attention: Callable[..., Any]  # (state, q, keys, vals, n_head) -> (state, heads' outputs)
    cross_entropy: Callable[..., Any]  # (state, logits, target) -> (state, -log p(target))


TAPE_OPS = Ops(L.vector_add, L.rmsnorm, L.linear, L.vector_relu, L.attention, L.cross_entropy)
PLAIN_OPS = Ops(P.vector_add, P.rmsnorm, P.linear, P.vector_relu, P.attention, P.cross_entropy)


def _transformer_block(
    ops: Ops, state: S, x: tuple, layer: LayerParams, cache: tuple, config: Config
) -> tuple[S, tuple[tuple, tuple]]:
    """One transformer block at one position: attention then MLP, each with a residual."""
    keys, vals = cache
    residual = x
    state, x = ops.rmsnorm(state, x)
    state, q = ops.linear(state, x, layer.attn_wq)
    state, k = ops.linear(state, x, layer.attn_wk)
    state, v = ops.linear(state, x, layer.attn_wv)
    keys, vals = keys + (k,), vals + (v,)
    # Each head: softmax of q . k / sqrt(head_dim) over the positions, weighting their values.
    state, x = ops.attention(state, q, keys, vals, config.n_head)
    state, x = ops.linear(state, x, layer.attn_wo)
    state, x = ops.add(state, x, residual)
    residual = x
    state, x = ops.rmsnorm(state, x)
    state, x = ops.linear(state, x, layer.mlp_fc1)
    state, x = ops.relu(state, x)
    state, x = ops.linear(state, x, layer.mlp_fc2)
    state, x = ops.add(state, x, residual)
    return state, (x, (keys, vals))


def forward(
    ops: Ops, state: S, params: Params, config: Config, token: int, pos: int, cache: Cache
) -> tuple[S, tuple[tuple, Cache]]:
    """Return ``(state, (logits, cache))``: the GPT at one position, in the layer functions ``ops``.

    ``gpt`` is this with ``TAPE_OPS`` and node ids; ``infer.gpt`` is this with
    ``infer.FLOAT_OPS`` and weights as floats.

    >>> from functional_gpt import rng as R
    >>> config = Config(vocab_size=3, n_embd=4, n_head=2, block_size=2)
    >>> _, tape = init(R.seed(0), config)
    >>> tape2, (logits, _) = forward(TAPE_OPS, tape, layout(config), config, 1, 0,
    ...                              empty_cache(config))
    >>> len(logits), len(tape2) > len(tape)
    (3, True)
    """
    if not 0 <= token < config.vocab_size:
        raise ValueError(f"gpt: token {token!r} is not in 0..{config.vocab_size - 1}")
    if not 0 <= pos < config.block_size:
        raise ValueError(f"gpt: position {pos!r} is not in 0..{config.block_size - 1}")
    state, x = ops.add(state, params.wte[token], params.wpe[pos])
    state, x = ops.rmsnorm(state, x)
    new_cache = []  # local transient, frozen into a tuple below
    for layer, layer_cache in zip(params.layers, cache):
        state, (x, layer_cache) = _transformer_block(ops, state, x, layer, layer_cache, config)
        new_cache.append(layer_cache)
    state, logits = ops.linear(state, x, params.lm_head)
    return state, (logits, tuple(new_cache))


def gpt(
    tape: Tape, params: Params, config: Config, token: int, pos: int, cache: Cache
) -> tuple[Tape, tuple[tuple[int, ...], Cache]]:
    """Return ``(tape, (logits, cache))`` for ``token`` at position ``pos``.

    ``cache`` holds the keys and values of the earlier positions; the one
    returned has this position's appended. This is ``forward`` on the tape.

    >>> from functional_gpt import rng as R
    >>> config = Config(vocab_size=3, n_embd=4, n_head=2, block_size=2)
    >>> _, tape = init(R.seed(0), config)
    >>> tape, (logits, cache) = gpt(tape, layout(config), config, 2, 0, empty_cache(config))
    >>> len(logits), len(cache[0][0])
    (3, 1)
    """
    return forward(TAPE_OPS, tape, params, config, token, pos, cache)


def doc_loss(
    tape: Tape, params: Params, config: Config, tokens: Sequence[int], ops: Ops = TAPE_OPS
) -> tuple[Tape, int]:
    """Return ``(tape, loss)``: mean cross-entropy of predicting each next token of ``tokens``.

    Uses the first ``n = min(block_size, len(tokens) - 1)`` positions. The
    layers are ``ops``: ``TAPE_OPS`` (fused, for training) by default, or
    ``PLAIN_OPS`` (tape primitives only), which gives the same loss, bit for bit.

    >>> from functional_gpt import rng as R
    >>> config = Config(vocab_size=3, n_embd=4, n_head=2, block_size=2)
    >>> _, tape = init(R.seed(0), config)
    >>> fused, loss = doc_loss(tape, layout(config), config, [2, 0, 1, 2])
    >>> 0 < T.data(fused, loss) < 3
    True
    >>> plain, plain_loss = doc_loss(tape, layout(config), config, [2, 0, 1, 2], PLAIN_OPS)
    >>> T.data(plain, plain_loss) == T.data(fused, loss), len(plain) > len(fused)
    (True, True)
    """
    n = min(config.block_size, len(tokens) - 1)
    if n < 1:
        raise ValueError(f"doc_loss: needs at least 2 tokens, got {len(tokens)}")
    cache = empty_cache(config)
    losses = []  # local transient
    for pos in range(n):
        tape, (logits, cache) = forward(ops, tape, params, config, tokens[pos], pos, cache)
        tape, loss = ops.cross_entropy(tape, logits, tokens[pos + 1])
        losses.append(loss)
    tape, total = T.sum(tape, losses)
    return T.scale(tape, total, 1 / n)
