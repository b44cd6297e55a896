"""What a training step costs in CPU instructions, counted by valgrind: a noise-free measure.

Timings on a shared machine drift by tens of percent from one minute to the next; the number of
instructions a step executes does not. This counts them with valgrind's cachegrind (``valgrind``
must be on the PATH): each piece runs in a child process under valgrind twice, for 0 and for
``--steps`` steps, and the difference divided by the steps is the cost of one step, setup
excluded. Instructions are not time (a cache miss costs more than an add), so this complements
``bench_train.py``; it is the tool for telling whether a change made the code do less.

    python benchmarks/bench_instructions.py              # about two minutes
    python benchmarks/bench_instructions.py --quick      # one piece, one step: seconds, for CI
"""

from __future__ import annotations

import argparse
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"
DOCS = 2000  # the first documents of the names file: setup stays small under valgrind

# What each child runs per step; the pieces of train.train_step are differences of these.
PIECES = {
    "forward": "functional_gpt forward (doc_loss)",
    "forward+backward": "functional_gpt forward and backward",
    "step": "functional_gpt training step",
    "floor": "the floor (benchmarks/floor.py) training step",
}


def child(piece: str, steps: int) -> None:
    """Set up as a training run does, then run ``steps`` steps of ``piece``."""
    import functional_gpt.tape as T
    from functional_gpt import datasets, model, optim, train

    path = str(SHARED_NAMES) if SHARED_NAMES.exists() else None
    docs = datasets.load_docs(path)[:DOCS]
    if piece == "floor":
        from floor import Floor

        floor = Floor(docs)
        for _ in range(steps):
            floor.step()
        return
    run = train.prepare(docs, 42)
    state = run.state
    config, params = state.config, model.layout(state.config)
    for k in range(steps):
        if piece == "step":
            state, _ = train.train_step(state, run.tokens[k], optim.linear_decay(0.01, k, 1000))
            continue
        tape, loss = model.doc_loss(state.tape, params, config, run.tokens[k])
        if piece == "forward+backward":
            T.backward_as_tuple(tape, loss)


def instructions(piece: str, steps: int) -> int:
    """Instructions valgrind counts for a child running ``steps`` steps of ``piece``."""
    out = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, __file__, "--child", piece, str(steps)],
        capture_output=True, text=True, check=True,
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", out.stderr)
    if not found:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_step(piece: str, steps: int) -> float:
    """Millions of instructions per step of ``piece``, setup excluded."""
    return (instructions(piece, steps) - instructions(piece, 0)) / steps / 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="one piece, one step (for CI)")
    ap.add_argument("--child", nargs=2, metavar=("PIECE", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    if shutil.which("valgrind") is None:
        print("bench_instructions: needs valgrind on the PATH (apt-get install valgrind)",
              file=sys.stderr)
        return 2
    from bench_train import pvector_kind

    steps = 1 if args.quick else args.steps
    pieces = ["step"] if args.quick else list(PIECES)
    counts = {piece: per_step(piece, steps) for piece in pieces}
    print(f"# CPython {platform.python_version()}; pyrsistent's PVector: {pvector_kind()}; "
          f"{steps} steps on the first {DOCS} names, seed 42\n")
    print("| piece | million instructions per step |")
    print("| --- | ---: |")
    rows = [(PIECES[piece], counts[piece]) for piece in pieces]
    if not args.quick:
        f, fb, step = counts["forward"], counts["forward+backward"], counts["step"]
        rows = [("functional_gpt: forward", f), ("functional_gpt: backward", fb - f),
                ("functional_gpt: Adam and the new parameter tape", step - fb),
                ("functional_gpt: training step", step), (PIECES["floor"], counts["floor"])]
    for name, millions in rows:
        print(f"| {name} | {millions:.1f} |")
    if not args.quick:
        print(f"\nfunctional_gpt / floor: {counts['step'] / counts['floor']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
