"""The GPT's layers in plain tape primitives: read this to see the whole model as the tour built it.

Every layer here is a few lines of the primitives of ``tape.py``: ``T.dot``,
``T.add``, ``T.mul``, ``T.exp``, ``T.sum``, ``T.div``, ``T.log``, ``T.scale``,
``T.pow``, ``T.relu``, threaded with ``T.map_tape``. None of them works out a
gradient: ``T.backward`` does all the calculus from the primitives' local
gradients, exactly as on the tour's four-node tape. ``model.PLAIN_OPS`` runs
the GPT of ``model.forward`` in these layers, and ``model.doc_loss(...,
ops=model.PLAIN_OPS)`` its loss.

Training uses ``layers`` instead: the same model with several of these nodes
fused into one (a softmax output reading every logit, a whole linear layer as
one block) and their local gradients worked out by hand, for speed. This
module is their plain twin, and the tests hold the two together: every value
is the same float, bit for bit, because each fused kernel does the same float
operations in the same order as the primitives below; the gradients agree to
rounding (the fused backward adds the same terms grouped differently).

>>> import functional_gpt.tape as T
>>> tape, xs = T.map_tape(T.new(), [1.0, 2.0, 3.0], T.var)
>>> tape, ps = softmax(tape, xs)
>>> [round(p, 4) for p in T.values(tape, ps)]
[0.09, 0.2447, 0.6652]
>>> sorted({T.node(tape, i).op for i in range(3, len(tape))})   # only primitives
['add_constant', 'div', 'exp', 'sum']
"""

from __future__ import annotations

from collections.abc import Sequence

from . import tape as T
from .layers import RMS_EPS  # 1e-5: keeps 1 / rms finite for an all-zero vector
from .tape import Id, Tape

__all__ = [
    "vector_add", "vector_relu", "linear", "rmsnorm", "softmax", "attention", "cross_entropy",
]

Vector = tuple[Id, ...]  # node ids, one per number of the vector


def vector_add(tape: Tape, xs: Sequence[int], ys: Sequence[int]) -> tuple[Tape, Vector]:
    """Return ``(tape, xs + ys)`` elementwise, one ``T.add`` node per pair: the residual add.

    The model's parameter rows come from ``model.layout`` as plain ints
    (positions on the tape); ``T.as_ids`` marks them as node ids for ``T.add``.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, ys = T.map_tape(tape, [10.0, 20.0], T.var)
    >>> tape, zs = vector_add(tape, xs, ys)
    >>> T.values(tape, zs)
    (11.0, 22.0)
    """
    return T.zip_map_tape(tape, T.as_ids(xs), T.as_ids(ys), T.add)


def vector_relu(tape: Tape, xs: Sequence[Id]) -> tuple[Tape, Vector]:
    """Return ``(tape, max(0, x) for each x)``, one ``T.relu`` node each.

    >>> tape, xs = T.map_tape(T.new(), [-1.0, 2.0], T.var)
    >>> tape, ys = vector_relu(tape, xs)
    >>> T.values(tape, ys)
    (0.0, 2.0)
    """
    return T.map_tape(tape, xs, T.relu)


def linear(
    tape: Tape, x: Sequence[int], rows: Sequence[Sequence[int]],
    bias: Sequence[int] | None = None,
) -> tuple[Tape, Vector]:
    """Return ``(tape, rows @ x)``, or ``rows @ x + bias``: one ``T.dot`` per row (then ``T.add``).

    A weight matrix is a list of rows; output ``k`` is the dot product of row
    ``k`` with the input.

    >>> tape, x = T.map_tape(T.new(), [1.0, 2.0], T.var)
    >>> tape, w0 = T.map_tape(tape, [3.0, 4.0], T.var)
    >>> tape, w1 = T.map_tape(tape, [-1.0, 0.5], T.var)
    >>> tape, y = linear(tape, x, [w0, w1])
    >>> T.values(tape, y)
    (11.0, 0.0)
    >>> tape, b = T.map_tape(tape, [0.5, -2.0], T.var)
    >>> tape, z = linear(tape, x, [w0, w1], bias=b)
    >>> T.values(tape, z)
    (11.5, -2.0)
    """
    tape, out = T.map_tape(tape, rows, lambda t, row: T.dot(t, row, x))
    if bias is None:
        return tape, out
    if len(bias) != len(out):
        raise ValueError(f"linear: {len(bias)} biases for {len(out)} rows")
    return T.zip_map_tape(tape, out, T.as_ids(bias), T.add)


def rmsnorm(tape: Tape, x: Sequence[Id]) -> tuple[Tape, Vector]:
    """Return ``(tape, x / rms(x))``, rms(x) = sqrt(mean of the squares + 1e-5).

    Dividing by the root of the mean square keeps every vector the model
    passes on at about the same size, whatever the layers before did to it:
    the sums of the next layer then neither blow up nor fade as the model
    trains. (LayerNorm also subtracts the mean; rmsnorm only rescales, which
    is cheaper and works as well here.)

    >>> tape, x = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, y = rmsnorm(tape, x)
    >>> [round(v, 4) for v in T.values(tape, y)]
    [0.8485, 1.1314]
    """
    tape, squares = T.dot(tape, x, x)
    tape, mean = T.scale(tape, squares, len(x) ** -1)
    tape, mean_eps = T.add_constant(tape, mean, RMS_EPS)
    tape, inv_rms = T.pow(tape, mean_eps, -0.5)
    return T.map_tape(tape, x, lambda t, xi: T.mul(t, xi, inv_rms))


def softmax(tape: Tape, logits: Sequence[Id]) -> tuple[Tape, Vector]:
    """Return ``(tape, probabilities)``: ``exp`` of each logit, divided by their sum.

    Subtracting the largest logit first changes no probability (it cancels
    in the division) but keeps ``exp`` from overflowing. The largest logit
    is taken as a plain number, as microgpt.py does, so no gradient flows
    through it: none needs to, since the probabilities do not depend on it.

    >>> tape, xs = T.map_tape(T.new(), [0.0, 0.0], T.var)
    >>> tape, ps = softmax(tape, xs)
    >>> T.values(tape, ps)
    (0.5, 0.5)
    """
    top = max(T.values(tape, logits))
    tape, shifted = T.map_tape(tape, logits, lambda t, x: T.add_constant(t, x, -top))
    tape, exps = T.map_tape(tape, shifted, T.exp)
    tape, total = T.sum(tape, exps)
    return T.map_tape(tape, exps, lambda t, e: T.div(t, e, total))


def attention(
    tape: Tape, q: Sequence[Id], keys: Sequence[Sequence[Id]], vals: Sequence[Sequence[Id]],
    n_head: int,
) -> tuple[Tape, Vector]:
    """Return ``(tape, out)``: each head's mix of the values, weighted by how well keys match ``q``.

    ``keys`` and ``vals`` are the cache: one key and one value per position
    so far, this one included (the model appends before it attends). The
    vectors are cut into ``n_head`` slices of ``d`` numbers; head ``h`` reads
    slice ``h`` of each. Its logit for position ``t`` is ``q . k_t / sqrt(d)``,
    its weights the softmax of those logits, and output ``j`` is the weighted
    sum over the positions of value ``j``. ``out`` is the heads' outputs, one
    after the other.

    A query orthogonal to both keys weighs the two positions equally:

    >>> tape, ids = T.map_tape(T.new(), [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 4.0], T.var)
    >>> q, keys, vals = ids[0:2], [ids[2:4], ids[4:6]], [ids[6:8], ids[8:10]]
    >>> tape, out = attention(tape, q, keys, vals, 1)
    >>> T.values(tape, out)
    (2.0, 3.0)
    >>> attention(tape, q, keys, vals[:1], 1)
    Traceback (most recent call last):
    ...
    ValueError: attention: 2 keys and 1 values for a query of 2 in 1 heads
    """
    width = len(q)
    if (n_head < 1 or width % n_head or not keys or len(keys) != len(vals)
            or {len(v) for v in (*keys, *vals)} != {width}):
        raise ValueError(f"attention: {len(keys)} keys and {len(vals)} values "
                         f"for a query of {width} in {n_head} heads")
    d = width // n_head
    out: Vector = ()
    for lo in range(0, width, d):
        head = slice(lo, lo + d)  # this head's numbers of every vector
        tape, head_out = _head(tape, q[head], [k[head] for k in keys], [v[head] for v in vals])
        out += head_out
    return tape, out


def _head(
    tape: Tape, q: Sequence[Id], keys: Sequence[Sequence[Id]], vals: Sequence[Sequence[Id]]
) -> tuple[Tape, Vector]:
    """One head of ``attention``, on its slices: logits, their softmax, the weighted values."""
    scale = (len(q) ** 0.5) ** -1  # microgpt.py divides by sqrt(d): times its inverse

    def logit(t: Tape, k: Sequence[Id]) -> tuple[Tape, Id]:
        t, match = T.dot(t, q, k)
        return T.scale(t, match, scale)

    tape, logits = T.map_tape(tape, keys, logit)
    tape, weights = softmax(tape, logits)
    value_columns = [[v[j] for v in vals] for j in range(len(q))]  # value j at every position
    return T.map_tape(tape, value_columns, lambda t, column: T.dot(t, weights, column))


def cross_entropy(tape: Tape, logits: Sequence[Id], target: int) -> tuple[Tape, Id]:
    """Return ``(tape, -log softmax(logits)[target])``: the loss of predicting ``target``.

    Small when the model gives the right next token a probability near 1;
    ``ln(vocab_size)`` when it guesses uniformly.

    >>> tape, xs = T.map_tape(T.new(), [0.0, 0.0], T.var)
    >>> tape, loss = cross_entropy(tape, xs, 1)
    >>> round(T.data(tape, loss), 6)     # ln 2
    0.693147
    """
    if not 0 <= target < len(logits):
        raise ValueError(f"cross_entropy: target {target!r} is not in 0..{len(logits) - 1}")
    tape, probs = softmax(tape, logits)
    tape, log_p = T.log(tape, probs[target])
    return T.neg(tape, log_p)
