"""The summary of a tape by runs (graph.op_runs, graph.runs_to_dot) and the layer diagram's steps.

A run is checked against its definition node by node; the summary graph must account for every
input of every node exactly once, on random programs and on a GPT position.
"""

import re
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Program, programs, run_on_tape

import functional_gpt.tape as T
from functional_gpt import graph, model, pictures
from functional_gpt import rng as R


@given(programs(), st.data())
@settings(max_examples=100)
def test_op_runs_cover_the_tape_once_each_of_one_op_reading_no_member(program: Program,
                                                                     data) -> None:
    tape = run_on_tape(program)
    start = data.draw(st.integers(0, len(tape)))
    runs = graph.op_runs(tape, start)
    assert [i for run in runs for i in range(run.first, run.last + 1)] == list(range(start,
                                                                                     len(tape)))
    for run in runs:
        members = range(run.first, run.last + 1)
        assert {T.node(tape, i).op for i in members} == {run.op}
        assert not any(j in members for i in members for j in T.node(tape, i).inputs)
    for before, after in zip(runs, runs[1:]):  # each run is as long as it can be
        node = T.node(tape, after.first)
        assert node.op != before.op or any(j >= before.first for j in node.inputs)


def edge_counts(source: str) -> int:
    return sum(int(n) for n in re.findall(r' -> \w+ \[label="(\d+)"\]', source))


@given(programs(), st.data())
@settings(max_examples=100)
def test_runs_to_dot_counts_every_input_once(program: Program, data) -> None:
    tape = run_on_tape(program)
    start = data.draw(st.integers(0, len(tape)))
    source = graph.runs_to_dot(tape, start)
    assert edge_counts(source) == sum(len(T.node(tape, i).inputs) for i in range(start, len(tape)))
    assert source.count(" [label=\"{") == len(graph.op_runs(tape, start)) + len(
        {j for i in range(start, len(tape)) for j in T.node(tape, i).inputs if j < start})


def tiny_position():
    tiny = model.Config(vocab_size=3, n_embd=4, n_head=2, block_size=4)
    _, params = model.init(R.seed(0), tiny)
    tape, _ = model.gpt(params, model.layout(tiny), tiny, 2, 0, model.empty_cache(tiny))
    inputs = [(name, m[0][0], m[-1][-1]) for name, m in model.named_matrices(tiny)]
    return tiny, params, tape, inputs


def test_a_gpt_position_summarised_by_its_weight_matrices() -> None:
    tiny, params, tape, inputs = tiny_position()
    source = graph.runs_to_dot(tape, len(params), inputs)
    assert source.count("fillcolor") == len(inputs)  # every parameter read is in a matrix's box
    assert edge_counts(source) == sum(len(T.node(tape, i).inputs)
                                      for i in range(len(params), len(tape)))
    assert "relu ×16" in source and "dot ×16" in source  # mlp_fc1's 16 rows, then its relu


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_draw_runs_writes_a_picture(tmp_path) -> None:
    tiny, params, tape, inputs = tiny_position()
    out = graph.draw_runs(tape, tmp_path / "runs.svg", len(params), inputs)
    assert "<svg" in open(out, encoding="utf-8").read()


@pytest.mark.parametrize("n_layer", [1, 2, 3])
def test_layer_steps_follow_the_forward_pass(n_layer) -> None:
    config = model.Config(vocab_size=5, n_layer=n_layer, n_embd=8, n_head=2)
    steps = pictures.layer_steps(config)
    assert sum(s.name == "attention" for s in steps) == n_layer
    assert sum(s.kind == "add" for s in steps) == 2 * n_layer
    for i, step in enumerate(steps):  # a residual adds back the input of its block's rmsnorm
        if step.kind == "add":
            assert steps[step.residual + 1].name == "rmsnorm" and step.residual < i
