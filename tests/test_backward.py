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

import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import Program, blocks, finite, programs, run_on_tape

import functional_gpt.tape as T
from functional_gpt import fast_backward, model, train
from functional_gpt import layers as L

values = finite(-4.0, 4.0)


def bits(xs):
    """Every float of ``xs`` by its bits: equal only when the floats are identical."""
    return tuple(float.hex(x) for x in xs)


def assert_fast_equals_spec(tape: T.Tape, root: int) -> None:
    try:
        spec = T.backward_spec(tape, root)
    except T.NonFiniteError as e:  # a gradient overflowed: both passes say so, alike
        for fast in (T.backward_as_tuple, T.backward):
            with pytest.raises(T.NonFiniteError, match=re.escape(str(e))):
                fast(tape, root)
        return
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
    tape, root = T.dot(tape, T.as_ids(ids + ids[:1]), ws + ws[:1])
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


# ------------------------------------------- every tape the public API accepts


grads = finite(-2.0, 2.0)


@st.composite
def batch_nodes(draw: st.DrawFn, n: int) -> list:
    """A batch for ``push_many`` on a tape of ``n`` nodes: plain nodes and the members of Blocks,
    each reading any node before it (earlier members of its own batch and Block included), the
    members in any order, some alone, some repeated, some left out."""
    items: list = []
    while len(items) < draw(st.integers(1, 6), label="size"):
        here = n + len(items)  # the id this item will get
        if draw(st.booleans(), label="a block?"):
            m = draw(st.integers(1, 4), label="members")
            n_own, n_common = draw(st.integers(0, 2)), draw(st.integers(0, 2))
            ids = st.integers(0, here + m - 1)  # may read members: refused unless they came first
            block = T.Block(
                tuple(tuple(draw(st.lists(ids, min_size=n_own, max_size=n_own)))
                      for _ in range(m)),
                tuple(draw(st.lists(grads, min_size=n_own, max_size=n_own))),
                tuple(draw(st.lists(ids, min_size=n_common, max_size=n_common))),
                tuple(tuple(draw(st.lists(grads, min_size=n_common, max_size=n_common)))
                      for _ in range(m)))
            members = list(T.block_nodes("blk", draw(st.lists(values, min_size=m, max_size=m)),
                                         block))
            order = draw(st.sampled_from(["as made", "shuffled", "some", "twice"]), label="order")
            if order == "shuffled":
                members = draw(st.permutations(members))
            elif order == "some":
                members = [e for e in members if draw(st.booleans())]
            elif order == "twice":
                members = members + members
            for entry in members:  # keep those that read only nodes before them
                value, blk, k, _ = entry
                reads = blk.own_ids[k] + blk.shared_ids
                if not reads or max(reads) < n + len(items):
                    items.append(entry)
        else:
            width = draw(st.integers(0, 3))
            inputs = tuple(draw(st.lists(st.integers(0, here - 1), min_size=width,
                                         max_size=width))) if here else ()
            items.append((draw(values), inputs,
                          tuple(draw(st.lists(grads, min_size=len(inputs), max_size=len(inputs)))),
                          "node"))
    return items


@st.composite
def public_tapes(draw: st.DrawFn) -> T.Tape:
    """A tape built by any mix of what the public API accepts: leaves, primitives, ``push``,
    ``push_many`` batches (Blocks in any order, members alone, members reading members, plain
    nodes reading their batch), ``push_block`` and the fused layers."""
    n0 = draw(st.integers(1, 4), label="leaves")
    inputs = draw(st.lists(values, min_size=n0, max_size=n0))
    tape = T.leaves(inputs) if draw(st.booleans()) else T.map_tape(T.new(), inputs, T.var)[0]
    for _ in range(draw(st.integers(1, 6), label="steps")):
        n = len(tape)
        some_ids = st.lists(st.integers(0, n - 1), min_size=1, max_size=3).map(T.as_ids)
        kind = draw(st.sampled_from(["batch", "block", "push", "mul", "sum", "linear",
                                     "softmax", "rmsnorm"]), label="kind")
        if kind == "batch":
            tape, _ = T.push_many(tape, draw(batch_nodes(n)))
        elif kind == "block":
            m, n_common = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            block = T.Block(tuple(draw(some_ids)[:1] for _ in range(m)), (draw(grads),),
                            draw(st.lists(st.integers(0, n - 1), min_size=n_common,
                                          max_size=n_common).map(tuple)),
                            tuple(tuple(draw(st.lists(grads, min_size=n_common,
                                                      max_size=n_common))) for _ in range(m)))
            tape, _ = T.push_block(tape, "blk", draw(st.lists(values, min_size=m, max_size=m)),
                                   block)
        elif kind == "push":
            ids = draw(some_ids)
            tape, _ = T.push(tape, "mine", draw(values), ids,
                             draw(st.lists(grads, min_size=len(ids), max_size=len(ids))))
        elif kind == "mul":
            a, b = draw(some_ids)[0], draw(some_ids)[0]
            if abs(T.data(tape, a) * T.data(tape, b)) < 1e100:
                tape, _ = T.mul(tape, a, b)
        elif kind == "sum":
            tape, _ = T.sum(tape, draw(some_ids))
        elif kind == "linear":
            x = draw(some_ids)
            rows = [draw(st.lists(st.integers(0, n - 1), min_size=len(x), max_size=len(x))
                         .map(T.as_ids)) for _ in range(draw(st.integers(1, 3)))]
            if all(abs(v) < 1e3 for v in T.values(tape, range(n))):
                tape, _ = L.linear(tape, x, rows)
        elif kind == "softmax":
            tape, _ = L.softmax(tape, draw(some_ids))
        elif kind == "rmsnorm":
            if all(abs(v) < 1e3 for v in T.values(tape, range(n))):
                tape, _ = L.rmsnorm(tape, draw(some_ids))
    return tape


@given(public_tapes(), st.data())
@settings(max_examples=300)
def test_fast_equals_spec_on_every_tape_the_api_accepts(tape: T.Tape, data: st.DataObject):
    """The fast backward is ``backward_spec``, bit for bit, on any tape the public API builds."""
    assert_fast_equals_spec(tape, len(tape) - 1)
    assert_fast_equals_spec(tape, data.draw(st.integers(0, len(tape) - 1), label="root"))


def test_a_block_member_that_reads_an_earlier_member() -> None:
    """``y1 = (a*c)*c`` as a Block whose member 1 reads member 0: d/da = 25, d/dc = 20."""
    tape, (a, c) = T.map_tape(T.new(), [2.0, 5.0], T.var)
    y0 = len(tape)
    block = T.Block(((a,), (y0,)), (5.0,), (c,), ((2.0,), (10.0,)))
    tape, (_, y1) = T.push_many(tape, T.block_nodes("mul", (10.0, 50.0), block))
    assert T.backward(tape, y1)[:2] == [25.0, 20.0]
    assert_fast_equals_spec(tape, y1)


def test_a_block_member_pushed_alone() -> None:
    """Member 1 alone, after a plain node: only its own inputs get a gradient."""
    tape, (a, c) = T.map_tape(T.new(), [2.0, 5.0], T.var)
    tape, _ = T.mul(tape, a, a)
    block = T.Block(((a,), (c,)), (5.0,), (c,), ((2.0,), (5.0,)))
    tape, (y,) = T.push_many(tape, T.block_nodes("mul", (10.0, 25.0), block)[1:])
    assert T.backward(tape, y)[:2] == [0.0, 10.0]  # y = c * c reads c only
    assert_fast_equals_spec(tape, y)


def test_push_many_refuses_what_is_not_a_tape_node() -> None:
    tape = T.leaves([1.0, 2.0])
    cases = [
        ([(1.0, (2,), (1.0,), "self")], IndexError, "input 2 is not a node before node 2"),
        ([(1.0, (0,), (), "short")], ValueError, "1 inputs but 0 local gradients"),
        ([(1.0, (True,), (1.0,), "flag")], TypeError, "a bool is not one"),
        ([(1.0, (0,), (1.0,))], TypeError, "must be (value, inputs, local_grads, op)"),
        ([(1.0, T.Block(((0,),), (1.0,), (), ((),)), 3, "m")], ValueError, "member index 3"),
        ([(1.0, T.Block(((5,),), (1.0,), (), ((),)), 0, "m")], IndexError, "input 5"),
    ]
    for batch, error, words in cases:
        with pytest.raises(error, match=re.escape(words)):
            T.push_many(tape, batch)


@given(st.integers(1, 40), st.floats(1e10, 1e300))
def test_a_gradient_that_overflows_is_an_error_in_both_passes(n: int, factor: float) -> None:
    """relu of -1 (value 0, local gradient 0), then n scales by a huge factor: the relu's
    adjoint is factor**n, and once that passes 1e308 both passes raise NonFiniteError naming
    the node where it did, never giving inf or nan (0 * inf) for the input."""
    tape, x = T.var(T.new(), -1.0)
    tape, node = T.relu(tape, x)
    g = 1.0
    for _ in range(n):
        tape, node = T.scale(tape, node, factor)
        g *= factor
    assert_fast_equals_spec(tape, node)
    if math.isinf(g):
        with pytest.raises(T.NonFiniteError, match=r"the gradient of node \d+ \(\w+\) overflows"):
            T.backward(tape, node)
    else:
        assert T.backward(tape, node)[x] == 0.0
