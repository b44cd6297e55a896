"""The backward pass training runs is its specification, bit for bit.

``tape.backward_spec`` is the backward pass written as the design states it: a fold over node
ids from the root down into a persistent vector. ``tape.backward`` and ``backward_as_tuple``
compute it with ``fast_backward``: a loop over a local list that skips zero adjoints, stops at
the leaves, visits a ``Block``'s members without unfolding them, and hands them over in the
form each interpreter runs fastest. Each property below compares the two by the bits of every
gradient (``float.hex`` tells ``0.0`` from ``-0.0``), on random programs over every primitive,
on random Blocks (repeated ids, ids both common and a member's own, layer-shaped Runs), and on
the tape of a real training step.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Program, blocks, finite, programs, run_on_tape

import functional_gpt.tape as T
from functional_gpt import fast_backward, model, train

values = finite(-4.0, 4.0)


def bits(xs):
    """Every float of ``xs`` by its bits: equal only when the floats are identical."""
    return tuple(float.hex(x) for x in xs)


def assert_fast_equals_spec(tape: T.Tape, root: int) -> None:
    spec = T.backward_spec(tape, root)
    assert bits(T.backward_as_tuple(tape, root)) == bits(spec)
    assert bits(T.backward(tape, root)) == bits(spec)


@given(programs(), st.data())
def test_on_random_programs(program: Program, data: st.DataObject) -> None:
    tape = run_on_tape(program)
    assert_fast_equals_spec(tape, program.root)
    assert_fast_equals_spec(tape, data.draw(st.integers(0, len(tape) - 1), label="root"))


@given(blocks(), st.data())
@settings(max_examples=150)
def test_on_random_blocks(case, data: st.DataObject) -> None:
    """A block under a root that reads every member (and twice the first), from every root."""
    tape, block, member_values = case
    tape, ids = T.push_block(tape, "blk", member_values, block)
    weights = data.draw(st.lists(values, min_size=len(ids), max_size=len(ids)), label="weights")
    tape, ws = T.map_tape(tape, weights, T.var)
    tape, root = T.dot(tape, ids + ids[:1], ws + ws[:1])
    assert_fast_equals_spec(tape, root)
    for i in ids:
        assert_fast_equals_spec(tape, i)


@given(blocks(), st.data())
@settings(max_examples=150)
def test_every_form_of_a_block_hand_over_is_the_loop(case, data: st.DataObject) -> None:
    """The hand-over this interpreter runs, and the written-out one, equal the plain loop."""
    tape, block, member_values = case
    m = len(member_values)
    first = len(tape)
    adjoint = data.draw(st.lists(st.one_of(st.just(0.0), values), min_size=first + m,
                                 max_size=first + m), label="adjoints")
    expected = list(adjoint)
    fast_backward.loop_block_hand_over(expected, block, first, first + m - 1)
    forms = [fast_backward.block_hand_over]
    n_own, n_common = len(block.own_grads), len(block.shared_ids)
    forms.append(fast_backward.written_out_block_hand_over(n_own, n_common))
    for form in forms:
        out = list(adjoint)
        form(out, block, first, first + m - 1)
        assert bits(out) == bits(expected)


def test_zero_adjoints_skipped_are_exact() -> None:
    """A node whose adjoint is 0 is skipped by the fast pass; its inputs' gradients are unchanged.

    relu(-1) passes 0 on, with a negative local gradient below it: the spec adds -0.0 products
    and the fast pass adds nothing; both leave +0.0."""
    tape, x = T.var(T.new(), -1.0)
    tape, y = T.scale(tape, x, -3.0)
    tape, r = T.relu(tape, x)
    tape, z = T.add(tape, r, y)
    assert_fast_equals_spec(tape, z)
    assert float.hex(T.backward(tape, r)[x]) == float.hex(0.0)


@pytest.mark.parametrize("n_layer", [1, 2])
def test_on_the_tape_of_a_training_step(n_layer: int) -> None:
    """The loss of a real step: linear and attention Blocks, Runs, rmsnorm, softmax, all of it."""
    run = train.prepare(["emma", "olivia", "ava", "isabella", "sophia"], seed=42,
                        n_embd=8, n_head=2, n_layer=n_layer, block_size=8)
    state = run.state
    tape, loss = model.doc_loss(state.tape, model.layout(state.config), state.config,
                                run.tokens[1])
    assert_fast_equals_spec(tape, loss)
