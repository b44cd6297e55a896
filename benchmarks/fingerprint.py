"""A fingerprint of a whole run: one hash of every loss, the final parameters and the samples.

Not a timing. Two checkouts (or two interpreters) that print the same fingerprint trained bit
for bit alike: the tool for showing that a refactor or a speed trick changed no float.

    python benchmarks/fingerprint.py                    # ../shared/data/names.txt, 1000 steps
    python benchmarks/fingerprint.py --steps 20 --samples 3
    cd ../other-checkout && python benchmarks/fingerprint.py   # then compare the two lines
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functional_gpt import datasets, train  # noqa: E402
from functional_gpt import sample as S  # noqa: E402

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def fingerprint(docs: list[str], steps: int, samples: int, seed: int = 42) -> tuple[str, list]:
    """Return the hash of a run's losses, final parameters and samples, and its losses."""
    run = train.prepare(docs, seed)
    losses, state = [], run.state
    for event in train.training(run.state, run.tokens, steps):
        losses.append(event.loss)
        state = event.state
    _, names = S.samples(state.tape, state.config, run.tokenizer, run.rng, samples)
    digest = hashlib.sha256(repr((losses, train.param_values(state), names)).encode())
    return digest.hexdigest()[:16], [losses, names]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_NAMES) if SHARED_NAMES.exists() else None)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)
    docs = datasets.load_docs(args.data)
    digest, (losses, names) = fingerprint(docs, args.steps, args.samples, args.seed)
    print(f"{platform.python_version()} {digest}  {args.steps} steps on "
          f"{args.data or 'the bundled names'}, seed {args.seed}; first loss {losses[0]!r}, "
          f"last {losses[-1]!r}; samples {' '.join(names[:5])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
