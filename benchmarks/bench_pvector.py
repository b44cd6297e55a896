"""Training speed with and without pyrsistent's C extension, interleaved on one machine.

pyrsistent has no C-extension wheel for Python 3.13 and newer, where ``pvector()``
is the pure-Python ``PythonPVector``; ``PYRSISTENT_NO_C_EXTENSION=1`` gives the
same on any Python. This script alternates child processes of the two kinds,
each training the default model for a number of steps on the same documents,
and reports the median ms/step of each and their ratio.

    python benchmarks/bench_pvector.py               # 6 rounds of 60 steps, about a minute
    python benchmarks/bench_pvector.py --quick       # seconds, for CI
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def child(steps: int, skip: int) -> None:
    """Train ``skip + steps`` steps; print the per-step times of the last ``steps`` as JSON."""
    sys.path.insert(0, str(ROOT))
    from pyrsistent import pvector

    from functional_gpt import datasets, train

    docs = datasets.load_docs(str(SHARED_NAMES) if SHARED_NAMES.exists() else None)
    run = train.prepare(docs, 42)
    times = []
    t0 = time.perf_counter()
    for event in train.training(run.state, run.tokens, skip + steps):
        t1 = time.perf_counter()
        if event.step > skip:
            times.append((t1 - t0) * 1000)
        t0 = t1
    print(json.dumps({"ms": times, "pvector": type(pvector()).__name__}))


def measure(pure: bool, steps: int, skip: int) -> tuple[list[float], str]:
    env = dict(os.environ)
    env.pop("PYRSISTENT_NO_C_EXTENSION", None)
    if pure:
        env["PYRSISTENT_NO_C_EXTENSION"] = "1"
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(steps), str(skip)],
        env=env, capture_output=True, text=True, check=True, timeout=900,
    ).stdout
    result = json.loads(out)
    return result["ms"], result["pvector"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    rounds, steps, skip = (1, 3, 1) if args.quick else (args.rounds, args.steps, 5)
    c_ms: list[float] = []
    pure_ms: list[float] = []
    kinds = {}
    for _ in range(rounds):
        for pure, into in ((False, c_ms), (True, pure_ms)):
            ms, kind = measure(pure, steps, skip)
            into.extend(ms)
            kinds[pure] = kind
    c, p = statistics.median(c_ms), statistics.median(pure_ms)
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{rounds} interleaved rounds of {steps} steps each, {time.strftime('%Y-%m-%d')}")
    print()
    print("| pyrsistent's PVector | ms/step (median) |")
    print("| --- | ---: |")
    print(f"| {kinds[False]} | {c:.2f} |")
    print(f"| {kinds[True]} (PYRSISTENT_NO_C_EXTENSION=1) | {p:.2f} |")
    print()
    print(f"pure Python / C extension: {p / c:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
