"""The floor of pure CPython: microgpt.py's algorithm with no autograd at all.

Plain lists of floats and the backward pass derived by hand, written for
CPython's speed: every dot product a C-level ``sum`` over ``map`` (``math.sumprod``
from 3.12 on), a matrix-vector product one ``map`` over the rows, a weight
matrix's gradient summed once per step over all its uses (each entry one
C-level dot over the positions, instead of an outer product per position), and
Adam one comprehension per formula (faster than ``map`` pipelines since 3.11's
specialising interpreter). It is a benchmark contestant, not part of the
package: the question it answers is how much a general tape costs over code
that knows its one model.

It computes the same losses as microgpt.py to about 1e-15 (its sums may round
differently: ``sum`` is compensated from Python 3.12 on), which
``bench_train.py`` checks against the mutable reference before timing it.

    from floor import Floor
    f = Floor(docs, steps=1000)      # set up as microgpt.py (shuffle, vocabulary, init)
    loss = f.step()                  # one training step on the next document
"""

from __future__ import annotations

import math
from itertools import chain, repeat
from operator import add, mul

from functional_gpt import model, train

try:
    from math import sumprod as _sumprod  # type: ignore[attr-defined]  # Python 3.12+

    def _dots(rows, x):
        """[row . x for row in rows], every loop in C."""
        return list(map(_sumprod, rows, repeat(x)))

except ImportError:  # Python 3.10, 3.11: sum over floats is a plain left fold in C

    def _sumprod(xs, ys):  # type: ignore[misc]
        return sum(map(mul, xs, ys))

    def _dots(rows, x):
        """[row . x for row in rows], every loop in C."""
        return list(map(sum, map(map, repeat(mul), rows, repeat(x))))


def _rmsnorm(x):
    """(x * s, s, ms_eps) with s = (mean(x^2) + 1e-5) ** -0.5, as microgpt.py."""
    ms_eps = _sumprod(x, x) * len(x) ** -1 + 1e-5
    s = ms_eps**-0.5
    return list(map(mul, x, repeat(s))), s, ms_eps


def _rmsnorm_back(x, s, ms_eps, dy):
    """d(loss)/dx for y = x * s(x)."""
    k = _sumprod(dy, x) * (-0.5 * ms_eps**-1.5 * len(x) ** -1) * 2.0
    return list(map(add, map(mul, dy, repeat(s)), map(mul, x, repeat(k))))


def _softmax(xs):
    top = max(xs)
    exps = [math.exp(v - top) for v in xs]
    inv = sum(exps) ** -1
    return [e * inv for e in exps]


def _outer_sum(pairs):
    """sum over (dy, x) in pairs of the outer product dy x^T, as rows: one C-level dot per entry.

    Entry (i, j) is the sum over the pairs, in order, of dy[i] * x[j].
    """
    xt = list(zip(*[x for _, x in pairs]))  # column j: x[j] in every pair
    return [_dots(xt, dy_i) for dy_i in zip(*[dy for dy, _ in pairs])]


class Floor:
    """A microgpt model and its trainer over plain lists; ``step()`` trains on one document."""

    def __init__(self, docs, n_layer=1, n_embd=16, n_head=4, block_size=16, seed=42, steps=1000,
                 lr=0.01, beta1=0.85, beta2=0.99, eps=1e-8):
        run = train.prepare(docs, seed, n_layer, n_embd, n_head, block_size)
        self.tokens, self.steps, self.t = run.tokens, steps, 0
        self.lr, self.b1, self.b2, self.eps = lr, beta1, beta2, eps
        self.n_layer, self.n_head, self.hd = n_layer, n_head, n_embd // n_head
        flat = list(train.param_values(run.state))
        self.names, self.mats = [], []
        start = 0
        for name, rows, cols in model.matrix_shapes(run.state.config):
            self.names.append(name)
            self.mats.append([flat[start + r * cols: start + (r + 1) * cols] for r in range(rows)])
            start += rows * cols
        self.m = [0.0] * len(flat)
        self.v = [0.0] * len(flat)

    def params_flat(self):
        return [x for mat in self.mats for row in mat for x in row]

    def step(self):
        tokens = self.tokens[self.t % len(self.tokens)]
        mats = dict(zip(self.names, self.mats))
        grads = {name: [[0.0] * len(row) for row in mat] for name, mat in mats.items()}
        n = min(len(tokens) - 1, len(mats["wpe"]))
        scale = (self.hd**0.5) ** -1
        hd, L = self.hd, self.n_layer
        keys = [[] for _ in range(L)]
        vals = [[] for _ in range(L)]
        saved = []
        losses = []
        # ---- forward, keeping what backward needs
        for pos in range(n):
            tok, target = tokens[pos], tokens[pos + 1]
            x_in = list(map(add, mats["wte"][tok], mats["wpe"][pos]))
            x, s0, m0 = _rmsnorm(x_in)
            layer_saves = []
            for li in range(L):
                p = f"layer{li}."
                xr1 = x
                xn1, s1, m1 = _rmsnorm(x)
                q = _dots(mats[p + "attn_wq"], xn1)
                k = _dots(mats[p + "attn_wk"], xn1)
                v = _dots(mats[p + "attn_wv"], xn1)
                keys[li].append(k)
                vals[li].append(v)
                heads = []
                attn = []
                for h in range(self.n_head):
                    lo, hi = h * hd, (h + 1) * hd
                    qh = q[lo:hi]
                    logits = [d * scale for d in _dots([kt[lo:hi] for kt in keys[li]], qh)]
                    w = _softmax(logits)
                    out = _dots([[vt[j] for vt in vals[li]] for j in range(lo, hi)], w)
                    heads.append(w)
                    attn.extend(out)
                o = _dots(mats[p + "attn_wo"], attn)
                x = list(map(add, o, xr1))
                xr2 = x
                xn2, s2, m2 = _rmsnorm(x)
                h_pre = _dots(mats[p + "mlp_fc1"], xn2)
                h_act = [a if a > 0.0 else 0.0 for a in h_pre]
                y = _dots(mats[p + "mlp_fc2"], h_act)
                x = list(map(add, y, xr2))
                layer_saves.append((xr1, xn1, s1, m1, q, heads, attn, xr2, xn2, s2, m2, h_act))
            logits = _dots(mats["lm_head"], x)
            probs = _softmax(logits)
            losses.append(-math.log(probs[target]))
            saved.append((tok, target, x_in, s0, m0, layer_saves, x, probs))
        loss = (1 / n) * sum(losses)
        # ---- backward by hand, last position first (keys and values collect later grads);
        # w^T dy is _dots over the transposed matrix
        trans = {name: [list(col) for col in zip(*mat)] for name, mat in mats.items()
                 if name not in ("wte", "wpe")}
        outer = {name: [] for name in mats}  # (dy, x) of each use of a weight matrix
        dkeys = [[[0.0] * len(k) for k in keys[li]] for li in range(L)]
        dvals = [[[0.0] * len(v) for v in vals[li]] for li in range(L)]
        inv_n = 1 / n
        for pos in range(n - 1, -1, -1):
            tok, target, x_in, s0, m0, layer_saves, x_last, probs = saved[pos]
            dlogits = [pr * inv_n for pr in probs]
            dlogits[target] -= inv_n
            outer["lm_head"].append((dlogits, x_last))
            dx = _dots(trans["lm_head"], dlogits)
            for li in range(L - 1, -1, -1):
                p = f"layer{li}."
                xr1, xn1, s1, m1, q, heads, attn, xr2, xn2, s2, m2, h_act = layer_saves[li]
                # MLP block: x = fc2(relu(fc1(rmsnorm(xr2)))) + xr2
                outer[p + "mlp_fc2"].append((dx, h_act))
                dh = _dots(trans[p + "mlp_fc2"], dx)
                dh = [g if a > 0.0 else 0.0 for g, a in zip(dh, h_act)]
                outer[p + "mlp_fc1"].append((dh, xn2))
                dxn2 = _dots(trans[p + "mlp_fc1"], dh)
                dx = list(map(add, dx, _rmsnorm_back(xr2, s2, m2, dxn2)))
                # attention block: x = wo(attn(rmsnorm(xr1))) + xr1
                outer[p + "attn_wo"].append((dx, attn))
                dattn = _dots(trans[p + "attn_wo"], dx)
                dq = [0.0] * len(q)
                ks, vs, dks, dvs = keys[li], vals[li], dkeys[li], dvals[li]
                for h in range(self.n_head):
                    lo, hi = h * hd, (h + 1) * hd
                    w, dout = heads[h], dattn[lo:hi]
                    dw = _dots([vt[lo:hi] for vt in vs[: pos + 1]], dout)
                    for t, wt in enumerate(w):
                        dvs[t][lo:hi] = map(add, dvs[t][lo:hi], map(mul, dout, repeat(wt)))
                    dot_wdw = _sumprod(w, dw)
                    dlog = [wt * (g - dot_wdw) * scale for wt, g in zip(w, dw)]
                    qh = q[lo:hi]
                    dqh = dq[lo:hi]
                    for t, g in enumerate(dlog):
                        if g:
                            dqh = list(map(add, dqh, map(mul, ks[t][lo:hi], repeat(g))))
                            dks[t][lo:hi] = map(add, dks[t][lo:hi], map(mul, qh, repeat(g)))
                    dq[lo:hi] = dqh
                outer[p + "attn_wq"].append((dq, xn1))
                outer[p + "attn_wk"].append((dks[pos], xn1))
                outer[p + "attn_wv"].append((dvs[pos], xn1))
                dxn1 = _dots(trans[p + "attn_wq"], dq)
                dxn1 = list(map(add, dxn1, _dots(trans[p + "attn_wk"], dks[pos])))
                dxn1 = list(map(add, dxn1, _dots(trans[p + "attn_wv"], dvs[pos])))
                dx = list(map(add, dx, _rmsnorm_back(xr1, s1, m1, dxn1)))
            dx_in = _rmsnorm_back(x_in, s0, m0, dx)
            grads["wte"][tok] = list(map(add, grads["wte"][tok], dx_in))
            grads["wpe"][pos] = list(map(add, grads["wpe"][pos], dx_in))
        for name, pairs in outer.items():
            if pairs:  # the weight matrices' gradients, all their uses at once
                grads[name] = _outer_sum(pairs)
        # ---- Adam over the whole flat parameter vector, with microgpt.py's operations
        lr = self.lr * (1 - self.t / self.steps)
        self.t += 1
        hyper = (self.b1, self.b2, self.eps, lr, 1 - self.b1**self.t, 1 - self.b2**self.t)
        g = list(chain.from_iterable(chain.from_iterable(grads[name] for name in self.names)))
        p = chain.from_iterable(chain.from_iterable(self.mats))
        flat, self.m, self.v = _adam(hyper, p, g, self.m, self.v)
        start = 0
        for mat in self.mats:
            cols = len(mat[0])
            mat[:] = [flat[i : i + cols] for i in range(start, start + len(mat) * cols, cols)]
            start += len(mat) * cols
        return loss


def _adam(hyper, ps, gs, ms, vs):
    """New (params, m, v) as lists, one comprehension per formula."""
    b1, b2, eps, lr, bias1, bias2 = hyper
    c1, c2 = 1 - b1, 1 - b2
    m = [b1 * m + c1 * g for m, g in zip(ms, gs)]
    v = [b2 * v + c2 * (g * g) for v, g in zip(vs, gs)]
    return [p - lr * (m / bias1) / ((v / bias2) ** 0.5 + eps) for p, m, v in zip(ps, m, v)], m, v
