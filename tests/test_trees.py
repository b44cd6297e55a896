"""functional_gpt.trees: round trips, tree_map laws, purity, init against random.Random, the tape.

The oracles: an independent recursive walk for the leaves and the shape of a tree (written here
without the module), CPython's random.Random for init's draws, and the tape's own reads.
"""

from __future__ import annotations

import copy
import math
import random as std_random
from typing import Any, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

import functional_gpt.tape as T
from functional_gpt import rng as R
from functional_gpt import trees


class Pair(NamedTuple):
    left: Any
    right: Any


class Single(NamedTuple):
    only: Any


class Nothing(NamedTuple):
    pass


# ----------------------------------------------------------------- strategies

leaf_values = st.one_of(
    st.integers(-100, 100),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=3),
    st.booleans(),
)
keys = st.text(alphabet="ab_", max_size=3)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
        st.builds(Pair, children, children),
        st.builds(Single, children),
        st.just(Nothing()),
        st.none(),
    )


tree_of = st.recursive(leaf_values, containers, max_leaves=25)
float_trees = st.recursive(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
    containers, max_leaves=25)


# --------------------------------------------------------------------- oracles


def oracle_leaves(tree: Any) -> list[Any]:
    """The leaves in reading order, by a walk of its own (dict values by sorted key)."""
    if tree is None:
        return []
    if isinstance(tree, dict):
        return [leaf for k in sorted(tree) for leaf in oracle_leaves(tree[k])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in oracle_leaves(item)]
    return [tree]


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type at every level (so a list is not a tuple, 1 not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)


def shape_of(nested: Any) -> tuple[int, ...]:
    """The shape of nested tuples of floats, read off by an independent walk."""
    if isinstance(nested, float):
        return ()
    assert type(nested) is tuple
    inner = {shape_of(x) for x in nested}
    assert len(inner) <= 1
    return (len(nested),) + (inner.pop() if inner else ())


# ---------------------------------------------------------------- round trips


@given(tree_of)
def test_unflatten_of_flatten_is_the_tree(tree):
    leaves, treedef = trees.flatten(tree)
    assert same(trees.unflatten(treedef, leaves), tree)


@given(tree_of)
def test_flatten_gives_the_leaves_in_reading_order(tree):
    leaves, treedef = trees.flatten(tree)
    assert type(leaves) is tuple
    assert list(leaves) == oracle_leaves(tree)
    assert treedef.num_leaves == len(leaves)


@given(tree_of, st.data())
def test_flatten_of_unflatten_is_the_leaves_and_the_treedef(tree, data):
    _, treedef = trees.flatten(tree)
    new_leaves = data.draw(st.lists(st.integers(), min_size=treedef.num_leaves,
                                    max_size=treedef.num_leaves))
    assert trees.flatten(trees.unflatten(treedef, new_leaves)) == (tuple(new_leaves), treedef)


@given(tree_of)
def test_treedefs_are_hashable_and_equal_for_trees_of_one_shape(tree):
    leaves, treedef = trees.flatten(tree)
    relabelled = trees.unflatten(treedef, [f"leaf {k}" for k in range(len(leaves))])
    other = trees.flatten(relabelled)[1]
    assert other == treedef and hash(other) == hash(treedef)
    assert {treedef: 1}[other] == 1



@given(tree_of)
def test_a_treedefs_repr_draws_the_tree_with_a_star_per_leaf(tree):
    _, treedef = trees.flatten(tree)
    drawn = repr(treedef)
    assert drawn.startswith("TreeDef(") and drawn.endswith(")")
    zeros = eval(drawn[len("TreeDef("):-1].replace("*", "0"),
                 {"Pair": Pair, "Single": Single, "Nothing": Nothing})
    assert trees.flatten(zeros) == ((0,) * treedef.num_leaves, treedef)


@given(tree_of)
def test_treedefs_are_immutable(tree):
    _, treedef = trees.flatten(tree)
    with pytest.raises(AttributeError):
        treedef.kind = "list"  # type: ignore[misc]
    assert isinstance(treedef.children, tuple) and isinstance(treedef.keys, tuple)


def test_treedefs_tell_containers_apart():
    shapes = [(1, 2), [1, 2], Pair(1, 2), {"left": 1, "right": 2}, (1, (2,)), (1, 2, None),
              ((1, 2),), [[1], 2]]
    treedefs = [trees.flatten(s)[1] for s in shapes]
    assert len(set(treedefs)) == len(shapes)


def test_a_dict_flattens_by_sorted_key_whatever_its_order():
    a = trees.flatten({"b": 1, "a": 2, "c": 3})
    b = trees.flatten({"c": 3, "a": 2, "b": 1})
    assert a == b == ((2, 1, 3), trees.flatten({"a": 0, "b": 0, "c": 0})[1])
    assert list(trees.unflatten(a[1], a[0])) == ["a", "b", "c"]


def test_none_is_a_container_with_no_leaves():
    leaves, treedef = trees.flatten({"w": (1.0, 2.0), "b": None})
    assert leaves == (1.0, 2.0)
    assert trees.unflatten(treedef, leaves) == {"w": (1.0, 2.0), "b": None}


def test_a_run_of_ids_flattens_as_the_tuple_it_is():
    leaves, treedef = trees.flatten({"x": T.Run(3, 6)})
    assert leaves == (3, 4, 5) and treedef == trees.flatten({"x": (0, 0, 0)})[1]


def test_is_leaf_stops_the_walk():
    tree = {"w": (16, 2), "b": (16,), "layers": [(4, 4)]}
    leaves, treedef = trees.flatten(tree, is_leaf=trees.is_shape)
    assert leaves == ((16,), (4, 4), (16, 2))
    assert trees.unflatten(treedef, leaves) == tree


# ------------------------------------------------------------------- tree_map


@given(tree_of)
def test_tree_map_of_identity_is_the_tree(tree):
    assert same(trees.tree_map(lambda x: x, tree), tree)


@given(float_trees)
def test_tree_map_composes(tree):
    def f(x):
        return x * 3.0

    def g(x):
        return x - 1.5

    assert same(trees.tree_map(f, trees.tree_map(g, tree)),
                trees.tree_map(lambda x: f(g(x)), tree))


@given(float_trees)
def test_tree_map_over_two_trees_pairs_their_leaves(tree):
    doubled = trees.tree_map(lambda x: 2.0 * x, tree)
    assert same(trees.tree_map(lambda a, b: b - a, tree, doubled), tree)


@given(tree_of)
def test_nothing_changes_its_arguments(tree):
    before = copy.deepcopy(tree)
    leaves, treedef = trees.flatten(tree)
    rebuilt = trees.unflatten(treedef, list(leaves))
    mapped = trees.tree_map(lambda x, y: x, tree, tree)
    assert same(tree, before)
    # what comes back shares no container with what went in
    def containers_of(t):
        if isinstance(t, dict):
            return [t] + [c for v in t.values() for c in containers_of(v)]
        if isinstance(t, list):
            return [t] + [c for v in t for c in containers_of(v)]
        if isinstance(t, tuple):
            return [c for v in t for c in containers_of(v)]
        return []
    mutable_in = {id(c) for c in containers_of(tree)}
    assert not mutable_in & {id(c) for c in containers_of(rebuilt) + containers_of(mapped)}


# ------------------------------------------------------------------------ init


shape = st.lists(st.integers(0, 4), max_size=3).map(tuple)
shape_trees = st.recursive(shape, lambda kids: st.one_of(
    st.lists(kids, max_size=3),
    st.dictionaries(keys, kids, max_size=3),
    st.builds(Pair, kids, kids),
), max_leaves=6)


@given(st.integers(0, 2**64), shape_trees, st.floats(min_value=0.0, max_value=10.0))
def test_init_draws_what_random_uniform_draws_in_flatten_order(seed, shapes, scale):
    rng, params = trees.init(R.seed(seed), shapes, scale)
    shape_leaves, shape_def = trees.flatten(shapes, is_leaf=trees.is_shape)
    oracle = std_random.Random(seed)
    total = sum(math.prod(s) for s in shape_leaves)
    expected = [oracle.uniform(-scale, scale) for _ in range(total)]
    assert list(oracle_leaves(params)) == expected
    assert R.to_cpython(rng) == oracle.getstate()
    # the parameters fill the shapes: same containers, nested tuples of each shape
    arrays, param_def = trees.flatten(params, is_leaf=lambda x: type(x) in (tuple, float))
    assert param_def == shape_def
    for array, s in zip(arrays, shape_leaves):
        if 0 not in s:
            assert shape_of(array) == s


def test_init_of_a_scalar_shape_is_one_float():
    _, params = trees.init(R.seed(5), {"b": ()}, 1.0)
    assert params == {"b": std_random.Random(5).uniform(-1.0, 1.0)}


def test_init_leaves_its_rng_and_shapes_as_they_were():
    rng, shapes = R.seed(3), {"w": [(2, 3)], "b": (2,)}
    before = copy.deepcopy(shapes)
    first = trees.init(rng, shapes, 1.0)
    assert trees.init(rng, shapes, 1.0) == first and shapes == before


@pytest.mark.parametrize("shapes, error, message", [
    ({"w": [16, 2]}, TypeError, "init: leaf 16 of shapes is not a shape"),
    ({"w": (16.0, 2)}, TypeError, r"init: leaf 16.0 of shapes is not a shape"),
    ({"w": "16"}, TypeError, "init: leaf '16' of shapes is not a shape"),
    ({"w": (16, -2)}, ValueError, r"init: shape \(16, -2\) must have dimensions that are ints"),
    ({"w": (True, 2)}, ValueError, r"init: shape \(True, 2\) must have dimensions that are ints"),
])
def test_init_rejects_a_bad_shape(shapes, error, message):
    with pytest.raises(error, match=message):
        trees.init(R.seed(0), shapes, 1.0)


@pytest.mark.parametrize("scale, error, message", [
    (math.nan, ValueError, "init: scale must be finite and >= 0, got nan"),
    (math.inf, ValueError, "init: scale must be finite and >= 0, got inf"),
    (-1.0, ValueError, "init: scale must be finite and >= 0, got -1.0"),
    ("1", TypeError, "init: scale must be a number, got str"),
    (True, TypeError, "init: scale must be a number, got bool"),
])
def test_init_rejects_a_bad_scale(scale, error, message):
    with pytest.raises(error, match=message):
        trees.init(R.seed(0), {"w": (2,)}, scale)


def test_init_rejects_a_state_that_is_not_an_rng():
    with pytest.raises(TypeError, match="uniform: expected an RNG state"):
        trees.init(42, {"w": (2,)}, 1.0)


# -------------------------------------------------------------------- the tape


@given(float_trees, st.lists(st.floats(-5.0, 5.0), max_size=5))
def test_to_tape_then_values_of_is_the_tree(params, before):
    tape = T.leaves(before)
    new_tape, ids = trees.to_tape(tape, params)
    id_leaves, id_def = trees.flatten(ids)
    assert id_def == trees.flatten(params)[1]
    assert id_leaves == tuple(range(len(before), len(new_tape)))
    values = trees.values_of(new_tape, ids)
    assert same(values, trees.tree_map(float, params))
    assert len(tape) == len(before)  # the tape given is as it was


@given(float_trees)
def test_ids_survive_update(params):
    tape, ids = trees.to_tape(T.new(), params)
    leaves = trees.flatten(ids)[0]
    if not leaves:
        return
    tape, _ = T.sum(tape, leaves)
    shifted = T.update(tape, [v + 1.0 for v in T.values(tape, leaves)])
    assert same(trees.values_of(shifted, ids), trees.tree_map(lambda v: float(v) + 1.0, params))


@given(float_trees)
def test_grads_of_reads_backward_in_the_tree_shape(params):
    tape, ids = trees.to_tape(T.new(), params)
    leaves = trees.flatten(ids)[0]
    tape, weights = T.map_tape(tape, [float(k + 1) for k in range(len(leaves))], T.constant)
    tape, root = T.dot(tape, leaves, weights)  # d root / d leaf k = k + 1
    grads = trees.grads_of(T.backward(tape, root), ids)
    assert list(oracle_leaves(grads)) == [float(k + 1) for k in range(len(leaves))]
    assert trees.flatten(grads)[1] == trees.flatten(ids)[1]


# ---------------------------------------------------------------- bad inputs


def test_unflatten_rejects_too_few_leaves():
    _, treedef = trees.flatten((1, [2, 3]))
    with pytest.raises(ValueError, match=r"unflatten: TreeDef\(\(\*, \[\*, \*\]\)\) holds 3 "
                                         r"leaves, got 2"):
        trees.unflatten(treedef, [1, 2])


def test_unflatten_rejects_too_many_leaves():
    _, treedef = trees.flatten((1, [2, 3]))
    with pytest.raises(ValueError, match="holds 3 leaves, got 4"):
        trees.unflatten(treedef, [1, 2, 3, 4])


def test_unflatten_rejects_a_treedef_that_is_not_one():
    with pytest.raises(TypeError, match="unflatten: expected a TreeDef"):
        trees.unflatten((1, 2), [1, 2])


def test_flatten_rejects_keys_that_do_not_sort():
    with pytest.raises(TypeError, match="flatten: a dict's keys must sort"):
        trees.flatten({1: 1.0, "a": 2.0})


def test_tree_map_rejects_trees_of_another_shape():
    message = r"tree_map: tree 2 is TreeDef\(\[\*, \*\]\), not TreeDef\(\[\*\]\)"
    with pytest.raises(ValueError, match=message):
        trees.tree_map(lambda a, b, c: a, [1], [2], [3, 4])


def test_tree_map_rejects_a_dict_with_other_keys():
    with pytest.raises(ValueError, match="tree_map: tree 1 is"):
        trees.tree_map(lambda a, b: a, {"w": 1}, {"v": 1})


def test_to_tape_rejects_a_leaf_that_is_not_a_number():
    with pytest.raises(TypeError, match="var: expected a number, got 'x'"):
        trees.to_tape(T.new(), {"w": ("x",)})


def test_to_tape_rejects_a_leaf_that_is_not_finite():
    with pytest.raises(T.NonFiniteError, match="var: value nan is not finite"):
        trees.to_tape(T.new(), [1.0, math.nan])


def test_values_of_rejects_an_id_not_on_the_tape():
    tape, _ = trees.to_tape(T.new(), (1.0, 2.0))
    with pytest.raises(IndexError, match="values: node id 5 is not on this tape of 2 nodes"):
        trees.values_of(tape, {"w": (0, 5)})


def test_grads_of_rejects_an_id_without_a_gradient():
    tape, ids = trees.to_tape(T.new(), (1.0, 2.0))
    tape, y = T.mul(tape, *ids)
    with pytest.raises(IndexError, match="grad: node id 7 is not among 3 gradients"):
        trees.grads_of(T.backward(tape, y), [7])


def test_to_tape_hands_out_rows_as_runs_and_matrices_as_run_matrices():
    params = {"w": ((1.0, 2.0), (3.0, 4.0)), "b": (0.5, 0.5), "s": 1.0, "l": [(1.0,), (2.0, 3.0)]}
    tape, ids = trees.to_tape(T.new(), params)
    assert ids == {"b": (0, 1), "l": [(2,), (3, 4)], "s": 5, "w": ((6, 7), (8, 9))}
    assert type(ids["b"]) is T.Run and type(ids["w"]) is T.RunMatrix
    assert [type(row) for row in ids["l"]] == [T.Run, T.Run] and type(ids["s"]) is T.Id
    leaves, _ = trees.flatten(ids)  # every id, in a Run or not, is a T.Id for the primitives
    assert all(type(i) is T.Id for i in leaves)
    # rows of different lengths are no matrix: a plain tuple of Runs
    ragged = trees.to_tape(T.new(), ((1.0, 2.0), (3.0,)))[1]
    assert type(ragged) is tuple and [type(r) for r in ragged] == [T.Run, T.Run]
