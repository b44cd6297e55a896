"""Neural-network layers as pure tape functions: linear, rmsnorm, attention, softmax, cross-entropy.

Each takes a tape first and returns ``(new_tape, ids)``. The float operations
are the ones microgpt.py performs (sums are left folds from 0, ``x / y`` is
``x * y**-1``), so values match it; the fused layers put several of its scalar
operations into one node whose local gradients are worked out by hand, and
tests check each against its unfused composition of tape primitives. The
plain twin of the whole set is ``plain_layers`` (``model.PLAIN_OPS``): the
same layers in primitives only, the same values bit for bit.

Every value a layer computes comes from a **float kernel** defined here
(``dot_values``, ``scaled_dot_values``, ``attention_values``, ``rms_scale``,
``softmax_values``, ``cross_entropy_value``, ``relu_values``): the tape layers add local gradients
to what the kernels return, and the tape-free forward of ``infer`` calls the
same kernels, so the two forwards cannot drift apart.

>>> import functional_gpt.tape as T
>>> tape, xs = T.map_tape(T.new(), [1.0, 2.0, 3.0], T.var)
>>> tape, ps = softmax(tape, xs)
>>> [round(p, 4) for p in T.values(tape, ps)]
[0.09, 0.2447, 0.6652]
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from . import tape as T
from .tape import Block, Run, Tape

__all__ = [
    "dot_values",
    "scaled_dot_values",
    "attention_values",
    "rms_scale",
    "relu_values",
    "cross_entropy_value",
    "vector_add",
    "vector_mul",
    "vector_relu",
    "vector_scale",
    "linear",
    "scaled_dots",
    "attention",
    "rmsnorm",
    "softmax",
    "softmax_values",
    "cross_entropy",
    "RMS_EPS",
]

RMS_EPS = 1e-5
_exp = math.exp
_fold_sum, _fold_dot = T.fold_sum, T.fold_dot
_ONE, _ZERO, _ONES = (1.0,), (0.0,), (1.0, 1.0)  # shared local-gradient tuples (immutable)


# --------------------------------------------------------------- float kernels


def dot_values(xv: Sequence[float], rows: Sequence[Sequence[float]]) -> tuple[float, ...]:
    """Return ``rows @ xv`` on plain floats: one left-fold dot product per row.

    >>> dot_values([1.0, 2.0], [[3.0, 4.0], [-1.0, 0.5]])
    (11.0, 0.0)
    """
    return T.fold_dots(xv, rows)


def scaled_dot_values(
    qv: Sequence[float], keys: Sequence[Sequence[float]], scale: float
) -> tuple[float, ...]:
    """Return ``(q . k) * scale`` for each key on plain floats: attention's logits.

    >>> scaled_dot_values([1.0, 2.0], [[3.0, 4.0]], 0.5)
    (5.5,)
    """
    return tuple([_fold_dot(qv, kv) * scale for kv in keys])


def attention_values(
    qv: Sequence[float], kvs: Sequence[Sequence[float]], vvs: Sequence[Sequence[float]],
    n_head: int,
) -> tuple[tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]], ...]:
    """Return ``(logits, probs, out)`` per head: multi-head attention of one query, on plain floats.

    Head ``h`` reads the ``h``-th slice of width ``d = len(qv) // n_head`` of
    the query, of every key and of every value: its logits are
    ``scaled_dot_values`` with scale ``d**-0.5`` (microgpt.py's division by
    ``sqrt(d)``), its probs their ``softmax_values``, and its out the
    probability-weighted sum of the values, ``dot_values`` over their columns.

    A query orthogonal to every key weighs the positions equally:

    >>> qv, kvs, vvs = [0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], [[1.0, 2.0], [3.0, 4.0]]
    >>> attention_values(qv, kvs, vvs, 1)
    (((0.0, 0.0), (0.5, 0.5), (2.0, 3.0)),)
    >>> [out for _, _, out in attention_values(qv, kvs, vvs, 2)]    # two heads of width 1
    [(2.0,), (3.0,)]
    >>> attention_values(qv, kvs, [[1.0]], 1)
    Traceback (most recent call last):
    ...
    ValueError: attention: 2 keys of 2 and 1 values of 1 for a query of 2 in 1 heads
    """
    _check_attention(len(qv), list(map(len, kvs)), list(map(len, vvs)), n_head)
    d = len(qv) // n_head
    scale = (d**0.5) ** -1
    columns = tuple(zip(*vvs))  # columns[j]: value j of every position
    heads = []  # local transient, frozen into a tuple below
    for lo in range(0, len(qv), d):
        logits = scaled_dot_values(qv[lo : lo + d], [kv[lo : lo + d] for kv in kvs], scale)
        probs = softmax_values(logits)
        heads.append((logits, probs, dot_values(probs, columns[lo : lo + d])))
    return tuple(heads)


def _check_attention(n: int, key_lens: list[int], value_lens: list[int], n_head: int) -> None:
    """ValueError unless there are as many keys as values (at least one), all as wide as a query
    of ``n`` that ``n_head`` heads divide evenly."""
    if (isinstance(n_head, bool) or not isinstance(n_head, int) or n_head < 1 or n % n_head
            or not key_lens or len(key_lens) != len(value_lens)
            or set(key_lens) | set(value_lens) != {n}):
        raise ValueError(
            f"attention: {len(key_lens)} keys of {'/'.join(map(str, sorted(set(key_lens))))} and "
            f"{len(value_lens)} values of {'/'.join(map(str, sorted(set(value_lens))))} "
            f"for a query of {n} in {n_head!r} heads")


def rms_scale(ss: float, n: int) -> float:
    """Return rmsnorm's factor ``(ss * n**-1 + 1e-5) ** -0.5``; ``ss`` sums the n squares.

    >>> rms_scale(25.0, 2) == (12.5 + 1e-5) ** -0.5
    True
    """
    return (ss * n**-1 + RMS_EPS) ** -0.5


def relu_values(xs: Iterable[float]) -> tuple[float, ...]:
    """Return ``max(0, x)`` for each x, as microgpt.py computes it (0.0 for every x <= 0).

    >>> relu_values([-2.0, 1.5, 0.0])
    (0.0, 1.5, 0.0)
    """
    return tuple([x if x > 0.0 else 0.0 for x in xs])


def cross_entropy_value(
    probs: Sequence[float], target: int, logits: Sequence[float] | None = None
) -> float:
    """Return ``-log probs[target]``: the loss of ``target`` under the softmax ``probs`` of
    ``logits``.

    Where that probability is a normal float this is microgpt.py's float
    operation, ``-log(p)``, bit for bit. Below 2**-1022 a probability is a
    subnormal and has lost digits (``e**-740`` keeps about 3), so ``-log(p)``
    would be off in the third digit; there, given the ``logits``, the loss is
    computed in the accurate form ``log(sum_j e**(x_j - max)) - (x_target -
    max)`` instead (without them, such a probability is refused). A
    probability that underflows to 0 is refused with ``NonFiniteError``, as
    before: the model is that sure of a wrong answer.

    >>> cross_entropy_value((0.5, 0.5), 1) == -math.log(0.5)
    True
    >>> logits = (0.0, -740.0)                      # p = e**-740: a subnormal
    >>> -math.log(softmax_values(logits)[1]), cross_entropy_value(softmax_values(logits), 1, logits)
    (739.9974..., 740.0)
    >>> cross_entropy_value((1.0, 0.0), 1)
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: cross_entropy: probability of target 1 ...
    """
    p = probs[target]
    if p >= _MIN_NORMAL:
        return math.log(p) * -1
    if p <= 0.0:
        raise T.NonFiniteError(f"cross_entropy: probability of target {target} underflows to 0")
    if logits is None:
        raise T.NonFiniteError(f"cross_entropy: probability of target {target} is subnormal, "
                               f"{p!r}; pass the logits for an accurate loss")
    top = max(logits)
    total = _fold_sum([_exp(x - top) for x in logits])  # as softmax_values sums them
    return math.log(total) - (logits[target] - top)


_MIN_NORMAL = 2.0**-1022  # the smallest normal float: below it a probability loses digits


# ----------------------------------------------------------------- tape layers


def linear(
    tape: Tape, x: Sequence[int], w: Sequence[Sequence[int]], bias: Sequence[int] | None = None
) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, w @ x)``, or ``(tape, w @ x + bias)``: one node per row of ``w``.

    Without a bias, equal to ``T.map_tape(tape, w, lambda t, row: T.dot(t, row, x))``,
    but the values of ``x`` are read once and the rows are pushed as one
    ``tape.Block`` (op ``dot``). With ``bias`` (the ids of one node per row),
    row ``k`` is one node (op ``dot_add``) whose value is ``T.dot``'s plus
    ``bias[k]``'s, added as ``T.add`` adds them, and whose inputs are
    ``bias[k]`` (local gradient 1.0), then the row's weights and ``x``. Its
    value and the gradients ``backward`` gives are those of ``T.dot``
    followed by ``T.add``, bit for bit.

    >>> tape, x = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, w0 = T.map_tape(tape, [3.0, 4.0], T.var)
    >>> tape, w1 = T.map_tape(tape, [-1.0, 0.5], T.var)
    >>> tape, y = linear(tape, x, [w0, w1])
    >>> T.values(tape, y)
    (11.0, 0.0)
    >>> tape, b = T.map_tape(tape, [0.5, -2.0], T.var)
    >>> tape, z = linear(tape, x, [w0, w1], bias=b)
    >>> T.values(tape, z), T.node(tape, z[0]).inputs, T.node(tape, z[0]).local_grads
    ((11.5, -2.0), (8, 2, 3, 0, 1), (1.0, 1.0, 2.0, 3.0, 4.0))
    >>> linear(tape, x, [w0, w1], bias=b[:1])
    Traceback (most recent call last):
    ...
    ValueError: linear: 1 biases for 2 rows
    """
    x = x if type(x) is Run else T.node_ids("linear", x)
    xv = T.op_values(tape, "linear", x)
    n = len(x)
    rows: Sequence[tuple[int, ...]]
    if type(w) is T.RunMatrix:  # model.layout's matrices: rows of one length, read as one slice
        rows = w
        if w and len(w[0]) != n:
            raise ValueError(f"linear: row of {len(w[0])} weights for an input of {n}")
        wvs = T.matrix_values(tape, "linear", rows)
    else:
        rows = [row if type(row) is Run else T.node_ids("linear", row) for row in w]
        wvs = T.matrix_values(tape, "linear", rows)
        if wvs and set(map(len, wvs)) != {n}:
            bad = next(len(wv) for wv in wvs if len(wv) != n)
            raise ValueError(f"linear: row of {bad} weights for an input of {n}")
    if bias is None:
        # Row k reads its weights (local gradients: x's values) and x (local gradients: its
        # weights). Every row is as long as x (checked above), so the block is well formed: push
        # it unchecked.
        block = Block(tuple(rows), xv, x, tuple(wvs))
        return T.push_trusted(tape, T.block_nodes("dot", dot_values(xv, wvs), block))
    return _linear_with_bias(tape, x, xv, rows, wvs, bias)


def _linear_with_bias(
    tape: Tape, x: tuple[int, ...], xv: tuple[float, ...], rows: Sequence[tuple[int, ...]],
    wvs: Sequence[tuple[float, ...]], bias: Sequence[int],
) -> tuple[Tape, tuple[int, ...]]:
    """``linear``'s nodes ``w_k . x + b_k``, with rows and values already read and checked."""
    bias = T.node_ids("linear", bias)
    if len(bias) != len(rows):
        raise ValueError(f"linear: {len(bias)} biases for {len(rows)} rows")
    bv = T.op_values(tape, "linear", bias)
    # Row k reads b_k, then its weights (local gradients 1.0 and x's values), then x (local
    # gradients: its weights). b_k comes first: backward then hands over to b_k, w_k and x in
    # the order that T.add then T.dot's nodes would, so sums over repeated ids round alike.
    block = Block(tuple([(b,) + row for b, row in zip(bias, rows)]), (1.0,) + xv, x, tuple(wvs))
    values = tuple([d + b for d, b in zip(dot_values(xv, wvs), bv)])  # as T.add adds
    return T.push_trusted(tape, T.block_nodes("dot_add", values, block))


def _dot_add_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[T.Local, ...]]:
    """Row k of ``linear`` with a bias reads b_k (local gradient 1.0), then w_k and x: a dot."""
    tape, swapped = T.swapped_halves(tape, i, n._replace(inputs=n.inputs[1:]))
    return tape, (1.0, *swapped)


DOT_ADD = T.defop("dot_add", _dot_add_rule)


def scaled_dots(
    tape: Tape, q: Sequence[int], keys: Sequence[Sequence[int]], scale: float
) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, ids)`` of ``(q . k) * scale`` for each ``k`` in ``keys``: one node each.

    Attention's logits. The value is the dot product's left fold, then one
    multiplication by ``scale``, as microgpt.py does it (``dot / sqrt(d)``
    with ``/`` as a multiplication by the inverse). The logits are one
    ``tape.Block``: logit ``t`` reads key ``t``, then ``q``.

    >>> tape, q = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, k = T.map_tape(tape, [3.0, 4.0], T.var)
    >>> tape, (s,) = scaled_dots(tape, q, [k], 0.5)
    >>> T.data(tape, s), T.node(tape, s).inputs, T.node(tape, s).local_grads
    (5.5, (2, 3, 0, 1), (0.5, 1.0, 1.5, 2.0))
    """
    q = q if type(q) is Run else T.node_ids("scaled_dots", q)
    n = len(q)
    key_ids: list[tuple[int, ...]] = [k if type(k) is Run else T.node_ids("scaled_dots", k)
                                      for k in keys]
    bad = next((len(k) for k in key_ids if len(k) != n), None)
    if bad is not None:
        raise ValueError(f"scaled_dots: key of {bad} for a query of {n}")
    qv = T.op_values(tape, "scaled_dots", q)
    every_kv = T.op_values(tape, "scaled_dots", tuple(chain.from_iterable(key_ids)))  # one read
    kvs = [every_kv[i * n : i * n + n] for i in range(len(key_ids))]
    return T.push_trusted(tape, T.block_nodes(  # a well-formed block: pushed unchecked
        T.op_to_store(SCALED_DOT, (scale,)), scaled_dot_values(qv, kvs, scale),
        _logits_block(q, qv, key_ids, kvs, scale)))


def _logits_block(
    q: tuple[int, ...], qv: Sequence[float], key_ids: Sequence[tuple[int, ...]],
    kvs: Sequence[Sequence[float]], scale: float,
) -> Block:
    """The ``tape.Block`` of attention's logits ``(q . k_t) * scale``, one member per key."""
    q_scaled = tuple([a * scale for a in qv])
    k_scaled = tuple([tuple([b * scale for b in kv]) for kv in kvs])
    # Logit t reads key t (local gradients: q * scale) and q (local gradients: key t * scale).
    return Block(tuple(key_ids), q_scaled, q, k_scaled)


def _scaled_dot_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[int, ...]]:
    """A logit ``(q . k) * scale`` reads k, then q: d/dk_j = q_j * scale, d/dq_j = k_j * scale."""
    (scale,) = n.params
    half = len(n.inputs) // 2
    return vector_scale(tape, T.as_ids(n.inputs[half:] + n.inputs[:half]), scale)


SCALED_DOT = T.defop("scaled_dot", _scaled_dot_rule)


def attention(
    tape: Tape, q: Sequence[int], keys: Sequence[Sequence[int]], vals: Sequence[Sequence[int]],
    n_head: int,
) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, out)``: multi-head attention of the query ``q`` over ``keys`` and ``vals``.

    For each head in turn, the nodes of ``scaled_dots`` of the head's slice
    of ``q`` over the slices of the keys (scale ``head_dim**-0.5``), of
    ``softmax`` of those logits, and of ``linear`` of the probabilities with
    the value columns as rows. ``out`` holds the heads' outputs, in order.
    The tape is the one those three layers would build head by head; this
    reads every key and value once and pushes all heads in one batch.

    >>> tape, ids = T.map_tape(T.new(), [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0], T.var)
    >>> q, keys, vals = ids[0:2], [ids[2:4], ids[4:6]], [ids[6:8], ids[8:10]]
    >>> tape, out = attention(tape, q, keys, vals, 1)
    >>> T.values(tape, out)
    (2.0, 3.0)
    >>> len(tape) - 10    # 2 logits, 2 probabilities, 2 outputs
    6
    """
    q = q if type(q) is Run else T.node_ids("attention", q)
    key_ids: list[tuple[int, ...]] = [k if type(k) is Run else T.node_ids("attention", k)
                                      for k in keys]
    val_ids: list[tuple[int, ...]] = [v if type(v) is Run else T.node_ids("attention", v)
                                      for v in vals]
    qv = T.op_values(tape, "attention", q)
    kvs = [T.op_values(tape, "attention", k) for k in key_ids]
    vvs = [T.op_values(tape, "attention", v) for v in val_ids]
    heads = attention_values(qv, kvs, vvs, n_head)  # checks the shapes (one value per id)
    d, t = len(q) // n_head, len(key_ids)
    scale = (d**0.5) ** -1
    id_columns = tuple(zip(*val_ids))  # id_columns[j]: value j's id at every position
    value_columns = tuple(zip(*vvs))
    first = len(tape)  # the ids of the nodes below follow from here, head by head
    batch: list[T.Entry] = []  # local transient: every head's nodes, pushed at once below
    outs: list[int] = []  # local transient
    for (logits, probs, out), lo in zip(heads, range(0, len(q), d)):
        hi = lo + d
        logit_ids, prob_ids = tuple(range(first, first + t)), Run(first + t, first + 2 * t)
        batch += T.block_nodes(T.op_to_store(SCALED_DOT, (scale,)), logits, _logits_block(
            q[lo:hi], qv[lo:hi], [k[lo:hi] for k in key_ids], [kv[lo:hi] for kv in kvs], scale))
        batch += _softmax_nodes(logit_ids, probs, first + t)
        # Output j sums value j over the positions, weighted by the probabilities (as ``linear``).
        batch += T.block_nodes("dot", out, Block(id_columns[lo:hi], probs, prob_ids,
                                                 value_columns[lo:hi]))
        outs += range(first + 2 * t, first + 2 * t + d)
        first += 2 * t + d
    tape, _ = T.push_trusted(tape, batch)
    return tape, T.as_ids(outs)


def vector_add(tape: Tape, xs: Sequence[int], ys: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, xs + ys)`` elementwise: the nodes of ``T.zip_map_tape(tape, xs, ys, T.add)``.

    The vector form of the scalar ``T.add`` (it was ``layers.add`` before).

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, ys = T.map_tape(tape, [10.0, 20.0], T.var)
    >>> tape, zs = vector_add(tape, xs, ys)
    >>> T.values(tape, zs)
    (11.0, 22.0)
    """
    xs, ys = T.node_ids("vector_add", xs), T.node_ids("vector_add", ys)
    if len(xs) != len(ys):
        raise ValueError(f"vector_add: lengths differ ({len(xs)} and {len(ys)})")
    xv, yv = T.op_values(tape, "add", xs), T.op_values(tape, "add", ys)
    return T.push_trusted(tape, [
        (a + b, (i, j), _ONES, "add") for i, j, a, b in zip(xs, ys, xv, yv)
    ])


def vector_mul(tape: Tape, xs: Sequence[int], s: T.Id) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, xs * s)`` for the scalar node ``s``: the nodes of mapping ``T.mul``.

    The vector form of ``T.mul``, every element times the one node ``s`` (it
    was ``layers.mul_scalar`` before). ``T.scale`` is different: it times a
    plain number, which gets no node.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, s = T.var(tape, 3.0)
    >>> tape, ys = vector_mul(tape, xs, s)
    >>> T.values(tape, ys)
    (3.0, 6.0)
    """
    xs = T.node_ids("vector_mul", xs)
    sv = T.operand(tape, "vector_mul", s)
    return T.push_trusted(tape, [
        (a * sv, (i, s), (sv, a), "mul")
        for i, a in zip(xs, T.op_values(tape, "mul", xs))
    ])


def vector_scale(tape: Tape, xs: Sequence[int], c: float) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, xs * c)`` for the plain number ``c``: the nodes of mapping ``T.scale``.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, ys = vector_scale(tape, xs, -0.5)
    >>> T.values(tape, ys), T.node(tape, ys[0]).local_grads
    ((-0.5, -1.0), (-0.5,))
    """
    xs = T.node_ids("vector_scale", xs)
    c = T.finite_number("vector_scale", c)
    local = (c,)
    return T.push_trusted(tape, [
        (a * c, (i,), local, "scale") for i, a in zip(xs, T.op_values(tape, "scale", xs))
    ])


def vector_relu(tape: Tape, xs: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, max(0, xs))`` elementwise: the nodes of ``T.map_tape(tape, xs, T.relu)``.

    The vector form of the scalar ``T.relu`` (it was ``layers.relu`` before).

    >>> tape, xs = T.map_tape(T.new(), [-1.0, 2.0], T.var)
    >>> tape, ys = vector_relu(tape, xs)
    >>> T.values(tape, ys)
    (0.0, 2.0)
    """
    xs = xs if type(xs) is Run else T.node_ids("vector_relu", xs)
    xv = T.op_values(tape, "relu", xs)
    return T.push_trusted(tape, [
        (y, (i,), _ONE if a > 0.0 else _ZERO, "relu") for i, a, y in zip(xs, xv, relu_values(xv))
    ])


def rmsnorm(tape: Tape, x: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, x / rms(x))`` with rms(x) = sqrt(mean(x**2) + 1e-5).

    Three steps as in microgpt.py, pushed as one batch: ``ss = x . x`` (the
    node of ``T.dot(tape, x, x)``), one fused node
    ``scale = (ss * n**-1 + 1e-5) ** -0.5``, then the nodes of ``vector_mul``,
    ``x_i * scale``.

    >>> tape, x = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, y = rmsnorm(tape, x)
    >>> [round(v, 4) for v in T.values(tape, y)]
    [0.8485, 1.1314]
    """
    x = x if type(x) is Run else T.node_ids("rmsnorm", x)
    xv = T.op_values(tape, "rmsnorm", x)
    n = len(x)
    ss = _fold_dot(xv, xv)
    s = rms_scale(ss, n)
    ss_id = len(tape)
    scale_id = ss_id + 1
    d_scale = -0.5 * (ss * n**-1 + RMS_EPS) ** -1.5 * n**-1  # d scale / d ss
    tape, _ = T.push_trusted(tape, [
        (ss, tuple(x) + tuple(x), xv + xv, "dot"),
        (s, (ss_id,), (d_scale,), T.op_to_store(RMS_SCALE, (n,))),
        *[(a * s, (i, scale_id), (s, a), "mul") for i, a in zip(x, xv)],
    ])
    return tape, T.Run(scale_id + 1, scale_id + 1 + n)


def _rms_scale_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[T.Id]]:
    """d scale / d ss = -0.5 * (ss * n**-1 + 1e-5) ** -1.5 * n**-1, in rmsnorm's float order."""
    (width,) = n.params
    tape, mean = T.scale(tape, T.Id(n.inputs[0]), width**-1)
    tape, u = T.add_constant(tape, mean, RMS_EPS)
    tape, u_pow = T.pow(tape, u, -1.5)
    tape, half = T.scale(tape, u_pow, -0.5)
    tape, local = T.scale(tape, half, width**-1)
    return tape, (local,)


RMS_SCALE = T.defop("rms_scale", _rms_scale_rule)


def softmax_values(xs: Sequence[float]) -> tuple[float, ...]:
    """Return softmax of plain floats, with microgpt.py's float operations.

    ``exp(x - max)``, their left-fold sum from 0, then ``e * total**-1``.

    >>> softmax_values([0.0, 0.0])
    (0.5, 0.5)
    """
    top = max(xs)
    exps = [_exp(x - top) for x in xs]
    inv = _fold_sum(exps) ** -1
    return tuple(e * inv for e in exps)


def softmax(tape: Tape, logits: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, softmax(logits))``: one node per output, each reading all logits.

    The local gradient of ``p_i`` with respect to ``logit_j`` is
    ``p_i * (delta_ij - p_j)``.

    >>> tape, xs = T.map_tape(T.new(), [0.0, 0.0], T.var)
    >>> tape, ps = softmax(tape, xs)
    >>> T.values(tape, ps), T.node(tape, ps[0]).local_grads
    ((0.5, 0.5), (0.25, -0.25))
    """
    logits = T.node_ids("softmax", logits)
    return T.push_trusted(tape, _softmax_nodes(logits, softmax_values(
        T.op_values(tape, "softmax", logits)), len(tape)))


def _softmax_nodes(logits: tuple[int, ...], probs: Sequence[float], first: int) -> list[tuple]:
    """The nodes of ``softmax``, to be pushed as ids ``first, first + 1, ...``: output ``i``
    reads every logit, with local gradients ``p_i * (delta_ij - p_j)``. Each keeps ``first``,
    where its rule finds the other outputs."""
    op = T.op_to_store(SOFTMAX, (first,))
    return [
        (p, logits, tuple([(p - p * q) if i == j else -p * q for j, q in enumerate(probs)]), op)
        for i, p in enumerate(probs)
    ]


def _softmax_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[int, ...]]:
    """d p_i / d logit_j = p_i - p_i * p_j where j = i, else -(p_i * p_j): the outputs' nodes."""
    (first,) = n.params
    me = i - first
    tape, p_j_p_i = vector_mul(tape, T.Run(first, first + len(n.inputs)), T.Id(i))
    tape, minus = vector_scale(tape, p_j_p_i, -1.0)  # -(p_i * p_j): times -1.0 is exact
    tape, diagonal = T.sub(tape, T.Id(i), T.Id(p_j_p_i[me]))
    return tape, minus[:me] + (diagonal,) + minus[me + 1:]


SOFTMAX = T.defop("softmax", _softmax_rule)


def cross_entropy(tape: Tape, logits: Sequence[int], target: int) -> tuple[Tape, int]:
    """Return ``(tape, -log softmax(logits)[target])`` as one node.

    Its local gradients are ``p_j - [j == target]``, the familiar form.

    >>> tape, xs = T.map_tape(T.new(), [0.0, 0.0], T.var)
    >>> tape, loss = cross_entropy(tape, xs, 1)
    >>> round(T.data(tape, loss), 6), T.node(tape, loss).local_grads
    (0.693147, (0.5, -0.5))
    """
    logits = T.node_ids("cross_entropy", logits)
    if type(target) is not int:  # an index: a bool or a node id is refused, numpy's ints are not
        if isinstance(target, (bool, T.Id)) or not hasattr(target, "__index__"):
            raise TypeError(f"cross_entropy: target {target!r} must be a plain int, the index "
                            "of the right logit (not a bool, nor a node id)")
        target = int(target)
    if not 0 <= target < len(logits):
        raise ValueError(f"cross_entropy: target {target!r} is not in 0..{len(logits) - 1}")
    values = T.op_values(tape, "cross_entropy", logits)
    probs = softmax_values(values)
    value = cross_entropy_value(probs, target, values)
    local = tuple(q - 1.0 if j == target else q for j, q in enumerate(probs))
    return T.push(tape, CROSS_ENTROPY, value, logits, local, (target,))


def _cross_entropy_rule(tape: Tape, i: int, n: T.Node) -> tuple[Tape, tuple[T.Id, ...]]:
    """d loss / d logit_j = p_j - [j == target], with p = softmax(logits) pushed by ``softmax``."""
    (target,) = n.params
    tape, probs = softmax(tape, T.as_ids(n.inputs))
    tape, p_minus_1 = T.add_constant(tape, T.Id(probs[target]), -1.0)
    return tape, tuple(p_minus_1 if j == target else T.Id(p) for j, p in enumerate(probs))


CROSS_ENTROPY = T.defop("cross_entropy", _cross_entropy_rule)


# ------------------------------------------------------------ names that moved

# Deprecated names, for one release: the vector ops were named like the scalar primitives.
_RENAMED = {"add": "vector_add", "relu": "vector_relu", "mul_scalar": "vector_mul"}


def __getattr__(name: str) -> Any:
    """A renamed layer under its old name (PEP 562), with a DeprecationWarning.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     old = __getattr__("mul_scalar")
    >>> old is vector_mul, caught[0].category.__name__
    (True, 'DeprecationWarning')
    """
    if name in _RENAMED:
        warnings.warn(f"layers.{name} is now layers.{_RENAMED[name]} (the vector form of "
                      "the scalar primitive); the old name goes in the next release",
                      DeprecationWarning, stacklevel=2)
        return globals()[_RENAMED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
