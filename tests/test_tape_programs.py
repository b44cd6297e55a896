"""Whole random programs: ``backward`` against two independent oracles.

``strategies.programs`` draws a random straight-line program over every
primitive (kept inside each op's domain and finite). The same program is run
on the tape, on the naive mutable autograd in ``reference_autograd`` and,
perturbed one input at a time, for central finite differences.
"""

import math
from collections.abc import Sequence

from hypothesis import given
from reference_autograd import central_difference, replay
from strategies import PRIMITIVES, Program, programs, run_on_tape

import functional_gpt.tape as T


def relative_error(a: float, b: float) -> float:
    """|a - b| relative to the larger magnitude (absolute below magnitude 1)."""
    return abs(a - b) / max(1.0, abs(a), abs(b))


def output(program: Program, xs: Sequence[float]) -> float:
    """The program's output as a plain function of its inputs."""
    return T.data(run_on_tape(program, xs), program.root)


@given(programs())
def test_backward_matches_finite_differences(program: Program) -> None:
    """d(output)/d(input_i) from backward equals the central difference of the whole program."""
    tape = run_on_tape(program)
    grads = T.backward(tape, program.root)
    for i in range(len(program.inputs)):
        numeric = central_difference(lambda xs: output(program, xs), program.inputs, i)
        assert relative_error(T.grad(grads, i), numeric) < 1e-5, (i, T.grad(grads, i), numeric)


@given(programs())
def test_backward_matches_the_mutable_reference(program: Program) -> None:
    """Every node's value and gradient agree with a naive micrograd-style replay to 1e-9.

    The reference mutates ``grad`` fields in place after a recursive
    topological sort; the tape folds over ids. Checked for every node, not
    only the inputs (constants, intermediate nodes and the output too).
    """
    tape = run_on_tape(program)
    grads = T.backward(tape, program.root)
    reference = replay(program)
    reference[program.root].backward()
    assert len(reference) == len(tape) == len(grads)
    for i, ref in enumerate(reference):
        node = T.node(tape, i)
        assert relative_error(node.value, ref.data) < 1e-9, (i, node, ref)
        assert relative_error(grads[i], ref.grad) < 1e-9, (i, grads[i], ref.grad)


@given(programs())
def test_programs_use_only_primitives_and_earlier_nodes(program: Program) -> None:
    """Replaying a program gives one node per input and instruction, each reading earlier nodes.

    (A check on the generator as much as the tape: node ``k`` is instruction ``k - n``.)
    """
    tape = run_on_tape(program)
    n = len(program.inputs)
    assert len(tape) == n + len(program.instrs)
    for k in range(len(tape)):
        node = T.node(tape, k)
        assert all(0 <= j < k for j in node.inputs)
        if k >= n:
            ins = program.instrs[k - n]
            assert ins.op in PRIMITIVES
            assert node.inputs == ins.args
            assert math.isfinite(node.value) and all(map(math.isfinite, node.local_grads))


def test_the_generator_reaches_every_primitive() -> None:
    """Across a batch of drawn programs, every primitive appears (the DAG tests cover them all)."""
    seen: set[str] = set()

    @given(programs())
    def collect(program: Program) -> None:
        seen.update(ins.op for ins in program.instrs)

    collect()
    assert seen == set(PRIMITIVES)
