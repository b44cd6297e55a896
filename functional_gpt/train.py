"""Training as a fold: a pure step from one training state to the next, and the stream of steps.

>>> from functional_gpt import rng as R
>>> config = Config(vocab_size=3, n_embd=4, n_head=2, block_size=4)
>>> rng, state = init_state(R.seed(0), config)
>>> docs = [(2, 0, 1, 2), (2, 1, 2)]
>>> events = list(training(state, docs, steps=3))
>>> [e.step for e in events]
[1, 2, 3]
>>> events[-1].state.adam.step, state.adam.step       # the old state is untouched
(3, 0)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from toolz import accumulate, drop

from . import limits, model
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .model import TAPE_OPS, Config, Ops
from .optim import Adam, AdamState, adam_init, adam_step, linear_decay
from .tape import Tape

__all__ = [
    "TrainState",
    "StepEvent",
    "PreparedRun",
    "init_state",
    "prepare",
    "param_values",
    "loss_and_grads",
    "train_step",
    "training",
    "Diverged",
    "split_holdout",
]


DEFAULT_ADAM = Adam()


class TrainState(NamedTuple):
    """Everything that changes during training: parameters (as a tape of leaves) and Adam's state.

    ``adam.step`` is the number of steps taken so far.
    """

    config: Config
    tape: Tape
    adam: AdamState


class StepEvent(NamedTuple):
    """What one training step produced: its 1-based number, loss, learning rate and new state."""

    step: int
    loss: float
    lr: float
    state: TrainState


def init_state(rng: R.RNG, config: Config) -> tuple[R.RNG, TrainState]:
    """Return ``(rng, state)`` with freshly initialised parameters and zero Adam moments.

    >>> from functional_gpt import rng as R
    >>> _, state = init_state(R.seed(42), Config(vocab_size=27))
    >>> len(state.tape), state.adam.step
    (4192, 0)
    """
    rng, tape = model.init(rng, config)  # init checks the config
    return rng, TrainState(config, tape, adam_init(len(tape)))


class PreparedRun(NamedTuple):
    """A run set up and ready to train: documents, vocabulary, state and their token ids.

    (Not ``tape.Run``, which is a tuple of consecutive node ids.)
    """

    docs: tuple[str, ...]
    tokenizer: tk.Tokenizer
    rng: R.RNG
    state: TrainState
    tokens: tuple[tuple[int, ...], ...]


def prepare(
    docs: Sequence[str], seed: int, n_layer: int = 1, n_embd: int = 16, n_head: int = 4,
    block_size: int = 16,
) -> PreparedRun:
    """Return a ``PreparedRun``: ``docs`` shuffled by ``seed``, vocabulary, fresh model, tokens.

    The order is microgpt.py's: seed, shuffle, build the vocabulary, draw the
    parameters; ``rng`` is the random state after that, which sampling uses.

    >>> run = prepare(["ann", "bob", "eve"], seed=1, n_embd=4, n_head=2, block_size=4)
    >>> run.docs, run.tokenizer.chars, run.tokens[0]
    (('bob', 'eve', 'ann'), 'abenov', (6, 1, 4, 1, 6))
    """
    rng, shuffled = R.shuffle(R.seed(seed), tuple(docs))
    tok = tk.build(shuffled)
    config = Config(tok.vocab_size, n_layer, n_embd, n_head, block_size)
    rng, state = init_state(rng, config)
    return PreparedRun(shuffled, tok, rng, state, tuple(tk.doc_tokens(tok, d) for d in shuffled))


def param_values(state: TrainState) -> tuple[float, ...]:
    """Return the current parameter values, in layout order.

    >>> from functional_gpt import rng as R
    >>> _, state = init_state(R.seed(42), Config(vocab_size=27))
    >>> len(param_values(state))
    4192
    """
    return T.parameter_values(state.tape, len(state.tape))  # a state's tape holds only them


def loss_and_grads(
    state: TrainState, tokens: Sequence[int], ops: Ops = TAPE_OPS
) -> tuple[float, tuple[float, ...]]:
    """Return the loss on one document and its gradient for every parameter.

    ``ops`` are the layers (``model.Ops``): the fused ``TAPE_OPS`` unless told.

    >>> from functional_gpt import rng as R
    >>> _, state = init_state(R.seed(0), Config(vocab_size=3, n_embd=4, n_head=2, block_size=4))
    >>> loss, grads = loss_and_grads(state, (2, 0, 1, 2))
    >>> len(grads) == len(state.tape)
    True
    """
    tape, loss = model.doc_loss(state.tape, model.layout(state.config), state.config, tokens, ops)
    grads = T.backward_as_tuple(tape, loss)
    return T.data(tape, loss), grads[: len(state.tape)]


def train_step(
    state: TrainState, tokens: Sequence[int], lr: float, hyper: Adam = DEFAULT_ADAM,
    ops: Ops = TAPE_OPS,
) -> tuple[TrainState, float]:
    """Return ``(next state, loss)`` after one Adam step on one document at rate ``lr``.

    ``ops`` are the layers the model runs in (``model.Ops``; the fused ``TAPE_OPS`` unless
    told): a variant of the model, such as one whose attention is cut off, trains the same way.

    >>> from functional_gpt import rng as R
    >>> _, s0 = init_state(R.seed(0), Config(vocab_size=3, n_embd=4, n_head=2, block_size=4))
    >>> s1, loss1 = train_step(s0, (2, 0, 1, 2), lr=0.05)
    >>> s2, loss2 = train_step(s1, (2, 0, 1, 2), lr=0.05)
    >>> loss2 < loss1
    True
    """
    loss, grads = loss_and_grads(state, tokens, ops)
    params, adam = adam_step(hyper, state.adam, param_values(state), grads, lr)
    return state._replace(tape=T.update(state.tape, params), adam=adam), loss


class Diverged(ValueError):
    """Training stopped: step ``step`` made a loss or weight that is not finite, or too large.

    ``last_good`` is the state after the step before it, untouched by the
    failed step; ``reason`` is what the tape refused. ``loss_fails`` says
    whether the loss of ``last_good`` itself on the step's document is not
    finite: then no learning rate would have taken the step.

    >>> from functional_gpt import rng as R
    >>> _, s0 = init_state(R.seed(0), Config(vocab_size=3, n_embd=4, n_head=2, block_size=4))
    >>> list(training(s0, [(2, 0, 1, 2)], steps=30, hyper=Adam(lr=1e5)))
    Traceback (most recent call last):
    ...
    functional_gpt.train.Diverged: step 2: cross_entropy: probability of target 0 underflows to 0
    >>> list(training(s0, [(2, 0, 1, 2)], steps=30, hyper=Adam(lr=1e7)))
    Traceback (most recent call last):
    ...
    functional_gpt.train.Diverged: step 1: a weight grew beyond the limit of 1e+06
    """

    def __init__(self, step: int, reason: str, last_good: TrainState,
                 loss_fails: bool = False) -> None:
        super().__init__(f"step {step}: {reason}")
        self.step, self.reason, self.last_good = step, reason, last_good
        self.loss_fails = loss_fails


def _loss_fails(state: TrainState, tokens: Sequence[int], ops: Ops) -> bool:
    """Whether the loss of ``state`` on ``tokens`` (or its gradient) is not finite."""
    try:
        loss_and_grads(state, tokens, ops)
    except T.NonFiniteError:
        return True
    return False


def split_holdout(
    tokens: Sequence[Sequence[int]], k: int
) -> tuple[tuple[Sequence[int], ...], tuple[Sequence[int], ...]]:
    """Return ``(training documents, held-out documents)``: the last ``k`` are held out.

    >>> split_holdout([(1,), (2,), (3,)], 1)
    (((1,), (2,)), ((3,),))
    >>> split_holdout([(1,)], 1)
    Traceback (most recent call last):
    ...
    ValueError: holdout of 1 leaves no documents to train on (1 in all)
    """
    if type(k) is not int or k < 0:
        raise ValueError(f"holdout must be a whole number of at least 0, got {k!r}")
    if k >= len(tokens):
        raise ValueError(f"holdout of {k} leaves no documents to train on ({len(tokens)} in all)")
    cut = len(tokens) - k
    return tuple(tokens[:cut]), tuple(tokens[cut:])


def training(
    state: TrainState, docs: Sequence[Sequence[int]], steps: int, hyper: Adam = DEFAULT_ADAM,
    ops: Ops = TAPE_OPS,
) -> Iterator[StepEvent]:
    """Return the lazy stream of ``StepEvent`` from ``state.adam.step`` up to ``steps``.

    Step ``s`` (0-based) trains on ``docs[s % len(docs)]`` at the linearly
    decayed rate ``hyper.lr * (1 - s / steps)``; a state saved after step
    ``s`` resumes where it stopped. The stream is a fold (``toolz.accumulate``)
    of ``train_step`` over the step numbers. A step whose loss or parameters
    would not be finite, or would make a weight larger in size than
    ``limits.MAX_WEIGHT`` (which a checkpoint may not hold), ends the stream
    with ``Diverged``, carrying the last good state. ``ops`` are the model's
    layers, as for ``train_step``.

    >>> from functional_gpt import rng as R
    >>> _, s0 = init_state(R.seed(0), Config(vocab_size=3, n_embd=4, n_head=2, block_size=4))
    >>> [e.lr for e in training(s0, [(2, 0, 2)], steps=2)]
    [0.01, 0.005]
    """
    if not docs:
        raise ValueError("training: no documents")
    if steps < 1:
        raise ValueError(f"training: steps must be at least 1, got {steps}")

    bound = limits.MAX_WEIGHT

    def step(event: StepEvent, s: int) -> StepEvent:
        lr = linear_decay(hyper.lr, s, steps)
        doc = docs[s % len(docs)]
        try:
            new_state, loss = train_step(event.state, doc, lr, hyper, ops)
        except T.NonFiniteError as e:
            raise Diverged(s + 1, str(e), event.state,
                           _loss_fails(event.state, doc, ops)) from None
        params = param_values(new_state)
        if max(params) > bound or min(params) < -bound:  # as a checkpoint could not hold it
            raise Diverged(s + 1, f"a weight grew beyond the limit of {bound:g}", event.state)
        return StepEvent(s + 1, loss, lr, new_state)

    start = StepEvent(state.adam.step, float("nan"), float("nan"), state)
    return drop(1, accumulate(step, range(state.adam.step, steps), start))
