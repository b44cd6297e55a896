"""Inference without a tape: the GPT's forward pass on plain floats, for sampling, eval and score.

Training needs the tape for its gradients; sampling and scoring only need
values, so they run ``model.forward`` with ``FLOAT_OPS``: the same forward
code as the tape's, over the same float kernels of ``layers`` (``dot_values``,
``rms_scale``, ``softmax_values`` ...). Nothing is pushed, so nothing is
allocated per value beyond the floats themselves, and every value is
bit-for-bit the one the tape would hold (tests check this on random models).

Like ``tape.push``, every layer here refuses a value that is not finite with
a ``tape.NonFiniteError`` (a ValueError) naming the layer, so weights that
overflow (a checkpoint edited by hand, a diverged run) give one clear error
instead of nan names.

>>> from functional_gpt import rng as R
>>> from functional_gpt.model import Config, init, num_params
>>> import functional_gpt.tape as T
>>> config = Config(vocab_size=3, n_embd=4, n_head=2, block_size=4)
>>> _, tape = init(R.seed(0), config)
>>> w = weights(T.values(tape, range(num_params(config))), config)
>>> logits, cache = gpt(w, config, 2, 0, empty_cache(config))
>>> len(logits), len(cache[0][0])
(3, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from . import layers as L
from . import model
from . import tape as T
from .model import Cache, Config, Ops, Params

__all__ = ["Weights", "FLOAT_OPS", "weights", "empty_cache", "gpt", "token_nlls"]

Weights = Params  # the same record as the tape's ``Params``, holding floats instead of node ids
_isfinite = math.isfinite


def _finite(op: str, xs: tuple[float, ...]) -> tuple[float, ...]:
    """``xs``, or ValueError naming ``op`` when one of them is not finite (as ``tape.push``)."""
    if not all(map(_isfinite, xs)):
        bad = next(x for x in xs if not _isfinite(x))
        raise T.NonFiniteError(f"{op}: result {bad!r} is not finite")
    return xs


def _add(state: None, xs: Sequence[float], ys: Sequence[float]) -> tuple[None, tuple[float, ...]]:
    return state, _finite("add", tuple([a + b for a, b in zip(xs, ys)]))


def _rmsnorm(state: None, x: Sequence[float]) -> tuple[None, tuple[float, ...]]:
    ss = _finite("dot", L.dot_values(x, (x,)))[0]
    s = _finite("rms_scale", (L.rms_scale(ss, len(x)),))[0]
    return state, _finite("mul", tuple([a * s for a in x]))


def _linear(
    state: None, x: Sequence[float], rows: Sequence[Sequence[float]]
) -> tuple[None, tuple[float, ...]]:
    return state, _finite("dot", L.dot_values(x, rows))


def _relu(state: None, xs: Sequence[float]) -> tuple[None, tuple[float, ...]]:
    return state, L.relu_values(xs)


def _attention(
    state: None, q: Sequence[float], keys: Sequence[Sequence[float]],
    vals: Sequence[Sequence[float]], n_head: int,
) -> tuple[None, tuple[float, ...]]:
    out: list[float] = []  # local transient, frozen into a tuple below
    for logits, probs, head_out in L.attention_values(q, keys, vals, n_head):
        _finite("scaled_dot", logits)  # checked in the order the tape pushes them
        _finite("softmax", probs)
        out += _finite("dot", head_out)
    return state, tuple(out)


def _cross_entropy(state: None, logits: Sequence[float], target: int) -> tuple[None, float]:
    return state, L.cross_entropy_value(L.softmax_values(logits), target, logits)


FLOAT_OPS = Ops(_add, _rmsnorm, _linear, _relu, _attention, _cross_entropy)


def weights(param_values: Sequence[float], config: Config) -> Weights:
    """Return the weight matrices as floats, from the flat parameter values in layout order.

    ``train.param_values(state)`` gives such values, as does ``T.values`` of
    the first ``num_params(config)`` nodes of a parameter tape.

    >>> w = weights([0.5] * 58, Config(vocab_size=2, n_embd=2, n_head=1, block_size=1))
    >>> w.wte, len(w.layers[0].mlp_fc1)
    (((0.5, 0.5), (0.5, 0.5)), 8)
    >>> weights([0.5], Config(vocab_size=2, n_embd=2, n_head=1, block_size=1))
    Traceback (most recent call last):
    ...
    ValueError: weights: 1 values for a model of 58 parameters
    """
    values = tuple(param_values)
    n = model.num_params(config)
    if len(values) != n:
        raise ValueError(f"weights: {len(values)} values for a model of {n} parameters")
    params = model.layout(config)  # the same record of node ids; id i holds values[i]

    def rows(matrix: model.Matrix) -> model.Matrix:
        return tuple(values[row[0] : row[-1] + 1] for row in matrix)

    return Weights(
        rows(params.wte),
        rows(params.wpe),
        rows(params.lm_head),
        tuple(type(layer)(*map(rows, layer)) for layer in params.layers),
    )


def empty_cache(config: Config) -> Cache:
    """Return the key/value cache before the first position (as ``model.empty_cache``).

    >>> empty_cache(Config(vocab_size=3))
    (((), ()),)
    """
    return model.empty_cache(config)


def gpt(
    w: Weights, config: Config, token: int, pos: int, cache: Cache
) -> tuple[tuple[float, ...], Cache]:
    """Return ``(logits, cache)`` for ``token`` at ``pos``: ``model.gpt`` on floats, without a tape.

    >>> cfg = Config(vocab_size=2, n_embd=2, n_head=1, block_size=1)
    >>> gpt(weights([0.0] * 58, cfg), cfg, 1, 0, empty_cache(cfg))[0]
    (0.0, 0.0)
    """
    _, (logits, cache) = model.forward(FLOAT_OPS, None, w, config, token, pos, cache)
    return logits, cache


def token_nlls(w: Weights, config: Config, tokens: Sequence[int]) -> tuple[float, ...]:
    """Return ``-log p(tokens[pos + 1])`` for each position ``pos < min(block_size, len - 1)``.

    The same floats as the ``cross_entropy`` nodes of ``model.doc_loss``, whose
    value is ``(1 / n) * fold_sum`` of these.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=4)
    >>> w = weights([0.0] * model.num_params(cfg), cfg)
    >>> [round(x, 6) for x in token_nlls(w, cfg, [2, 0, 1, 2])]   # all-zero weights: uniform
    [1.098612, 1.098612, 1.098612]
    """
    n = min(config.block_size, len(tokens) - 1)
    if n < 1:
        raise ValueError(f"token_nlls: needs at least 2 tokens, got {len(tokens)}")
    cache = empty_cache(config)
    out = []  # local transient, frozen into a tuple below
    for pos in range(n):
        logits, cache = gpt(w, config, tokens[pos], pos, cache)
        out.append(FLOAT_OPS.cross_entropy(None, logits, tokens[pos + 1])[1])
    return tuple(out)
