"""Peak memory of reading a data file and a checkpoint, as a multiple of the file's size.

The size limits (``functional_gpt/limits.py``) are meant to bound memory: this measures how.
Each case runs the command line in a child process and takes its peak resident memory
(``wait4``), less the peak of the same command on a tiny file; that difference over the file's
size is the multiple docs/USAGE.md states beside the limits.

- data (train): ``train --steps 1`` on a file of short names (3 to 8 letters a line, the
  worst realistic case: memory grows with the number of documents);
- checkpoint (sample): ``sample`` on a real checkpoint of a model at the parameter limit;
- checkpoint, worst: a file of the checkpoint limit's size holding as many empty lists
  (``[[],[],...``) as the reader lets through, the text that makes a JSON parser build the most
  objects per byte (it is refused after parsing: it is no checkpoint).

    python benchmarks/bench_memory.py                  # data of 8 MiB, both checkpoints: 1 minute
    python benchmarks/bench_memory.py --data-mib 16    # a data file at the limit
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

def peak_of(argv: list[str]) -> tuple[int, int]:
    """``(peak resident memory in bytes, exit status)`` of ``python -m functional_gpt ARGV``."""
    proc = subprocess.Popen([sys.executable, "-m", "functional_gpt", *argv], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    return usage.ru_maxrss * 1024, os.waitstatus_to_exitcode(status)  # Linux: kilobytes


def names_file(path: str, size: int, seed: int = 0) -> None:
    """Write about ``size`` bytes of random lower-case names of 3 to 8 letters, one a line."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines, written = [], 0
    while written < size:
        name = "".join(rng.choice(letters) for _ in range(rng.randint(3, 8)))
        lines.append(name)
        written += len(name) + 1
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def big_checkpoint(path: str, params: int) -> None:
    """Save a real checkpoint of a model of about ``params`` parameters (rows of 16 numbers)."""
    from functional_gpt import checkpoint, limits, model, train
    from functional_gpt import rng as R
    from functional_gpt import tokenizer as tk
    from functional_gpt.model import Config

    tok = tk.Tokenizer("abcdefghijklmnopqrstuvwxyz")
    n_embd = 16
    fixed = limits.model_size(Config(tok.vocab_size, n_embd=n_embd, n_head=4, block_size=0))
    block = (min(params, limits.MAX_PARAMS) - fixed) // n_embd
    config = Config(tok.vocab_size, n_embd=n_embd, n_head=4, block_size=block)
    rng, state = train.init_state(R.seed(0), config)
    assert model.num_params(config) <= limits.MAX_PARAMS
    checkpoint.save(path, checkpoint.Checkpoint(state, tok, 0, rng, 10))


def worst_checkpoint(path: str, size: int) -> None:
    """A file of ``size`` bytes: as many empty lists as a checkpoint may hold, then spaces.

    Empty lists are the text that makes a JSON parser build the most objects per
    byte; ``checkpoint.loads`` counts them first and refuses a file with more.
    """
    from functional_gpt import limits

    count = min(limits.MAX_CHECKPOINT_LISTS - 2, (size - 2) // 3)  # what the reader lets through
    text = "[" + ",".join(["[]"] * count) + "]"
    Path(path).write_text(text + " " * (size - len(text)), encoding="utf-8")


def report(label: str, path: str, argv: list[str], baseline: list[str]) -> float:
    """Print a table row and return (peak of ``argv`` - peak of ``baseline``) / size of ``path``."""
    size = os.path.getsize(path)
    (peak, status), (base, _) = peak_of(argv), peak_of(baseline)
    multiple = (peak - base) / size
    print(f"| {label} | {size / 2**20:.1f} | {(peak - base) / 2**20:.1f} | {multiple:.2f} "
          f"| {status} |", flush=True)
    return multiple


def make(kind: str, path: str, size: int) -> None:
    """Write the test file ``kind`` in a child process.

    The child's memory stays out of this process: on Linux a child's peak starts from
    its parent's size at the fork, so the measuring process must stay small.
    """
    here = str(ROOT / "benchmarks")
    code = f"import sys; sys.path.insert(0, {here!r}); import bench_memory as b; " \
        f"b.{kind}({path!r}, {size})"
    subprocess.run([sys.executable, "-c", code], check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-mib", type=float, default=8.0)
    ap.add_argument("--quick", action="store_true",
                    help="small files and a small model: seconds, to check the script runs")
    args = ap.parse_args(argv)
    from functional_gpt import limits

    data_size = int((0.25 if args.quick else args.data_mib) * 2**20)
    worst_size = 4 * 2**20 if args.quick else limits.MAX_CHECKPOINT_BYTES
    print("| case | file (MiB) | peak memory beyond a tiny file's (MiB) | times the file | exit |")
    print("| --- | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        tiny = os.path.join(folder, "tiny.txt")
        make("names_file", tiny, 100)
        data = os.path.join(folder, "names.txt")
        make("names_file", data, data_size)
        train = ["train", "--steps", "1", "--samples", "0", "--quiet", "--data"]
        report("data file (train)", data, [*train, data], [*train, tiny])
        small = os.path.join(folder, "small.json")
        peak_of([*train, tiny, "--save", small])
        ckpt = os.path.join(folder, "big.json")
        make("big_checkpoint", ckpt, 50_000 if args.quick else limits.MAX_PARAMS)
        sample = ["sample", "--samples", "1", "--load"]
        report("checkpoint (sample)", ckpt, [*sample, ckpt], [*sample, small])
        worst = os.path.join(folder, "worst.json")
        make("worst_checkpoint", worst, worst_size)
        report("any file as a checkpoint, worst", worst, [*sample, worst], [*sample, small])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
