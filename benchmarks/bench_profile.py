"""Where a training step's time goes: forward, backward, Adam, and the garbage collector.

Times the pieces of ``train.train_step`` one by one over the same documents, and the share of the
wall time that CPython's garbage collector takes, then the functions cProfile finds heaviest.

    python benchmarks/bench_profile.py            # about half a minute
    python benchmarks/bench_profile.py --quick    # seconds, for CI
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import functional_gpt.tape as T  # noqa: E402
from functional_gpt import datasets, model, optim, train  # noqa: E402

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def pieces(state: train.TrainState, tokens) -> tuple[train.TrainState, dict[str, float]]:
    """One training step done piece by piece (as train_step does it), with each piece's ms."""
    config = state.config
    marks = [time.perf_counter()]
    tape, loss = model.doc_loss(state.tape, model.layout(config), config, tokens)
    marks.append(time.perf_counter())
    grads = T.backward(tape, loss)
    marks.append(time.perf_counter())
    params, adam = optim.adam_step(optim.Adam(), state.adam, train.param_values(state),
                                   tuple(grads[: len(state.tape)]), 0.01)
    new_state = state._replace(tape=T.update(state.tape, params), adam=adam)
    marks.append(time.perf_counter())
    names = ("forward (doc_loss)", "backward", "Adam and the new parameter tape")
    return new_state, {n: (b - a) * 1000 for n, a, b in zip(names, marks, marks[1:])}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    steps = 5 if args.quick else args.steps
    docs = datasets.load_docs(str(SHARED_NAMES) if SHARED_NAMES.exists() else None)
    run = train.prepare(docs, 42)

    in_gc = [0.0, 0.0]  # local transient: total seconds in collections, start of the current one

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            in_gc[1] = time.perf_counter()
        else:
            in_gc[0] += time.perf_counter() - in_gc[1]

    times: dict[str, list[float]] = {}
    state = run.state
    gc.callbacks.append(on_gc)
    t0 = time.perf_counter()
    for tokens in run.tokens[:steps]:
        state, ms = pieces(state, tokens)
        for name, value in ms.items():
            times.setdefault(name, []).append(value)
    wall = (time.perf_counter() - t0) * 1000 / steps
    gc.callbacks.remove(on_gc)

    print(f"# a training step at the default config, mean over {steps} steps: {wall:.1f} ms")
    print()
    print("| piece | mean ms | share |")
    print("| --- | ---: | ---: |")
    for name, values in times.items():
        mean = statistics.mean(values)
        print(f"| {name} | {mean:.2f} | {mean / wall:.0%} |")
    gc_ms = in_gc[0] * 1000 / steps
    print(f"| of which the garbage collector | {gc_ms:.2f} | {gc_ms / wall:.0%} |")

    profile = cProfile.Profile()
    profile.enable()
    for tokens in run.tokens[:steps]:
        state, _ = pieces(state, tokens)
    profile.disable()
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(8)
    print()
    print("```")
    print("\n".join(line for line in out.getvalue().splitlines() if line.strip()))
    print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
