"""Neural-network layers as pure tape functions: linear, rmsnorm, softmax, cross-entropy.

Each takes a tape first and returns ``(new_tape, ids)``. The float operations
are the ones microgpt.py performs (sums are left folds from 0, ``x / y`` is
``x * y**-1``), so values match it; the fused layers put several of its scalar
operations into one node whose local gradients are worked out by hand, and
tests check each against its unfused composition of tape primitives.

Every value a layer computes comes from a **float kernel** defined here
(``dot_values``, ``scaled_dot_values``, ``rms_scale``, ``softmax_values``,
``cross_entropy_value``, ``relu_value``): the tape layers add local gradients
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
from collections.abc import Sequence
from itertools import chain

from . import tape as T
from .tape import Block, Run, Tape

__all__ = [
    "dot_values",
    "scaled_dot_values",
    "rms_scale",
    "relu_value",
    "cross_entropy_value",
    "add",
    "mul_scalar",
    "relu",
    "linear",
    "scaled_dots",
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


def rms_scale(ss: float, n: int) -> float:
    """Return rmsnorm's factor ``(ss * n**-1 + 1e-5) ** -0.5``; ``ss`` sums the n squares.

    >>> rms_scale(25.0, 2) == (12.5 + 1e-5) ** -0.5
    True
    """
    return (ss * n**-1 + RMS_EPS) ** -0.5


def relu_value(a: float) -> float:
    """Return ``max(0, a)`` as microgpt.py computes it (0.0 for every a <= 0).

    >>> relu_value(-2.0), relu_value(1.5)
    (0.0, 1.5)
    """
    return a if a > 0.0 else 0.0


def cross_entropy_value(probs: Sequence[float], target: int) -> float:
    """Return ``-log probs[target]``, or ValueError when that probability underflows to 0.

    >>> cross_entropy_value((0.5, 0.5), 1) == -math.log(0.5)
    True
    >>> cross_entropy_value((1.0, 0.0), 1)
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NonFiniteError: cross_entropy: probability of target 1 underflows to 0
    """
    p = probs[target]
    if p <= 0.0:
        raise T.NonFiniteError(f"cross_entropy: probability of target {target} underflows to 0")
    return math.log(p) * -1


# ----------------------------------------------------------------- tape layers


def linear(
    tape: Tape, x: Sequence[int], w: Sequence[Sequence[int]]
) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, w @ x)``: one ``dot`` node per row of ``w`` (no bias).

    Equal to ``T.map_tape(tape, w, lambda t, row: T.dot(t, row, x))``, but
    the values of ``x`` are read once and the rows are pushed as one ``tape.Block``.

    >>> tape, x = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, w0 = T.map_tape(tape, [3.0, 4.0], T.var)
    >>> tape, w1 = T.map_tape(tape, [-1.0, 0.5], T.var)
    >>> tape, y = linear(tape, x, [w0, w1])
    >>> T.values(tape, y)
    (11.0, 0.0)
    """
    x = x if type(x) is Run else tuple(x)
    xv = T.op_values(tape, "linear", x)
    n = len(x)
    base = tape.base
    nb = len(base)
    rows = [row if type(row) is Run else tuple(row) for row in w]
    # Parameter rows (model.layout's Runs) are read as one slice of the base each.
    wvs = [
        base[row[0] : row[-1] + 1] if type(row) is Run and row and row[-1] < nb
        else T.op_values(tape, "linear", row)
        for row in rows
    ]
    if wvs and (min(map(len, wvs)) != n or max(map(len, wvs)) != n):
        bad = next(len(wv) for wv in wvs if len(wv) != n)
        raise ValueError(f"linear: row of {bad} weights for an input of {n}")
    # Row k reads its weights (local gradients: x's values) and x (local gradients: its weights).
    return T.push_block(tape, "dot", dot_values(xv, wvs), Block(tuple(rows), xv, x, tuple(wvs)))


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
    q = q if type(q) is Run else tuple(q)
    n = len(q)
    key_ids: list[tuple[int, ...]] = [k if type(k) is Run else tuple(k) for k in keys]
    bad = next((len(k) for k in key_ids if len(k) != n), None)
    if bad is not None:
        raise ValueError(f"scaled_dots: key of {bad} for a query of {n}")
    qv = T.op_values(tape, "scaled_dots", q)
    every_kv = T.op_values(tape, "scaled_dots", tuple(chain.from_iterable(key_ids)))  # one read
    kvs = [every_kv[i * n : i * n + n] for i in range(len(key_ids))]
    q_scaled = tuple([a * scale for a in qv])
    k_scaled = tuple([tuple([b * scale for b in kv]) for kv in kvs])
    # Logit t reads key t (local gradients: q * scale) and q (local gradients: key t * scale).
    return T.push_block(tape, "scaled_dot", scaled_dot_values(qv, kvs, scale),
                        Block(tuple(key_ids), q_scaled, q, k_scaled))


def add(tape: Tape, xs: Sequence[int], ys: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, xs + ys)`` elementwise: the nodes of ``T.zip_map_tape(tape, xs, ys, T.add)``.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, ys = T.map_tape(tape, [10.0, 20.0], T.var)
    >>> tape, zs = add(tape, xs, ys)
    >>> T.values(tape, zs)
    (11.0, 22.0)
    """
    xs, ys = tuple(xs), tuple(ys)
    if len(xs) != len(ys):
        raise ValueError(f"add: lengths differ ({len(xs)} and {len(ys)})")
    xv, yv = T.op_values(tape, "add", xs), T.op_values(tape, "add", ys)
    return T.push_many(tape, [
        (a + b, (i, j), _ONES, "add") for i, j, a, b in zip(xs, ys, xv, yv)
    ])


def mul_scalar(tape: Tape, xs: Sequence[int], s: int) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, xs * s)`` for the scalar node ``s``: the nodes of mapping ``T.mul``.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, s = T.var(tape, 3.0)
    >>> tape, ys = mul_scalar(tape, xs, s)
    >>> T.values(tape, ys)
    (3.0, 6.0)
    """
    xs = tuple(xs)
    sv = T.op_value(tape, "mul", s)
    return T.push_many(tape, [
        (a * sv, (i, s), (sv, a), "mul")
        for i, a in zip(xs, T.op_values(tape, "mul", xs))
    ])


def relu(tape: Tape, xs: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, max(0, xs))`` elementwise: the nodes of ``T.map_tape(tape, xs, T.relu)``.

    >>> tape, xs = T.map_tape(T.new(), [-1.0, 2.0], T.var)
    >>> tape, ys = relu(tape, xs)
    >>> T.values(tape, ys)
    (0.0, 2.0)
    """
    xs = tuple(xs)
    return T.push_many(tape, [
        (relu_value(a), (i,), _ONE if a > 0.0 else _ZERO, "relu")
        for i, a in zip(xs, T.op_values(tape, "relu", xs))
    ])


def rmsnorm(tape: Tape, x: Sequence[int]) -> tuple[Tape, tuple[int, ...]]:
    """Return ``(tape, x / rms(x))`` with rms(x) = sqrt(mean(x**2) + 1e-5).

    Three steps as in microgpt.py: ``ss = x . x`` (one dot node), one fused
    node ``scale = (ss * n**-1 + 1e-5) ** -0.5``, then ``x_i * scale``.

    >>> tape, x = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, y = rmsnorm(tape, x)
    >>> [round(v, 4) for v in T.values(tape, y)]
    [0.8485, 1.1314]
    """
    x = tuple(x)
    inv_n = len(x) ** -1
    tape, ss = T.dot(tape, x, x)
    ms_eps = T.data(tape, ss) * inv_n + RMS_EPS
    s = rms_scale(T.data(tape, ss), len(x))
    tape, scale = T.push(tape, "rms_scale", s, (ss,), (-0.5 * ms_eps**-1.5 * inv_n,))
    return mul_scalar(tape, x, scale)


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
    logits = tuple(logits)
    probs = softmax_values(T.op_values(tape, "softmax", logits))
    return T.push_many(tape, [
        (p, logits, tuple([(p - p * q) if i == j else -p * q for j, q in enumerate(probs)]),
         "softmax")
        for i, p in enumerate(probs)
    ])


def cross_entropy(tape: Tape, logits: Sequence[int], target: int) -> tuple[Tape, int]:
    """Return ``(tape, -log softmax(logits)[target])`` as one node.

    Its local gradients are ``p_j - [j == target]``, the familiar form.

    >>> tape, xs = T.map_tape(T.new(), [0.0, 0.0], T.var)
    >>> tape, loss = cross_entropy(tape, xs, 1)
    >>> round(T.data(tape, loss), 6), T.node(tape, loss).local_grads
    (0.693147, (0.5, -0.5))
    """
    logits = tuple(logits)
    if not 0 <= target < len(logits):
        raise ValueError(f"cross_entropy: target {target!r} is not in 0..{len(logits) - 1}")
    probs = softmax_values(T.op_values(tape, "cross_entropy", logits))
    value = cross_entropy_value(probs, target)
    local = tuple(q - 1.0 if j == target else q for j, q in enumerate(probs))
    return T.push(tape, "cross_entropy", value, logits, local)

