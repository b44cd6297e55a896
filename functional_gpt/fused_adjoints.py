"""``tape.backward_on_tape`` as the transformations run it: one node per adjoint, not two per edge.

``tape.backward_on_tape`` is the specification: a fold from the root down in which every edge
``j <- i`` pushes a product ``local * g`` and a sum ``adjoint[j] + product``. That is two nodes per
edge, about 60,000 for the GPT's loss on a four-letter name. ``fused_backward_on_tape`` below
builds the same adjoints with one node each, and its values are the spec's, bit for bit:

- a node's adjoint ``0.0 + f_1 * g_1 + f_2 * g_2 + ...`` is one node: the left fold of the same
  products in the order the fold hands them over (consumers from the highest id down, each in
  the order of its inputs). Each factor ``f`` is a local gradient from the op's rule (a node or
  a float constant), each ``g`` a consumer's adjoint node. Where every factor is a node it is a
  ``dot`` of the f's and the g's; where every factor is a constant, a ``weighted_sum`` of the
  g's; otherwise an ``adjoint`` node, whose rule is defined below (d/dg_k = f_k, d/df_k = g_k);
- a node whose one contribution is ``1.0 * g`` (an add, a sum, a residual) takes ``g``'s node as
  its adjoint, as ``0.0 + 1.0 * g`` is ``g`` itself (a zero ``g`` is pushed, to keep ``+0.0``);
- nodes read alike (a weight matrix's row, read by the same consumer at every position; the
  inputs of a linear layer, read by all its rows) get their dots as one ``Block``, like a layer;
  a block whose rule gives back its own ids swapped (a dot's) is handed over column by column;
- the rules run first, in one pass from the root down, and the adjoints are then appended as one
  batch: no rule reads an adjoint, so the ids are known before the batch is built. The lists and
  dicts that this takes are local to the function (``runST``-style) and frozen before return.

``tests/test_second_order.py`` checks the adjoints against ``tape.backward_on_tape``'s: the values
bit for bit, and their own derivatives to rounding.

>>> import functional_gpt.tape as T
>>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
>>> tape, xy = T.mul(tape, x, y)
>>> tape, z = T.add(tape, xy, x)                 # z = x*y + x
>>> fused, adjoints = fused_backward_on_tape(tape, z)
>>> T.data(fused, adjoints[x]), T.data(fused, adjoints[y])
(5.0, 3.0)
>>> spec, spec_adjoints = T.backward_on_tape(tape, z)
>>> len(fused) - len(tape), len(spec) - len(tape)      # nodes pushed by each
(3, 9)
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import compress
from math import isfinite
from typing import Any

from pyrsistent import PMap, pmap

from . import tape as T
from .exact_folds import fold_dot, fold_dots
from .tape_storage import (
    Block,
    Tape,
    appended,
    block_member,
    block_nodes,
    entries,
    op_value,
    parameter_values,
)

__all__ = ["fused_backward_on_tape", "adjoints_on_tape", "ADJOINT"]


def fused_backward_on_tape(tape: Tape, root: int) -> tuple[Tape, PMap[int, T.Id]]:
    """Return ``T.backward_on_tape(tape, root)``'s adjoints, with one node per adjoint.

    The adjoints' values are ``T.backward_spec``'s, bit for bit, as the
    spec's are. A node the root does not depend on has no entry (adjoint 0).

    >>> import functional_gpt.tape as T
    >>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, s = T.sigmoid(*T.mul(tape, x, y))
    >>> fused, adjoints = fused_backward_on_tape(tape, s)
    >>> T.data(fused, adjoints[x]) == T.backward(tape, s)[x]
    True
    """
    tape, adjoint = adjoints_on_tape(tape, root)
    return tape, pmap({i: T.Id(a) for i, a in adjoint.items()})


def adjoints_on_tape(tape: Tape, root: int) -> tuple[Tape, dict[int, int]]:
    """Return ``fused_backward_on_tape``'s result with its map as a new dict of plain ids, which
    the caller owns: what ``transforms`` reads, without building a persistent map.

    >>> import functional_gpt.tape as T
    >>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, xy = T.mul(tape, x, y)
    >>> tape2, adjoints = adjoints_on_tape(tape, xy)
    >>> adjoints, T.values(tape2, [adjoints[0], adjoints[1]])
    ({2: 3, 1: 4, 0: 5}, (4.0, 3.0))
    """
    op_value(tape, "backward_on_tape", root)
    # Pass 1, from the root down: each reached node's local gradients by its op's rule, pushed
    # on the tape, and the contributions (factor, consumer) each input receives, in fold order.
    # The nodes up to ``root`` are read from the tape passed in, which no push changes.
    nb = len(tape.base)
    stored = entries(tape)[: max(0, root - nb + 1)]  # local: the entries up to the root
    # For each input j: the factors it receives and the consumers they come from, in fold order.
    factors: dict[int, list[Any]] = {}  # local transient
    consumers: dict[int, list[int]] = {}  # local transient
    reached = [root]  # local transient: the nodes with an adjoint, highest id first
    # Rows of parameters that mirrored blocks read as their own ids (a weight matrix's rows):
    # for each, the (member, common ids) it receives from, in fold order.
    # Kept by the row's identity while reading (a weight matrix's rows are the same objects at
    # every position), then by its ids.
    rows_seen: dict[int, tuple[Any, list[tuple[int, tuple[int, ...]]]]] = {}  # local transient
    built_in = T.built_in_ops()

    parts: dict[Any, tuple[str, tuple[Any, ...], T.Op | None]] = {}  # local cache

    def rule_of(tape: Tape, i: int, node: tuple[Any, ...]) -> tuple[Tape, Sequence[Any]]:
        value, inputs, local_grads, stored_op = node
        try:
            found = parts.get(stored_op)
            if found is None:
                found = parts[stored_op] = T.op_parts(stored_op)
        except TypeError:  # params that cannot be hashed: not cached
            found = T.op_parts(stored_op)
        name, params, op = found
        if op is not None and built_in.get(name) is op:  # trusted: ints are ids, floats constants
            if op.rule is T.constant_locals:  # what these two rules give, without calling them
                return tape, local_grads
            if op.rule is T.swapped_halves:
                half = len(inputs) // 2
                return tape, inputs[half:] + inputs[:half]
            return op.rule(tape, i, T.Node(value, inputs, local_grads, name, params))
        return T.local_grads_on_tape(tape, i)  # checked, or NoRuleError

    def receive(i: int, inputs: Sequence[int], locals_: Sequence[Any]) -> None:
        for j, local in zip(inputs, locals_):
            if j in factors:
                factors[j].append(local)
                consumers[j].append(i)
            else:
                factors[j] = [local]
                consumers[j] = [i]

    i = root
    while i >= nb:
        if i != root and i not in factors:
            i -= 1
            continue
        value, inputs, local_grads, stored_op = stored[i - nb]
        if type(inputs) is not Block:
            if i != root:
                reached.append(i)
            if inputs:
                tape, locals_ = rule_of(tape, i, stored[i - nb])
                receive(i, inputs, locals_)
            i -= 1
            continue
        # A Block's members first..i (``local_grads`` holds member i's index), read together.
        block, first = inputs, i - local_grads
        own_rows, _, common, _ = block
        members = [m for m in range(i, first - 1, -1) if m == root or m in factors]  # local
        reached.extend(m for m in members if m != root)
        handed: list[tuple[int, tuple[int, ...], Any]] = []  # local: (member, its inputs or
        # its own ids, its local gradients on the tape or None for "swapped")
        common_set = set(common)  # local
        mirrored = len(common_set) == len(common)  # each member's rule gives the block's ids
        # back swapped: its own ids for the common ones and the other way round. A member whose
        # rule is ``swapped_halves`` (a dot's) does that by definition, and is not called.
        stored_op = stored[i - nb][3]
        _, _, op = T.op_parts(stored_op)
        dots = (op is not None and op.rule is T.swapped_halves and built_in.get(op.name) is op
                and all([stored[m - nb][3] == stored_op for m in members]))
        for m in members:
            k = m - first
            own = own_rows[k]
            if dots and len(own) == len(common):
                mirrored = mirrored and common_set.isdisjoint(own)
                handed.append((m, own, None))  # its inputs own + common, its locals swapped
                continue
            node = block_member(block, k, stored[m - nb][0], stored[m - nb][3])
            tape, locals_ = rule_of(tape, m, node)
            mirrored = (mirrored and tuple(locals_[: len(own)]) == common
                        and tuple(locals_[len(own):]) == own and common_set.isdisjoint(own))
            handed.append((m, node[1], locals_))
        if not mirrored:
            for m, inputs_m, locals_ in handed:
                if locals_ is None:
                    inputs_m, locals_ = inputs_m + common, common + inputs_m
                receive(m, inputs_m, locals_)
        else:  # the common ids column by column: the same contributions in the same order
            for m, _, _ in handed:
                own = own_rows[m - first]
                if own and max(own) < nb:  # a row of parameters: kept whole, for pass 2
                    kept = rows_seen.get(id(own))
                    if kept is None or kept[0] is not own:
                        kept = rows_seen[id(own)] = (own, [])
                    kept[1].append((m, common))
                else:
                    receive(m, own, common)
            columns = zip(*[own_rows[m - first] for m in members])
            for j, column in zip(common, columns):
                if j in factors:
                    factors[j].extend(column)
                    consumers[j].extend(members)
                else:
                    factors[j] = list(column)
                    consumers[j] = list(members)
        i = first - 1
    rows: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]] = {}  # local transient
    for own, received in rows_seen.values():  # rows of equal ids, merged in fold order
        key = tuple(own)
        rows[key] = (sorted(rows[key] + received, key=lambda r: -r[0]) if key in rows
                     else received)
    _rows_apart(rows, factors, consumers)
    reached += sorted((i for i in factors if i < nb), reverse=True)  # the base's leaves
    # Pass 2: the adjoints, as one batch after the rules' nodes. Adjoint j is the left fold of
    # the products of its factors with its consumers' adjoints: the spec's sum, in its order.
    values = list(parameter_values(tape, len(tape)))  # local transient: every value by id
    value_at = values.__getitem__
    first = len(tape)
    batch: list[Any] = [(1.0, (), (), "const")]  # local transient; the root's 1.0
    values.append(1.0)
    adjoint = {root: first}  # local transient
    adjoint_at = adjoint.__getitem__
    group: list[int] = []  # local: consecutive nodes whose factors are nodes, same consumers

    def push_dots(targets: Sequence[int], factor_rows: Sequence[tuple[int, ...]],
                  row_values: Sequence[tuple[float, ...]], gs: tuple[int, ...],
                  gvs: tuple[float, ...]) -> None:
        """The adjoints of ``targets``: each the dot of its factors with the g's, pushed as one
        Block (one plain ``dot`` node if alone). d/df = g, d/dg = f: a dot's rule."""
        totals = fold_dots(gvs, row_values)
        if not all(map(isfinite, totals)):
            bad = next(i for i, t in zip(targets, totals) if not isfinite(t))
            raise T.NonFiniteError(f"backward_on_tape: the adjoint of node {bad} overflows")
        start = len(values)
        adjoint.update(zip(targets, range(start, start + len(targets))))
        values.extend(totals)
        if len(targets) == 1:
            batch.append((totals[0], (*factor_rows[0], *gs), (*gvs, *row_values[0]), "dot"))
        else:
            batch.extend(block_nodes("dot", totals, Block(tuple(factor_rows), gvs, gs,
                                                          tuple(row_values))))

    def flush() -> None:  # the group's adjoints: nodes read alike, by the same consumers
        gs = tuple(map(adjoint_at, consumers[group[0]]))
        factor_rows = [tuple(factors[i]) for i in group]  # local
        push_dots(group, factor_rows, [tuple(map(value_at, row)) for row in factor_rows], gs,
                  tuple(map(value_at, gs)))
        group.clear()

    for i in reached[1:]:
        fs = factors[i]
        kinds = {type(fs[0])} if len(fs) == 1 else set(map(type, fs))  # local
        if float not in kinds:  # every factor a node (a dot, a mul): the common case
            if group and i == group[-1] - 1 and consumers[i] == consumers[group[0]]:
                group.append(i)
                continue
            if group:
                flush()
            group.append(i)
            continue
        if group:
            flush()
        gs = tuple(map(adjoint_at, consumers[i]))
        gvs = tuple(map(value_at, gs))
        if len(kinds) == 1:  # every factor a float constant (an add, a sum, a scale)
            if len(fs) == 1 and fs[0] == 1.0 and gvs[0]:
                adjoint[i] = gs[0]  # 0.0 + 1.0 * g is g
                continue
            total = fold_dot(fs, gvs)
            entry: tuple[Any, ...] = (total, gs, tuple(fs), "weighted_sum")  # d/dg = f
        else:  # some of each
            is_node = [type(f) is not float for f in fs]  # local
            fvs = [values[f] if n else f for f, n in zip(fs, is_node)]  # local
            total = fold_dot(fvs, gvs)
            entry = (total, (*gs, *compress(fs, is_node)), (*fvs, *compress(gvs, is_node)),
                     ("adjoint", *map(int, is_node)))
        if not isfinite(total):
            raise T.NonFiniteError(f"backward_on_tape: the adjoint of node {i} overflows")
        adjoint[i] = len(values)
        values.append(total)
        batch.append(entry)
    if group:
        flush()
    common_values: dict[int, tuple[Any, tuple[float, ...]]] = {}  # local cache, by identity

    def values_of(common: tuple[int, ...]) -> tuple[float, ...]:
        kept = common_values.get(id(common))
        if kept is None or kept[0] is not common:
            kept = common_values[id(common)] = (common, tuple(map(value_at, common)))
        return kept[1]

    for own, received in rows.items():  # a row of parameters: its adjoints as one Block
        gs = tuple([adjoint[m] for m, _ in received])
        id_rows = tuple(zip(*[common for _, common in received]))  # per parameter, its factors
        value_rows = tuple(zip(*[values_of(common) for _, common in received]))
        push_dots(own, id_rows, value_rows, gs, tuple(map(value_at, gs)))
    return appended(tape, tuple(batch)), adjoint


def _rows_apart(
    rows: dict[tuple[int, ...], list[tuple[int, tuple[int, ...]]]],
    factors: dict[int, list[Any]], consumers: dict[int, list[int]],
) -> None:
    """Move into ``factors`` and ``consumers`` (in place: both are the caller's locals) every row
    that shares an id with another row or with them, so that each id is received in one place;
    their contributions are then put back in fold order, the highest consumer first."""
    seen: dict[int, int] = {}  # local: id -> how many rows hold it
    for own in rows:
        for j in own:
            seen[j] = seen.get(j, 0) + 1
    apart = [own for own in rows if any(seen[j] > 1 or j in factors for j in own)]  # local
    touched: set[int] = set()  # local
    for own in apart:
        for m, common in rows.pop(own):
            for j, x in zip(own, common):
                factors.setdefault(j, []).append(x)
                consumers.setdefault(j, []).append(m)
                touched.add(j)
    for j in touched:  # a stable sort: one consumer's contributions keep their input order
        pairs = sorted(zip(consumers[j], factors[j]), key=lambda p: -p[0])
        consumers[j] = [m for m, _ in pairs]
        factors[j] = [f for _, f in pairs]


def _adjoint_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[Any, ...]]:
    """An adjoint ``fold_dot(f, g)``: its inputs are the g's, then the f's that are nodes;
    ``params`` marks which f's are nodes. d/dg_k = f_k (that node, or the float constant
    pushed with it) and d/df_k = g_k."""
    gs = n.inputs[: len(n.params)]
    node_factors = iter(n.inputs[len(n.params):])
    locals_: list[Any] = []  # local transient
    g_of_node_factors: list[int] = []  # local transient
    for k, is_node in enumerate(n.params):
        if is_node:
            locals_.append(next(node_factors))
            g_of_node_factors.append(gs[k])
        else:
            locals_.append(n.local_grads[k])
    return tape, (*locals_, *g_of_node_factors)


ADJOINT = T.defop("adjoint", _adjoint_rule)
