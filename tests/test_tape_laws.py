"""Algebraic laws of the tape API: threading, linearity, reset/update, value_and_grad, printing."""

import math
import pickle
import re
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_autograd import central_difference
from strategies import Program, finite, program_function, programs, run_on_tape, snapshot

import functional_gpt.tape as T
from functional_gpt import repl

floats = finite(-5.0, 5.0)


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    """a and b agree to ``rel`` relative to the larger magnitude (absolutely below 1)."""
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


@st.composite
def tape_and_nodes(draw: st.DrawFn, count: int = 2) -> tuple[T.Tape, tuple[int, ...]]:
    """A random program's tape and ``count`` random node ids on it."""
    tape = run_on_tape(draw(programs()))
    nodes = st.integers(0, len(tape) - 1)
    return tape, T.as_ids(draw(st.lists(nodes, min_size=count, max_size=count)))


# ------------------------------------------------------------ map_tape / zip_map_tape


@given(xs=st.lists(floats, max_size=6), start=st.lists(floats, max_size=3))
def test_map_tape_with_var_appends_leaves_in_order(xs: list[float], start: list[float]) -> None:
    """map_tape(tape, xs, var) gives one new leaf per item, in order, with consecutive ids."""
    tape, _ = T.map_tape(T.new(), start, T.var)
    out, ids = T.map_tape(tape, xs, T.var)
    assert ids == tuple(range(len(tape), len(tape) + len(xs)))
    assert T.values(out, ids) == tuple(xs)
    assert len(out) == len(tape) + len(xs)


@given(tape_and_nodes(count=4), finite(-2.0, 2.0))
def test_map_tape_is_explicit_threading(tn: tuple[T.Tape, tuple[int, ...]], s: float) -> None:
    """map_tape(tape, items, f) equals the for-loop that threads the tape through f by hand."""
    tape, items = tn

    def f(t: T.Tape, i: int) -> tuple[T.Tape, int]:
        t, y = T.scale(t, i, s)
        return T.add(t, y, items[0])

    by_hand, results = tape, []
    for item in items:
        by_hand, r = f(by_hand, item)
        results.append(r)
    assert T.map_tape(tape, items, f) == (by_hand, tuple(results))


@given(tape_and_nodes(count=1), st.lists(floats, max_size=4), st.lists(floats, max_size=4))
def test_map_tape_over_a_concatenation(
    tn: tuple[T.Tape, tuple[int, ...]], xs: list[float], ys: list[float]
) -> None:
    """Mapping over xs + ys is mapping over xs, then over ys from where that left off."""
    tape, _ = tn
    t1, r1 = T.map_tape(tape, xs, T.var)
    t2, r2 = T.map_tape(t1, ys, T.var)
    assert T.map_tape(tape, xs + ys, T.var) == (t2, r1 + r2)


@given(tape_and_nodes(count=1))
def test_map_tape_over_nothing_returns_the_same_tape(tn: tuple[T.Tape, tuple[int, ...]]) -> None:
    """With no items, map_tape and zip_map_tape return the very tape they were given."""
    tape, _ = tn
    out, results = T.map_tape(tape, [], T.neg)
    assert out is tape and results == ()
    out, results = T.zip_map_tape(tape, [], [], T.add)
    assert out is tape and results == ()


@given(tape_and_nodes(count=6))
def test_zip_map_tape_is_explicit_threading(tn: tuple[T.Tape, tuple[int, ...]]) -> None:
    """zip_map_tape(tape, xs, ys, f) threads the tape through f over the pairs, in order."""
    tape, ids = tn
    xs, ys = ids[:3], ids[3:]
    by_hand, results = tape, []
    for x, y in zip(xs, ys):
        by_hand, r = T.mul(by_hand, x, y)
        results.append(r)
    out = T.zip_map_tape(tape, xs, ys, T.mul)
    assert out == (by_hand, tuple(results))
    assert len(out[1]) == 3 and len(out[0]) == len(tape) + 3


@given(tape_and_nodes(count=5), st.integers(0, 4))
def test_zip_map_tape_refuses_different_lengths(
    tn: tuple[T.Tape, tuple[int, ...]], cut: int
) -> None:
    """zip_map_tape raises ValueError (naming itself) when xs and ys differ in length."""
    tape, ids = tn
    before = snapshot(tape)
    with pytest.raises(ValueError, match="zip_map_tape"):
        T.zip_map_tape(tape, ids, ids[:cut], T.add)
    assert snapshot(tape) == before


# ---------------------------------------------------------------- backward


@given(tape_and_nodes(count=2))
def test_backward_is_linear_in_the_root(tn: tuple[T.Tape, tuple[int, ...]]) -> None:
    """grad(a + b) = grad a + grad b and grad(a - b) = grad a - grad b, node by node."""
    tape, (a, b) = tn
    ga, gb = T.backward(tape, a), T.backward(tape, b)
    t_add, plus = T.add(tape, a, b)
    t_sub, minus = T.sub(tape, a, b)
    g_plus, g_minus = T.backward(t_add, plus), T.backward(t_sub, minus)
    for i in range(len(tape)):
        assert close(g_plus[i], ga[i] + gb[i]), (i, g_plus[i], ga[i], gb[i])
        assert close(g_minus[i], ga[i] - gb[i]), (i, g_minus[i], ga[i], gb[i])


@given(tape_and_nodes(count=1), finite(-3.0, 3.0))
def test_backward_scales_with_the_root(tn: tuple[T.Tape, tuple[int, ...]], s: float) -> None:
    """grad(s * a) = s * grad a, node by node."""
    tape, (a,) = tn
    ga = T.backward(tape, a)
    t, sa = T.scale(tape, a, s)
    g = T.backward(t, sa)
    assert all(close(g[i], s * ga[i]) for i in range(len(tape)))


@given(tape_and_nodes(count=1), st.lists(floats, min_size=1, max_size=3))
def test_backward_ignores_later_nodes(tn: tuple[T.Tape, tuple[int, ...]], xs: list[float]) -> None:
    """The gradient of a root is 1 at the root, 0 after it, and unchanged by appending nodes."""
    tape, (root,) = tn
    grads = T.backward(tape, root)
    assert len(grads) == len(tape) and grads[root] == 1.0
    assert all(g == 0.0 for g in grads[root + 1 :])
    longer, ids = T.map_tape(tape, xs, T.var)
    longer, _ = T.sum(longer, (*ids, root))
    assert list(T.backward(longer, root)) == [*grads, *([0.0] * (len(longer) - len(tape)))]


@given(programs())
def test_value_and_grad_matches_finite_differences(program: Program) -> None:
    """value_and_grad(f)(xs) is f's output and its central-difference gradient in each input."""
    f = program_function(program)
    value, grads = repl.value_and_grad(f)(program.inputs)
    assert value == T.data(run_on_tape(program), program.root)
    assert len(grads) == len(program.inputs)

    def plain(xs: Sequence[float]) -> float:
        return repl.value_and_grad(f)(xs)[0]

    for i, g in enumerate(grads):
        assert close(g, central_difference(plain, program.inputs, i), rel=1e-5)


# ----------------------------------------------------------- reset / update


@given(programs(), st.data())
def test_reset_keeps_the_first_nodes_as_leaves(program: Program, data: st.DataObject) -> None:
    """reset(tape, k) is k leaves holding the first k values; the tape given is unchanged."""
    tape = run_on_tape(program)
    before = snapshot(tape)
    k = data.draw(st.integers(0, len(tape)))
    out = T.reset(tape, k)
    assert len(out) == k
    assert all(inputs == () and grads == () for _, inputs, grads, _ in out.nodes)
    assert T.values(out, range(k)) == T.values(tape, range(k))
    assert snapshot(tape) == before
    assert T.reset(out, k) == out  # resetting again changes nothing


@given(programs(), st.one_of(st.integers(-5, -1), st.integers(100, 200), st.just(1.0)))
def test_reset_refuses_a_bad_count(program: Program, k: object) -> None:
    """reset with a count outside 0..len(tape) (or not an int) raises ValueError naming reset."""
    tape = run_on_tape(program)
    with pytest.raises(ValueError, match="reset"):
        T.reset(tape, k)


def leading_leaves(tape: T.Tape) -> int:
    """How many of the first nodes of ``tape`` are leaves (no inputs), counted naively."""
    n = 0
    while n < len(tape) and not T.node(tape, n).inputs:
        n += 1
    return n


@given(programs(), st.data())
def test_update_is_reset_with_new_values(program: Program, data: st.DataObject) -> None:
    """update(tape, vs) on a tape built with var: len(vs) leaves holding vs, shaped like reset,
    with one value per leading leaf; the tape is unchanged."""
    tape = run_on_tape(program)
    before = snapshot(tape)
    n = leading_leaves(tape)
    vs = data.draw(st.lists(floats, min_size=n, max_size=n))
    out = T.update(tape, vs)
    assert T.values(out, range(len(out))) == tuple(vs)
    assert len(out) == len(T.reset(tape, len(vs)))
    assert all(inputs == () for _, inputs, _, _ in out.nodes)
    assert snapshot(tape) == before


@given(programs(), st.integers(1, 5))
def test_update_on_a_var_tape_refuses_to_drop_a_leading_leaf(program: Program, fewer: int) -> None:
    """Fewer values than a var-built tape's leading leaves: refused, with the explicit way."""
    tape = run_on_tape(program)
    n = leading_leaves(tape) - fewer
    if n >= 0:
        with pytest.raises(ValueError, match=rf"update: {n} values for a tape whose first "
                                             rf".* update\(reset\(tape, {n}\), values\)"):
            T.update(tape, [1.0] * n)
        assert len(T.update(T.reset(tape, n), [1.0] * n)) == n


@given(programs(), st.integers(1, 5))
def test_update_refuses_to_make_a_computed_node_a_parameter(program: Program, extra: int) -> None:
    """update with values for more nodes than the tape's leading leaves raises ValueError."""
    tape = run_on_tape(program)
    n = leading_leaves(tape) + extra
    if n <= len(tape):
        with pytest.raises(ValueError, match="update: node .* is not a leaf"):
            T.update(tape, [1.0] * n)


@given(st.lists(floats, min_size=1, max_size=8), st.data())
def test_update_of_a_parameter_tape_takes_one_value_per_parameter(
    params: list[float], data: st.DataObject
) -> None:
    """A tape made by leaves, reset or update knows its parameters: update takes exactly that many
    values (after any nodes pushed on it) and refuses one too few or too many."""
    tape = T.leaves(params)
    tape, _ = T.map_tape(tape, T.as_ids(range(len(params))), T.relu)
    good = data.draw(st.lists(floats, min_size=len(params), max_size=len(params)))
    assert T.values(T.update(tape, good), range(len(params))) == tuple(good)
    for wrong in (len(params) - 1, len(params) + 1):
        with pytest.raises(ValueError, match=f"update: {wrong} values for a tape of "
                                             f"{len(params)} parameters"):
            T.update(tape, [1.0] * wrong)


@given(programs(), st.integers(1, 5))
def test_update_refuses_too_many_values(program: Program, extra: int) -> None:
    """update with more values than the tape has nodes raises ValueError naming update."""
    tape = run_on_tape(program)
    with pytest.raises(ValueError, match="update"):
        T.update(tape, [1.0] * (len(tape) + extra))


# ------------------------------------------------------- printing and identity


@given(programs(), st.integers(0, 30))
def test_table_has_a_row_for_every_node(program: Program, limit: int) -> None:
    """table(tape) has a header and one row per node: its id, op, value, inputs, local grads.

    Each row is parsed back and compared with the node; table(tape, limit)
    keeps just the last ``limit`` rows.
    """
    tape = run_on_tape(program)
    lines = repl.table(tape).splitlines()
    assert len(lines) == len(tape) + 1
    assert lines[0].split() == ["id", "op", "value", "inputs", "local_grads"]
    for i, line in enumerate(lines[1:]):
        node = T.node(tape, i)
        cells = line.replace(",", " ").split()
        k = len(node.inputs)
        assert int(cells[0]) == i and cells[1] == node.op
        assert math.isclose(float(cells[2]), node.value, rel_tol=1e-5, abs_tol=1e-300)
        assert tuple(map(int, cells[3 : 3 + k])) == node.inputs
        shown = tuple(map(float, cells[3 + k :]))
        assert len(shown) == len(node.local_grads)
        assert all(math.isclose(x, g, rel_tol=1e-5) for x, g in zip(shown, node.local_grads))
    tail = repl.table(tape, limit).splitlines()
    kept = min(limit, len(tape))
    assert [line.split()[0] for line in tail[1:]] == [str(i) for i in range(len(tape))][
        len(tape) - kept :
    ]


@given(programs())
def test_repr_counts_nodes_leaves_and_edges(program: Program) -> None:
    """repr(tape) states how many nodes, leaves and edges (input references) the tape has.

    A leaf is a node that reads no other node: an input, a constant, or an empty sum or dot.
    """
    tape = run_on_tape(program)
    counts = re.fullmatch(r"<Tape: (\d+) nodes \((\d+) leaves\), (\d+) edges>", repr(tape))
    assert counts is not None
    leaves = len(program.inputs) + sum(not ins.args for ins in program.instrs)
    edges = sum(len(ins.args) for ins in program.instrs)
    assert tuple(map(int, counts.groups())) == (len(tape), leaves, edges)


@given(programs())
def test_tapes_are_values(program: Program) -> None:
    """Tapes compare and hash by content, survive pickling, and refuse attribute assignment."""
    tape, again = run_on_tape(program), run_on_tape(program)
    assert tape == again and hash(tape) == hash(again) and tape is not again
    assert pickle.loads(pickle.dumps(tape)) == tape
    with pytest.raises(AttributeError):
        tape.nodes = T.new().nodes
