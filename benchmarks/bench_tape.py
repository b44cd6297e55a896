"""Benchmark: what one tape operation costs, for the representations the tape could use.

The tape maps dense node ids to nodes, persistently. Candidates: a pyrsistent ``pmap`` keyed by
id, a ``pvector`` indexed by id (ids are dense), and, for scale, a plain tuple copied on every
append (persistent but O(n)). Then what the chosen tape's own operations cost per node.

    python benchmarks/bench_tape.py           # about half a minute
    python benchmarks/bench_tape.py --quick   # a second, for CI

Each figure is the median over repeats of the mean time per operation, in microseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pyrsistent import pmap, pvector  # noqa: E402

import functional_gpt.tape as T  # noqa: E402
from functional_gpt import model  # noqa: E402
from functional_gpt import rng as R  # noqa: E402


def per_op_us(stmt, number: int, repeat: int) -> float:
    """Median over ``repeat`` runs of the mean microseconds per call of ``stmt``."""
    return statistics.median(t / number * 1e6 for t in timeit.repeat(stmt, number=number,
                                                                       repeat=repeat))


def structures(size: int, number: int, repeat: int) -> list[tuple[str, float]]:
    node = (1.0, (1, 2), (1.0, 1.0), "add")
    m = pmap({i: node for i in range(size)})
    v = pvector([node] * size)
    t = (node,) * size
    k = size // 2

    def evolver_appends():
        e = v.evolver()
        for _ in range(16):
            e.append(node)
        return e.persistent()

    return [
        (f"pmap.set (new key, {size} entries)",
         per_op_us(lambda: m.set(size, node), number, repeat)),
        ("pmap[k]", per_op_us(lambda: m[k], number, repeat)),
        (f"pvector.append ({size} entries)", per_op_us(lambda: v.append(node), number, repeat)),
        ("pvector[i]", per_op_us(lambda: v[k], number, repeat)),
        ("pvector evolver append (16 in a batch, per node)",
         per_op_us(evolver_appends, number // 16, repeat) / 16),
        ("pvector.extend (16 in a batch, per node)",
         per_op_us(lambda: v.extend([node] * 16), number // 16, repeat) / 16),
        (f"tuple + (node,) ({size} entries, copies)", per_op_us(lambda: t + (node,), number // 10,
                                                               repeat)),
    ]


def tape_ops(size: int, number: int, repeat: int) -> list[tuple[str, float]]:
    tape, ids = T.map_tape(T.new(), [0.5 + i / size for i in range(size)], T.var)
    a, b = ids[1], ids[2]
    row, x = ids[:16], ids[16:32]
    config = model.Config(vocab_size=27)
    _, params_tape = model.init(R.seed(42), config)
    big, root = model.doc_loss(params_tape, model.layout(config), config, (26, 4, 12, 12, 0, 26))
    edges = sum(len(inputs) for _, inputs, _, _ in big.nodes)
    return [
        ("T.var (a leaf)", per_op_us(lambda: T.var(tape, 1.0), number, repeat)),
        ("T.add", per_op_us(lambda: T.add(tape, a, b), number, repeat)),
        ("T.mul", per_op_us(lambda: T.mul(tape, a, b), number, repeat)),
        ("T.exp", per_op_us(lambda: T.exp(tape, a), number, repeat)),
        ("T.dot of 16 pairs (one node, 32 edges)", per_op_us(lambda: T.dot(tape, row, x), number,
                                                            repeat)),
        ("T.data", per_op_us(lambda: T.data(tape, a), number, repeat)),
        (f"T.backward of a training step, per edge ({len(big)} nodes, {edges} edges)",
         per_op_us(lambda: T.backward(big, root), max(1, number // 1000), repeat) / edges),
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny repeat counts, for CI")
    args = ap.parse_args(argv)
    number, repeat = (2000, 3) if args.quick else (100_000, 7)
    size = 5000
    print(f"# per-operation cost in microseconds (median of {repeat}), tape of {size} nodes")
    print()
    print("| operation | us |")
    print("| --- | ---: |")
    for label, us in structures(size, number, repeat) + tape_ops(size, number, repeat):
        print(f"| {label} | {us:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
