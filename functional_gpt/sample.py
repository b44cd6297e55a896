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

from . import model
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .layers import softmax_values
from .model import Config
from .tape import Tape

__all__ = ["next_token_probs", "sample", "samples"]


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
    return softmax_values([v * inv for v in logits])


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
    ``softmax(logits / temperature)`` until BOS or ``block_size`` tokens.

    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> config = Config(vocab_size=tok.vocab_size, n_embd=4, n_head=2, block_size=3)
    >>> _, state = init_state(R.seed(0), config)
    >>> sample(state.tape, config, tok, R.seed(1), prompt="abab")
    Traceback (most recent call last):
    ...
    ValueError: prompt of 4 characters is longer than the block size 3
    """
    forced = tk.encode(tok, prompt)
    if len(forced) > config.block_size:
        raise ValueError(
            f"prompt of {len(forced)} characters is longer than the block size {config.block_size}"
        )
    _checked(temperature)  # before any work, even when the prompt leaves nothing to draw
    params = model.layout(config)
    cache = model.empty_cache(config)
    tape, token, out = params_tape, tok.bos, list(forced)  # out: local transient
    for pos in range(config.block_size):
        tape, (logits, cache) = model.gpt(tape, params, config, token, pos, cache)
        if pos < len(forced):
            token = forced[pos]
            continue
        probs = next_token_probs(T.values(tape, logits), temperature)
        rng, token = R.choices_index(rng, probs)
        if token == tok.bos:
            break
        out.append(token)
    return rng, tk.decode(tok, out)


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
    out = []  # local transient
    for _ in range(count):
        rng, text = sample(params_tape, config, tok, rng, temperature, prompt)
        out.append(text)
    return rng, tuple(out)
