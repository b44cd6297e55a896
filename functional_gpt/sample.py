"""Sampling names from a model: pure functions of parameters, a prompt and an RNG state.

>>> from functional_gpt import rng as R, tokenizer as tk
>>> from functional_gpt.train import init_state
>>> tok = tk.build(["ab", "ba"])
>>> config = Config(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=4)
>>> rng, state = init_state(R.seed(0), config)
>>> rng, name = sample(state.tape, config, tok, rng, temperature=0.5, prompt="a")
>>> name.startswith("a") and len(name) <= 4 and set(name) <= {"a", "b"}
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice

from . import infer, model
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .layers import softmax_values
from .model import Config
from .tape import Tape

__all__ = ["next_token_probs", "sample", "sample_stream", "samples"]


def _checked(temperature: float) -> float:
    """``temperature``, or ValueError when it is not positive."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature!r}")
    return temperature


def next_token_probs(logits: tuple[float, ...], temperature: float) -> tuple[float, ...]:
    """Return softmax(logits / temperature), with microgpt.py's float operations.

    >>> next_token_probs((1.0, 1.0), 0.5)
    (0.5, 0.5)
    """
    inv = _checked(temperature) ** -1  # microgpt divides each logit: l * temperature**-1
    probs = softmax_values([v * inv for v in logits])
    if not all(map(math.isfinite, probs)):
        raise ValueError(f"next_token_probs: logits / {temperature!r} overflow")
    return probs


def _draw(
    w: infer.Weights,
    config: Config,
    tok: tk.Tokenizer,
    rng: R.RNG,
    temperature: float,
    forced: tuple[int, ...],
) -> tuple[R.RNG, str]:
    """One document from the float forward: BOS, the forced prompt tokens, then draws."""
    cache = infer.empty_cache(config)
    token, out = tok.bos, list(forced)  # out: local transient
    for pos in range(config.block_size):
        logits, cache = infer.gpt(w, config, token, pos, cache)
        if pos < len(forced):
            token = forced[pos]
            continue
        rng, token = R.choices_index(rng, next_token_probs(logits, temperature))
        if token == tok.bos:
            break
        out.append(token)
    return rng, tk.decode(tok, out)


def _checked_prompt(config: Config, tok: tk.Tokenizer, prompt: str) -> tuple[int, ...]:
    """The prompt's tokens, or ValueError when it has unknown characters or is too long."""
    forced = tuple(tk.encode(tok, prompt))
    if len(forced) > config.block_size:
        raise ValueError(
            f"prompt of {len(forced)} characters is longer than the block size {config.block_size}"
        )
    return forced


def _weights(params_tape: Tape, config: Config) -> infer.Weights:
    """The parameters at the start of ``params_tape`` as float matrices."""
    return infer.weights(T.values(params_tape, range(model.num_params(config))), config)


def sample(
    params_tape: Tape,
    config: Config,
    tok: tk.Tokenizer,
    rng: R.RNG,
    temperature: float = 0.5,
    prompt: str = "",
) -> tuple[R.RNG, str]:
    """Return ``(rng, text)``: one document drawn from the model, starting with ``prompt``.

    Feeds BOS and the prompt, then draws one token per position from
    ``softmax(logits / temperature)`` until BOS or ``block_size`` tokens. The
    forward pass runs on plain floats (``infer``), building no tape; weights
    that overflow raise ValueError.

    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> config = Config(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=3)
    >>> _, state = init_state(R.seed(0), config)
    >>> sample(state.tape, config, tok, R.seed(1), prompt="abab")
    Traceback (most recent call last):
    ...
    ValueError: prompt of 4 characters is longer than the block size 3
    """
    forced = _checked_prompt(config, tok, prompt)
    _checked(temperature)  # before any work, even when the prompt leaves nothing to draw
    return _draw(_weights(params_tape, config), config, tok, rng, temperature, forced)


def sample_stream(
    params_tape: Tape,
    config: Config,
    tok: tk.Tokenizer,
    rng: R.RNG,
    temperature: float = 0.5,
    prompt: str = "",
) -> Iterator[tuple[R.RNG, str]]:
    """Return the endless lazy stream of ``(rng, text)``: one sample after another from one RNG.

    Each ``rng`` is the state after its ``text`` was drawn. The prompt and
    temperature are checked before the first draw; take as many as you need
    (``itertools.islice``), so that a caller can print each name as it comes.

    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> config = Config(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=3)
    >>> _, state = init_state(R.seed(0), config)
    >>> stream = sample_stream(state.tape, config, tok, R.seed(1))
    >>> [text for _, text in islice(stream, 3)] == list(samples(state.tape, config, tok,
    ...                                                         R.seed(1), 3)[1])
    True
    """
    forced = _checked_prompt(config, tok, prompt)
    _checked(temperature)
    w = _weights(params_tape, config)  # read once for all the samples

    def draws(rng: R.RNG) -> Iterator[tuple[R.RNG, str]]:
        while True:
            rng, text = _draw(w, config, tok, rng, temperature, forced)
            yield rng, text

    return draws(rng)


def samples(
    params_tape: Tape,
    config: Config,
    tok: tk.Tokenizer,
    rng: R.RNG,
    count: int,
    temperature: float = 0.5,
    prompt: str = "",
) -> tuple[R.RNG, tuple[str, ...]]:
    """Return ``(rng, texts)``: ``count`` samples drawn one after another from one RNG stream.

    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> config = Config(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=3)
    >>> _, state = init_state(R.seed(0), config)
    >>> rng, names = samples(state.tape, config, tok, R.seed(1), 3)
    >>> len(names)
    3
    """
    drawn = tuple(islice(sample_stream(params_tape, config, tok, rng, temperature, prompt), count))
    return (drawn[-1][0] if drawn else rng), tuple(text for _, text in drawn)
