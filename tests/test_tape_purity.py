"""Persistence: no operation ever changes a tape that already exists.

A hypothesis state machine keeps every tape it has made, each with a
plain-tuple snapshot taken when it was made. Its rules extend, branch,
differentiate, reset and update randomly chosen EARLIER tapes, and its
invariant is that every tape still equals its snapshot.
"""

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from strategies import Instr, apply_instr, finite, instructions, snapshot

import functional_gpt.tape as T
from functional_gpt import layers as L
from functional_gpt import repl, trees


def try_step(tape: T.Tape, ins: Instr) -> tuple[T.Tape, int] | None:
    """Run one instruction, or None when it is a domain error (refused with ValueError)."""
    try:
        return apply_instr(tape, ins)
    except ValueError:
        return None


class TapeForest(RuleBasedStateMachine):
    """A growing forest of tapes, each branching off a random earlier one."""

    def __init__(self) -> None:
        super().__init__()
        self.tapes: list[T.Tape] = []
        self.snapshots: list[object] = []
        self.keep(T.new())

    def keep(self, tape: T.Tape) -> None:
        self.tapes.append(tape)
        self.snapshots.append(snapshot(tape))

    def pick(self, data: st.DataObject, nonempty: bool = False) -> T.Tape:
        choices = [t for t in self.tapes if len(t) or not nonempty]
        return choices[data.draw(st.integers(0, len(choices) - 1), label="tape")]

    @rule(data=st.data())
    def extend(self, data: st.DataObject) -> None:
        """An op appends exactly one node, keeps the old nodes, and is deterministic."""
        tape = self.pick(data)
        ins = data.draw(instructions(len(tape)), label="op")
        result = try_step(tape, ins)
        assert try_step(tape, ins) == result  # the same op on the same tape: equal results
        if result is not None:
            new, i = result
            assert i == len(tape) and len(new) == len(tape) + 1
            assert new.nodes[: len(tape)] == tape.nodes
            self.keep(new)

    @rule(data=st.data())
    def branch(self, data: st.DataObject) -> None:
        """Two continuations of one tape don't interfere: each is what it would be alone."""
        tape = self.pick(data)
        ins_a = data.draw(instructions(len(tape)), label="op a")
        ins_b = data.draw(instructions(len(tape)), label="op b")
        a = try_step(tape, ins_a)
        b = try_step(tape, ins_b)
        assert try_step(tape, ins_a) == a  # unaffected by b having been made since
        if a is not None and b is not None:
            (ta, ia), (tb, ib) = a, b
            assert ia == ib == len(tape)  # both continuations hand out the same next id
            assert ta.nodes[:-1] == tb.nodes[:-1] == tape.nodes
            # continuing a with b's op gives b's node on top of a's, untouched by a
            tab, iab = apply_instr(ta, ins_b)
            assert tab.nodes[ia] == ta.nodes[ia] and tab.nodes[iab] == tb.nodes[ib]
        for result in (a, b):
            if result is not None:
                self.keep(result[0])

    @precondition(lambda self: any(len(t) for t in self.tapes))
    @rule(data=st.data())
    def differentiate(self, data: st.DataObject) -> None:
        """backward reads a tape without changing it and returns one gradient per node."""
        tape = self.pick(data, nonempty=True)
        root = data.draw(st.integers(0, len(tape) - 1), label="root")
        grads = T.backward(tape, root)
        assert len(grads) == len(tape) and grads[root] == 1.0
        assert all(g == 0.0 for g in grads[root + 1 :])
        assert T.backward(tape, root) == grads

    @rule(data=st.data())
    def reset(self, data: st.DataObject) -> None:
        """reset returns a new tape of leaves; the one it came from is kept as it was."""
        tape = self.pick(data)
        k = data.draw(st.integers(0, len(tape)), label="num_params")
        self.keep(T.reset(tape, k))

    @rule(data=st.data())
    def update(self, data: st.DataObject) -> None:
        """update returns a new tape of leaves with new values; the old tape is kept as it was."""
        tape = self.pick(data)
        n = len(tape.base)  # a tape of parameters takes one value per parameter
        if not n:  # a tape built with var takes one value per leading leaf
            while n < len(tape) and not T.node(tape, n).inputs:
                n += 1
        vs = data.draw(st.lists(finite(-4.0, 4.0), min_size=n, max_size=n), label="values")
        self.keep(T.update(tape, vs))

    @rule(data=st.data())
    def look(self, data: st.DataObject) -> None:
        """Printing a tape (repr and table) and reading its values change nothing."""
        tape = self.pick(data)
        repr(tape), repl.table(tape), T.values(tape, range(len(tape)))

    @invariant()
    def every_tape_equals_its_snapshot(self) -> None:
        """Every tape ever made still holds exactly the nodes it held when it was made."""
        for tape, snap in zip(self.tapes, self.snapshots):
            assert snapshot(tape) == snap


TestTapeForest = TapeForest.TestCase


# ------------------------------------------------- mutation after the call

JUNK = 7.0  # what scramble writes into every list and dict a call was given


def scramble(obj: object) -> None:
    """Change every list and dict inside ``obj`` in place: each item replaced, one more added."""
    if isinstance(obj, tuple):  # a tuple (a Block, an entry) may hold lists
        for item in obj:
            scramble(item)
    elif isinstance(obj, list):
        for item in obj:
            scramble(item)
        obj[:] = [JUNK] * len(obj) + [JUNK]
    elif isinstance(obj, dict):
        for item in obj.values():
            scramble(item)
        obj.update(dict.fromkeys(obj, JUNK), junk=JUNK)


def ids_list(draw: st.DrawFn, n: int, size: int) -> list:
    return list(T.as_ids(draw(st.lists(st.integers(0, n - 1), min_size=size, max_size=size))))


@st.composite
def public_calls(draw: st.DrawFn, tape: T.Tape) -> tuple[str, object, tuple]:
    """One public call that stores what it is given, as (name, function, arguments), its
    arguments built of fresh lists and dicts."""
    n = len(tape)
    w = draw(st.integers(1, 3), label="width")
    floats = st.lists(finite(-2.0, 2.0), min_size=w, max_size=w)
    xs, ys, ws = ids_list(draw, n, w), ids_list(draw, n, w), draw(floats)
    block = T.Block([list(xs[:1])], [1.5], list(ys), [draw(floats)])
    calls = {
        "push": (T.push, (tape, "mine", 1.0, xs, ws)),
        "push_many": (T.push_many, (tape, [[0.5, xs, ws, "a"], [1.0, [n], [2.0], "b"]])),
        "push_block": (T.push_block, (tape, "blk", [2.0], block)),
        "block_nodes": (lambda t, b: T.push_many(t, list(T.block_nodes("blk", [2.0], b))),
                        (tape, block)),
        "sum": (T.sum, (tape, xs)),
        "dot": (T.dot, (tape, xs, ys)),
        "weighted_sum": (T.weighted_sum, (tape, xs, ws)),
        "linear": (L.linear, (tape, xs, [ys, list(xs)], list(ys[:1] * 2))),
        "softmax": (L.softmax, (tape, xs)),
        "rmsnorm": (L.rmsnorm, (tape, xs)),
        "vector_add": (L.vector_add, (tape, xs, ys)),
        "vector_relu": (L.vector_relu, (tape, xs)),
        "attention": (L.attention, (tape, xs, [ys, list(xs)], [list(xs), ys], 1)),
        "cross_entropy": (L.cross_entropy, (tape, xs, 0)),
        "to_tape": (trees.to_tape, (tape, {"w": draw(floats), "b": [draw(floats)]})),
        "leaves": (lambda t, vs: (T.leaves(vs), 0), (tape, draw(floats))),
    }
    name = draw(st.sampled_from(sorted(calls)), label="call")
    return (name, *calls[name])


@given(st.data())
@settings(max_examples=200)
def test_changing_what_a_call_was_given_never_changes_a_tape(data: st.DataObject) -> None:
    """After every public call that stores what it is given, every list and dict passed in is
    changed: no tape made so far changes, nor its gradients."""
    inputs = data.draw(st.lists(finite(-2.0, 2.0), min_size=2, max_size=4), label="inputs")
    tape = T.leaves(inputs)
    made = [(tape, snapshot(tape), tuple(map(float.hex, T.backward(tape, len(tape) - 1))))]
    for _ in range(data.draw(st.integers(1, 5), label="calls")):
        name, call, args = data.draw(public_calls(tape))
        new, out = call(*args)
        made.append((new, snapshot(new), tuple(map(float.hex, T.backward(new, len(new) - 1)))))
        scramble(args)
        if name != "leaves":
            tape = new
        for t, snap, g in made:
            assert snapshot(t) == snap, name
            assert tuple(map(float.hex, T.backward(t, len(t) - 1))) == g, name
