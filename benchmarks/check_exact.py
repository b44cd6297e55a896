"""A whole run against the mutable reference: every loss and every sample, on one interpreter.

Trains functional_gpt and ``tests/reference_microgpt.py`` (the naive mutable
restatement of microgpt.py) from seed 42 for the same number of steps, then
draws the same number of samples from each, and prints the largest loss
difference and how many samples agree. Slow (the reference is the slow one):
about four minutes for the default 1000 steps.

    python benchmarks/check_exact.py                      # ../shared/data/names.txt, 1000 steps
    python benchmarks/check_exact.py --steps 50 --samples 5
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from reference_microgpt import Reference  # noqa: E402

from functional_gpt import datasets, train  # noqa: E402
from functional_gpt import sample as S  # noqa: E402

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_NAMES) if SHARED_NAMES.exists() else None)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args(argv)
    docs = datasets.load_docs(args.data)
    run = train.prepare(docs, 42)
    ours, state = [], run.state
    for event in train.training(run.state, run.tokens, args.steps):
        ours.append(event.loss)
        state = event.state
    ref = Reference(docs, seed=42, steps=args.steps)
    theirs = [ref.step() for _ in range(args.steps)]
    _, names = S.samples(state.tape, state.config, run.tokenizer, run.rng, args.samples)
    ref_names = ref.sample(args.samples)
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    identical = sum(a == b for a, b in zip(ours, theirs))
    first = next((k for k, (a, b) in enumerate(zip(ours, theirs), 1) if a != b), None)
    differs = "none differs"
    if first:
        gap = abs(ours[first - 1] - theirs[first - 1])
        differs = f"the first to differ is step {first}, by {gap:.3g}"
    same = sum(a == b for a, b in zip(names, ref_names))
    print(f"{platform.python_implementation()} {platform.python_version()}: {args.steps} steps on "
          f"{args.data or 'the bundled names'}; largest loss difference {worst:.3g}; "
          f"{identical}/{args.steps} losses bit-identical ({differs}); "
          f"samples equal {same}/{args.samples}; first samples: {', '.join(names[:5])}")
    return 0 if worst <= 1e-9 and same == args.samples else 1


if __name__ == "__main__":
    sys.exit(main())
