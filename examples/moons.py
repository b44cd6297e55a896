"""Train a small classifier on two moons with a hand-written loop: the tape as a toolkit.

Run from the repository root (with the package installed):

    python examples/moons.py                      # 100 points, 100 steps: a few seconds
    python examples/moons.py --points 40 --steps 20 --every 5

A 2-16-16-1 multilayer perceptron with ReLU, trained by plain SGD on a
max-margin (hinge) loss plus an L2 penalty, all in functions you could type
at ``>>>``:

* the parameters are a tree (``trees``): a tuple of ``Dense`` layers, each a
  matrix of weights (rows of ids) and a vector of biases, drawn from a tree of
  shapes by ``trees.init`` and put on a tape by ``trees.to_tape``;
* a layer is ``layers.linear`` with its bias, then ``layers.vector_relu``;
* ``step`` builds the loss on top of the parameters' tape, runs
  ``T.backward``, takes an SGD step on the parameters' values and hands them
  to the next step with ``T.update``: the parameters keep their ids, and the
  tape they live on holds nothing else.

Nothing is mutated: each step returns a new tape, and the old one still holds
the old parameters.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import functional_gpt.tape as T
from functional_gpt import layers as L
from functional_gpt import rng as R
from functional_gpt import trees
from functional_gpt.optim import sgd_step
from functional_gpt.toy_data import two_moons


class Dense(NamedTuple):
    """One layer's parameters: ``w`` (rows of weights, one per output) and ``b`` (one bias each)."""

    w: Any
    b: Any


def shapes(sizes: Sequence[int]) -> tuple[Dense, ...]:
    """The tree of shapes of an MLP with the given layer sizes, input first.

    >>> shapes([2, 16, 1])
    (Dense(w=(16, 2), b=(16,)), Dense(w=(1, 16), b=(1,)))
    """
    return tuple(Dense((n_out, n_in), (n_out,)) for n_in, n_out in zip(sizes, sizes[1:]))


class Data(NamedTuple):
    """The training set: points (pairs of floats) and their labels, -1 or +1."""

    points: tuple[tuple[float, float], ...]
    labels: tuple[int, ...]


def score(tape: T.Tape, layers: Sequence[Dense], point: Sequence[float]) -> tuple[T.Tape, int]:
    """Return ``(tape, id)`` of the MLP's score for ``point``: ReLU between layers, none last."""
    tape, h = T.map_tape(tape, point, T.constant)
    for k, layer in enumerate(layers):
        tape, h = L.linear(tape, h, layer.w, layer.b)
        if k < len(layers) - 1:
            tape, h = L.vector_relu(tape, h)
    return tape, T.as_ids(h)[0]  # a layer hands out plain ints; the primitives take Ids


def loss_and_scores(
    tape: T.Tape, ids: Sequence[Dense], data: Data, alpha: float
) -> tuple[T.Tape, int, tuple[int, ...]]:
    """Return ``(tape, loss id, score ids)``: the mean hinge loss plus ``alpha`` times the L2.

    The hinge loss of a point is ``relu(1 - y * score)``: zero once the score
    has the label's sign with a margin of 1.
    """
    tape, scores = T.map_tape(tape, data.points, lambda t, p: score(t, ids, p))
    hinges = []  # local transient
    for s, y in zip(scores, data.labels):
        tape, minus_ys = T.scale(tape, s, -y)
        tape, gap = T.add_constant(tape, minus_ys, 1.0)
        tape, hinge = T.relu(tape, gap)
        hinges.append(hinge)
    tape, total = T.sum(tape, hinges)
    tape, data_loss = T.scale(tape, total, 1.0 / len(hinges))
    params = trees.flatten(ids)[0]
    tape, squares = T.dot(tape, params, params)
    tape, reg = T.scale(tape, squares, alpha)
    tape, loss = T.add(tape, data_loss, reg)
    return tape, loss, scores


def accuracy(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Return the fraction of points whose score has the sign of their label.

    >>> accuracy([1, -1, 1], [0.5, 0.2, 2.0])
    0.6666666666666666
    """
    return sum((y > 0) == (s > 0) for y, s in zip(labels, scores)) / len(labels)


class StepResult(NamedTuple):
    """What one training step gives: the next parameters' tape, and the loss and accuracy before."""

    tape: T.Tape
    loss: float
    accuracy: float


def step(tape: T.Tape, ids: Sequence[Dense], data: Data, lr: float, alpha: float) -> StepResult:
    """One step of SGD: the loss on ``tape`` (the parameters only), its gradient, new parameters.

    ``ids`` is the tree of the parameters' ids on ``tape``; the tape returned
    holds the updated parameters under the same ids.
    """
    full, loss, scores = loss_and_scores(tape, ids, data, alpha)
    param_ids = trees.flatten(ids)[0]
    grads = trees.grads_of(T.backward(full, loss), param_ids)
    new_values = sgd_step(T.values(tape, param_ids), grads, lr)
    return StepResult(T.update(tape, new_values), T.data(full, loss),
                      accuracy(data.labels, T.values(full, scores)))


def setup(seed: int, points: int, noise: float, hidden: int = 16
          ) -> tuple[T.Tape, tuple[Dense, ...], Data]:
    """Return ``(tape, ids, data)``: two moons and an MLP's parameters on a tape of their own.

    Weights and biases are drawn uniformly from [-1, 1].
    """
    rng = R.seed(seed)
    rng, xs, ys = two_moons(rng, points, noise)
    rng, params = trees.init(rng, shapes([2, hidden, hidden, 1]), 1.0)
    tape, ids = trees.to_tape(T.new(), params)
    return tape, ids, Data(xs, ys)


def learning_rate(k: int, steps: int) -> float:
    """SGD's rate at 0-based step ``k`` of ``steps``: from 1.0 down towards 0.1.

    >>> learning_rate(0, 100), learning_rate(50, 100)
    (1.0, 0.55)
    """
    return 1.0 - 0.9 * k / steps


def main(argv: list[str] | None = None) -> int:
    """Train and print the loss and accuracy every few steps, then the final accuracy."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=100, help="two-moons points (default 100)")
    ap.add_argument("--steps", type=int, default=100, help="SGD steps (default 100)")
    ap.add_argument("--noise", type=float, default=0.1, help="noise of the moons (default 0.1)")
    ap.add_argument("--alpha", type=float, default=1e-4, help="L2 weight (default 1e-4)")
    ap.add_argument("--seed", type=int, default=1337, help="random seed (default 1337)")
    ap.add_argument("--every", type=int, default=10, help="print every N steps (default 10)")
    args = ap.parse_args(argv)
    if args.points < 1 or args.steps < 1 or args.every < 1:
        ap.error("--points, --steps and --every must be at least 1")
    if not (math.isfinite(args.alpha) and args.alpha >= 0):
        ap.error(f"--alpha must be finite and >= 0, got {args.alpha}")
    try:
        tape, ids, data = setup(args.seed, args.points, args.noise)
    except ValueError as e:  # the moons' noise, say
        ap.error(str(e))
    print(f"two moons: {args.points} points; MLP 2-16-16-1, {len(tape)} parameters; "
          f"{args.steps} steps of SGD")
    for k in range(args.steps):
        tape, loss, acc = step(tape, ids, data, learning_rate(k, args.steps), args.alpha)
        if k % args.every == 0 or k == args.steps - 1:
            print(f"step {k:3d} | loss {loss:.6f} | accuracy {acc:.0%}")
    full, final_loss, scores = loss_and_scores(tape, ids, data, args.alpha)
    final = accuracy(data.labels, T.values(full, scores))
    print(f"final: loss {T.data(full, final_loss):.6f} | accuracy {final:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
