"""``tape.backward_on_tape`` as the transformations run it: one node per adjoint, not two per edge.

``tape.backward_on_tape`` is the specification: a fold from the root down in which every edge
``j <- i`` pushes a product ``local * g`` and a sum ``adjoint[j] + product``. That is two nodes per
edge, about 60,000 for the GPT's loss on a four-letter name. ``fused_backward_on_tape`` below
builds the same adjoints with one node each:

- a node's adjoint ``0.0 + f_1 * g_1 + f_2 * g_2 + ...`` is one ``adjoint`` node, its
  contributions in the order the fold hands them over (consumers from the highest id down, each
  in the order of its inputs). Each factor ``f`` is a local gradient from the op's rule (a node
  or a float constant) and each ``g`` a consumer's adjoint node. The value is the same left fold
  of the same products, so it equals the spec's bit for bit;
- a node whose one contribution is ``1.0 * g`` (an add, a sum, a residual) takes ``g``'s node as
  its adjoint, as ``0.0 + 1.0 * g`` is ``g`` itself (a zero ``g`` is pushed, to keep ``+0.0``);
- the rules run first, in one pass from the root down, and the adjoints are then appended as one
  batch: no rule reads an adjoint, so the ids are known before the batch is built. The lists and
  dicts that this takes are local to the function (``runST``-style) and frozen before return.

An ``adjoint`` node's rule makes it differentiable again: d/dg_k is f_k, and d/df_k is g_k.
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

from math import isfinite
from typing import Any

from pyrsistent import PMap, pmap

from . import tape as T
from .tape_storage import Tape, appended, op_value, parameter_values

__all__ = ["fused_backward_on_tape", "ADJOINT"]


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
    op_value(tape, "backward_on_tape", root)
    # Pass 1, from the root down: each reached node's local gradients by its op's rule, pushed
    # on the tape, and the contributions (factor, consumer) each input receives, in fold order.
    received: dict[int, list[tuple[Any, int]]] = {}  # local transient
    reached = [root]  # local transient: the nodes with an adjoint, highest id first
    for i in range(root, -1, -1):
        if i != root and i not in received:
            continue
        if i != root:
            reached.append(i)
        tape, locals_ = T.local_grads_on_tape(tape, i)
        if locals_:
            for j, local in zip(T.node(tape, i).inputs, locals_):
                received.setdefault(j, []).append((local, i))
    # Pass 2: the adjoints, as one batch after the rules' nodes.
    values = list(parameter_values(tape, len(tape)))  # local transient: every value by id
    first = len(tape)
    batch: list[tuple[Any, ...]] = [(1.0, (), (), "const")]  # local transient; the root's 1.0
    values.append(1.0)
    adjoint = {root: first}  # local transient
    for i in reached[1:]:
        contributions = received[i]
        if len(contributions) == 1:
            local, consumer = contributions[0]
            g = adjoint[consumer]
            if type(local) is float and local == 1.0 and values[g]:
                adjoint[i] = g  # 0.0 + 1.0 * g is g
                continue
        total = 0.0
        inputs: list[int] = []  # local
        local_grads: list[float] = []  # local
        has_node_factor: list[int] = []  # local
        for local, consumer in contributions:
            g = adjoint[consumer]
            gv = values[g]
            if type(local) is T.Id:
                fv = values[local]
                inputs += (g, local)
                local_grads += (fv, gv)
                has_node_factor.append(1)
            else:
                fv = local
                inputs.append(g)
                local_grads.append(fv)
                has_node_factor.append(0)
            total += fv * gv
        adjoint[i] = len(values)
        values.append(total)
        batch.append((total, tuple(inputs), tuple(local_grads),
                      T.op_to_store(ADJOINT, has_node_factor)))
        if not isfinite(total):
            raise T.NonFiniteError(f"backward_on_tape: the adjoint of node {i} overflows")
    tape = appended(tape, tuple(batch))
    return tape, pmap({i: T.Id(a) for i, a in adjoint.items()})


def _adjoint_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[Any, ...]]:
    """An adjoint ``sum of f_k * g_k``: d/dg_k = f_k (a node, or the float constant pushed with
    it), and d/df_k = g_k. ``params`` says which contributions have a node as their factor."""
    locals_: list[Any] = []  # local transient
    position = 0
    for has_node in n.params:
        if has_node:
            g, f = n.inputs[position : position + 2]
            locals_ += (T.Id(f), T.Id(g))
            position += 2
        else:
            locals_.append(n.local_grads[position])
            position += 1
    return tape, tuple(locals_)


ADJOINT = T.defop("adjoint", _adjoint_rule)
