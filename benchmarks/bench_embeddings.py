"""Benchmark: how the time of ``embeddings`` grows with the model (it must grow about linearly).

For block sizes that double, a model is made (one training step, n_embd 8) and the command's
three parts are timed in CPU seconds of this process (``time.process_time``, which other
processes on a busy machine do not inflate): the principal components of ``wte`` and ``wpe``
(``inside.embeddings``), the label placement (``pictures.label_offsets``, quadratic before
issue 24), and the whole picture (``pictures.draw_embeddings`` to a PNG). The last column is the
whole picture's time per thousand positions: about constant when the time is linear. A second
table times the components of ever wider models (n_embd up to 256).

    python benchmarks/bench_embeddings.py            # up to block size 32000, about a minute
    python benchmarks/bench_embeddings.py --quick    # two tiny sizes, for CI
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functional_gpt import inside, pictures, train  # noqa: E402
from functional_gpt.evaluate import weights_of  # noqa: E402


def cpu_seconds(work: Callable[[], Any]) -> tuple[float, Any]:
    """The CPU time of ``work()`` in this process, and its result."""
    start = time.process_time()
    result = work()
    return time.process_time() - start, result


def row(block_size: int, folder: Path, n_embd: int = 8) -> tuple[int, float, float, float]:
    """Block size, then CPU seconds of the components, the labels and the whole picture."""
    run = train.prepare(["emma", "olivia", "ava"], seed=1, n_embd=n_embd, n_head=2,
                        block_size=block_size)
    w = weights_of(run.state)
    pca, found = cpu_seconds(lambda: inside.embeddings(w, run.tokenizer))
    xs = [c[0] for c in found.positions.coords]
    ys = [c[1] for c in found.positions.coords]
    labels, _ = cpu_seconds(lambda: pictures.label_offsets(xs, ys, found.position_labels))
    picture, _ = cpu_seconds(
        lambda: pictures.draw_embeddings(found, folder / f"e{block_size}.png"))
    return block_size, pca, labels, picture


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two tiny sizes, for CI")
    args = parser.parse_args(argv)
    sizes = [100, 200] if args.quick else [1000, 2000, 4000, 8000, 16000, 32000]
    print("| block size | components (s) | labels (s) | whole picture (s) | "
          "picture per 1000 positions (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        row(10, Path(folder))  # matplotlib's first figure loads fonts: not part of any size
        for size in sizes:
            n, pca, labels, picture = row(size, Path(folder))
            print(f"| {n} | {pca:.2f} | {labels:.2f} | {picture:.2f} | "
                  f"{picture * 1000 / n:.3f} |", flush=True)
        # A wide model (block size 16): the components come from the points' small Gram
        # matrix, not the n_embd x n_embd covariance, whose eigen-solver grows as its cube.
        print("\n| n_embd | components (s) |\n| --- | ---: |")
        for width in [8, 16] if args.quick else [32, 64, 128, 256]:
            _, pca, _, _ = row(16, Path(folder), n_embd=width)
            print(f"| {width} | {pca:.3f} |", flush=True)


if __name__ == "__main__":
    main()
