"""How a tape stores its nodes is invisible: chunks, Runs and Blocks against plain node lists.

The tape keeps pushed nodes in 64-node chunks plus a tail, reads consecutive ids (``Run``) by
slices, and stores a layer's rows once as a ``Block``. Each property compares that storage with
an independent oracle: the plain list of node tuples that the pushes describe, read one id at a
time, or the same nodes pushed one by one with ``push_many``.
"""

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import blocks, finite

import functional_gpt.tape as T

values = finite(-4.0, 4.0)


@st.composite
def pushed_tapes(draw):
    """A tape of a few leaves then batches of leaf-like nodes, and the plain list it holds."""
    base = draw(st.lists(values, max_size=5))
    tape, plain = T.leaves(base), [(x, (), (), "var") for x in base]
    for size in draw(st.lists(st.integers(0, 90), max_size=6)):  # batches crossing chunk edges
        batch = [(draw(values), (), (), "var") for _ in range(size)]
        tape, ids = T.push_many(tape, batch) if size != 1 else T.var(tape, batch[0][0])
        plain.extend(batch)
    return tape, plain


@given(pushed_tapes(), st.data())
@settings(max_examples=60)
def test_reads_equal_the_plain_list(tape_and_plain, data):
    """Every read (one id, a Run, any id list) gives what the plain node list holds."""
    tape, plain = tape_and_plain
    assert len(tape) == len(plain)
    assert list(tape.nodes) == plain
    if not plain:
        return
    ids = data.draw(st.lists(st.integers(0, len(plain) - 1), max_size=40), label="ids")
    assert T.values(tape, ids) == tuple(plain[i][0] for i in ids)
    lo = data.draw(st.integers(0, len(plain)), label="lo")
    hi = data.draw(st.integers(lo, len(plain)), label="hi")
    assert T.values(tape, T.Run(lo, hi)) == tuple(node[0] for node in plain[lo:hi])
    i = data.draw(st.integers(0, len(plain) - 1), label="i")
    assert tuple(T.node(tape, i)) == plain[i]


@given(pushed_tapes())
@settings(max_examples=30)
def test_a_tape_survives_pickling_and_equals_its_nodes(tape_and_plain):
    tape, _ = tape_and_plain
    again = pickle.loads(pickle.dumps(tape))
    assert again == tape and again.nodes == tape.nodes and hash(again) == hash(tape)


@given(st.integers(0, 10**6), st.integers(0, 200))
def test_a_run_is_the_tuple_of_its_range(start, length):
    ids = T.Run(start, start + length)
    assert ids == tuple(range(start, start + length))
    assert type(pickle.loads(pickle.dumps(ids))) is T.Run
    assert pickle.loads(pickle.dumps(ids)) == ids


@given(st.integers(0, 1000), st.integers(0, 6), st.integers(0, 6))
def test_a_run_matrix_is_the_tuple_of_its_rows(start, rows, cols):
    """RunMatrix(start, rows, cols): row r is Run(start + r * cols, start + (r + 1) * cols)."""
    m = T.RunMatrix(start, rows, cols)
    expected = tuple(tuple(range(start + r * cols, start + (r + 1) * cols)) for r in range(rows))
    assert m == expected and all(type(row) is T.Run for row in m)
    again = pickle.loads(pickle.dumps(m))
    assert type(again) is T.RunMatrix and again == m


@given(blocks(), st.data())
@settings(max_examples=150)
def test_a_block_is_its_members_pushed_one_by_one(case, data):
    """A block's nodes, and every gradient through them, are those of the unfolded nodes."""
    tape, block, member_values = case
    flat_nodes = [
        (v, block.own_ids[k] + block.shared_ids,
         block.own_grads + block.shared_grads[k], "blk")
        for k, v in enumerate(member_values)
    ]
    t_block, ids_block = T.push_block(tape, "blk", member_values, block)
    t_flat, ids_flat = T.push_many(tape, flat_nodes)
    assert ids_block == ids_flat
    assert t_block.nodes == t_flat.nodes and t_block == t_flat
    # A root on top reading every member with random weights, then the gradients: bit for bit.
    weights = data.draw(st.lists(values, min_size=len(ids_block), max_size=len(ids_block)))
    t_block, w_block = T.map_tape(t_block, weights, T.var)
    t_flat, w_flat = T.map_tape(t_flat, weights, T.var)
    t_block, root_block = T.dot(t_block, ids_block, w_block)
    t_flat, root_flat = T.dot(t_flat, ids_flat, w_flat)
    assert T.backward_as_tuple(t_block, root_block) == T.backward_as_tuple(t_flat, root_flat)
    if ids_block:  # and from a root inside the block
        k = data.draw(st.integers(0, len(ids_block) - 1), label="member")
        assert (T.backward_as_tuple(t_block, ids_block[k])
                == T.backward_as_tuple(t_flat, ids_flat[k]))


def test_a_block_hands_over_in_the_order_of_its_members():
    """Float addition is not associative: these products give a different sum in any other order,
    so the block's gradients equal the flat nodes' only if both add them last member first."""
    tape = T.leaves([0.5, 1.0, 2.0, 3.0])
    products = (1e16, 1.0, -1e16, 3.0)  # shared gradients of id 0; the member adjoints are 1
    rows, shared_grads = tuple(T.Run(1, 2) for _ in products), tuple((p,) for p in products)
    block = T.Block(rows, (2.0,), (0,), shared_grads)
    flat = [(1.0, (1, 0), (2.0, p), "blk") for p in products]
    t_block, ids_block = T.push_block(tape, "blk", (1.0,) * len(products), block)
    t_flat, ids_flat = T.push_many(tape, flat)
    t_block, root_block = T.sum(t_block, ids_block)
    t_flat, root_flat = T.sum(t_flat, ids_flat)
    grads = T.backward_as_tuple(t_flat, root_flat)
    assert grads[0] == ((3.0 + -1e16) + 1.0) + 1e16  # the last member's product first
    assert T.backward_as_tuple(t_block, root_block) == grads


def test_push_block_checks_its_shapes_and_values():
    tape = T.leaves([1.0, 2.0])
    good = T.Block(((0,),), (2.0,), (1,), ((1.0,),))
    for bad in (T.Block(((0,), (1,)), (2.0,), (1,), ((1.0,),)),   # two rows, one value
                T.Block(((0, 1),), (2.0,), (1,), ((1.0,),)),      # a row longer than its grads
                T.Block(((0,),), (2.0,), (1,), ((1.0, 3.0),))):   # shared grads too long
        try:
            T.push_block(tape, "blk", (2.0,), bad)
        except ValueError as e:
            assert str(e).startswith("blk: ")
        else:
            raise AssertionError(f"accepted {bad}")
    try:
        T.push_block(tape, "blk", (float("inf"),), good)
    except T.NonFiniteError as e:
        assert "blk: result inf" in str(e)
    else:
        raise AssertionError("accepted an infinite value")
