"""How a tape is stored: a persistent vector of nodes (node i at index i), laid out for speed.

``tape.py`` says what a tape is: node ``i`` is a value, the ids of its inputs and a local
gradient for each, and pushing returns a new tape with the old one unchanged. This module says
how the nodes are kept so that a training step (tens of thousands of reads and pushes) runs at C
speed, with or without pyrsistent's C extension. Nothing here changes a value; it is only where
the values live. The tricks, and why each is exact:

- **Parameters in a tuple.** A tape made by ``leaves`` (the parameters of a model) keeps their
  values as ``tape.base``, a plain tuple of floats; node ``i < len(base)`` is the leaf
  ``(base[i], (), (), "var")``. Reading parameter values is a tuple slice.
- **The rest in chunks.** The nodes pushed after the base are plain tuples in ``Node``'s field
  order, kept in ``tape.chunks`` (a pvector of tuples of exactly ``CHUNK`` nodes) and then
  ``tape.tail`` (a tuple of the fewer than ``CHUNK`` newest). A push copies the tail and appends
  to the pvector once per ``CHUNK`` nodes; old tapes share everything and stay valid.
- **Blocks.** A layer's rows all read the same inputs. A ``Block`` stores those shared parts once;
  its member ``k`` is stored as the ``MemberEntry`` ``(value, block, k, op)`` and is the node
  that ``block_member`` unfolds. An *entry* is therefore one of two shapes, told apart by the
  type of its second item: a ``NodeTuple`` (inputs there) or a ``MemberEntry`` (a Block there).
- **Runs.** Consecutive ids travel as a ``Run`` (a weight matrix as a ``RunMatrix``), an ordinary
  tuple of ints that promises it can be read as one slice.
- **Plain tuples**, not NamedTuples: CPython's garbage collector stops tracking a tuple of numbers
  and strings once it has seen it, but walks a NamedTuple at every collection.

Every read gives what the plain vector would give: ``tape.nodes`` is every node as one pvector of
``(value, inputs, local_grads, op)`` tuples, the plain twin; ``tests/test_tape_storage.py``
checks the reads, Blocks and Runs against it on random tapes. Only this module and
``fast_backward`` touch ``base``, ``chunks`` and ``tail``: the layers and training read a tape
through the documented functions here (``op_values``, ``matrix_values``, ``parameter_values``),
which ``tape`` re-exports.

>>> tape = leaves([0.5, 2.0])
>>> tape, ids = push_many(tape, [(1.0, (0, 1), (2.0, 0.5), "mul")])
>>> len(tape), tape.base, tape.tail, ids
(3, (0.5, 2.0), ((1.0, (0, 1), (2.0, 0.5), 'mul'),), (2,))
"""

from __future__ import annotations

import builtins
import math
import operator
import warnings
from collections.abc import Iterable, Sequence
from functools import partial
from itertools import chain, count, repeat
from operator import itemgetter
from typing import Any, NamedTuple

from pyrsistent import PVector, pvector

__all__ = [
    "Tape",
    "EMPTY",
    "CHUNK",
    "Block",
    "Run",
    "RunMatrix",
    "NodeTuple",
    "MemberEntry",
    "Entry",
    "NonFiniteError",
    "finite_number",
    "finite_numbers",
    "checked_ids",
    "parameter_count",
    "leaves",
    "op_value",
    "op_values",
    "matrix_values",
    "node_tuple",
    "block_member",
    "entries",
    "entries_between",
    "appended",
    "push_trusted",
    "push_many",
    "push_block",
    "block_nodes",
    "parameter_values",
]

_isfinite = math.isfinite
value_of = itemgetter(0)  # an entry -> its value, for C-level scans

# A node as the tape keeps it: a plain tuple in Node's field order.
NodeTuple = tuple[float, tuple[int, ...], tuple[float, ...], str]

CHUNK = 64  # pushed nodes per element of a tape's pvector


class NonFiniteError(ValueError):
    """A value or gradient that would not be a finite number: an overflow, an underflow to 0
    where a logarithm needs more, or a non-finite input. Tapes hold finite numbers only.

    It is defined here, where numbers are checked on their way onto a tape, and
    ``functional_gpt.tape`` re-exports it: ``T.NonFiniteError`` is this class.

    >>> leaves([float("inf")])
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: leaves: value inf is not finite
    >>> issubclass(NonFiniteError, ValueError)
    True
    """


class Block(NamedTuple):
    """Nodes pushed together that all read the same inputs: how a layer's rows are stored.

    Member ``k`` of a block (the ``k``-th node of its batch) reads two kinds
    of inputs, and each field is named for the ids it holds or for the ids
    whose local gradients it holds:

    - ``own_ids[k]``, member ``k``'s own ids, with the local gradients
      ``own_grads`` (one tuple, the same for every member);
    - ``shared_ids``, the ids every member reads, with the local gradients
      ``shared_grads[k]`` (one tuple per member).

    So member ``k`` is the node with inputs ``own_ids[k] + shared_ids`` and
    local gradients ``own_grads + shared_grads[k]``. A linear layer
    ``y_k = w_k . x`` is a block: row ``k``'s own ids are the weights ``w_k``,
    whose local gradients are the values of ``x`` (the same for every row);
    the shared ids are ``x``, whose local gradients are the values of ``w_k``
    (one row per member). So are attention's logits and weighted sums.

    Nothing about an op is in it, only where the local gradients are: a block
    stores the parts that are the same for every member once instead of in
    every member. ``tape.node`` unfolds a member into an ordinary ``Node``.
    The fields' old names ``member_ids``, ``common_grads``, ``common_ids`` and
    ``member_grads`` (in this order) still read them for one more release,
    with a ``DeprecationWarning``.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])          # x = (0, 1), w0 = (2,), w1 = (3,)
    >>> blk = Block(own_ids=((2,), (3,)), own_grads=(9.0,), shared_ids=(0, 1),
    ...             shared_grads=((3.0, 3.0), (4.0, 4.0)))
    >>> tape, ids = push_block(tape, "demo", (9.0, 12.0), blk)
    >>> node_tuple(tape, ids[1])
    (12.0, (3, 0, 1), (9.0, 4.0, 4.0), 'demo')
    """

    own_ids: tuple[tuple[int, ...], ...]  # member k's own input ids, one tuple per member
    own_grads: tuple[float, ...]  # the local gradients of own_ids[k], the same for every member
    shared_ids: tuple[int, ...]  # the ids every member reads
    shared_grads: tuple[tuple[float, ...], ...]  # member k's local gradients of shared_ids

    @property
    def member_ids(self) -> tuple[tuple[int, ...], ...]:
        """Deprecated name of ``own_ids``.

        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     ids = Block(((2,),), (9.0,), (0,), ((3.0,),)).member_ids
        >>> ids, caught[0].category.__name__
        (((2,),), 'DeprecationWarning')
        """
        return _renamed_field(self, "member_ids", "own_ids")

    @property
    def common_grads(self) -> tuple[float, ...]:
        """Deprecated name of ``own_grads`` (the local gradients of each member's own ids)."""
        return _renamed_field(self, "common_grads", "own_grads")

    @property
    def common_ids(self) -> tuple[int, ...]:
        """Deprecated name of ``shared_ids``."""
        return _renamed_field(self, "common_ids", "shared_ids")

    @property
    def member_grads(self) -> tuple[tuple[float, ...], ...]:
        """Deprecated name of ``shared_grads`` (each member's local gradients of the shared ids)."""
        return _renamed_field(self, "member_grads", "shared_grads")


def _renamed_field(block: Block, old: str, new: str) -> Any:
    """Field ``new`` of ``block``, read under its old name ``old``, with a DeprecationWarning."""
    warnings.warn(f"Block.{old} is now Block.{new}; the old name goes in the next release",
                  DeprecationWarning, stacklevel=3)
    return getattr(block, new)


# An entry of the tape after its base is one of two shapes of plain tuple, told apart by the type
# of its second item:
# - a NodeTuple ``(value, inputs, local_grads, op)``, in ``Node``'s field order;
# - a MemberEntry ``(value, block, k, op)``: member ``k`` of a ``Block``, which ``block_member``
#   unfolds into the NodeTuple it stands for.
MemberEntry = tuple[float, Block, int, str]
Entry = tuple[float, Any, Any, str]  # a NodeTuple or a MemberEntry: Any where the two differ


def block_member(block: Block, k: int, value: float, op: str) -> NodeTuple:
    """Return member ``k`` of ``block`` as the plain node tuple it stands for.

    >>> block_member(Block(((2,), (3,)), (9.0,), (0, 1), ((3.0, 3.0), (4.0, 4.0))), 1, 12.0, "y")
    (12.0, (3, 0, 1), (9.0, 4.0, 4.0), 'y')
    """
    own_ids, own_grads, shared_ids, shared_grads = block
    return (value, own_ids[k] + shared_ids, own_grads + shared_grads[k], op)


def _unfold(entry: Entry) -> NodeTuple:
    """An entry as a plain node tuple: a member entry unfolded, a node tuple as it is."""
    value, second, third, op = entry
    if type(second) is Block:  # a MemberEntry (value, block, k, op)
        return block_member(second, third, value, op)
    return entry  # a NodeTuple


class Run(tuple):
    """The ids ``start, start + 1, ..., stop - 1`` as a tuple that knows they are consecutive.

    It is an ordinary tuple of ints in every other way (it compares, prints
    and concatenates as one). What it adds is a promise a plain tuple cannot
    make: its values can be read from a tape as one slice. ``push_many``
    returns its ids as a Run, and ``model.layout``'s rows of parameters are
    Runs, so the reads a layer makes of them are C-level slices.

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

    @classmethod
    def of(cls, ids: Sequence[int]) -> Run:
        """Return ``ids`` as a Run, the very objects (``tape.Id`` ones stay Ids); they must be
        consecutive.

        >>> Run.of((4, 5, 6)) == Run(4, 7)
        True
        >>> Run.of((4, 6))
        Traceback (most recent call last):
        ...
        ValueError: Run.of: ids (4, 6) are not consecutive
        """
        ids = tuple(ids)
        if bool in set(map(type, ids)):
            raise TypeError(f"Run.of: ids {ids!r} hold a bool, which is not a node id")
        if ids and (ids[0] < 0 or ids != tuple(range(ids[0], ids[0] + len(ids)))):
            raise ValueError(f"Run.of: ids {ids!r} are not consecutive")
        return tuple.__new__(cls, ids)


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

    @classmethod
    def of(cls, rows: Sequence[Sequence[int]]) -> RunMatrix:
        """Return ``rows`` as a RunMatrix of ``Run.of`` rows; they must be equally long and
        consecutive from one row to the next.

        >>> RunMatrix.of([(0, 1), (2, 3)]) == RunMatrix(0, 2, 2)
        True
        >>> RunMatrix.of([(0, 1), (3, 4)])
        Traceback (most recent call last):
        ...
        ValueError: RunMatrix.of: rows ((0, 1), (3, 4)) are not consecutive and equally long
        """
        runs = tuple(Run.of(row) for row in rows)
        flat = tuple(chain.from_iterable(runs))
        if len({len(r) for r in runs}) > 1 or (flat and flat != tuple(
                range(flat[0], flat[0] + len(flat)))):
            raise ValueError(f"RunMatrix.of: rows {tuple(map(tuple, rows))!r} are not consecutive "
                             "and equally long")
        return tuple.__new__(cls, runs)


class Tape:
    """An immutable tape: its leading leaves as a tuple, then its other nodes in chunks.

    ``len(tape)`` is its number of nodes and ``tape.nodes`` every node as one
    pvector of plain tuples (built on demand). The storage (``base``,
    ``chunks``, ``tail``) is described at the top of this module.

    >>> tape, _ = push_many(leaves([0.5]), [(1.5, (), (), "var")])
    >>> len(tape), tape.base, tape.tail, tape.nodes[0]
    (2, (0.5,), ((1.5, (), (), 'var'),), (0.5, (), (), 'var'))
    >>> tape.tail = ()
    Traceback (most recent call last):
    ...
    AttributeError: a Tape is immutable
    """

    __slots__ = ("base", "chunks", "tail")
    base: tuple[float, ...]
    chunks: PVector[tuple[Entry, ...]]  # each exactly CHUNK entries
    tail: tuple[Entry, ...]  # the newest entries, fewer than CHUNK

    def __init__(
        self, base: tuple[float, ...] = (),
        chunks: PVector[tuple[Entry, ...]] | None = None,
        tail: tuple[Entry, ...] = (),
    ) -> None:
        # Tuples, as given or copied: a list the caller keeps cannot change the tape.
        object.__setattr__(self, "base", base if type(base) is tuple else tuple(base))
        object.__setattr__(self, "chunks", _NO_CHUNKS if chunks is None else chunks
                           if type(chunks) is type(_NO_CHUNKS) else pvector(map(tuple, chunks)))
        object.__setattr__(self, "tail", tail if type(tail) is tuple else tuple(tail))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Tape is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("a Tape is immutable")

    @property
    def nodes(self) -> PVector[NodeTuple]:
        """Every node, in id order, as one pvector of plain tuples: the plain vector."""
        every: list[NodeTuple] = [(x, (), (), "var") for x in self.base]  # local transient
        every.extend(map(_unfold, entries(self)))
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
        pushed = [_unfold(entry) for entry in entries(self)]  # local transient
        n_leaves = len(self.base) + builtins.sum(1 for node in pushed if not node[1])
        edges = builtins.sum(len(node[1]) for node in pushed)
        return f"<Tape: {len(self)} nodes ({n_leaves} leaves), {edges} edges>"

    def _repr_html_(self) -> str:
        """How Jupyter shows a tape: the Wengert list as an HTML table (``tape_html``, a REPL
        tool that imports nothing from the package, so the storage never imports the REPL)."""
        from .tape_html import wengert_html  # imported when a notebook first shows a tape

        return wengert_html(repr(self), len(self), partial(node_tuple, self))


_NO_CHUNKS: PVector[tuple[Entry, ...]] = pvector()
EMPTY = Tape()  # the empty tape; ``tape.new()`` returns it


def entries(tape: Tape) -> list[Entry]:
    """Return every entry after the base, in order, as stored, in a fresh list.

    >>> tape, _ = push_many(leaves([1.0]), [(2.0, (0,), (2.0,), "double")])
    >>> entries(tape)
    [(2.0, (0,), (2.0,), 'double')]
    """
    every = list(chain.from_iterable(tape.chunks))  # a fresh list: the caller may keep it
    every.extend(tape.tail)
    return every


def entries_between(tape: Tape, lo: int, hi: int) -> Sequence[Entry]:
    """Return the entries ``lo..hi-1``, counted from the first after the base, read by slices.

    >>> tape, _ = push_many(leaves([1.0]), [(2.0, (), (), "a"), (3.0, (), (), "b")])
    >>> [entry[3] for entry in entries_between(tape, 1, 2)]
    ['b']
    """
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


def _entry_at(tape: Tape, k: int) -> Entry:
    """Entry ``k`` (counted from the first after the base); IndexError past the end."""
    c, r = divmod(k, CHUNK)
    return tape.tail[r] if c == len(tape.chunks) else tape.chunks[c][r]


# --------------------------------------------------------------------- reads


def _bad_id(tape: Tape, op: str, i: object) -> Exception:
    """The error for ``i`` where ``op`` wants a node id: it says what to write instead."""
    if isinstance(i, bool):
        return TypeError(f"{op}: {i!r} is a bool, not a node id")
    if isinstance(i, (list, tuple, range)):
        return TypeError(f"{op}: expected one node id, got {type(i).__name__} {i!r}; for one "
                         f"node per id, map over them: T.map_tape(tape, ids, T.{op})")
    if isinstance(i, float) or (hasattr(i, "__float__") and not hasattr(i, "__index__")):
        return TypeError(f"{op}: {i!r} is a number, not a node id; for a constant write "
                         f"T.scale or T.add_constant, or push it with T.constant(tape, {i!r})")
    return IndexError(f"{op}: node id {i!r} is not on this tape of {len(tape)} nodes")


def _as_id(tape: Tape, op: str, i: object) -> int:
    """``i`` as a plain int id on ``tape`` (numpy's ints too), or the error that names it."""
    if isinstance(i, bool) or not hasattr(i, "__index__"):
        raise _bad_id(tape, op, i)
    k = operator.index(i)
    if not 0 <= k < len(tape):
        raise _bad_id(tape, op, i)
    return k


def op_value(tape: Tape, op: str, i: int) -> float:
    """Return the value of node ``i`` as the op ``op`` reads it: IndexError naming ``op`` if absent.

    The checked read every primitive and layer makes; ``tape.data`` is this for the REPL.

    >>> tape = leaves([2.5])
    >>> op_value(tape, "my_op", 0)
    2.5
    >>> op_value(tape, "my_op", 9)
    Traceback (most recent call last):
    ...
    IndexError: my_op: node id 9 is not on this tape of 1 nodes
    """
    if type(i) is not int or i < 0:
        i = _as_id(tape, op, i)
    base = tape.base
    try:
        return base[i] if i < len(base) else _entry_at(tape, i - len(base))[0]
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
                return tuple(map(value_of, tape.tail[lo - start : hi - start]))
        elif lo >= nb:
            c, k = divmod(lo - nb, CHUNK)
            if k + hi - lo <= CHUNK:  # within one chunk
                return tuple(map(value_of, chunks[c][k : k + hi - lo]))
    try:
        if not ids:
            return ()
        if type(ids) is Run:
            lo = ids[0]
            hi = lo + len(ids)
        else:
            lo, hi = min(ids), max(ids) + 1
        if lo < 0 or hi > nb + CHUNK * len(tape.chunks) + len(tape.tail):  # len(tape), inline
            raise IndexError
        if hi <= nb:
            return base[lo:hi] if type(ids) is Run else tuple(map(base.__getitem__, ids))
        if lo >= nb and (type(ids) is Run or hi - lo <= 16 * len(ids)):
            span = entries_between(tape, lo - nb, hi - nb)  # few chunks: read them by slices
            if type(ids) is Run:
                return tuple(map(value_of, span))
            return tuple([span[i - lo][0] for i in ids])
        return tuple([base[i] if i < nb else _entry_at(tape, i - nb)[0] for i in ids])
    except (IndexError, TypeError):
        if isinstance(ids, (int, float)) or not hasattr(ids, "__iter__"):
            raise TypeError(f"{op}: expected a sequence of node ids, got {ids!r}") from None
        return tuple([op_value(tape, op, i) for i in ids])  # raises the error naming the bad id


def matrix_values(
    tape: Tape, op: str, rows: Sequence[Sequence[int]]
) -> Sequence[tuple[float, ...]]:
    """Return the values of the node ids ``rows``, row by row, checked as ``op_values`` does.

    What a layer reads of its weights. A ``RunMatrix`` of parameters (each
    of ``model.layout``'s weight matrices) is read as one slice of the
    parameters and split into rows in C; any other rows are read one
    ``op_values`` each. The rows may differ in length: the caller checks
    the shape it needs.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])
    >>> matrix_values(tape, "my_op", RunMatrix(0, 2, 2)), matrix_values(tape, "my_op", [(3, 0)])
    (((1.0, 2.0), (3.0, 4.0)), [(4.0, 1.0)])
    >>> matrix_values(tape, "my_op", RunMatrix(2, 2, 2))
    Traceback (most recent call last):
    ...
    IndexError: my_op: node id 4 is not on this tape of 4 nodes
    """
    base = tape.base
    if type(rows) is RunMatrix and rows and rows[0] and rows[-1][-1] < len(base):
        # Consecutive rows of equal length, all parameters: one slice, cut into rows by zip.
        n = len(rows[0])
        return tuple(zip(*[iter(base[rows[0][0] : rows[-1][-1] + 1])] * n))
    return [op_values(tape, op, row) for row in rows]


def checked_ids(tape: Tape, op: str, ids: Iterable[int]) -> tuple[int, ...]:
    """Return ``ids`` as a tuple of plain ints, each an id already on ``tape``: what ``push``
    accepts as a new node's inputs. numpy's ints are accepted; anything else is refused with
    the error that says what to write instead.

    >>> checked_ids(leaves([1.0, 2.0]), "my_op", [1, 0])
    (1, 0)
    >>> checked_ids(leaves([1.0, 2.0]), "my_op", [0, 2])
    Traceback (most recent call last):
    ...
    IndexError: my_op: node id 2 is not on this tape of 2 nodes
    """
    ids = tuple(ids)
    n = len(tape)
    if not ids:
        return ids
    types = set(map(type, ids))
    if types == {int} and min(ids) >= 0 and max(ids) < n:
        return ids
    if (bool not in types and all(issubclass(t, int) for t in types)  # tape.Id is an int
            and min(ids) >= 0 and max(ids) < n):
        return tuple(map(int, ids))
    return tuple([_as_id(tape, op, i) for i in ids])


def parameter_count(tape: Tape) -> int:
    """Return how many parameters ``tape`` starts with: the leaves ``leaves`` made it from
    (0 for a tape built with ``var``).

    >>> parameter_count(leaves([1.0, 2.0])), parameter_count(EMPTY)
    (2, 0)
    """
    return len(tape.base)


def node_tuple(tape: Tape, i: int) -> NodeTuple:
    """Return node ``i`` as a plain ``(value, inputs, local_grads, op)`` tuple (checked).

    >>> node_tuple(leaves([3.0]), 0)
    (3.0, (), (), 'var')
    """
    op_value(tape, "node", i)
    base = tape.base
    if i < len(base):
        return (base[i], (), (), "var")
    return _unfold(_entry_at(tape, i - len(base)))


def parameter_values(tape: Tape, n: int) -> tuple[float, ...]:
    """Return the values of nodes ``0..n-1``, read by slices: a model's parameters.

    ``n`` is at most ``len(tape)``. On a tape made by ``leaves`` (as a
    training state's is), the first ``parameter_count(tape)`` values are
    stored as one tuple, and for that ``n`` this is the tuple itself, not a
    copy: what a training step reads once per step.

    >>> tape, _ = push_many(leaves([1.0]), [(2.0, (0,), (2.0,), "double")])
    >>> parameter_values(tape, 2), parameter_values(tape, 1)
    ((1.0, 2.0), (1.0,))
    >>> parameter_values(tape, 3)
    Traceback (most recent call last):
    ...
    ValueError: parameter_values: 3 values asked of a tape of 2 nodes
    """
    base = tape.base
    if n <= len(base):
        return base[:n]
    if n > len(tape):
        raise ValueError(f"parameter_values: {n!r} values asked of a tape of {len(tape)} nodes")
    return base + tuple([entry[0] for entry in entries_between(tape, 0, n - len(base))])


# --------------------------------------------------------------------- writes


def finite_number(op: str, x: object) -> float:
    """Return ``x`` as a float: TypeError naming ``op`` if it is no number, NonFiniteError if
    it is not finite. Numbers of other kinds (numpy's, ``fractions.Fraction``) are accepted.

    >>> finite_number("scale", 2)
    2.0
    >>> finite_number("scale", "2")
    Traceback (most recent call last):
    ...
    TypeError: scale: expected a number, got '2'
    """
    if type(x) is float:
        if _isfinite(x):
            return x
        raise NonFiniteError(f"{op}: value {x!r} is not finite")
    if isinstance(x, bool) or isinstance(x, (str, bytes)) or not hasattr(x, "__float__"):
        raise TypeError(f"{op}: expected a number, got {x!r}")
    if isinstance(x, int) and type(x) is not int:  # a tape.Id: an int marked as a node id
        raise TypeError(f"{op}: {x!r} is a node id, not a number; for node {int(x)}'s value "
                        f"write T.data(tape, {int(x)}), for the number write {float(x)!r}")
    try:
        y = float(x)
    except (TypeError, ValueError, OverflowError):
        raise TypeError(f"{op}: expected a real number, got {x!r}") from None
    if isinstance(x, complex) or not _isfinite(y):
        raise NonFiniteError(f"{op}: value {x!r} is not finite")
    return y


def finite_numbers(op: str, xs: Iterable[float]) -> tuple[float, ...]:
    """Return ``xs`` as a tuple of floats, each checked as ``finite_number`` checks one.

    >>> finite_numbers("my_op", [1, 2.5])
    (1.0, 2.5)
    >>> finite_numbers("my_op", [1.0, float("nan")])
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: my_op: value nan is not finite
    """
    xs = tuple(xs)
    try:  # the common case in two C-level passes: finite numbers, none of them a bool
        types = set(map(type, xs))
        fast = all(map(_isfinite, xs)) and bool not in types
    except TypeError:
        fast = False
    if fast and types <= {float}:
        return xs
    if fast and types <= {float, int}:
        return tuple(map(float, xs))
    return tuple([finite_number(op, x) for x in xs])  # refuses bools and node ids


def leaves(xs: Iterable[float], op: str = "leaves") -> Tape:
    """Return a new tape holding one leaf per value of ``xs`` (ids 0, 1, ...); errors name ``op``.

    >>> leaves([0.5, -1.0])
    <Tape: 2 nodes (2 leaves), 0 edges>
    """
    return Tape(finite_numbers(op, xs))


def appended(tape: Tape, batch: tuple[Entry, ...]) -> Tape:
    """Return ``tape`` with ``batch`` pushed: the tail grows, and each 64 entries become a chunk.

    The one place a tape grows. Nothing is checked here.

    >>> len(appended(leaves([1.0]), ((2.0, (), (), "var"),)))
    2
    """
    tail = tape.tail + batch
    if len(tail) < CHUNK:
        return Tape(tape.base, tape.chunks, tail)
    full = len(tail) - len(tail) % CHUNK
    new_chunks = [tail[k : k + CHUNK] for k in range(0, full, CHUNK)]  # local transient
    return Tape(tape.base, tape.chunks.extend(new_chunks), tail[full:])


def push_trusted(tape: Tape, batch: Sequence[Entry]) -> tuple[Tape, Run]:
    """Return ``(tape + batch, their ids)`` with no checks but finiteness: for the fused layers.

    ``push_many`` without its checks and copies, for a caller that built
    ``batch`` itself, from tuples it does not keep, in the form the fast
    backward reads (the layers do, on the training path). The caller vouches
    for what ``push_many`` checks: every entry a ``(value, inputs,
    local_grads, op)`` tuple of tuples, inputs before the node, one finite
    local gradient per input; the members of a Block pushed as consecutive
    runs from member 0 up (``block_nodes``), none reading a member of its own
    run. Non-finite values are still refused.

    >>> tape, ids = push_trusted(leaves([1.0]), ((2.0, (0,), (2.0,), "double"),))
    >>> ids, node_tuple(tape, 1)
    ((1,), (2.0, (0,), (2.0,), 'double'))
    """
    batch = tuple(batch)  # the caller's list is not kept
    # One C-level sum decides the common case: it is finite only if every value is.
    if not _isfinite(builtins.sum(map(value_of, batch))):
        for value, _, _, op in batch:
            if not _isfinite(value):
                raise NonFiniteError(f"{op}: result {value!r} is not finite")
    first = len(tape.base) + CHUNK * len(tape.chunks) + len(tape.tail)  # len(tape), inline
    return appended(tape, batch), _run(first, first + len(batch))


def _ids_before(op: str, ids: Iterable[int], n: int | None, what: str) -> tuple[int, ...]:
    """``ids`` as a tuple of plain ints, each in ``0..n-1`` (the nodes before ``what``), or
    each at least 0 when ``n`` is None."""
    ids = tuple(ids)
    if ids and set(map(type, ids)) == {int} and min(ids) >= 0 and (n is None or max(ids) < n):
        return ids
    out = []  # local transient, frozen below
    for i in ids:
        if isinstance(i, bool) or not hasattr(i, "__index__"):
            raise TypeError(f"{op}: input {i!r} is not a node id (ids are ints; a bool is not one)")
        k = operator.index(i)
        if k < 0 or (n is not None and k >= n):
            bound = "" if n is None else f" before {what} (ids 0..{n - 1})"
            raise IndexError(f"{op}: input {k} is not a node{bound}")
        out.append(k)
    return tuple(out)


def _frozen_block(op: str, block: Any) -> Block:
    """``block`` checked and copied into tuples: rows as long as the gradients they pair with."""
    if type(block) is not Block:
        raise TypeError(f"{op}: a member's block must be a Block, got {type(block).__name__}")
    own_ids, own_grads, shared_ids, shared_grads = block
    own_grads = finite_numbers(f"{op}: local gradient", own_grads)
    shared_ids = _ids_before(op, shared_ids, None, "")
    rows = tuple([_ids_before(op, row, None, "") for row in own_ids])
    grads = tuple([finite_numbers(f"{op}: local gradient", row) for row in shared_grads])
    if len(rows) != len(grads):
        raise ValueError(f"{op}: a block of {len(rows)} own id rows and {len(grads)} shared "
                         "gradient rows")
    if set(map(len, rows)) - {len(own_grads)} or set(map(len, grads)) - {len(shared_ids)}:
        raise ValueError(f"{op}: a block's ids and local gradients differ in length")
    return Block(rows, own_grads, shared_ids, grads)


def push_many(tape: Tape, new_nodes: Iterable[Entry]) -> tuple[Tape, Run]:
    """Return ``(tape + new_nodes, their ids)``: ``push`` for a batch, in one append.

    Each node is a ``(value, inputs, local_grads, op)`` tuple, or a Block
    member as ``block_nodes`` makes it. A node may read the nodes before it,
    those of its own batch included. Everything is checked as ``push``
    checks it (inputs before the node, one finite local gradient per input,
    finite values) and copied into tuples: what the caller passed in can be
    changed afterwards without changing the tape. Block members may come in
    any order, alone or mixed with other nodes; those not stored as a run of
    members ``0, 1, ...`` that read only nodes before the run are stored
    unfolded, as the ordinary nodes they stand for. The ids come back as a
    ``Run``.

    >>> tape = leaves([1.0, 2.0])
    >>> doubles = [(2.0, (0,), (2.0,), "double"), (4.0, (1,), (2.0,), "double")]
    >>> tape, ids = push_many(tape, doubles)
    >>> ids, op_values(tape, "values", ids)
    ((2, 3), (2.0, 4.0))
    >>> push_many(tape, [(1.0, (4,), (1.0,), "self")])
    Traceback (most recent call last):
    ...
    IndexError: self: input 4 is not a node before node 4 (ids 0..3)
    """
    first = len(tape)
    frozen: dict[int, tuple[Any, Block]] = {}  # local: id(a caller's Block) -> it, frozen
    batch: list[Entry] = []  # local transient, frozen by push_trusted
    run_block, run_first, run_k = None, -1, -1  # the run of members being stored, if any
    for n, entry in enumerate(new_nodes, first):
        if not isinstance(entry, (tuple, list)) or len(entry) != 4:
            raise TypeError(f"push_many: node {n} must be (value, inputs, local_grads, op), "
                            f"got {entry!r}")
        value, inputs, local_grads, op = entry
        if type(op) is not str:
            raise TypeError(f"push_many: node {n}'s op must be a str, got {op!r}")
        if type(value) is not float or not _isfinite(value):
            try:
                value = finite_number(op, value)
            except NonFiniteError:
                raise NonFiniteError(f"{op}: result {value!r} is not finite") from None
        if isinstance(inputs, Block):
            if id(inputs) not in frozen:
                frozen[id(inputs)] = (inputs, _frozen_block(op, inputs))  # keeps it alive
            block = frozen[id(inputs)][1]
            k = local_grads
            if type(k) is not int or not 0 <= k < len(block.own_ids):
                raise ValueError(f"{op}: member index {k!r} is not in "
                                 f"0..{len(block.own_ids) - 1} of its block")
            reads = block.own_ids[k] + block.shared_ids
            if reads and max(reads) >= n:
                raise IndexError(f"{op}: input {max(reads)} is not a node before node {n} "
                                 f"(ids 0..{n - 1})")
            if block is run_block and k == run_k + 1 and (not reads or max(reads) < run_first):
                run_k = k  # the run goes on
            elif k == 0:
                run_block, run_first, run_k = block, n, 0  # a run starts
            else:  # alone, out of order, or reading its own run: stored as the node it is
                run_block = None
                batch.append(block_member(block, k, value, op))
                continue
            batch.append((value, block, k, op))
            continue
        run_block = None
        ids = _ids_before(op, inputs, n, f"node {n}")
        grads = finite_numbers(f"{op}: local gradient", local_grads)
        if len(grads) != len(ids):
            raise ValueError(f"{op}: {len(ids)} inputs but {len(grads)} local gradients; "
                             "give one local gradient per input")
        batch.append((value, ids, grads, op))
    return push_trusted(tape, batch)


def push_block(
    tape: Tape, op: str, values: Sequence[float], block: Block
) -> tuple[Tape, Run]:
    """Return ``(tape + one node per value, their ids)``: the members of ``block``, stored once.

    Member ``k`` has value ``values[k]`` (see ``Block``). The shapes are
    checked here, and everything else as ``push_many`` checks it (ids before
    the block, finite numbers); the block is copied into tuples.

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])
    >>> blk = Block(((2, 3),), (1.0, 2.0), (0, 1), ((3.0, 4.0),))   # y = w . x
    >>> tape, (y,) = push_block(tape, "dot", (11.0,), blk)
    >>> node_tuple(tape, y)
    (11.0, (2, 3, 0, 1), (1.0, 2.0, 3.0, 4.0), 'dot')
    >>> push_block(tape, "dot", (1.0, 2.0), blk)
    Traceback (most recent call last):
    ...
    ValueError: dot: a block of 2 values, 1 member id rows and 1 member gradient rows
    """
    own_ids, own_grads, shared_ids, shared_grads = block
    m = len(values)
    if len(own_ids) != m or len(shared_grads) != m:
        raise ValueError(f"{op}: a block of {m} values, {len(own_ids)} member id rows and "
                         f"{len(shared_grads)} member gradient rows")
    if m and (set(map(len, own_ids)) != {len(own_grads)}
              or set(map(len, shared_grads)) != {len(shared_ids)}):
        raise ValueError(f"{op}: a block's ids and local gradients differ in length")
    return push_many(tape, block_nodes(op, values, block))  # it refuses non-finite values


def block_nodes(op: str, values: Sequence[float], block: Block) -> tuple[Entry, ...]:
    """Return the members of ``block`` as ``push_many`` takes them: for a batch with other nodes.

    ``push_block`` pushes them on their own; a layer that pushes several
    blocks and nodes in one batch (``layers.attention``) builds them here.
    A member is stored as ``(value, block, k, op)`` (``k`` its index in the
    block). Nothing is checked here: ``push_many`` checks and copies them,
    in any order and any selection (``push_trusted`` takes a layer's word).

    >>> tape = leaves([1.0, 2.0, 3.0, 4.0])
    >>> blk = Block(((2, 3),), (1.0, 2.0), (0, 1), ((3.0, 4.0),))   # y = w . x
    >>> tape, (y,) = push_many(tape, block_nodes("dot", (11.0,), blk))
    >>> node_tuple(tape, y)
    (11.0, (2, 3, 0, 1), (1.0, 2.0, 3.0, 4.0), 'dot')
    """
    return tuple(zip(values, repeat(block), count(), repeat(op)))
