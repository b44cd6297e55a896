"""Benchmark: a training step of examples/moons.py against a naive mutable scalar-autograd baseline.

The baseline is the approach the tape replaces, written out plainly here: one mutable ``Value``
object per scalar operation, each remembering its parents and local gradients; ``backward`` sorts
the graph topologically (an iterative depth-first search) and accumulates ``grad`` in place; the
parameters are updated in place (``p.data -= lr * p.grad``) and their grads zeroed. The network,
data, loss and SGD step are the example's: a 2-16-16-1 ReLU MLP on two moons, hinge loss plus L2.

    python benchmarks/bench_moons.py            # about a minute
    python benchmarks/bench_moons.py --quick    # a few seconds, for CI

Both start from the same parameters and data and are timed in interleaved rounds (a noisy machine
slows both alike); the table gives the median ms per step, by the wall clock and in CPU time of
this process (``time.process_time``, which other processes on a busy machine do not inflate).
Before timing, it checks that the two give the same loss (to 1e-12) on the same parameters, the
differential test the suite also runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import functional_gpt.tape as T  # noqa: E402
from functional_gpt import trees  # noqa: E402


def load_example() -> Any:
    """The module examples/moons.py (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location("moons_example", ROOT / "examples" / "moons.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("moons_example", module)
    spec.loader.exec_module(module)
    return module


moons = load_example()


# ----------------------------------------------------------------- the baseline


class Value:
    """A scalar in a graph of operations: its data, its grad (mutated by backward), its parents."""

    def __init__(self, data: float, parents: tuple[Value, ...] = (),
                 local_grads: tuple[float, ...] = ()) -> None:
        self.data = data
        self.grad = 0.0
        self.parents = parents
        self.local_grads = local_grads

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __radd__(self, other: float) -> Value:
        return self + other

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __neg__(self) -> Value:
        return self * -1

    def relu(self) -> Value:
        positive = self.data > 0
        return Value(self.data if positive else 0.0, (self,), (1.0 if positive else 0.0,))

    def backward(self) -> None:
        """Set ``grad`` of every Value this one depends on to d(self)/d(it), in place."""
        order: list[Value] = []
        seen: set[int] = set()
        stack: list[tuple[Value, bool]] = [(self, False)]
        while stack:  # depth-first; a node is placed after all its parents
            v, parents_done = stack.pop()
            if parents_done:
                order.append(v)
                continue
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.append((v, True))
            stack.extend((p, False) for p in v.parents if id(p) not in seen)
        self.grad = 1.0
        for v in reversed(order):
            for p, local in zip(v.parents, v.local_grads):
                p.grad += local * v.grad


class BaselineMLP:
    """An MLP of Values: per layer, neurons of (weights, bias); ReLU on all but the last layer."""

    def __init__(self, params: Sequence[Any]) -> None:
        # params: the example's tree of floats, a tuple of Dense(w=rows, b=biases)
        self.layers = [[([Value(w) for w in row], Value(b)) for row, b in zip(layer.w, layer.b)]
                       for layer in params]

    def parameters(self) -> list[Value]:
        """Every parameter, in the order of the example's tree: a layer's weights, then biases."""
        out = []
        for layer in self.layers:
            out += [w for ws, _ in layer for w in ws]
            out += [b for _, b in layer]
        return out

    def __call__(self, x: Sequence[Value]) -> Value:
        for k, layer in enumerate(self.layers):
            acts = [sum((w * xi for w, xi in zip(ws, x)), b) for ws, b in layer]
            x = [a.relu() for a in acts] if k < len(self.layers) - 1 else acts
        return x[0]


def baseline_loss(model: BaselineMLP, data: Any, alpha: float) -> tuple[Value, list[Value]]:
    """The example's loss, with Values: mean of relu(1 - y * score), plus alpha * sum of p**2."""
    scores = [model([Value(c) for c in point]) for point in data.points]
    losses = [(1 + -y * s).relu() for y, s in zip(data.labels, scores)]
    data_loss = sum(losses) * (1.0 / len(losses))
    reg = alpha * sum(p * p for p in model.parameters())
    return data_loss + reg, scores


def baseline_step(model: BaselineMLP, data: Any, lr: float, alpha: float) -> float:
    """One SGD step in place; returns the loss before it."""
    loss, _ = baseline_loss(model, data, alpha)
    for p in model.parameters():
        p.grad = 0.0
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


# -------------------------------------------------------------------- the run


def ms_per_step(rounds: int, per_round: int, points: int, seed: int) -> dict[str, Any]:
    """Median ms per step of both, interleaved (wall clock and CPU); the largest loss difference."""
    tape, ids, data = moons.setup(seed, points, 0.1)
    model = BaselineMLP(trees.values_of(tape, ids))
    alpha, steps = 1e-4, rounds * per_round
    times: dict[str, list[float]] = {"ours": [], "baseline": [], "ours_cpu": [], "baseline_cpu": []}
    diff = 0.0
    for r in range(rounds):
        lrs = [moons.learning_rate(r * per_round + j, steps) for j in range(per_round)]
        ours_losses, base_losses = [], []
        w0, c0 = time.perf_counter(), time.process_time()
        for lr in lrs:
            tape, loss, _ = moons.step(tape, ids, data, lr, alpha)
            ours_losses.append(loss)
        w1, c1 = time.perf_counter(), time.process_time()
        for lr in lrs:
            base_losses.append(baseline_step(model, data, lr, alpha))
        w2, c2 = time.perf_counter(), time.process_time()
        times["ours"].append((w1 - w0) * 1e3 / per_round)
        times["baseline"].append((w2 - w1) * 1e3 / per_round)
        times["ours_cpu"].append((c1 - c0) * 1e3 / per_round)
        times["baseline_cpu"].append((c2 - c1) * 1e3 / per_round)
        diff = max([diff] + [abs(a - b) for a, b in zip(ours_losses, base_losses)])
    full, _, scores = moons.loss_and_scores(tape, ids, data, alpha)
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {**medians, "diff": diff, "steps": steps, "nodes": len(full),
            "accuracy": moons.accuracy(data.labels, T.values(full, scores))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a tiny run, for CI")
    ap.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    ap.add_argument("--per-round", type=int, default=5, help="steps per round (default 5)")
    ap.add_argument("--points", type=int, default=100, help="two-moons points (default 100)")
    ap.add_argument("--seed", type=int, default=1337, help="random seed (default 1337)")
    args = ap.parse_args(argv)
    rounds, per_round, points = ((2, 1, 10) if args.quick
                                 else (args.rounds, args.per_round, args.points))
    check_tape, check_ids, check_data = moons.setup(args.seed, points, 0.1)
    full, ours_loss, _ = moons.loss_and_scores(check_tape, check_ids, check_data, 1e-4)
    base_loss, _ = baseline_loss(BaselineMLP(trees.values_of(check_tape, check_ids)),
                                 check_data, 1e-4)
    gap = abs(T.data(full, ours_loss) - base_loss.data)
    if gap > 1e-12:
        print(f"the losses differ by {gap:.3g}: not timing", file=sys.stderr)
        return 1
    r = ms_per_step(rounds, per_round, points, args.seed)
    print(f"# examples/moons.py: one SGD step on {points} points, 2-16-16-1 ReLU MLP "
          f"(median ms of {rounds} rounds of {per_round} steps, interleaved), "
          f"Python {sys.version.split()[0]}")
    print()
    print("| contestant | ms/step (wall) | ms/step (CPU) | ratio (wall) | ratio (CPU) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| mutable Value objects (baseline) | {r['baseline']:.1f} | {r['baseline_cpu']:.1f} "
          "| 1.0x | 1.0x |")
    print(f"| functional_gpt (tape, layers.linear with bias) | {r['ours']:.1f} | "
          f"{r['ours_cpu']:.1f} | {r['baseline'] / r['ours']:.1f}x | "
          f"{r['baseline_cpu'] / r['ours_cpu']:.1f}x |")
    print()
    print(f"largest loss difference over {r['steps']} steps: {r['diff']:.3g}; "
          f"accuracy after them: {r['accuracy']:.0%}; nodes per step: {r['nodes']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
