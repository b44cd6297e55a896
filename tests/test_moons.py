"""examples/moons.py: it trains, its gradients are right, and it agrees with a mutable baseline.

The oracle is the naive mutable scalar-autograd baseline in benchmarks/bench_moons.py (Value
objects, a topological sort, grads accumulated in place), written independently of the tape. The
example and the baseline must give the same losses, scores and gradients to rounding.
"""

from __future__ import annotations

import doctest
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import functional_gpt.tape as T
from functional_gpt import repl, trees

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "moons.py"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)
    spec.loader.exec_module(module)
    return module


bench = load(ROOT / "benchmarks" / "bench_moons.py", "bench_moons_under_test")
moons = bench.moons

LINE = re.compile(r"^step +(\d+) \| loss (\d+\.\d+) \| accuracy (\d+)%$")
FINAL = re.compile(r"^final: loss (\d+\.\d+) \| accuracy (\d+)%$")


def run_example(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(EXAMPLE), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_the_example_prints_what_the_baseline_computes():
    """Its printed losses and accuracies are those of the same training done with Values."""
    result = run_example("--points", "30", "--steps", "12", "--every", "4", "--seed", "5")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ("two moons: 30 points; MLP 2-16-16-1, 337 parameters; "
                        "12 steps of SGD")
    steps = [LINE.match(line) for line in lines[1:-1]]
    assert all(steps), lines
    final = FINAL.match(lines[-1])
    assert final, lines[-1]
    printed = {int(m.group(1)): (float(m.group(2)), int(m.group(3))) for m in steps if m}
    assert sorted(printed) == [0, 4, 8, 11]

    tape, ids, data = moons.setup(5, 30, 0.1)
    model = bench.BaselineMLP(trees.values_of(tape, ids))
    for k in range(12):
        loss, scores = bench.baseline_loss(model, data, 1e-4)
        acc = round(100 * moons.accuracy(data.labels, [s.data for s in scores]))
        if k in printed:
            assert abs(printed[k][0] - loss.data) <= 5e-7 and printed[k][1] == acc, k
        bench.baseline_step(model, data, moons.learning_rate(k, 12), 1e-4)
    loss, scores = bench.baseline_loss(model, data, 1e-4)
    assert abs(float(final.group(1)) - loss.data) <= 5e-7
    assert int(final.group(2)) == round(100 * moons.accuracy(data.labels,
                                                             [s.data for s in scores]))


def test_the_example_learns_the_moons():
    """A short run on 60 points ends far better than it starts: loss down, accuracy >= 90%."""
    result = run_example("--points", "60", "--steps", "40", "--every", "39")
    assert result.returncode == 0, result.stderr
    first = LINE.match(result.stdout.splitlines()[1])
    final = FINAL.match(result.stdout.splitlines()[-1])
    assert first and final
    assert float(final.group(1)) < 0.5 * float(first.group(2))
    assert int(final.group(2)) >= 90


@pytest.mark.parametrize("args, message", [
    (("--points", "0"), "--points, --steps and --every must be at least 1"),
    (("--steps", "0"), "--points, --steps and --every must be at least 1"),
    (("--every", "0"), "--points, --steps and --every must be at least 1"),
    (("--noise", "-1"), "two_moons: noise must be finite and >= 0, got -1.0"),
    (("--alpha", "nan"), "--alpha must be finite and >= 0, got nan"),
    (("--points", "ten"), "invalid int value: 'ten'"),
])
def test_the_example_refuses_a_bad_argument(args, message):
    result = run_example(*args)
    assert result.returncode == 2
    assert message in result.stderr, result.stderr


def test_the_examples_doctests_pass():
    failures, tried = doctest.testmod(moons)
    assert tried >= 3 and failures == 0


@settings(max_examples=8)
@given(st.integers(0, 2**32), st.integers(1, 12))
def test_the_baseline_gives_the_same_loss_scores_and_grads(seed, points):
    """On the same parameters the tape and the Values agree: loss to 1e-12, grads to 1e-9."""
    tape, ids, data = moons.setup(seed, points, 0.1)
    full, loss, scores = moons.loss_and_scores(tape, ids, data, 1e-4)
    param_ids = trees.flatten(ids)[0]
    grads = trees.grads_of(T.backward(full, loss), param_ids)

    model = bench.BaselineMLP(trees.values_of(tape, ids))
    base_loss, base_scores = bench.baseline_loss(model, data, 1e-4)
    base_loss.backward()
    base_grads = [p.grad for p in model.parameters()]

    assert abs(T.data(full, loss) - base_loss.data) <= 1e-12 * max(1.0, base_loss.data)
    assert all(abs(a - b.data) <= 1e-12 * max(1.0, abs(a))
               for a, b in zip(T.values(full, scores), base_scores))
    assert len(grads) == len(base_grads) == len(param_ids)
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15) for a, b in zip(grads, base_grads))


def test_a_step_leaves_the_old_tape_and_the_ids_as_they_were():
    tape, ids, data = moons.setup(2, 10, 0.1)
    before = trees.values_of(tape, ids)
    ids_before = trees.flatten(ids)
    new_tape, loss, acc = moons.step(tape, ids, data, 0.5, 1e-4)
    assert trees.values_of(tape, ids) == before and trees.flatten(ids) == ids_before
    assert len(new_tape) == len(tape)
    assert trees.values_of(new_tape, ids) != before
    assert 0.0 <= acc <= 1.0 and loss > 0.0


def relu_inputs(tape):
    """The values of every relu node's input on ``tape``: how close the inputs are to a kink."""
    out = []
    for i in range(len(tape)):
        node = T.node(tape, i)
        if node.op == "relu":
            out += [T.data(tape, j) for j in node.inputs]
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_examples_gradients_pass_check_grads_on_a_tiny_instance(seed):
    """A 2-3-3-1 MLP on 5 points: the tape's gradients equal central differences."""
    tape, ids, data = moons.setup(seed, 5, 0.1, hidden=3)
    values, treedef = trees.flatten(trees.values_of(tape, ids))

    def loss_of(tape, flat_ids):
        tape, loss, _ = moons.loss_and_scores(tape, trees.unflatten(treedef, flat_ids), data, 0.1)
        return tape, loss

    full, _, _ = moons.loss_and_scores(tape, ids, data, 0.1)
    # the check is meaningful only away from relu's kink: every input well clear of 0
    assert min(abs(v) for v in relu_inputs(full)) > 1e-3
    report = repl.check_grads(loss_of, values)
    assert report.ok, report
    assert len(report.analytic) == len(values) == 2 * 3 + 3 + 3 * 3 + 3 + 3 + 1
    assert any(g != 0.0 for g in report.analytic)
