"""The immutable tape: reverse-mode autodiff as a persistent Wengert list.

A tape is a persistent vector of nodes. Node ``i`` records its value, the ids
of the nodes it was computed from and the local gradient of its value with
respect to each of them. Every operation takes a tape first and returns
``(new_tape, node_id)``; the tape passed in is never changed, so old tapes stay
valid and two computations can branch from one tape.

>>> import functional_gpt.tape as T
>>> tape, x = T.var(T.new(), 3.0)
>>> tape, y = T.var(tape, 4.0)
>>> tape, xy = T.mul(tape, x, y)
>>> tape, z = T.add(tape, xy, x)          # z = x*y + x
>>> T.data(tape, z)
15.0
>>> grads = T.backward(tape, z)
>>> T.grad(grads, x), T.grad(grads, y)    # dz/dx = y + 1, dz/dy = x
(5.0, 3.0)

Node ids are handed out in creation order, which is already a topological
order, so ``backward`` is one fold from the root down to id 0.
"""

from __future__ import annotations

import builtins
import html
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from itertools import chain, compress, count, repeat
from operator import add as _add
from operator import itemgetter
from operator import mul as _mul
from typing import Any, NamedTuple, TypeVar

from pyrsistent import PVector, pvector
from toolz import compose, second

__all__ = [
    "Node",
    "Block",
    "Run",
    "RunMatrix",
    "Tape",
    "CHUNK",
    "NonFiniteError",
    "node",
    "op_value",
    "op_values",
    "new",
    "var",
    "constant",
    "data",
    "values",
    "push",
    "push_many",
    "push_block",
    "block_nodes",
    "leaves",
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "scale",
    "pow",
    "log",
    "exp",
    "relu",
    "sum",
    "dot",
    "fold_sum",
    "fold_dot",
    "fold_dots",
    "map_tape",
    "zip_map_tape",
    "backward",
    "backward_as_tuple",
    "grad",
    "reset",
    "update",
    "value_and_grad",
    "gradient",
    "GradCheck",
    "check_grads",
    "GRAD_EPS",
    "GRAD_RTOL",
    "GRAD_ATOL",
    "GRAD_CHECK_ROWS",
    "table",
    "html_table",
    "HTML_ROWS",
    "HTML_ITEMS",
]

A = TypeVar("A")
B = TypeVar("B")
R = TypeVar("R")
S = TypeVar("S")  # what map_tape threads: a Tape, or any other state

_isfinite = math.isfinite
_value_of = itemgetter(0)  # node -> its value, for C-level scans
_inputs_of = itemgetter(1)  # node -> its inputs, for C-level scans

# How a node is stored on the tape: a plain tuple in Node's field order.
NodeTuple = tuple[float, tuple[int, ...], tuple[float, ...], str]
# How the tape stores it: as above, or a block member as (value, its Block, its index, op).
StoredNode = tuple[float, Any, Any, str]


class Node(NamedTuple):
    """One entry of the Wengert list: a value, its inputs and d(value)/d(input) for each.

    The tape stores each node as a plain tuple with these fields in this
    order, and ``node(tape, i)`` gives it back as a ``Node``. Why plain:
    CPython's garbage collector stops tracking a plain tuple of numbers and
    strings once it has seen it, but tracks a NamedTuple for as long as it
    lives and walks it at every collection: a sixth of a training step.

    >>> Node(6.0, (0, 1), (3.0, 2.0), "mul")
    Node(value=6.0, inputs=(0, 1), local_grads=(3.0, 2.0), op='mul')
    """

    value: float
    inputs: tuple[int, ...]
    local_grads: tuple[float, ...]
    op: str


class Block(NamedTuple):
    """Nodes pushed together that all read the same inputs: how a layer's rows are stored.

    Member ``k`` of a block (the ``k``-th node of its batch) is the node with
    inputs ``rows[k] + shared`` and local gradients ``row_grads + shared_grads[k]``:
    each member reads ids of its own (``rows[k]``, all with the local
    gradients ``row_grads``) and the ids every member reads (``shared``). A
    linear layer ``y_k = w_k . x`` is a block: its own ids are the weights
    ``w_k`` (local gradients: the values of ``x``), its shared ids are ``x``
    (local gradients: the values of ``w_k``). So are attention's logits and
    weighted sums.

    Nothing about an op is in it, only where the local gradients are: a block
    is stored without copying its shared parts into every member, which makes
    a layer cheaper to push and cheaper for the garbage collector to walk.
    ``node`` unfolds a member into an ordinary ``Node``, and ``backward``
    visits the members as it would ordinary nodes.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])          # x = (0, 1), w0 = (2,), w1 = (3,)
    >>> blk = Block(rows=((2,), (3,)), row_grads=(9.0,), shared=(0, 1),
    ...             shared_grads=((3.0, 3.0), (4.0, 4.0)))
    >>> tape, ids = push_block(tape, "demo", (9.0, 12.0), blk)
    >>> node(tape, ids[1])
    Node(value=12.0, inputs=(3, 0, 1), local_grads=(9.0, 4.0, 4.0), op='demo')
    """

    rows: tuple[tuple[int, ...], ...]  # each member's own input ids
    row_grads: tuple[float, ...]  # the local gradients of every member's own ids
    shared: tuple[int, ...]  # the ids every member reads
    shared_grads: tuple[tuple[float, ...], ...]  # each member's local gradients of ``shared``


def _unfold(raw: StoredNode) -> NodeTuple:
    """A stored node as a plain ``(value, inputs, local_grads, op)`` tuple: a member unfolded."""
    value, inputs, local_grads, op = raw
    if type(inputs) is Block:
        k = local_grads  # a member stores its index in the block here
        rows, row_grads, shared, shared_grads = inputs
        return (value, rows[k] + shared, row_grads + shared_grads[k], op)
    return raw


class Run(tuple):
    """The ids ``start, start + 1, ..., stop - 1`` as a tuple that knows they are consecutive.

    It is an ordinary tuple of ints in every other way (it compares, prints
    and concatenates as one). What it adds is a promise a plain tuple cannot
    make: its values can be read from a tape as one slice. ``push_many``
    returns its ids as a Run, and ``model.layout``'s rows of parameters are
    Runs, so the reads a layer makes of them are C-level slices, with no
    Python loop over ids and no new int objects.

    >>> ids = Run(3, 6)
    >>> ids, len(ids), ids == (3, 4, 5), ids + (9,)
    ((3, 4, 5), 3, True, (3, 4, 5, 9))
    >>> Run(2, 2)
    ()
    >>> Run(-1, 2)
    Traceback (most recent call last):
    ...
    ValueError: Run: node ids start at 0, not -1
    """

    __slots__ = ()

    def __new__(cls, start: int, stop: int) -> Run:
        if start < 0:
            raise ValueError(f"Run: node ids start at 0, not {start!r}")
        return tuple.__new__(cls, range(start, stop))

    def __getnewargs__(self) -> tuple[int, int]:  # pickling: rebuilt from its bounds
        return (self[0], self[0] + len(self)) if self else (0, 0)


_tuple_new = tuple.__new__


def _run(start: int, stop: int) -> Run:
    """``Run(start, stop)`` for bounds already known to be valid, without the check."""
    return _tuple_new(Run, range(start, stop))


class RunMatrix(tuple):
    """Node ids ``start, start + 1, ...`` laid out row by row: ``rows`` Runs of ``cols`` ids each.

    It is an ordinary tuple of ``Run`` rows in every other way. What it adds
    is a promise: its rows are consecutive and equally long, so a layer can
    read every value of the matrix as one slice of the tape and split it into
    rows in C. ``model.layout``'s weight matrices are RunMatrix.

    >>> m = RunMatrix(4, 2, 3)
    >>> m, m[1], type(m[1]).__name__
    (((4, 5, 6), (7, 8, 9)), (7, 8, 9), 'Run')
    >>> RunMatrix(0, 2, -1)
    Traceback (most recent call last):
    ...
    ValueError: RunMatrix: rows and cols must be at least 0, got 2 and -1
    """

    __slots__ = ()

    def __new__(cls, start: int, rows: int, cols: int) -> RunMatrix:
        if rows < 0 or cols < 0:
            raise ValueError(f"RunMatrix: rows and cols must be at least 0, got {rows} and {cols}")
        if not cols:
            return tuple.__new__(cls, [Run(start, start)] * rows)
        starts = range(start, start + rows * cols, cols)
        return tuple.__new__(cls, [Run(r, r + cols) for r in starts])

    def __getnewargs__(self) -> tuple[int, int, int]:  # pickling: rebuilt from its shape
        return (self[0][0] if self and self[0] else 0, len(self), len(self[0]) if self else 0)


CHUNK = 64  # pushed nodes per element of a tape's pvector (see Tape)


class Tape:
    """An immutable tape: its leading leaves as a tuple, then its other nodes in chunks.

    ``len(tape)`` is its number of nodes. A tape made by ``leaves``,
    ``update`` or ``reset`` (the parameters of a model) keeps their values in
    ``tape.base``, a plain tuple of floats: every node ``i < len(tape.base)``
    is the leaf ``(base[i], (), (), "var")``. The nodes pushed after them are
    plain tuples in ``Node``'s field order (a ``Block``'s members are stored as
    ``(value, block, k, op)``; ``node`` unfolds them), kept in order in ``tape.chunks``,
    a pyrsistent pvector of tuples of exactly ``CHUNK`` (64) nodes, and then
    ``tape.tail``, a tuple of the fewer than 64 newest. A push copies the tail
    (at most 63 references) and appends to the pvector once per 64 nodes.

    Why chunks: a training step reads its parameters tens of thousands of
    times and recent nodes thousands, and a tuple is read at C speed whether
    or not pyrsistent has its C extension; a pvector of 64 times fewer
    elements also costs the garbage collector 64 times less to walk (the C
    extension's pvector is walked element by element at every collection).
    ``tape.nodes`` gives every node as one pvector (built on demand).

    >>> tape, _ = var(leaves([0.5]), 1.5)
    >>> len(tape), tape.base, tape.tail, tape.nodes[0]
    (2, (0.5,), ((1.5, (), (), 'var'),), (0.5, (), (), 'var'))
    >>> tape.tail = ()
    Traceback (most recent call last):
    ...
    AttributeError: a Tape is immutable
    """

    __slots__ = ("base", "chunks", "tail")
    base: tuple[float, ...]
    chunks: PVector[tuple[StoredNode, ...]]  # each exactly CHUNK nodes
    tail: tuple[StoredNode, ...]  # the newest nodes, fewer than CHUNK

    def __init__(
        self, base: tuple[float, ...] = (),
        chunks: PVector[tuple[StoredNode, ...]] | None = None,
        tail: tuple[StoredNode, ...] = (),
    ) -> None:
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "chunks", _NO_CHUNKS if chunks is None else chunks)
        object.__setattr__(self, "tail", tail)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Tape is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Tape is immutable")

    @property
    def nodes(self) -> PVector[NodeTuple]:
        """Every node, in id order, as one pvector of plain tuples."""
        every: list[NodeTuple] = [(x, (), (), "var") for x in self.base]  # local transient
        every.extend(map(_unfold, _pushed(self)))
        return pvector(every)

    def __len__(self) -> int:
        return len(self.base) + CHUNK * len(self.chunks) + len(self.tail)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tape):
            return False
        if self.base == other.base and self.tail == other.tail and self.chunks == other.chunks:
            return True  # the same storage; otherwise compare what it stores, node by node
        return len(self) == len(other) and self.nodes == other.nodes

    def __hash__(self) -> int:
        return hash(self.nodes)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Tape, (self.base, self.chunks, self.tail))

    def __repr__(self) -> str:
        pushed = [_unfold(node) for node in _pushed(self)]  # local transient
        leaves = len(self.base) + builtins.sum(1 for node in pushed if not node[1])
        edges = builtins.sum(len(node[1]) for node in pushed)
        return f"<Tape: {len(self)} nodes ({leaves} leaves), {edges} edges>"

    def _repr_html_(self) -> str:
        """How Jupyter shows a tape: ``html_table``, the Wengert list as an HTML table."""
        return html_table(self)


_NO_CHUNKS: PVector[tuple[StoredNode, ...]] = pvector()


def _pushed(tape: Tape) -> list[StoredNode]:
    """Every node after the base, in order, as stored, in a fresh list."""
    every = list(chain.from_iterable(tape.chunks))  # local transient
    every.extend(tape.tail)
    return every


def _pushed_between(tape: Tape, lo: int, hi: int) -> Sequence[StoredNode]:
    """The pushed nodes ``lo..hi-1`` (counted from the first after the base), read by slices."""
    chunks, tail = tape.chunks, tape.tail
    in_chunks = CHUNK * len(chunks)
    if lo >= in_chunks:
        return tail[lo - in_chunks : hi - in_chunks]
    first = lo // CHUNK
    if hi <= (first + 1) * CHUNK:
        return chunks[first][lo - first * CHUNK : hi - first * CHUNK]
    span = list(chain.from_iterable(  # local transient
        chunks[c] for c in range(first, min(-(-hi // CHUNK), len(chunks)))))
    if hi > in_chunks:
        span.extend(tail)
    return span[lo - first * CHUNK : hi - first * CHUNK]


def _pushed_at(tape: Tape, k: int) -> StoredNode:
    """Pushed node ``k`` (counted from the first after the base); IndexError past the end."""
    c, r = divmod(k, CHUNK)
    return tape.tail[r] if c == len(tape.chunks) else tape.chunks[c][r]


class NonFiniteError(ValueError):
    """A value or gradient that would not be a finite number: an overflow, an underflow to 0
    where a logarithm needs more, or a non-finite input. Tapes hold finite numbers only.

    >>> exp(*var(new(), 1000.0))
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: exp: e ** 1000.0 overflows
    >>> issubclass(NonFiniteError, ValueError)
    True
    """


_EMPTY = Tape()


def new() -> Tape:
    """Return the empty tape.

    >>> new()
    <Tape: 0 nodes (0 leaves), 0 edges>
    """
    return _EMPTY


# --------------------------------------------------------------------- checks


def _bad_id(tape: Tape, op: str, i: object) -> IndexError:
    return IndexError(f"{op}: node id {i!r} is not on this tape of {len(tape)} nodes")


def op_value(tape: Tape, op: str, i: int) -> float:
    """Return the value of node ``i`` as the op ``op`` reads it: IndexError naming ``op`` if absent.

    The checked read every primitive and layer makes; ``data`` is this for the REPL.

    >>> tape, x = var(new(), 2.5)
    >>> op_value(tape, "my_op", x)
    2.5
    >>> op_value(tape, "my_op", 9)
    Traceback (most recent call last):
    ...
    IndexError: my_op: node id 9 is not on this tape of 1 nodes
    """
    if type(i) is not int or i < 0:
        raise _bad_id(tape, op, i)
    base = tape.base
    try:
        return base[i] if i < len(base) else _pushed_at(tape, i - len(base))[0]
    except IndexError:
        raise _bad_id(tape, op, i) from None


def op_values(tape: Tape, op: str, ids: Sequence[int]) -> tuple[float, ...]:
    """Return the values of nodes ``ids`` as a tuple, checked as ``op_value`` does.

    The common cases are all parameters (read from the base tuple, by one
    slice when ``ids`` is a ``Run``) or all pushed nodes (read from the few
    chunks they span, by slices).

    >>> tape = leaves([1.0, 2.0, 3.0])
    >>> op_values(tape, "my_op", Run(1, 3)), op_values(tape, "my_op", (2, 0))
    ((2.0, 3.0), (3.0, 1.0))
    >>> op_values(tape, "my_op", (0, 5))
    Traceback (most recent call last):
    ...
    IndexError: my_op: node id 5 is not on this tape of 3 nodes
    """
    base = tape.base
    nb = len(base)
    if type(ids) is Run and ids:  # the common case, with no Python call: a slice of one tuple
        lo = ids[0]  # a Run starts at 0 or later
        hi = lo + len(ids)
        if hi <= nb:
            return base[lo:hi]
        chunks = tape.chunks
        start = nb + CHUNK * len(chunks)  # the first id in the tail
        if lo >= start:
            if hi - start <= len(tape.tail):
                return tuple(map(_value_of, tape.tail[lo - start : hi - start]))
        elif lo >= nb:
            c, k = divmod(lo - nb, CHUNK)
            if k + hi - lo <= CHUNK:  # within one chunk
                return tuple(map(_value_of, chunks[c][k : k + hi - lo]))
    try:
        if not ids:
            return ()
        if type(ids) is Run:
            lo = ids[0]
            hi = lo + len(ids)
        else:
            lo, hi = min(ids), max(ids) + 1
        if lo < 0 or hi > nb + CHUNK * len(tape.chunks) + len(tape.tail):  # len(tape)
            raise IndexError
        if hi <= nb:
            return base[lo:hi] if type(ids) is Run else tuple(map(base.__getitem__, ids))
        if lo >= nb and (type(ids) is Run or hi - lo <= 16 * len(ids)):
            span = _pushed_between(tape, lo - nb, hi - nb)  # few chunks: read them by slices
            if type(ids) is Run:
                return tuple(map(_value_of, span))
            return tuple([span[i - lo][0] for i in ids])
        return tuple([base[i] if i < nb else _pushed_at(tape, i - nb)[0] for i in ids])
    except (IndexError, TypeError):
        bad = next(i for i in ids if type(i) is not int or not 0 <= i < len(tape))
        raise _bad_id(tape, op, bad) from None


def fold_sum(xs: Iterable[float]) -> float:
    """Return the left fold ``((0.0 + x0) + x1) + ...``: how microgpt.py sums its Values.

    Every sum that decides a value goes through here or ``fold_dot``.

    >>> fold_sum([0.1, 0.2, 0.3])      # ((0.0 + 0.1) + 0.2) + 0.3, not the exact 0.6
    0.6000000000000001
    """
    total = 0.0
    for x in xs:
        total += x
    return total


def fold_dot(xs: Iterable[float], ys: Iterable[float]) -> float:
    """Return the left fold of ``x_i * y_i`` from 0.0: the float operations of microgpt.py's dots.

    >>> fold_dot([1.0, 2.0], [3.0, 4.0])
    11.0
    """
    total = 0.0
    for x, y in zip(xs, ys):
        total += x * y
    return total


def fold_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:
    """Return ``fold_dot(row, xs)`` for each row: a matrix-vector product, row by row.

    >>> fold_dots([1.0, 2.0], [[3.0, 4.0], [-1.0, 0.5]])
    (11.0, 0.0)
    """
    out = []  # local transient, frozen into a tuple below
    for row in rows:
        total = 0.0
        for x, y in zip(row, xs):
            total += x * y
        out.append(total)
    return tuple(out)


# How fast these folds run decides how fast a training step is, and the fastest exact
# form differs between interpreters; each form below makes the same float operations in
# the same order, so results do not depend on the interpreter.
_WRITTEN_OUT_MAX = 64  # the widest fold or hand-over compiled as straight-line code


@cache  # a pure function of a small int, compiled once per width
def _written_out_dot(n: int) -> Callable[[Sequence[float], Sequence[float]], float]:
    """Return ``lambda x, y: 0.0 + x[0] * y[0] + ... + x[n-1] * y[n-1]``, compiled for width n.

    Python's ``+`` is left-associative, so this is ``fold_dot`` of the first n
    entries, written out: no loop, no iterator, one specialised float
    operation per term. From Python 3.11 on it is the fastest exact form
    (about twice the speed of the loop on 3.12 and 3.13).

    >>> _written_out_dot(2)([1.0, 2.0], [3.0, 4.0])
    11.0
    >>> _written_out_dot(0)([], [])
    0.0
    """
    if not 0 <= n <= _WRITTEN_OUT_MAX:
        raise ValueError(f"_written_out_dot: width {n!r} is not in 0..{_WRITTEN_OUT_MAX}")
    terms = "".join(f" + x[{i}] * y[{i}]" for i in range(n))
    return eval(f"lambda x, y: 0.0{terms}")  # our own text, made from an int


@cache  # a pure function of two small ints, compiled once per shape
def _written_out_block_backward(n_own: int, n_shared: int) -> Callable[..., None]:
    """Return ``_block_backward`` compiled for blocks of ``n_own`` own and ``n_shared`` shared ids.

    The same loop over the members, last first, with each member's hand-over
    written out, one line per input: ``adjoint[i] += l * g``. The block's
    shared ids and its own ids' local gradients are unpacked once per block,
    not once per member. The same float operations in the same order as
    ``_block_backward`` (repeated ids included), with about a third fewer
    instructions from Python 3.11 on. Every row must have ``n_own`` ids and
    every row of shared gradients ``n_shared`` (ValueError otherwise).

    >>> adjoint = [0.0, 0.0, 0.0, 2.0]   # member 3 reads id 0 (own) and ids 1, 2 (shared)
    >>> blk = Block(((0,),), (10.0,), (1, 2), ((3.0, 4.0),))
    >>> _written_out_block_backward(1, 2)(adjoint, blk, 3, 3)
    >>> adjoint
    [20.0, 6.0, 8.0, 2.0]
    """
    if not (0 <= n_own <= _WRITTEN_OUT_MAX and 0 <= n_shared <= _WRITTEN_OUT_MAX):
        raise ValueError(f"_written_out_block_backward: widths {n_own!r}, {n_shared!r} are not "
                         f"in 0..{_WRITTEN_OUT_MAX}")

    def unpack(prefix: str, n: int, source: str) -> list[str]:
        return [f"{''.join(f'{prefix}{i}, ' for i in range(n))}= {source}"] if n else []

    per_block = unpack("l", n_own, "row_grads") + unpack("s", n_shared, "shared")
    member = (unpack("i", n_own, "rows[k]") + [f"adjoint[i{i}] += l{i} * g" for i in range(n_own)]
              + unpack("m", n_shared, "shared_grads[k]")
              + [f"adjoint[s{i}] += m{i} * g" for i in range(n_shared)])
    lines = (["def block_backward(adjoint, block, first, last):",
              "    rows, row_grads, shared, shared_grads = block"]
             + ["    " + line for line in per_block]
             + ["    k = last - first",
                "    for g in reversed(adjoint[first : last + 1]):",
                "        if g:  # a zero adjoint would only add zeros to the inputs"]
             + ["            " + line for line in member or ["pass"]]
             + ["        k -= 1"])
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # our own text, made from two ints
    return namespace["block_backward"]


_loop_sum, _loop_dot, _loop_dots = fold_sum, fold_dot, fold_dots  # the definitions above

if sys.version_info < (3, 12):
    # Up to 3.11, builtin sum over floats is the same left fold, done in C (0 + x0 is x0
    # exactly, then one double addition per item). From 3.12 on it is compensated
    # (Neumaier) and rounds differently, so a sum is a dot with ones, written out.

    def fold_sum(xs: Iterable[float]) -> float:  # noqa: F811 - the same fold, in C
        return float(builtins.sum(xs))

else:
    _ONES = (1.0,) * _WRITTEN_OUT_MAX

    def fold_sum(xs: Iterable[float]) -> float:  # noqa: F811 - the same fold, written out
        if isinstance(xs, (tuple, list)) and len(xs) <= _WRITTEN_OUT_MAX:
            return _written_out_dot(len(xs))(xs, _ONES)
        return _loop_sum(xs)


if sys.version_info < (3, 11):
    # On 3.10, whose interpreter does not specialise, builtin sum in C is the fastest dot.

    def fold_dot(xs: Iterable[float], ys: Iterable[float]) -> float:  # noqa: F811
        return float(builtins.sum(map(_mul, xs, ys)))

    def fold_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:  # noqa: F811
        return tuple([builtins.sum(map(_mul, row, xs), 0.0) for row in rows])

else:
    # From 3.11 on, dots are written out (``_written_out_dot``).

    def fold_dot(xs: Iterable[float], ys: Iterable[float]) -> float:  # noqa: F811
        if isinstance(xs, (tuple, list)) and isinstance(ys, (tuple, list)):
            n = min(len(xs), len(ys))  # as zip pairs them
            if n <= _WRITTEN_OUT_MAX:
                return _written_out_dot(n)(xs, ys)
        return _loop_dot(xs, ys)

    def fold_dots(xs: Sequence[float], rows: Iterable[Sequence[float]]) -> tuple[float, ...]:  # noqa: F811
        rows = rows if isinstance(rows, (tuple, list)) else tuple(rows)
        if len(xs) <= _WRITTEN_OUT_MAX:
            dot = _written_out_dot(len(xs))
            try:
                return tuple([dot(row, xs) for row in rows])
            except IndexError:  # a row shorter than xs: pair them as zip does
                pass
        return _loop_dots(xs, rows)


fold_sum.__doc__, fold_dot.__doc__ = _loop_sum.__doc__, _loop_dot.__doc__
fold_dots.__doc__ = _loop_dots.__doc__


def _finite(op: str, x: object) -> float:
    """``x`` as a float, or ValueError naming ``op`` when it is not a finite number."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{op}: expected a number, got {x!r}")
    x = float(x)
    if not _isfinite(x):
        raise NonFiniteError(f"{op}: value {x!r} is not finite")
    return x


# ----------------------------------------------------------------- the kernel


def push(
    tape: Tape, op: str, value: float, inputs: tuple[int, ...], local_grads: tuple[float, ...]
) -> tuple[Tape, int]:
    """Return ``(tape + one node, its id)``: the one way nodes get onto a tape.

    Every primitive (and every fused op in ``layers``) is its forward value
    plus its local gradients handed to ``push``. The ids in ``inputs`` must
    already be on the tape; a non-finite value is refused, so every tape holds
    finite numbers only.

    >>> tape, x = var(new(), 2.0)
    >>> tape, sq = push(tape, "square", 4.0, (x,), (4.0,))   # d(x*x)/dx = 2x
    >>> grads = backward(tape, sq)
    >>> grad(grads, x)
    4.0
    >>> push(tape, "bad", float("inf"), (), ())
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: bad: result inf is not finite
    """
    if not _isfinite(value):
        raise NonFiniteError(f"{op}: result {value!r} is not finite")
    node = (value, tuple(inputs), tuple(local_grads), op)  # tuple(): nothing mutable on a tape
    return _extended(tape, (node,)), len(tape)


def push_many(tape: Tape, new_nodes: Sequence[StoredNode]) -> tuple[Tape, Run]:
    """Return ``(tape + new_nodes, their ids)``: ``push`` for a batch, in one append.

    Fused layers build a row of nodes at once (a linear layer, a softmax) as
    ``(value, inputs, local_grads, op)`` tuples and hand them over here. A node
    may read the ids of the earlier nodes in the batch; the caller vouches for
    its inputs, and non-finite values are refused. The ids come back as a
    ``Run``.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> doubles = [(2.0, (0,), (2.0,), "double"), (4.0, (1,), (2.0,), "double")]
    >>> tape, ids = push_many(tape, doubles)
    >>> ids, values(tape, ids)
    ((2, 3), (2.0, 4.0))
    """
    batch = tuple(new_nodes)  # frozen: the caller's list is not kept
    # One C-level sum decides the common case: it is finite only if every value is.
    if not _isfinite(builtins.sum(map(_value_of, batch))):
        for value, _, _, op in batch:
            if not _isfinite(value):
                raise NonFiniteError(f"{op}: result {value!r} is not finite")
    first = len(tape.base) + CHUNK * len(tape.chunks) + len(tape.tail)  # len(tape), inline
    return _extended(tape, batch), _run(first, first + len(batch))


def _extended(tape: Tape, batch: tuple[StoredNode, ...]) -> Tape:
    """``tape`` with ``batch`` pushed: the tail grows, and each 64 nodes become a chunk."""
    tail = tape.tail + batch
    if len(tail) < CHUNK:
        return Tape(tape.base, tape.chunks, tail)
    full = len(tail) - len(tail) % CHUNK
    new_chunks = [tail[k : k + CHUNK] for k in range(0, full, CHUNK)]  # local transient
    return Tape(tape.base, tape.chunks.extend(new_chunks), tail[full:])


def push_block(
    tape: Tape, op: str, values: Sequence[float], block: Block
) -> tuple[Tape, Run]:
    """Return ``(tape + one node per value, their ids)``: the members of ``block``, stored once.

    Member ``k`` has value ``values[k]``, inputs ``block.rows[k] + block.shared``
    and local gradients ``block.row_grads + block.shared_grads[k]`` (see
    ``Block``). As with ``push_many``, the caller vouches for the ids and
    non-finite values are refused; the shapes are checked.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])
    >>> blk = Block(((2, 3),), (1.0, 2.0), (0, 1), ((3.0, 4.0),))   # y = w . x
    >>> tape, (y,) = push_block(tape, "dot", (11.0,), blk)
    >>> data(tape, y), backward_as_tuple(tape, y)
    (11.0, (3.0, 4.0, 1.0, 2.0, 1.0))
    >>> push_block(tape, "dot", (1.0, 2.0), blk)
    Traceback (most recent call last):
    ...
    ValueError: dot: a block of 2 values, 1 rows and 1 rows of shared gradients
    """
    rows, row_grads, shared, shared_grads = block
    m = len(values)
    if len(rows) != m or len(shared_grads) != m:
        raise ValueError(f"{op}: a block of {m} values, {len(rows)} rows and "
                         f"{len(shared_grads)} rows of shared gradients")
    if m and (set(map(len, rows)) != {len(row_grads)}
              or set(map(len, shared_grads)) != {len(shared)}):
        raise ValueError(f"{op}: a block's rows and gradients differ in length")
    return push_many(tape, block_nodes(op, values, block))  # it refuses non-finite values


def block_nodes(op: str, values: Sequence[float], block: Block) -> tuple[StoredNode, ...]:
    """Return the members of ``block`` as ``push_many`` takes them: for a batch with other nodes.

    ``push_block`` pushes them on their own; a layer that pushes several
    blocks and nodes in one batch (``layers.attention``) builds them here.
    A member is stored as ``(value, block, k, op)`` (``k`` its index in the
    block); ``node`` unfolds it. The shapes are not checked here.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])
    >>> blk = Block(((2, 3),), (1.0, 2.0), (0, 1), ((3.0, 4.0),))   # y = w . x
    >>> tape, (y,) = push_many(tape, block_nodes("dot", (11.0,), blk))
    >>> node(tape, y)
    Node(value=11.0, inputs=(2, 3, 0, 1), local_grads=(1.0, 2.0, 3.0, 4.0), op='dot')
    """
    return tuple(zip(values, repeat(block), count(), repeat(op)))


def leaves(xs: Iterable[float]) -> Tape:
    """Return a new tape holding one leaf per value of ``xs`` (ids 0, 1, ...).

    >>> leaves([0.5, -1.0])
    <Tape: 2 nodes (2 leaves), 0 edges>
    >>> leaves([float("inf")])
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: leaves: value inf is not finite
    """
    return _leaves("leaves", tuple(xs))


def _leaves(op: str, xs: Sequence[float]) -> Tape:
    """A tape of one leaf per value; errors name ``op``."""
    try:
        all_finite = all(map(_isfinite, xs))
    except TypeError:
        all_finite = False
    if not all_finite:
        for x in xs:
            _finite(op, x)  # raises the TypeError or ValueError that names the value
    return Tape(tuple(map(float, xs)))


def var(tape: Tape, x: float) -> tuple[Tape, int]:
    """Return ``(tape, id)`` of a new leaf holding ``x`` (a parameter or an input).

    >>> tape, x = var(new(), 0.5)
    >>> x, data(tape, x)
    (0, 0.5)
    >>> var(tape, float("nan"))
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: var: value nan is not finite
    """
    return push(tape, "var", _finite("var", x), (), ())


def constant(tape: Tape, x: float) -> tuple[Tape, int]:
    """Return ``(tape, id)`` of a new leaf holding the constant ``x``.

    A constant is a leaf like ``var``; the name only documents intent (its
    gradient is computed and simply not used).

    >>> tape, c = constant(new(), 2.0)
    >>> table(tape).splitlines()[1].split()
    ['0', 'const', '2']
    """
    return push(tape, "const", _finite("constant", x), (), ())


def data(tape: Tape, i: int) -> float:
    """Return the value of node ``i``.

    >>> tape, x = var(new(), 7.0)
    >>> data(tape, x)
    7.0
    >>> data(tape, 3)
    Traceback (most recent call last):
    ...
    IndexError: data: node id 3 is not on this tape of 1 nodes
    """
    return op_value(tape, "data", i)


def node(tape: Tape, i: int) -> Node:
    """Return node ``i`` as a ``Node`` record.

    >>> tape, x = var(new(), 3.0)
    >>> tape, y = exp(tape, x)
    >>> node(tape, y).inputs, node(tape, y).op
    ((0,), 'exp')
    """
    op_value(tape, "node", i)
    base = tape.base
    if i < len(base):
        return Node(base[i], (), (), "var")
    return Node._make(_unfold(_pushed_at(tape, i - len(base))))


def values(tape: Tape, ids: Iterable[int]) -> tuple[float, ...]:
    """Return the values of the nodes ``ids``, in order.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> values(tape, xs)
    (1.0, 2.0)
    """
    return op_values(tape, "values", ids if type(ids) is Run else tuple(ids))


# ----------------------------------------------------------------- primitives
# One line of forward math and its local gradients each.


def add(tape: Tape, a: int, b: int) -> tuple[Tape, int]:
    """Return ``(tape, a + b)``.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = add(tape, x, y)
    >>> data(tape, z)
    5.0
    """
    va, vb = op_value(tape, "add", a), op_value(tape, "add", b)
    return push(tape, "add", va + vb, (a, b), (1.0, 1.0))


def sub(tape: Tape, a: int, b: int) -> tuple[Tape, int]:
    """Return ``(tape, a - b)``.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = sub(tape, x, y)
    >>> data(tape, z), backward(tape, z)[y]
    (-1.0, -1.0)
    """
    va, vb = op_value(tape, "sub", a), op_value(tape, "sub", b)
    return push(tape, "sub", va - vb, (a, b), (1.0, -1.0))


def mul(tape: Tape, a: int, b: int) -> tuple[Tape, int]:
    """Return ``(tape, a * b)``; d/da = b, d/db = a.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = mul(tape, x, y)
    >>> data(tape, z), node(tape, z).local_grads
    (6.0, (3.0, 2.0))
    """
    va, vb = op_value(tape, "mul", a), op_value(tape, "mul", b)
    return push(tape, "mul", va * vb, (a, b), (vb, va))


def div(tape: Tape, a: int, b: int) -> tuple[Tape, int]:
    """Return ``(tape, a / b)``, computed as ``a * b**-1`` like microgpt.py.

    >>> tape, (x, y) = map_tape(new(), [1.0, 4.0], var)
    >>> tape, z = div(tape, x, y)
    >>> data(tape, z), node(tape, z).local_grads
    (0.25, (0.25, -0.0625))
    >>> tape, zero = constant(tape, 0.0)
    >>> div(tape, x, zero)
    Traceback (most recent call last):
    ...
    ValueError: div: division by zero (divisor node 3 is 0.0)
    """
    va, vb = op_value(tape, "div", a), op_value(tape, "div", b)
    if vb == 0.0:
        raise ValueError(f"div: division by zero (divisor node {b} is {vb!r})")
    try:
        inv = vb**-1
    except OverflowError:
        raise NonFiniteError(f"div: 1 / {vb!r} overflows") from None
    local_b = -va * inv * inv
    if not _isfinite(local_b):
        raise NonFiniteError(f"div: gradient of {va!r} / {vb!r} is not finite")
    return push(tape, "div", va * inv, (a, b), (inv, local_b))


def neg(tape: Tape, a: int) -> tuple[Tape, int]:
    """Return ``(tape, -a)``.

    >>> tape, x = var(new(), 2.0)
    >>> tape, y = neg(tape, x)
    >>> data(tape, y)
    -2.0
    """
    return push(tape, "neg", -op_value(tape, "neg", a), (a,), (-1.0,))


def scale(tape: Tape, a: int, s: float) -> tuple[Tape, int]:
    """Return ``(tape, a * s)`` for a plain float ``s`` (no node for ``s``).

    >>> tape, x = var(new(), 3.0)
    >>> tape, y = scale(tape, x, 0.5)
    >>> data(tape, y), node(tape, y).local_grads
    (1.5, (0.5,))
    """
    s = _finite("scale", s)
    return push(tape, "scale", op_value(tape, "scale", a) * s, (a,), (s,))


def pow(tape: Tape, a: int, p: float) -> tuple[Tape, int]:
    """Return ``(tape, a ** p)`` for a float exponent ``p``; d/da = p * a**(p-1).

    >>> tape, x = var(new(), 4.0)
    >>> tape, y = pow(tape, x, -0.5)
    >>> data(tape, y), node(tape, y).local_grads
    (0.5, (-0.0625,))
    >>> tape, m = var(tape, -8.0)
    >>> pow(tape, m, 1 / 3)
    Traceback (most recent call last):
    ...
    ValueError: pow: negative base -8.0 to the fractional power 0.3333333333333333
    """
    p = _finite("pow", p)
    x = op_value(tape, "pow", a)
    if x < 0.0 and not p.is_integer():
        raise ValueError(f"pow: negative base {x!r} to the fractional power {p!r}")
    if x == 0.0 and p < 1.0 and p != 0.0:
        raise ValueError(f"pow: zero base to the power {p!r} has no finite gradient")
    try:
        value, local = x**p, (p * x ** (p - 1) if p else 0.0)  # x ** 0 is flat, even at 0
    except OverflowError:
        raise NonFiniteError(f"pow: {x!r} ** {p!r} overflows") from None
    if not _isfinite(local):
        raise NonFiniteError(f"pow: gradient of {x!r} ** {p!r} is not finite")
    return push(tape, "pow", value, (a,), (local,))


def log(tape: Tape, a: int) -> tuple[Tape, int]:
    """Return ``(tape, ln a)``; d/da = 1/a. Needs ``a > 0``.

    >>> tape, x = var(new(), 2.0)
    >>> tape, y = log(tape, x)
    >>> round(data(tape, y), 6), node(tape, y).local_grads
    (0.693147, (0.5,))
    >>> log(*var(tape, 0.0))
    Traceback (most recent call last):
    ...
    ValueError: log: needs a positive number, got 0.0
    """
    x = op_value(tape, "log", a)
    if x <= 0.0:
        raise ValueError(f"log: needs a positive number, got {x!r}")
    local = 1 / x
    if not _isfinite(local):
        raise NonFiniteError(f"log: gradient 1/{x!r} is not finite")
    return push(tape, "log", math.log(x), (a,), (local,))


def exp(tape: Tape, a: int) -> tuple[Tape, int]:
    """Return ``(tape, e ** a)``; d/da = e ** a.

    >>> tape, x = var(new(), 0.0)
    >>> tape, y = exp(tape, x)
    >>> data(tape, y), node(tape, y).local_grads
    (1.0, (1.0,))
    >>> exp(*var(tape, 1000.0))
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: exp: e ** 1000.0 overflows
    """
    x = op_value(tape, "exp", a)
    try:
        e = math.exp(x)
    except OverflowError:
        raise NonFiniteError(f"exp: e ** {x!r} overflows") from None
    return push(tape, "exp", e, (a,), (e,))


def relu(tape: Tape, a: int) -> tuple[Tape, int]:
    """Return ``(tape, max(0, a))``; d/da = 1 where a > 0, else 0.

    >>> tape, (x, y) = map_tape(new(), [-1.0, 2.0], var)
    >>> tape, (rx, ry) = map_tape(tape, [x, y], relu)
    >>> values(tape, [rx, ry]), node(tape, rx).local_grads
    ((0.0, 2.0), (0.0,))
    """
    x = op_value(tape, "relu", a)
    return push(tape, "relu", x if x > 0.0 else 0.0, (a,), (1.0 if x > 0.0 else 0.0,))


def sum(tape: Tape, ids: Sequence[int]) -> tuple[Tape, int]:
    """Return ``(tape, ids[0] + ids[1] + ...)`` as ONE node with one input per id.

    The sum is a left fold from 0.0 in list order (as Python's ``sum`` over
    microgpt's Values is), so results match the unfused chain of ``add``.

    >>> tape, xs = map_tape(new(), [1.0, 2.0, 3.0], var)
    >>> tape, s = sum(tape, xs)
    >>> data(tape, s), node(tape, s).local_grads
    (6.0, (1.0, 1.0, 1.0))
    """
    ids = tuple(ids)
    return push(tape, "sum", fold_sum(op_values(tape, "sum", ids)), ids, (1.0,) * len(ids))


def dot(tape: Tape, xs: Sequence[int], ys: Sequence[int]) -> tuple[Tape, int]:
    """Return ``(tape, xs . ys)`` as ONE node: the left fold of ``x_i * y_i`` from 0.0.

    Its inputs are ``xs + ys``; the local gradient of ``x_i`` is ``y_i`` and
    the other way round. A 16-wide linear layer is then 16 nodes, not 512.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> tape, ys = map_tape(tape, [3.0, 4.0], var)
    >>> tape, d = dot(tape, xs, ys)
    >>> data(tape, d), node(tape, d).inputs, node(tape, d).local_grads
    (11.0, (0, 1, 2, 3), (3.0, 4.0, 1.0, 2.0))
    >>> dot(tape, xs, ys[:1])
    Traceback (most recent call last):
    ...
    ValueError: dot: lengths differ (2 and 1)
    """
    xs, ys = tuple(xs), tuple(ys)
    if len(xs) != len(ys):
        raise ValueError(f"dot: lengths differ ({len(xs)} and {len(ys)})")
    vx, vy = op_values(tape, "dot", xs), op_values(tape, "dot", ys)
    return push(tape, "dot", fold_dot(vx, vy), xs + ys, (*vy, *vx))


# ----------------------------------------------------- threading through lists


def map_tape(
    tape: S, items: Iterable[A], f: Callable[[S, A], tuple[S, R]]
) -> tuple[S, tuple[R, ...]]:
    """Thread ``tape`` through ``f`` over ``items`` (Haskell's mapAccumL).

    ``f(tape, item) -> (tape, result)``; returns ``(last tape, results)``.

    >>> tape, xs = map_tape(new(), [1.0, 2.0, 3.0], var)
    >>> tape, doubled = map_tape(tape, xs, lambda t, x: scale(t, x, 2.0))
    >>> values(tape, doubled)
    (2.0, 4.0, 6.0)
    """
    results = []  # local transient: appended to here only, frozen into a tuple below
    for item in items:
        tape, r = f(tape, item)
        results.append(r)
    return tape, tuple(results)


def zip_map_tape(
    tape: S, xs: Sequence[A], ys: Sequence[B], f: Callable[[S, A, B], tuple[S, R]]
) -> tuple[S, tuple[R, ...]]:
    """Thread ``tape`` through ``f`` over pairs from ``xs`` and ``ys``, which must be as long.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> tape, ys = map_tape(tape, [10.0, 20.0], var)
    >>> tape, zs = zip_map_tape(tape, xs, ys, add)
    >>> values(tape, zs)
    (11.0, 22.0)
    >>> zip_map_tape(tape, xs, ys[:1], add)
    Traceback (most recent call last):
    ...
    ValueError: zip_map_tape: lengths differ (2 and 1)
    """
    if len(xs) != len(ys):
        raise ValueError(f"zip_map_tape: lengths differ ({len(xs)} and {len(ys)})")
    results = []  # local transient: appended to here only, frozen into a tuple below
    for x, y in zip(xs, ys):
        tape, r = f(tape, x, y)
        results.append(r)
    return tape, tuple(results)


# ------------------------------------------------------------------- backward


def backward(tape: Tape, root: int) -> PVector[float]:
    """Return d(root)/d(node) for every node, as a pvector indexed by node id.

    A fold over the node ids from ``root`` down to 0: each node hands its
    adjoint to its inputs, scaled by its local gradients. Creation order is a
    topological order, so no graph search is needed, and no op is named here
    (the members of a ``Block`` are visited the same way, a block at a time).

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, xy = mul(tape, x, y)
    >>> tape, z = add(tape, xy, x)
    >>> list(backward(tape, z))
    [5.0, 3.0, 1.0, 1.0]
    """
    return pvector(backward_as_tuple(tape, root))


def backward_as_tuple(tape: Tape, root: int) -> tuple[float, ...]:
    """Return ``backward(tape, root)`` as a tuple: for callers that read every gradient once.

    The optimizer reads each parameter's gradient once per step; a tuple
    costs nothing to build from the fold's list, where a pvector (without
    pyrsistent's C extension) costs a Python loop.

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, z = mul(tape, x, y)
    >>> backward_as_tuple(tape, z)
    (4.0, 3.0, 1.0)
    """
    op_value(tape, "backward", root)
    nb = len(tape.base)
    # Local transient (runST-style): this list is written only here and frozen
    # into a tuple before it is returned; nobody else ever sees it.
    adjoint = [0.0] * len(tape)
    adjoint[root] = 1.0
    if root >= nb:  # the base holds leaves only: they pass nothing on
        pushed = _pushed(tape)[: root - nb + 1]  # local: the pushed nodes up to root
        # Leaves before the first node with inputs pass nothing on either: stop there.
        first_op = next(compress(count(), map(_inputs_of, pushed)), len(pushed) - 1)
        stop = nb + first_op
        i = root
        while i >= stop:
            _, inputs, local_grads, _ = pushed[i - nb]
            if type(inputs) is Block:  # members first..i of a block, all at once
                first = i - local_grads  # a member stores its index in the block
                _block_backward(adjoint, inputs, first, i)
                i = first - 1
                continue
            g = adjoint[i]
            if g:  # a zero adjoint would only add zeros to the inputs
                for j, local in zip(inputs, local_grads):
                    adjoint[j] += local * g
            i -= 1
    return tuple(adjoint)


def _block_backward(adjoint: list[float], block: Block, first: int, last: int) -> None:
    """Hand the adjoints of members ``first..last`` (ids) of ``block`` to their inputs, in place.

    Exactly what visiting the members one by one from ``last`` down does:
    member ``k`` adds ``row_grads * g_k`` to its own ids, then
    ``shared_grads[k] * g_k`` to the shared ones.
    """
    rows, row_grads, shared, shared_grads = block
    k = last - first
    for g in reversed(adjoint[first : last + 1]):
        if g:  # a zero adjoint would only add zeros to the inputs
            for j, local in zip(rows[k], row_grads):
                adjoint[j] += local * g
            for j, local in zip(shared, shared_grads[k]):
                adjoint[j] += local * g
        k -= 1


if sys.version_info < (3, 11):
    # On 3.10, whose interpreter runs the loops above slowest, a block's shared inputs are
    # folded column by column in C: adjoint[j] plus the products of member adjoints
    # (last member first) with column j of their shared gradients, one builtin sum each.
    # Up to 3.11 a float sum is a plain left fold from its start, so this adds the same
    # products in the same order as the member loop; it is used only where the order cannot
    # differ: every input id before the block, no shared id repeated or read as a member's own.
    _loop_block_backward = _block_backward

    def _block_backward(  # noqa: F811 - the same hand-over, its shared part in C
        adjoint: list[float], block: Block, first: int, last: int
    ) -> None:
        rows, row_grads, shared, shared_grads = block
        shared_set = set(shared)  # local
        if (not shared or len(shared_set) != len(shared) or max(shared) >= first
                or not shared_set.isdisjoint(chain.from_iterable(rows))):
            return _loop_block_backward(adjoint, block, first, last)
        live = []  # local: (member, its adjoint), last member first
        for k in range(last - first, -1, -1):
            g = adjoint[first + k]  # read as the loop would: own ids may be members
            if g:
                live.append((k, g))
                row = rows[k]
                if type(row) is Run and row:  # distinct ids: one C-level update of the slice
                    lo, hi = row[0], row[-1] + 1
                    adjoint[lo:hi] = map(_add, adjoint[lo:hi], map(_mul, row_grads, repeat(g)))
                    continue
                for j, local in zip(row, row_grads):
                    adjoint[j] += local * g
        if live:
            live_gs = [g for _, g in live]  # local
            columns = zip(*[shared_grads[k] for k, _ in live])
            folded = [builtins.sum(map(_mul, col, live_gs), adjoint[j])
                      for j, col in zip(shared, columns)]  # local
            for j, a in zip(shared, folded):
                adjoint[j] = a
        return None

else:
    # From 3.11 on, each member's hand-over is written out (``_written_out_block_backward``).
    _loop_block_backward = _block_backward

    def _block_backward(  # noqa: F811 - the same hand-over, written out
        adjoint: list[float], block: Block, first: int, last: int
    ) -> None:
        n_own, n_shared = len(block.row_grads), len(block.shared)
        if n_own > _WRITTEN_OUT_MAX or n_shared > _WRITTEN_OUT_MAX:
            return _loop_block_backward(adjoint, block, first, last)
        return _written_out_block_backward(n_own, n_shared)(adjoint, block, first, last)


def grad(grads: Sequence[float], i: int) -> float:
    """Return the gradient of node ``i`` from ``backward``'s result (0.0 if it had no effect).

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, z = mul(tape, x, x)
    >>> grads = backward(tape, z)
    >>> grad(grads, x), grad(grads, y)
    (6.0, 0.0)
    """
    if type(i) is not int or not 0 <= i < len(grads):
        raise IndexError(f"grad: node id {i!r} is not among {len(grads)} gradients")
    return grads[i]


# ------------------------------------------------------------- between steps


def reset(tape: Tape, num_params: int) -> Tape:
    """Return a tape of only nodes ``0..num_params-1``, as leaves with their current values.

    >>> tape, (w, b) = map_tape(new(), [0.5, -1.0], var)
    >>> tape, y = add(tape, w, b)
    >>> reset(tape, 2)
    <Tape: 2 nodes (2 leaves), 0 edges>
    >>> values(reset(tape, 2), [0, 1])
    (0.5, -1.0)
    """
    if type(num_params) is not int or not 0 <= num_params <= len(tape):
        raise ValueError(f"reset: num_params {num_params!r} is not in 0..{len(tape)}")
    base = tape.base
    if num_params <= len(base):
        return Tape(base[:num_params])
    kept = _pushed_between(tape, 0, num_params - len(base))
    return Tape(base + tuple([node[0] for node in kept]))


def update(tape: Tape, new_values: Sequence[float]) -> Tape:
    """Return ``reset(tape, len(new_values))`` with the leaves carrying ``new_values``.

    This is how a training step hands updated parameters to the next step.

    >>> tape, (w, b) = map_tape(new(), [0.5, -1.0], var)
    >>> tape, y = add(tape, w, b)
    >>> nxt = update(tape, [0.25, 2.0])
    >>> nxt, values(nxt, [0, 1]), values(tape, [0, 1])
    (<Tape: 2 nodes (2 leaves), 0 edges>, (0.25, 2.0), (0.5, -1.0))
    """
    if len(new_values) > len(tape):
        raise ValueError(f"update: {len(new_values)} values for a tape of {len(tape)} nodes")
    return _leaves("update", new_values)


# ---------------------------------------------------------------- for the REPL


def value_and_grad(
    f: Callable[[Tape, tuple[int, ...]], tuple[Tape, int]],
) -> Callable[[Sequence[float]], tuple[float, tuple[float, ...]]]:
    """Return a function of plain floats giving ``(f's value, its gradient per input)``.

    ``f(tape, ids) -> (tape, out_id)`` is any tape function; like JAX's
    ``value_and_grad``, the result is an ordinary function.

    >>> def f(tape, ids):                       # f(x, y) = x * y + x
    ...     x, y = ids
    ...     tape, xy = mul(tape, x, y)
    ...     return add(tape, xy, x)
    >>> value_and_grad(f)([3.0, 4.0])
    (15.0, (5.0, 3.0))
    """

    def value_and_gradient(xs: Sequence[float]) -> tuple[float, tuple[float, ...]]:
        tape, ids = map_tape(new(), xs, var)
        tape, out = f(tape, ids)
        grads = backward(tape, out)
        return data(tape, out), tuple(grad(grads, i) for i in ids)

    return value_and_gradient


def gradient(
    f: Callable[[Tape, tuple[int, ...]], tuple[Tape, int]],
) -> Callable[[Sequence[float]], tuple[float, ...]]:
    """Return a function of plain floats giving ``f``'s gradient: one float per input.

    ``value_and_grad`` without the value (JAX's ``grad``). ``grad(grads, i)``
    is something else: it reads one entry of ``backward``'s result.

    >>> def f(tape, ids):                       # f(x, y) = x * y + x
    ...     x, y = ids
    ...     tape, xy = mul(tape, x, y)
    ...     return add(tape, xy, x)
    >>> gradient(f)([3.0, 4.0])
    (5.0, 3.0)
    """
    return compose(second, value_and_grad(f))


GRAD_EPS = 1e-6  # central-difference step, relative to max(1, |x|)
GRAD_RTOL = 1e-5  # allowed error relative to the gradient's size
GRAD_ATOL = 1e-6  # allowed absolute error, per unit of max(1, |f(x)|)


GRAD_CHECK_ROWS = 10  # inputs a GradCheck's repr lists before it counts the rest


class GradCheck(NamedTuple):
    """What ``check_grads`` found: tape gradients against central differences, input by input.

    ``ok`` is True when every input is within the tolerance that
    ``check_grads`` documents; ``bad`` says which inputs are not. The repr is
    a small table that marks those inputs; past ``GRAD_CHECK_ROWS`` inputs it
    lists the ones that differ first and counts the rest.

    >>> GradCheck((6.0, 1.0), (4.0, 1.0), 2.0, 1 / 3, False, (True, False))
    GradCheck(ok=False, max_abs_error=2, max_rel_error=0.333)
      input  analytic  numeric  abs error
          0         6        4          2  <- differs
          1         1        1          0
    >>> ones = (1.0,) * 11
    >>> many = GradCheck(ones + (1.0,), ones + (2.0,), 1.0, 0.5, False, (False,) * 11 + (True,))
    >>> print("\\n".join(repr(many).splitlines()[-2:]))
         11         1        2          1  <- differs
      ... and 2 more inputs, all within tolerance
    """

    analytic: tuple[float, ...]
    numeric: tuple[float, ...]
    max_abs_error: float
    max_rel_error: float
    ok: bool
    bad: tuple[bool, ...] = ()

    def __repr__(self) -> str:
        head = (f"GradCheck(ok={self.ok}, max_abs_error={self.max_abs_error:.3g}, "
                f"max_rel_error={self.max_rel_error:.3g})")
        n = len(self.analytic)
        bad = self.bad + (False,) * (n - len(self.bad))
        differ = [i for i in range(n) if bad[i]]
        listed = min(len(differ), GRAD_CHECK_ROWS)  # the inputs that differ come first ...
        agree = [i for i in range(n) if not bad[i]][: GRAD_CHECK_ROWS - listed]  # ... then these
        shown = sorted(differ[:listed] + agree)
        rows = [("input", "analytic", "numeric", "abs error")] + [
            (str(i), f"{self.analytic[i]:.8g}", f"{self.numeric[i]:.8g}",
             f"{abs(self.analytic[i] - self.numeric[i]):.3g}")
            for i in shown
        ]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        marks = ("",) + tuple("  <- differs" if bad[i] else "" for i in shown)
        lines = [
            "  " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths)) + mark
            for r, mark in zip(rows, marks)
        ]
        if n > len(shown):
            rest = len(differ) - listed
            lines.append(f"  ... and {n - len(shown)} more inputs, "
                         + (f"{rest} of them differ" if rest else "all within tolerance"))
        return "\n".join([head, *lines])


def check_grads(
    f: Callable[[Tape, tuple[int, ...]], tuple[Tape, int]],
    xs: Sequence[float],
    eps: float = GRAD_EPS,
    rtol: float = GRAD_RTOL,
    atol: float = GRAD_ATOL,
) -> GradCheck:
    """Return a ``GradCheck`` comparing ``f``'s tape gradients at ``xs`` with central differences.

    For input ``i`` with step ``h = eps * max(1, |x_i|)``, the numeric
    gradient is ``(f(x + h e_i) - f(x - h e_i)) / (2h)``, dividing by the step
    actually taken in floats. Input ``i`` passes when
    ``|analytic - numeric| <= atol * max(1, |f(x)|) + rtol * max(|analytic|, |numeric|)``.
    With the defaults (``eps=1e-6``, ``rtol=1e-5``, ``atol=1e-6``), the
    truncation error of a central difference (of order ``h**2`` times the
    third derivative) and its rounding error (about ``1e-16 * |f| / h``) stay
    far inside that for smooth functions; at a kink (``relu`` at 0) the two
    sides legitimately differ. A node pushed with a wrong local gradient fails:

    >>> def square(tape, ids):
    ...     (x,) = ids
    ...     v = data(tape, x)
    ...     return push(tape, "square", v * v, (x,), (3 * v,))   # should be 2 * v
    >>> check_grads(square, [2.0])
    GradCheck(ok=False, max_abs_error=2, max_rel_error=0.333)
      input  analytic  numeric  abs error
          0         6        4          2  <- differs
    >>> def f(tape, ids):
    ...     x, y = ids
    ...     tape, xy = mul(tape, x, y)
    ...     return exp(tape, xy)
    >>> check_grads(f, [0.5, -1.0]).ok
    True
    """
    xs = tuple(_finite("check_grads", x) for x in xs)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (
        _isfinite(eps) and eps > 0
    ):
        raise ValueError(f"check_grads: eps must be a positive number, got {eps!r}")
    value_and_gradient = value_and_grad(f)
    fx, analytic = value_and_gradient(xs)

    def value_at(i: int, xi: float) -> float:
        return value_and_gradient(xs[:i] + (xi,) + xs[i + 1 :])[0]

    numeric = []  # local transient, frozen into a tuple below
    for i, x in enumerate(xs):
        h = eps * max(1.0, abs(x))
        up, down = x + h, x - h
        numeric.append((value_at(i, up) - value_at(i, down)) / (up - down))
    errors = [abs(a - n) for a, n in zip(analytic, numeric)]
    sizes = [max(abs(a), abs(n)) for a, n in zip(analytic, numeric)]
    bad = tuple(e > atol * max(1.0, abs(fx)) + rtol * s for e, s in zip(errors, sizes))
    return GradCheck(
        analytic,
        tuple(numeric),
        max(errors, default=0.0),
        max((e / s if s else 0.0 for e, s in zip(errors, sizes)), default=0.0),
        not any(bad),
        bad,
    )


def table(tape: Tape, limit: int | None = None) -> str:
    """Return the tape as a table, one node a row: id, op, value, inputs, local gradients.

    ``limit`` keeps only the last ``limit`` rows.

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, z = mul(tape, x, y)
    >>> print(table(tape))
     id  op        value  inputs  local_grads
      0  var           3
      1  var           4
      2  mul          12  0, 1    4, 3
    """
    nodes = tape.nodes
    start = 0 if limit is None else max(0, len(nodes) - limit)

    def fmt(x: float) -> str:
        return f"{x:.6g}"

    rows = [
        (str(i), op, fmt(value), ", ".join(map(str, inputs)), ", ".join(map(fmt, local_grads)))
        for i, (value, inputs, local_grads, op) in enumerate(nodes[start:], start)
    ]
    header = ("id", "op", "value", "inputs", "local_grads")
    w_id = max([len(header[0]) + 1] + [len(r[0]) for r in rows])
    w_op = max([len(header[1]) + 6] + [len(r[1]) for r in rows])
    w_val = max([len(header[2])] + [len(r[2]) for r in rows])
    w_in = max([len(header[3])] + [len(r[3]) for r in rows])

    def line(r: tuple[str, ...]) -> str:
        return f"{r[0]:>{w_id}}  {r[1]:<{w_op}}  {r[2]:>{w_val}}  {r[3]:<{w_in}}  {r[4]}".rstrip()

    return "\n".join([line(header), *map(line, rows)])


HTML_ROWS = 40  # rows html_table shows before it elides the middle of a tape
HTML_ITEMS = 8  # inputs (and local gradients) a cell of html_table lists before it counts them


def html_table(tape: Tape, max_rows: int = HTML_ROWS) -> str:
    """Return the tape as an HTML table, one node a row: what a notebook shows for a ``Tape``.

    A tape longer than ``max_rows`` shows its first and last ``max_rows // 2``
    nodes and, between them, one row saying how many are hidden. A node with
    more than ``HTML_ITEMS`` inputs lists the first of them and their number.

    >>> tape, xs = map_tape(new(), [1.0, 2.0, 3.0], var)
    >>> tape, s = sum(tape, xs)
    >>> page = html_table(tape, max_rows=2)
    >>> page.count("<tr>"), "2 nodes hidden" in page
    (4, True)
    >>> "<td>sum</td>" in html_table(tape)
    True
    >>> tape, big = sum(tape, [0, 1, 2] * 3 + [3])
    >>> "<td>0, 1, 2, 0, 1, 2, 0, 1, … (10 in all)</td>" in html_table(tape)
    True
    """
    if type(max_rows) is not int or max_rows < 2:
        raise ValueError(
            f"html_table: max_rows must be a whole number of at least 2, got {max_rows!r}"
        )
    n = len(tape)
    half = max_rows // 2
    shown = range(n) if n <= max_rows else [*range(half), *range(n - half, n)]

    def cells(tag: str, texts: Iterable[str]) -> str:
        return "".join(f"<{tag}>{html.escape(t)}</{tag}>" for t in texts)

    def items(texts: Sequence[str]) -> str:
        if len(texts) <= HTML_ITEMS:
            return ", ".join(texts)
        return ", ".join(texts[:HTML_ITEMS]) + f", … ({len(texts)} in all)"

    def row(i: int) -> str:
        value, inputs, local_grads, op = node(tape, i)
        return "<tr>" + cells("td", (
            str(i), op, f"{value:.6g}", items([str(j) for j in inputs]),
            items([f"{g:.6g}" for g in local_grads]),
        )) + "</tr>"

    rows = [row(i) for i in shown]  # local transient
    if n > max_rows:
        rows.insert(half, f'<tr><td colspan="5">… {n - 2 * half} nodes hidden …</td></tr>')
    head = "<tr>" + cells("th", ("id", "op", "value", "inputs", "local_grads")) + "</tr>"
    return (f"<table><caption>{html.escape(repr(tape))}</caption>"
            f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
