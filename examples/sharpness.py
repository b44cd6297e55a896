"""The sharpness of the GPT's loss: its Hessian's largest eigenvalue, at init and after training.

Run from the repository root (with the package installed):

    python examples/sharpness.py                       # about a minute
    python examples/sharpness.py --steps 20 --names 2 --iterations 4 --plot ''   # seconds

Power iteration needs only Hessian-vector products: start from a random direction ``v``, and
repeat ``v <- H v / |H v|``; the Rayleigh quotient ``v . H v`` then tends to the eigenvalue of
largest size. ``transforms.hvp`` computes each ``H v`` exactly, as a second reverse pass over the
gradient's nodes on the tape, without ever forming the 4,192 x 4,192 Hessian. The loss is the
mean loss on a few fixed names, measured on the freshly initialised model and again after
training on the bundled names. The quotients are printed as they settle and, where matplotlib is
installed, drawn to ``--plot`` (default ``sharpness.png``; ``--plot ''`` draws nothing).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

import functional_gpt.tape as T
from functional_gpt import datasets, model, train
from functional_gpt import rng as R
from functional_gpt.transforms import hvp


def mean_loss(config: model.Config, docs: Sequence[Sequence[int]]):
    """The tape function of the parameters: the mean of ``doc_loss`` over ``docs``."""

    def loss(tape: T.Tape, ids: Sequence[T.Id]) -> tuple[T.Tape, T.Id]:
        params = model.layout(config)
        tape, losses = T.map_tape(tape, docs,
                                  lambda t, doc: model.doc_loss(t, params, config, doc))
        tape, total = T.sum(tape, losses)
        return T.scale(tape, total, 1 / len(docs))

    return loss


def power_iteration(loss, xs: Sequence[float], iterations: int, seed: int) -> list[float]:
    """The Rayleigh quotients ``v . H v`` of power iteration on the Hessian of ``loss`` at xs."""
    product = hvp(loss)
    _, v = R.gauss_many(R.seed(seed), len(xs), 0.0, 1.0)
    quotients = []  # local transient: one per iteration
    for _ in range(iterations):
        norm = math.sqrt(math.fsum(x * x for x in v))
        v = [x / norm for x in v]
        hv = product(list(xs), v)
        quotients.append(math.fsum(a * b for a, b in zip(v, hv)))
        v = hv
    return quotients


def draw(path: str, before: Sequence[float], after: Sequence[float], steps: int) -> bool:
    """Draw both sequences of quotients to ``path``; False where matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    its = range(1, len(before) + 1)
    ax.plot(its, before, marker="o", label=f"at init: {before[-1]:.3g}")
    ax.plot(its, after, marker="s", label=f"after {steps} steps: {after[-1]:.3g}")
    ax.set_xlabel("power iteration")
    ax.set_ylabel("Rayleigh quotient v . H v")
    ax.set_title("Largest Hessian eigenvalue of the GPT's loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps (default 300)")
    parser.add_argument("--names", type=int, default=8,
                        help="names whose mean loss is measured (default 8)")
    parser.add_argument("--iterations", type=int, default=40,
                        help="power iterations per measurement (default 40)")
    parser.add_argument("--plot", default="sharpness.png", help="PNG to draw ('' for none)")
    args = parser.parse_args(argv)
    run = train.prepare(datasets.parse_docs(datasets.bundled_names()), seed=42)
    config, tokens = run.state.config, run.tokens
    loss = mean_loss(config, tokens[: args.names])
    print(f"{model.num_params(config)} parameters; the mean loss on {args.names} names, "
          f"{args.iterations} power iterations of hvp each")
    before = power_iteration(loss, train.param_values(run.state), args.iterations, seed=1)
    print("at init:         " + "  ".join(f"{q:.4g}" for q in before))
    state = run.state
    for event in train.training(run.state, tokens, args.steps):
        state = event.state
    after = power_iteration(loss, train.param_values(state), args.iterations, seed=1)
    print(f"after {args.steps:3d} steps: " + "  ".join(f"{q:.4g}" for q in after))
    print(f"largest eigenvalue: {before[-1]:.4g} at init, {after[-1]:.4g} after {args.steps} "
          "steps of training")
    for when, qs in (("at init", before), ("after training", after)):
        if len(qs) > 1 and abs(qs[-1] - qs[-2]) > 1e-3 * abs(qs[-1]):
            print(f"(not settled {when}: the last two quotients differ by more than 0.1%; "
                  "give more --iterations)")
    if args.plot and draw(args.plot, before, after, args.steps):
        print(f"drew {args.plot}")


if __name__ == "__main__":
    main()
