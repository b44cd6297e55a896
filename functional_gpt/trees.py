"""Pytrees: parameters as nested tuples, lists, NamedTuples and dicts, flattened and rebuilt.

A **tree** is a leaf or a container of trees. The containers are tuples,
lists, dicts and NamedTuples (``None`` counts as a container with nothing in
it, as in JAX); anything else is a leaf. ``flatten`` splits a tree into its
leaves, in order, and its **treedef**, the shape of the containers;
``unflatten`` puts leaves back into that shape. The order is the one you read
the tree in: a tuple's or list's items in order, a NamedTuple's fields in
their declared order, a dict's values in the sorted order of its keys.

>>> leaves, treedef = flatten({"w": ((1.0, 2.0), (3.0, 4.0)), "b": [0.5, None]})
>>> leaves
(0.5, 1.0, 2.0, 3.0, 4.0)
>>> treedef
TreeDef({'b': [*, None], 'w': ((*, *), (*, *))})
>>> unflatten(treedef, [x * 10 for x in leaves])
{'b': [5.0, None], 'w': ((10.0, 20.0), (30.0, 40.0))}

With the tape, a tree of floats becomes a tree of node ids of the same
shape (``to_tape``), and the values or the gradients of those nodes come back
in it too (``values_of``, ``grads_of``); ``init`` draws a tree of parameters
from a tree of shapes:

>>> import functional_gpt.tape as T
>>> from functional_gpt import rng as R
>>> rng, params = init(R.seed(0), {"w": (2, 3), "b": (2,)}, 1.0)
>>> tape, ids = to_tape(T.new(), params)
>>> ids
{'b': (0, 1), 'w': ((2, 3, 4), (5, 6, 7))}
>>> values_of(tape, ids) == params
True

Nothing here changes its arguments: every container returned is new.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from . import rng as R
from . import tape as T
from .tape import Tape

__all__ = [
    "TreeDef",
    "LEAF",
    "flatten",
    "unflatten",
    "tree_map",
    "is_shape",
    "init",
    "to_tape",
    "values_of",
    "grads_of",
]

Tree = Any  # a leaf, or a tuple, list, dict or NamedTuple of trees, or None
IsLeaf = Callable[[Any], bool]


class TreeDef(NamedTuple):
    """The shape of a tree without its leaves: immutable, hashable, equal for equal shapes.

    ``kind`` is ``"leaf"``, ``"none"``, ``"tuple"``, ``"list"``, ``"dict"`` or
    ``"namedtuple"``; ``node_type`` is the NamedTuple's class (else None);
    ``keys`` are a dict's keys in sorted order (else empty); ``children``
    the treedefs of the items; ``num_leaves`` how many leaves the tree holds.
    The repr draws the shape with ``*`` for each leaf.

    >>> _, a = flatten({"y": 1, "x": (2, 3)})
    >>> _, b = flatten({"x": ("p", "q"), "y": "r"})
    >>> a == b, hash(a) == hash(b), a.num_leaves
    (True, True, 3)
    >>> a
    TreeDef({'x': (*, *), 'y': *})
    >>> flatten([1, 2])[1] == flatten((1, 2))[1]
    False
    """

    kind: str
    node_type: type | None
    keys: tuple[Any, ...]
    children: tuple[TreeDef, ...]
    num_leaves: int

    def __repr__(self) -> str:
        return f"TreeDef({_draw(self)})"


LEAF = TreeDef("leaf", None, (), (), 1)  # the treedef of any leaf: flatten(3.0)[1] == LEAF
_NONE = TreeDef("none", None, (), (), 0)


def _draw(treedef: TreeDef) -> str:
    """The shape of ``treedef`` written as the tree would print, with ``*`` for each leaf."""
    kind, node_type, keys, children, _ = treedef
    items = [_draw(c) for c in children]
    if kind == "leaf":
        return "*"
    if kind == "none":
        return "None"
    if kind == "list":
        return "[" + ", ".join(items) + "]"
    if kind == "dict":
        return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(keys, items)) + "}"
    if kind == "namedtuple":
        assert node_type is not None
        names: tuple[str, ...] = getattr(node_type, "_fields", ())
        fields = ", ".join(f"{f}={v}" for f, v in zip(names, items))
        return f"{node_type.__name__}({fields})"
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _is_namedtuple(x: object) -> bool:
    return isinstance(x, tuple) and isinstance(getattr(type(x), "_fields", None), tuple)


def _sorted_keys(d: dict[Any, Any], fn: str) -> tuple[Any, ...]:
    try:
        return tuple(sorted(d))
    except TypeError:
        kinds = sorted({type(k).__name__ for k in d})
        raise TypeError(f"{fn}: a dict's keys must sort (all str, say), got keys of types "
                        f"{', '.join(kinds)}") from None


def _flatten_into(tree: Tree, out: list[Any], is_leaf: IsLeaf | None) -> TreeDef:
    """Append ``tree``'s leaves to ``out`` (the caller's local list) and return its treedef."""
    if is_leaf is not None and is_leaf(tree):
        out.append(tree)
        return LEAF
    if tree is None:
        return _NONE
    if isinstance(tree, dict):
        keys = _sorted_keys(tree, "flatten")
        kids = tuple([_flatten_into(tree[k], out, is_leaf) for k in keys])
        return TreeDef("dict", None, keys, kids, _count(kids))
    if isinstance(tree, (tuple, list)):
        kids = tuple([_flatten_into(item, out, is_leaf) for item in tree])
        if isinstance(tree, list):
            return TreeDef("list", None, (), kids, _count(kids))
        if _is_namedtuple(tree):
            return TreeDef("namedtuple", type(tree), (), kids, _count(kids))
        return TreeDef("tuple", None, (), kids, _count(kids))
    out.append(tree)
    return LEAF


def _count(children: tuple[TreeDef, ...]) -> int:
    return sum(c.num_leaves for c in children)


def flatten(tree: Tree, is_leaf: IsLeaf | None = None) -> tuple[tuple[Any, ...], TreeDef]:
    """Return ``(leaves, treedef)``: the leaves of ``tree`` in order, and the shape they fill.

    ``is_leaf(x)``, when given, is asked first at every subtree: True makes
    ``x`` a leaf even if it is a container (``init`` reads shape tuples so).
    A subclass of tuple other than a NamedTuple (such as ``tape.Run``), of
    list or of dict is flattened as the plain container and rebuilt as one.

    >>> flatten((1.0, [2.0, 3.0]))
    ((1.0, 2.0, 3.0), TreeDef((*, [*, *])))
    >>> flatten({"b": (16,), "w": (16, 2)}, is_leaf=is_shape)
    (((16,), (16, 2)), TreeDef({'b': *, 'w': *}))
    >>> flatten(7)
    ((7,), TreeDef(*))
    >>> flatten({1: "a", "b": 2})
    Traceback (most recent call last):
    ...
    TypeError: flatten: a dict's keys must sort (all str, say), got keys of types int, str
    """
    out: list[Any] = []  # local transient: filled by the walk, frozen into a tuple below
    treedef = _flatten_into(tree, out, is_leaf)
    return tuple(out), treedef


def unflatten(treedef: TreeDef, leaves: Iterable[Any]) -> Tree:
    """Return the tree of shape ``treedef`` holding ``leaves`` in order (as many as it has).

    >>> leaves, treedef = flatten([(1, 2), {"a": 3}])
    >>> unflatten(treedef, "xyz")
    [('x', 'y'), {'a': 'z'}]
    >>> unflatten(treedef, [1, 2])
    Traceback (most recent call last):
    ...
    ValueError: unflatten: TreeDef([(*, *), {'a': *}]) holds 3 leaves, got 2
    """
    if not isinstance(treedef, TreeDef):
        raise TypeError(f"unflatten: expected a TreeDef (from flatten), got "
                        f"{type(treedef).__name__}")
    items = tuple(leaves)
    if len(items) != treedef.num_leaves:
        raise ValueError(f"unflatten: {treedef!r} holds {treedef.num_leaves} leaves, "
                         f"got {len(items)}")
    return _build(treedef, iter(items))


def _build(treedef: TreeDef, leaves: Any) -> Tree:
    """The tree of shape ``treedef``, taking its leaves from the iterator ``leaves``."""
    if treedef.kind == "leaf":
        return next(leaves)
    return _container(treedef, [_build(c, leaves) for c in treedef.children])


def _container(treedef: TreeDef, items: list[Any]) -> Tree:
    """The container ``treedef`` describes, holding ``items`` (its children, already built)."""
    kind, node_type, keys, _, _ = treedef
    if kind == "none":
        return None
    if kind == "list":
        return items  # a new list, made by the caller for this container alone
    if kind == "dict":
        return dict(zip(keys, items))
    if kind == "namedtuple":
        assert node_type is not None
        return node_type(*items)
    return tuple(items)


def tree_map(f: Callable[..., Any], tree: Tree, *rest: Tree,
             is_leaf: IsLeaf | None = None) -> Tree:
    """Return the tree of ``f(leaf)`` for each leaf of ``tree``, in its shape.

    With more trees, all of ``tree``'s shape, ``f`` gets one leaf of each:
    ``tree_map(lambda p, g: p - 0.1 * g, params, grads)`` is a step of SGD.

    >>> tree_map(lambda x: x * 2, {"w": (1, 2), "b": [3]})
    {'b': [6], 'w': (2, 4)}
    >>> tree_map(lambda p, g: p - 0.5 * g, (1.0, [2.0]), (2.0, [4.0]))
    (0.0, [0.0])
    >>> tree_map(lambda p, g: p - g, (1.0, [2.0]), (2.0, 4.0))
    Traceback (most recent call last):
    ...
    ValueError: tree_map: tree 1 is TreeDef((*, *)), not TreeDef((*, [*]))
    """
    leaves, treedef = flatten(tree, is_leaf)
    columns = [leaves]  # local transient
    for k, other in enumerate(rest, start=1):
        other_leaves, other_def = flatten(other, is_leaf)
        if other_def != treedef:
            raise ValueError(f"tree_map: tree {k} is {other_def!r}, not {treedef!r}")
        columns.append(other_leaves)
    return _build(treedef, map(f, *columns))


# ---------------------------------------------------------------- parameters


def is_shape(x: object) -> bool:
    """Return True for a tuple (exactly) of ints such as ``(16, 2)``, ``(16,)`` or ``()``.

    The leaves of the ``shapes`` tree that ``init`` reads; ``()`` is the shape
    of one number.

    >>> is_shape((16, 2)), is_shape(()), is_shape([16, 2]), is_shape((16.0,))
    (True, True, False, False)
    """
    return type(x) is tuple and all(isinstance(d, int) for d in x)


def init(rng: R.RNG, shapes: Tree, scale: float) -> tuple[R.RNG, Tree]:
    """Return ``(rng, params)``: a tree like ``shapes`` with floats uniform in [-scale, scale].

    ``shapes`` is a tree whose leaves are shapes (see ``is_shape``): ``(16, 2)``
    becomes 16 tuples of 2 floats (a weight matrix for ``layers.linear``),
    ``(16,)`` a tuple of 16, ``()`` one float. The draws are
    ``rng.uniform(rng, -scale, scale)``, leaf after leaf in ``flatten``'s
    order and, within a leaf, row after row: so they are
    ``random.Random(seed).uniform(-scale, scale)`` in that order. For
    parameters that start elsewhere (biases at 0, say), ``tree_map`` them.

    >>> from random import Random
    >>> rng, params = init(R.seed(1), {"w": (2, 2), "b": (2,)}, 0.5)
    >>> oracle = Random(1); draws = [oracle.uniform(-0.5, 0.5) for _ in range(6)]
    >>> params == {"b": tuple(draws[:2]), "w": (tuple(draws[2:4]), tuple(draws[4:]))}
    True
    >>> init(R.seed(1), {"w": [16, 2]}, 0.5)
    Traceback (most recent call last):
    ...
    TypeError: init: leaf 16 of shapes is not a shape (a tuple of ints, like (16, 2) or (16,))
    """
    if isinstance(scale, bool) or not isinstance(scale, (int, float)):
        raise TypeError(f"init: scale must be a number, got {type(scale).__name__}")
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"init: scale must be finite and >= 0, got {scale!r}")
    shape_leaves, treedef = flatten(shapes, is_leaf=is_shape)
    for shape in shape_leaves:
        if not is_shape(shape):
            raise TypeError(f"init: leaf {shape!r} of shapes is not a shape (a tuple of ints, "
                            "like (16, 2) or (16,))")
        if any(isinstance(d, bool) or d < 0 for d in shape):
            raise ValueError(f"init: shape {shape!r} must have dimensions that are ints >= 0")
    lo, hi = -scale, scale
    arrays = []  # local transient: one nested tuple per shape, frozen by unflatten
    for shape in shape_leaves:
        draws = []  # local transient
        for _ in range(math.prod(shape)):
            rng, x = R.uniform(rng, lo, hi)
            draws.append(x)
        arrays.append(_nest(shape, draws))
    return rng, unflatten(treedef, arrays)


def _nest(shape: tuple[int, ...], flat: Sequence[float]) -> Any:
    """``flat`` (row-major, ``prod(shape)`` items) as nested tuples of ``shape``."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return tuple(flat)
    step = math.prod(shape[1:])
    return tuple([_nest(shape[1:], flat[k * step : (k + 1) * step]) for k in range(shape[0])])


def to_tape(tape: Tape, params: Tree) -> tuple[Tape, Tree]:
    """Return ``(tape, ids)``: each leaf of ``params`` pushed as a ``T.var``, ids in its shape.

    The leaves get consecutive ids in ``flatten``'s order, from ``len(tape)``
    on: ``T.map_tape(tape, leaves, T.var)``. So a tape that holds only the
    parameters keeps them under the same ids after ``T.update``. A tuple of
    ids comes back as a ``tape.Run`` and a matrix (a tuple of equally long
    tuples of ids) as a ``tape.RunMatrix``: tuples that know their ids are
    consecutive, so that ``layers.linear`` reads a matrix as one slice.

    >>> import functional_gpt.tape as T
    >>> tape, ids = to_tape(T.new(), {"w": [(0.5, -1.0)], "b": 0.25})
    >>> ids
    {'b': 0, 'w': [(1, 2)]}
    >>> to_tape(T.new(), {"w": "0.5"})
    Traceback (most recent call last):
    ...
    TypeError: var: expected a number, got '0.5'
    """
    leaves, treedef = flatten(params)
    first = len(tape)
    tape, ids = T.map_tape(tape, leaves, T.var)
    assert ids == tuple(range(first, first + len(ids)))  # as the tape hands out ids
    return tape, _consecutive_ids(treedef, iter(ids))


def _consecutive_ids(treedef: TreeDef, ids: Iterator[Any]) -> Tree:
    """The tree of shape ``treedef`` holding ``ids`` (consecutive node ids) in order.

    A tuple of leaves becomes a ``tape.Run`` and a tuple of such rows, all of
    one length, a ``tape.RunMatrix``: they equal the plain tuples, and
    promise ``layers.linear`` that it may read them as one slice.
    """
    kind, _, _, children, n = treedef
    if kind == "leaf":
        return next(ids)
    if kind == "tuple" and children:
        row = children[0]
        if all(c.kind == "leaf" for c in children):
            return T.Run.of([next(ids) for _ in range(n)])
        if (row.kind == "tuple" and row.children and all(c.kind == "leaf" for c in row.children)
                and all(c == row for c in children)):
            cols = row.num_leaves
            return T.RunMatrix.of([[next(ids) for _ in range(cols)] for _ in children])
    return _container(treedef, [_consecutive_ids(c, ids) for c in children])


def values_of(tape: Tape, ids: Tree) -> Tree:
    """Return the tree of the values of the nodes ``ids`` (a tree of node ids), in its shape.

    >>> import functional_gpt.tape as T
    >>> tape, ids = to_tape(T.new(), ((1.0, 2.0), [3.0]))
    >>> tape, y = T.mul(tape, ids[0][0], ids[1][0])
    >>> values_of(tape, {"params": ids, "y": y})
    {'params': ((1.0, 2.0), [3.0]), 'y': 3.0}
    """
    leaves, treedef = flatten(ids)
    return unflatten(treedef, T.values(tape, leaves))


def grads_of(grads: Sequence[float], ids: Tree) -> Tree:
    """Return the tree of the gradients of the nodes ``ids`` from ``backward``'s result.

    >>> import functional_gpt.tape as T
    >>> tape, ids = to_tape(T.new(), {"w": (3.0, 4.0)})
    >>> tape, y = T.mul(tape, *ids["w"])
    >>> grads_of(T.backward(tape, y), ids)
    {'w': (4.0, 3.0)}
    """
    leaves, treedef = flatten(ids)
    return unflatten(treedef, [T.grad(grads, i) for i in leaves])
