"""How good a model is: its loss on a data set (eval) and the probability of single names (score).

Both run the tape-free forward of ``infer`` and are pure. A document
contributes one predicted token per position, as in training: the first
``min(block_size, len(tokens) - 1)`` next tokens, each document's end (BOS)
included when it fits.

>>> from functional_gpt import train
>>> run = train.prepare(["ann", "bob", "eve"], seed=1, n_embd=4, n_head=2, block_size=4)
>>> w = weights_of(run.state)
>>> result = evaluate(w, run.state.config, run.tokens)
>>> result.docs, result.tokens
(3, 12)
>>> s = score(w, run.state.config, run.tokenizer, "bob")
>>> s.tokens, round(s.logprob / s.tokens, 12) == round(-s.nats_per_token, 12)
(4, True)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from toolz import accumulate, cons, last

from . import infer
from . import tape as T
from . import tokenizer as tk
from .model import Config
from .train import TrainState, param_values

__all__ = [
    "Evaluation",
    "Score",
    "weights_of",
    "doc_nll",
    "running_evaluation",
    "evaluate",
    "fitting_tokens",
    "score",
]


class Evaluation(NamedTuple):
    """A model's loss on documents: how many, predicted tokens, mean nats and perplexity."""

    docs: int
    tokens: int
    loss: float  # mean negative log-likelihood per predicted token, in nats
    perplexity: float  # exp(loss)


class Score(NamedTuple):
    """How likely one text is: ln p of the whole text with its end, and per predicted token."""

    text: str
    logprob: float  # natural log of the probability of the text followed by its end
    tokens: int  # predicted tokens: the text's characters and its end
    nats_per_token: float  # -logprob / tokens


def weights_of(state: TrainState) -> infer.Weights:
    """Return a training state's parameters as the float weights ``infer`` runs on.

    >>> from functional_gpt import rng as R, train
    >>> _, state = train.init_state(R.seed(0), Config(vocab_size=3, n_embd=2, n_head=1))
    >>> len(weights_of(state).wte)
    3
    """
    return infer.weights(param_values(state), state.config)


def doc_nll(w: infer.Weights, config: Config, tokens: Sequence[int]) -> tuple[float, int]:
    """Return ``(summed negative log-likelihood, predicted tokens)`` of one tokenised document.

    Equals ``model.doc_loss``'s value times its number of positions, up to
    the rounding of that ``1 / n`` scaling.

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=4)
    >>> from functional_gpt.model import num_params
    >>> nll, n = doc_nll(infer.weights([0.0] * num_params(cfg), cfg), cfg, (2, 0, 1, 2))
    >>> n, round(nll, 6) == round(3 * math.log(3), 6)
    (3, True)
    """
    nlls = infer.token_nlls(w, config, tokens)
    return T.fold_sum(nlls), len(nlls)


def running_evaluation(
    w: infer.Weights, config: Config, docs: Iterable[Sequence[int]]
) -> Iterator[Evaluation]:
    """Return the lazy stream of ``Evaluation`` after each document (a fold, for progress lines).

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=4)
    >>> from functional_gpt.model import num_params
    >>> w = infer.weights([0.0] * num_params(cfg), cfg)
    >>> [e.tokens for e in running_evaluation(w, cfg, [(2, 0, 2), (2, 1, 1, 2)])]
    [2, 5]
    """

    def add_doc(acc: tuple[int, int, float], tokens: Sequence[int]) -> tuple[int, int, float]:
        nll, n = doc_nll(w, config, tokens)
        return acc[0] + 1, acc[1] + n, acc[2] + nll

    for docs_seen, tokens, total in accumulate(add_doc, docs, (0, 0, 0.0)):
        if docs_seen:
            loss = total / tokens
            yield Evaluation(docs_seen, tokens, loss, math.exp(loss))


def evaluate(w: infer.Weights, config: Config, docs: Iterable[Sequence[int]]) -> Evaluation:
    """Return the model's ``Evaluation`` on tokenised documents (at least one).

    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=4)
    >>> from functional_gpt.model import num_params
    >>> result = evaluate(infer.weights([0.0] * num_params(cfg), cfg), cfg, [(2, 0, 2)])
    >>> result.tokens, round(result.perplexity, 9)         # a uniform guess over 3 tokens
    (2, 3.0)
    >>> evaluate(infer.weights([0.0] * num_params(cfg), cfg), cfg, [])
    Traceback (most recent call last):
    ...
    ValueError: evaluate: no documents
    """
    stream = running_evaluation(w, config, docs)
    first = next(stream, None)
    if first is None:
        raise ValueError("evaluate: no documents")
    return last(cons(first, stream))  # the final running total, without keeping the others


def fitting_tokens(config: Config, tok: tk.Tokenizer, text: str) -> tuple[int, ...]:
    """Return ``text``'s tokens framed by BOS (``doc_tokens``), or ValueError when a character is
    outside the vocabulary or the text and its end need more than ``block_size`` positions.

    >>> fitting_tokens(Config(vocab_size=3, block_size=3), tk.Tokenizer("ab"), "ab")
    (2, 0, 1, 2)
    >>> fitting_tokens(Config(vocab_size=3, block_size=3), tk.Tokenizer("ab"), "abab")
    Traceback (most recent call last):
    ...
    ValueError: 'abab' does not fit in the block size 3: 4 characters and its end need 5 positions
    """
    tokens = tk.doc_tokens(tok, text)  # ValueError for characters outside the vocabulary
    positions = len(tokens) - 1
    if positions > config.block_size:
        raise ValueError(
            f"{text!r} does not fit in the block size {config.block_size}: "
            f"{len(text)} characters and its end need {positions} positions"
        )
    return tokens


def score(w: infer.Weights, config: Config, tok: tk.Tokenizer, text: str) -> Score:
    """Return the ``Score`` of ``text``: it and its end must fit in ``block_size`` positions.

    >>> from functional_gpt.model import num_params
    >>> cfg = Config(vocab_size=3, n_embd=2, n_head=1, block_size=3)
    >>> w = infer.weights([0.0] * num_params(cfg), cfg)
    >>> score(w, cfg, tk.Tokenizer("ab"), "ab").tokens
    3
    >>> score(w, cfg, tk.Tokenizer("ab"), "abab")
    Traceback (most recent call last):
    ...
    ValueError: 'abab' does not fit in the block size 3: 4 characters and its end need 5 positions
    """
    nll, n = doc_nll(w, config, fitting_tokens(config, tok, text))
    return Score(text, -nll, n, nll / n)
