"""Benchmark: one Hessian-vector product of the GPT's loss, against one gradient of it.

``transforms.hvp`` of ``model.doc_loss`` (reverse over reverse: the forward pass, the backward
pass onto the tape, then one ordinary backward pass over the gradient's nodes) against
``train.loss_and_grads`` (the forward pass and the backward pass that training runs), on the
same name with the default model (4,192 parameters). The two are timed in alternation, so that
a busy machine slows both alike, and the table gives each one's median and their ratio, by the
clock and by the CPU time of this process (the steadier of the two on a shared machine).

    python benchmarks/bench_hvp.py            # about half a minute
    python benchmarks/bench_hvp.py --quick    # a few seconds, for CI
    python benchmarks/bench_hvp.py --name isabella --rounds 60
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from functional_gpt import model, train  # noqa: E402
from functional_gpt import rng as R  # noqa: E402
from functional_gpt import tokenizer as tk  # noqa: E402
from functional_gpt.transforms import hvp  # noqa: E402

ALPHABET = "abcdefghijklmnopqrstuvwxyz"  # the bundled names' letters: vocabulary 27


Times = tuple[list[float], list[float]]  # by the clock, and in CPU time


def timings(name: str, rounds: int, seed: int) -> tuple[Times, Times, int]:
    """Seconds of each hvp and each loss_and_grads, alternating, and the loss tape's size."""
    config = model.Config(vocab_size=len(ALPHABET) + 1)
    _, state = train.init_state(R.seed(seed), config)
    tokens = tk.doc_tokens(tk.build([ALPHABET]), name)
    xs = list(train.param_values(state))
    _, vs = R.gauss_many(R.seed(seed + 1), len(xs), 0.0, 1.0)

    def loss(tape, ids):
        return model.doc_loss(tape, model.layout(config), config, tokens)

    product = hvp(loss)
    tape, _ = loss(state.tape, None)
    hvps: Times = ([], [])  # local transients: one time per round
    grads: Times = ([], [])
    for _ in range(rounds):
        for run, times in ((lambda: product(xs, vs), hvps),
                           (lambda: train.loss_and_grads(state, tokens), grads)):
            wall, cpu = time.perf_counter(), time.process_time()
            run()
            times[1].append(time.process_time() - cpu)
            times[0].append(time.perf_counter() - wall)
    return hvps, grads, len(tape) - len(state.tape)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="emma", help="the name whose loss is differentiated")
    parser.add_argument("--rounds", type=int, default=40, help="timed pairs (default 40)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--quick", action="store_true", help="5 rounds, to check it runs")
    args = parser.parse_args(argv)
    rounds = 5 if args.quick else args.rounds
    hvps, grads, nodes = timings(args.name, rounds, args.seed)
    h, g = map(statistics.median, hvps), map(statistics.median, grads)
    (h_wall, h_cpu), (g_wall, g_cpu) = tuple(h), tuple(g)
    print(f"The default model's loss on {args.name!r}: {nodes} nodes after the parameters; "
          f"medians of {rounds} alternating rounds, on Python {sys.version.split()[0]}.\n")
    print("| what | median ms | ratio | median CPU ms | CPU ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| train.loss_and_grads | {g_wall * 1e3:.2f} | 1.00 | {g_cpu * 1e3:.2f} | 1.00 |")
    print(f"| transforms.hvp | {h_wall * 1e3:.2f} | {h_wall / g_wall:.2f} | {h_cpu * 1e3:.2f} "
          f"| {h_cpu / g_cpu:.2f} |")


if __name__ == "__main__":
    main()
