"""The backward pass as training runs it: ``tape.backward_spec``'s fold, as one loop over a list.

``tape.backward_spec`` is the specification: a fold over the node ids from the root down into a
persistent vector of adjoints, in which each node adds ``local_grad * adjoint`` to each of its
inputs, in the order of its inputs. ``backward_as_tuple`` below computes the same floats with
the same additions in the same order, faster:

- the adjoints live in a local list, written only here and frozen into a tuple before it is
  returned (``runST``-style: nobody else ever sees it);
- a node whose adjoint is 0 is skipped: its products are all ``±0.0``, and an adjoint (which
  starts at ``+0.0`` and is never ``-0.0``) is unchanged by adding one;
- the leaves below the first node with inputs pass nothing on, so the loop stops there;
- the members of a ``Block`` are visited a block at a time without unfolding them, member ``k``
  handing over to its own ids and then to the common ids, as its unfolded inputs list them. Each
  interpreter gets the fastest form of that hand-over: the loop (``loop_block_hand_over``); on
  3.10 the common ids' column sums in C where the order cannot differ; from 3.11 on a function
  compiled per block shape, one line ``adjoint[i] += l * g`` per input.

It reads a Block's members a run at a time: ``tape_storage.push_many`` stores members only as
runs ``0, 1, ...`` that read nothing of their own run (any other member it stores unfolded), and
the layers push only such runs (``push_trusted``). ``tests/test_backward.py`` checks
``backward_as_tuple`` against ``tape.backward_spec`` bit for bit on random tapes built from
everything the public API accepts (Blocks, repeated and shared ids, members alone, out of order
or reading earlier members) and on a real training tape.

>>> from functional_gpt import tape as T
>>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
>>> tape, z = T.mul(tape, x, y)
>>> backward_as_tuple(tape, z) == tuple(T.backward_spec(tape, z))
True
"""

from __future__ import annotations

import builtins
import sys
from collections.abc import Callable, Sequence
from functools import cache
from itertools import chain, compress, count, repeat
from math import isfinite as _isfinite
from operator import add as _add
from operator import itemgetter
from operator import mul as _mul
from typing import Any, TypeVar

from .exact_folds import WRITTEN_OUT_MAX
from .tape_storage import Block, NonFiniteError, Run, Tape, entries, node_tuple, op_value

__all__ = [
    "backward_as_tuple",
    "finite_adjoints",
    "loop_block_hand_over",
    "block_hand_over",
    "written_out_block_hand_over",
]

A = TypeVar("A", bound=Sequence[float])  # a tuple or a pvector of adjoints
_inputs_of = itemgetter(1)  # an entry -> its inputs (or its Block), for a C-level scan


def backward_as_tuple(tape: Tape, root: int) -> tuple[float, ...]:
    """Return ``tuple(tape.backward_spec(tape, root))``: d(root)/d(node) for every node, by id.

    A tuple, because the optimizer reads each parameter's gradient once per
    step: it costs nothing to build from the loop's list, where a pvector
    (without pyrsistent's C extension) costs a Python loop.

    >>> from functional_gpt import tape as T
    >>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, z = T.mul(tape, x, y)
    >>> backward_as_tuple(tape, z)
    (4.0, 3.0, 1.0)
    """
    op_value(tape, "backward", root)
    nb = len(tape.base)
    adjoint = [0.0] * len(tape)  # local transient, frozen into a tuple below
    adjoint[root] = 1.0
    if root >= nb:  # the base holds leaves only: they pass nothing on
        pushed = entries(tape)[: root - nb + 1]  # local: the entries up to root
        # Leaves before the first node with inputs pass nothing on either: stop there.
        first_op = next(compress(count(), map(_inputs_of, pushed)), len(pushed) - 1)
        stop = nb + first_op
        i = root
        while i >= stop:
            _, inputs, local_grads, _ = pushed[i - nb]
            if type(inputs) is Block:  # an entry (value, block, k, op): members first..i
                first = i - local_grads  # local_grads holds the member's index k here
                block_hand_over(adjoint, inputs, first, i)
                i = first - 1
                continue
            g = adjoint[i]
            if g:  # a zero adjoint would only add zeros to the inputs
                for j, local in zip(inputs, local_grads):
                    adjoint[j] += local * g
            i -= 1
    return finite_adjoints(tape, tuple(adjoint))


def finite_adjoints(tape: Tape, adjoints: A) -> A:
    """Return ``adjoints`` (one gradient per node of ``tape``) if every one is finite; else
    raise ``NonFiniteError`` naming the node whose gradient overflowed.

    A gradient past 1e308 is ``inf``, and ``inf`` times a local gradient of 0
    is ``nan``: numbers that would look like answers. Both backward passes end
    here instead, as the forward pass does on an overflow. The node named is
    the last one (the first the fold reaches) whose gradient is not finite:
    every node after it handed over finite numbers, whose sum overflowed.

    >>> from functional_gpt import tape as T
    >>> tape, x = T.var(T.new(), -1.0)
    >>> tape, r = T.relu(tape, x)                  # 0.0, and its local gradient is 0
    >>> tape, y = T.scale(tape, r, 1e200)
    >>> tape, z = T.scale(tape, y, 1e200)          # d z / d r = 1e400: past 1e308
    >>> finite_adjoints(tape, (1.0, 2.0, 3.0, 4.0))
    (1.0, 2.0, 3.0, 4.0)
    >>> T.backward(tape, z)
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: backward: the gradient of node 1 (relu) ...
    """
    if _isfinite(builtins.sum(adjoints)):  # one C-level pass: finite only if every one is
        return adjoints
    bad = [i for i, g in enumerate(adjoints) if not _isfinite(g)]  # local
    if not bad:  # every one finite: only their sum overflowed
        return adjoints
    i = bad[-1]
    raise NonFiniteError(f"backward: the gradient of node {i} ({node_tuple(tape, i)[3]}) "
                         f"overflows: d(root)/d(node {i}) is {adjoints[i]!r}, past 1e308")


def loop_block_hand_over(adjoint: list[float], block: Block, first: int, last: int) -> None:
    """Hand the adjoints of members ``first..last`` (ids) of ``block`` to their inputs, in place.

    Exactly what visiting the unfolded members one by one from ``last`` down
    does: member ``k`` adds ``common_grads * g_k`` to its own ids, then
    ``member_grads[k] * g_k`` to the common ones. It writes only ``adjoint``,
    the caller's local list.

    >>> adjoint = [0.0, 0.0, 0.0, 2.0]   # member 3 reads id 0 (own) and ids 1, 2 (common)
    >>> loop_block_hand_over(adjoint, Block(((0,),), (10.0,), (1, 2), ((3.0, 4.0),)), 3, 3)
    >>> adjoint
    [20.0, 6.0, 8.0, 2.0]
    """
    member_ids, common_grads, common_ids, member_grads = block
    k = last - first
    for g in reversed(adjoint[first : last + 1]):
        if g:  # a zero adjoint would only add zeros to the inputs
            for j, local in zip(member_ids[k], common_grads):
                adjoint[j] += local * g
            for j, local in zip(common_ids, member_grads[k]):
                adjoint[j] += local * g
        k -= 1


@cache  # a pure function of two small ints, compiled once per shape
def written_out_block_hand_over(n_own: int, n_common: int) -> Callable[..., None]:
    """Return ``loop_block_hand_over`` compiled for blocks of ``n_own`` own and ``n_common`` ids.

    The same loop over the members, last first, with each member's hand-over
    written out, one line per input: ``adjoint[i] += l * g``. The block's
    common ids and gradients are unpacked once per block, not once per member:
    the same float operations in the same order (repeated ids included), with
    about a third fewer instructions from Python 3.11 on.

    >>> adjoint = [0.0, 0.0, 0.0, 2.0]
    >>> written_out_block_hand_over(1, 2)(adjoint, Block(((0,),), (10.0,), (1, 2), ((3.0, 4.0),)),
    ...                                   3, 3)
    >>> adjoint
    [20.0, 6.0, 8.0, 2.0]
    """
    if not (0 <= n_own <= WRITTEN_OUT_MAX and 0 <= n_common <= WRITTEN_OUT_MAX):
        raise ValueError(f"written_out_block_hand_over: widths {n_own!r}, {n_common!r} are not "
                         f"in 0..{WRITTEN_OUT_MAX}")

    def unpack(prefix: str, n: int, source: str) -> list[str]:
        return [f"{''.join(f'{prefix}{i}, ' for i in range(n))}= {source}"] if n else []

    per_block = unpack("l", n_own, "common_grads") + unpack("s", n_common, "common_ids")
    member = (unpack("i", n_own, "member_ids[k]")
              + [f"adjoint[i{i}] += l{i} * g" for i in range(n_own)]
              + unpack("m", n_common, "member_grads[k]")
              + [f"adjoint[s{i}] += m{i} * g" for i in range(n_common)])
    lines = (["def block_hand_over(adjoint, block, first, last):",
              "    member_ids, common_grads, common_ids, member_grads = block"]
             + ["    " + line for line in per_block]
             + ["    k = last - first",
                "    for g in reversed(adjoint[first : last + 1]):",
                "        if g:  # a zero adjoint would only add zeros to the inputs"]
             + ["            " + line for line in member or ["pass"]]
             + ["        k -= 1"])
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), namespace)  # our own text, made from two ints
    return namespace["block_hand_over"]


if sys.version_info < (3, 11):
    # On 3.10, whose interpreter runs the loops above slowest, a block's common ids are folded
    # column by column in C: adjoint[j] plus the products of member adjoints (last member
    # first) with column j of their gradients, one builtin sum each. Up to 3.11 a float sum is
    # a plain left fold from its start, so this adds the same products in the same order as the
    # member loop; it is used only where the order cannot differ: every input id before the
    # block, no common id repeated or read as a member's own.

    def block_hand_over(adjoint: list[float], block: Block, first: int, last: int) -> None:
        """``loop_block_hand_over``, the common ids' part as column sums in C (3.10).

        >>> adjoint = [0.0, 0.0, 0.0, 2.0]
        >>> block_hand_over(adjoint, Block(((0,),), (10.0,), (1, 2), ((3.0, 4.0),)), 3, 3)
        >>> adjoint
        [20.0, 6.0, 8.0, 2.0]
        """
        member_ids, common_grads, common_ids, member_grads = block
        common_set = set(common_ids)  # local
        if (not common_ids or len(common_set) != len(common_ids) or max(common_ids) >= first
                or not common_set.isdisjoint(chain.from_iterable(member_ids))):
            return loop_block_hand_over(adjoint, block, first, last)
        live = []  # local: (member, its adjoint), last member first
        for k in range(last - first, -1, -1):
            g = adjoint[first + k]  # read as the loop would: own ids may be members
            if g:
                live.append((k, g))
                row = member_ids[k]
                if type(row) is Run and row:  # distinct ids: one C-level update of the slice
                    lo, hi = row[0], row[-1] + 1
                    adjoint[lo:hi] = map(_add, adjoint[lo:hi], map(_mul, common_grads, repeat(g)))
                    continue
                for j, local in zip(row, common_grads):
                    adjoint[j] += local * g
        if live:
            live_gs = [g for _, g in live]  # local
            columns = zip(*[member_grads[k] for k, _ in live])
            folded = [builtins.sum(map(_mul, col, live_gs), adjoint[j])
                      for j, col in zip(common_ids, columns)]  # local
            for j, a in zip(common_ids, folded):
                adjoint[j] = a
        return None

else:

    def block_hand_over(adjoint: list[float], block: Block, first: int, last: int) -> None:
        """``loop_block_hand_over``, written out for the block's shape (3.11+).

        >>> adjoint = [0.0, 0.0, 0.0, 2.0]
        >>> block_hand_over(adjoint, Block(((0,),), (10.0,), (1, 2), ((3.0, 4.0),)), 3, 3)
        >>> adjoint
        [20.0, 6.0, 8.0, 2.0]
        """
        n_own, n_common = len(block.own_grads), len(block.shared_ids)
        if n_own > WRITTEN_OUT_MAX or n_common > WRITTEN_OUT_MAX:
            return loop_block_hand_over(adjoint, block, first, last)
        return written_out_block_hand_over(n_own, n_common)(adjoint, block, first, last)
