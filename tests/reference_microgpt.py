"""A deliberately naive, mutable restatement of Karpathy's microgpt.py: our oracle and baseline.

This module is NOT part of ``functional_gpt``. It is the yardstick the package is measured
against, written fresh (no code taken from microgpt.py) but doing exactly what that script
does, down to the order of every floating-point operation:

* **Exactness oracle.** The tests require the functional implementation to reproduce the losses
  (to 1e-9) and the samples computed here; the published first two losses on names.txt
  (3.3659669475848504, 3.4242727838717717) are checked against this module in
  ``test_reference_microgpt.py``.
* **Speed baseline.** ``benchmarks`` time it as "the original approach": one mutable ``Value``
  object (with ``__slots__``) per scalar operation, gradients found by a recursive depth-first
  topological sort from the loss and accumulated with ``grad +=``. Nothing is fused, so it is
  neither faster nor slower than microgpt.py.

Why the details matter for bit-exactness: floating-point addition is not associative, and the
order in which ``backward`` adds contributions into a shared node follows the topological order,
which in turn follows the order of each op's operands. So ``w * x`` is not written ``x * w``,
``sum(...)`` is Python's builtin (it starts from the int ``0``, i.e. ``0 + v`` via
``__radd__``), ``a / b`` is ``a * b**-1`` and ``a - b`` is ``a + (-b)``, exactly as the original.

>>> import math
>>> ref = Reference(["ann", "bob", "eve"], n_embd=4, n_head=2, block_size=4)
>>> ref.vocab_size, ref.num_params
(7, 264)
>>> loss = ref.step()
>>> abs(loss - math.log(7)) < 0.3     # the untrained model is close to uniform
True

Run as a script, it prints what microgpt.py prints (one step per line)::

    python tests/reference_microgpt.py ../shared/data/names.txt --steps 1000
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from collections.abc import Sequence

__all__ = ["Value", "Reference", "load_docs", "main"]


class Value:
    """A mutable scalar that remembers where it came from: ``data``, ``grad`` and its inputs.

    Each operation returns a new ``Value`` holding its result, the Values it was computed from
    and the partial derivative of the result with respect to each of them. ``backward`` then
    pushes ``d loss / d node`` down to every node in ``grad``.

    >>> a, b = Value(2.0), Value(3.0)
    >>> c = a * b + a
    >>> c.data
    8.0
    >>> c.backward()           # a, b, a*b and c itself
    4
    >>> a.grad, b.grad          # dc/da = b + 1, dc/db = a
    (4.0, 2.0)
    >>> (Value(1.0) / 4).data, (2 - Value(0.5)).data, (-Value(3.0)).relu().data
    (0.25, 1.5, 0)
    """

    __slots__ = ("data", "grad", "_inputs", "_partials")

    def __init__(self, data, inputs=(), partials=()):
        self.data = data
        self.grad = 0
        self._inputs = inputs
        self._partials = partials

    def __repr__(self):
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    # -- primitives: forward value plus local gradients --------------------------------------
    def __add__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data + other.data, (self, other), (1, 1))

    def __mul__(self, other):
        if not isinstance(other, Value):
            other = Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, p):
        # p is a plain number (the original never raises to a Value)
        return Value(self.data**p, (self,), (p * self.data ** (p - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1 / self.data,))

    def exp(self):
        return Value(math.exp(self.data), (self,), (math.exp(self.data),))

    def relu(self):
        return Value(max(0, self.data), (self,), (float(self.data > 0),))

    # -- derived operations, spelled the way microgpt.py spells them -------------------------
    def __neg__(self):
        return self * -1

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other**-1

    def __rtruediv__(self, other):
        return other * self**-1

    # -- reverse mode ------------------------------------------------------------------------
    def backward(self):
        """Fill in ``grad`` of every node this one depends on; return how many nodes that is.

        The order is a recursive depth-first post-order from ``self`` (inputs visited left to
        right), walked backwards; gradients are added with ``+=`` into whatever ``grad``
        already holds, as micrograd does. Like microgpt.py's, the walk is recursive, so graphs
        deeper than ``sys.getrecursionlimit()`` (e.g. 4 layers of width 32 with block size 32)
        raise RecursionError unless the caller raises that limit.

        >>> x = Value(3.0)
        >>> y = x * x
        >>> y.backward()
        2
        >>> x.grad
        6.0
        """
        order = []
        seen = set()

        def visit(node):
            if node not in seen:
                seen.add(node)
                for child in node._inputs:
                    visit(child)
                order.append(node)

        visit(self)
        self.grad = 1
        for node in reversed(order):
            for child, partial in zip(node._inputs, node._partials):
                child.grad += partial * node.grad
        return len(order)


# ------------------------------------------------------------------------- the network pieces


def _linear(x, w):
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def _softmax(logits):
    top = max(v.data for v in logits)
    exps = [(v - top).exp() for v in logits]
    total = sum(exps)
    return [e / total for e in exps]


def _rmsnorm(x):
    mean_square = sum(xi * xi for xi in x) / len(x)
    scale = (mean_square + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def load_docs(path):
    """Return the documents of a text file the way microgpt.py reads them: non-empty stripped lines.

    >>> import os, tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("  emma \\n\\nolivia\\n   \\nava\\n")
    >>> load_docs(f.name)
    ['emma', 'olivia', 'ava']
    >>> os.remove(f.name)
    """
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [line.strip() for line in text.strip().split("\n") if line.strip()]


class Reference:
    """Return a freshly initialised microgpt model and trainer over ``docs`` (mutable, stepwise).

    One ``random.Random(seed)`` drives everything, in microgpt.py's order: it shuffles a copy of
    ``docs``, draws every parameter from ``gauss(0, std)`` (wte, wpe, lm_head, then per layer
    attn_wq, attn_wk, attn_wv, attn_wo, mlp_fc1, mlp_fc2, row by row), and after training picks
    the sampled tokens. ``steps`` is the length of the run; it sets the learning-rate decay.

    >>> ref = Reference(["ann", "bob", "eve"], n_embd=4, n_head=2, block_size=4, seed=1)
    >>> ref.docs, ref.uchars, ref.bos
    (['bob', 'eve', 'ann'], ['a', 'b', 'e', 'n', 'o', 'v'], 6)
    >>> ref.tokenize("ann")
    [6, 0, 3, 3, 6]
    >>> len(ref.params_flat()) == ref.num_params
    True
    """

    def __init__(
        self,
        docs: Sequence[str],
        n_layer: int = 1,
        n_embd: int = 16,
        n_head: int = 4,
        block_size: int = 16,
        seed: int = 42,
        steps: int = 1000,
        lr: float = 0.01,
        beta1: float = 0.85,
        beta2: float = 0.99,
        eps: float = 1e-8,
        std: float = 0.08,
    ) -> None:
        if n_embd % n_head:
            raise ValueError(f"n_embd {n_embd} is not a multiple of n_head {n_head}")
        self.rng = random.Random(seed)
        self.docs = list(docs)
        if not self.docs:
            raise ValueError("no documents")
        self.rng.shuffle(self.docs)
        self.uchars = sorted(set("".join(self.docs)))
        self.bos = len(self.uchars)
        self.vocab_size = self.bos + 1
        self.n_layer, self.n_embd, self.n_head = n_layer, n_embd, n_head
        self.block_size = block_size
        self.head_dim = n_embd // n_head
        self.num_steps = steps
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

        def matrix(rows, cols):
            return [[Value(self.rng.gauss(0, std)) for _ in range(cols)] for _ in range(rows)]

        self.weights = {
            "wte": matrix(self.vocab_size, n_embd),
            "wpe": matrix(block_size, n_embd),
            "lm_head": matrix(self.vocab_size, n_embd),
        }
        for i in range(n_layer):
            self.weights[f"layer{i}.attn_wq"] = matrix(n_embd, n_embd)
            self.weights[f"layer{i}.attn_wk"] = matrix(n_embd, n_embd)
            self.weights[f"layer{i}.attn_wv"] = matrix(n_embd, n_embd)
            self.weights[f"layer{i}.attn_wo"] = matrix(n_embd, n_embd)
            self.weights[f"layer{i}.mlp_fc1"] = matrix(4 * n_embd, n_embd)
            self.weights[f"layer{i}.mlp_fc2"] = matrix(n_embd, 4 * n_embd)
        self.params = [p for mat in self.weights.values() for row in mat for p in row]
        self.num_params = len(self.params)
        self.m = [0.0] * self.num_params
        self.v = [0.0] * self.num_params
        self.step_count = 0
        self.node_count = 0  # nodes in the last step's graph (as counted by backward)
        self._last_grads: list = []
        self._last_loss: Value | None = None

    # -- model -------------------------------------------------------------------------------
    def tokenize(self, doc):
        """Return the token ids of ``doc`` wrapped in BOS on both sides.

        >>> Reference(["ab"], n_embd=2, n_head=1, block_size=2).tokenize("ba")
        [2, 1, 0, 2]
        """
        return [self.bos] + [self.uchars.index(ch) for ch in doc] + [self.bos]

    def _gpt(self, token, pos, keys, values):
        w = self.weights
        hd = self.head_dim
        x = [t + p for t, p in zip(w["wte"][token], w["wpe"][pos])]
        x = _rmsnorm(x)
        for li in range(self.n_layer):
            x_res = x
            x = _rmsnorm(x)
            q = _linear(x, w[f"layer{li}.attn_wq"])
            k = _linear(x, w[f"layer{li}.attn_wk"])
            v = _linear(x, w[f"layer{li}.attn_wv"])
            keys[li].append(k)
            values[li].append(v)
            x_attn = []
            for h in range(self.n_head):
                hs = h * hd
                q_h = q[hs : hs + hd]
                k_h = [kt[hs : hs + hd] for kt in keys[li]]
                v_h = [vt[hs : hs + hd] for vt in values[li]]
                scores = [
                    sum(q_h[j] * k_h[t][j] for j in range(hd)) / hd**0.5 for t in range(len(k_h))
                ]
                att = _softmax(scores)
                x_attn.extend(sum(att[t] * v_h[t][j] for t in range(len(v_h))) for j in range(hd))
            x = _linear(x_attn, w[f"layer{li}.attn_wo"])
            x = [a + b for a, b in zip(x, x_res)]
            x_res = x
            x = _rmsnorm(x)
            x = _linear(x, w[f"layer{li}.mlp_fc1"])
            x = [xi.relu() for xi in x]
            x = _linear(x, w[f"layer{li}.mlp_fc2"])
            x = [a + b for a, b in zip(x, x_res)]
        return _linear(x, w["lm_head"])

    def _loss(self, tokens):
        n = min(self.block_size, len(tokens) - 1)
        keys = [[] for _ in range(self.n_layer)]
        values = [[] for _ in range(self.n_layer)]
        losses = []
        for pos in range(n):
            probs = _softmax(self._gpt(tokens[pos], pos, keys, values))
            losses.append(-probs[tokens[pos + 1]].log())
        return (1 / n) * sum(losses)

    # -- training ----------------------------------------------------------------------------
    def step(self):
        """Return the loss of one training step on the next document, after applying Adam to it.

        Step ``s`` (counting from 0) trains on ``docs[s % len(docs)]``.

        >>> ref = Reference(["ann", "bob"], n_embd=4, n_head=2, block_size=4, steps=3)
        >>> losses = [ref.step() for _ in range(3)]
        >>> ref.step_count, len(ref.grads_flat()) == ref.num_params
        (3, True)
        >>> ref.step()
        Traceback (most recent call last):
        ...
        RuntimeError: all 3 steps of this run are done
        """
        step = self.step_count
        if step >= self.num_steps:
            raise RuntimeError(f"all {self.num_steps} steps of this run are done")
        tokens = self.tokenize(self.docs[step % len(self.docs)])
        loss = self._loss(tokens)
        # microgpt.py's module-level names keep the previous step's graph alive until the new
        # loss is bound; keeping it here too gives the same memory pattern (and speed: freeing
        # the old graph first, so its memory is reused, would run about 1.6x faster)
        self._last_loss = loss
        self.node_count = loss.backward()
        params, m, v = self.params, self.m, self.v
        self._last_grads = [p.grad for p in params]
        b1, b2, eps = self.beta1, self.beta2, self.eps
        lr_t = self.lr * (1 - step / self.num_steps)
        for i, p in enumerate(params):
            m[i] = b1 * m[i] + (1 - b1) * p.grad
            v[i] = b2 * v[i] + (1 - b2) * p.grad**2
            m_hat = m[i] / (1 - b1 ** (step + 1))
            v_hat = v[i] / (1 - b2 ** (step + 1))
            p.data -= lr_t * m_hat / (v_hat**0.5 + eps)
            p.grad = 0
        self.step_count = step + 1
        return loss.data

    def params_flat(self):
        """Return the current parameter values, in initialisation order, as a list of floats.

        >>> ref = Reference(["a"], n_embd=2, n_head=1, block_size=1, seed=0)
        >>> ref.params_flat()[0] == random.Random(0).gauss(0, 0.08)  # shuffling 1 doc draws nothing
        True
        """
        return [p.data for p in self.params]

    def grads_flat(self):
        """Return the gradient of the last step's loss for every parameter (zeros before any step).

        >>> ref = Reference(["ab"], n_embd=2, n_head=1, block_size=2)
        >>> set(ref.grads_flat())
        {0.0}
        """
        if not self._last_grads:
            return [0.0] * self.num_params
        return [float(g) for g in self._last_grads]

    def set_params(self, flat):
        """Return None after overwriting every parameter with ``flat`` (same order as params_flat).

        >>> ref = Reference(["ab"], n_embd=2, n_head=1, block_size=2)
        >>> ref.set_params([0.5] * ref.num_params)
        >>> set(ref.params_flat())
        {0.5}
        """
        if len(flat) != self.num_params:
            raise ValueError(f"expected {self.num_params} values, got {len(flat)}")
        for p, x in zip(self.params, flat):
            p.data = x

    def loss_and_grads(self, tokens):
        """Return ``(loss, grads)`` of one document's tokens at the current parameters.

        Forward and backward exactly as a training step, but nothing is updated and the
        parameters' ``grad`` fields are zero again afterwards.

        >>> ref = Reference(["ann", "bob"], n_embd=4, n_head=2, block_size=4)
        >>> loss, grads = ref.loss_and_grads(ref.tokenize(ref.docs[0]))
        >>> loss == ref.step() and grads == ref.grads_flat()
        True
        """
        loss = self._loss(tokens)
        loss.backward()
        grads = [float(p.grad) for p in self.params]
        for p in self.params:
            p.grad = 0
        return loss.data, grads

    def graph_size(self, tokens=None):
        """Return ``(nodes, edges)`` of the loss graph for ``tokens``, or of the last step's loss.

        Nodes include the parameters and the constants the ops wrap; edges are input links.
        With ``tokens`` a fresh graph is built (nothing is trained or accumulated).

        >>> ref = Reference(["ab"], n_embd=2, n_head=1, block_size=2)
        >>> nodes, edges = ref.graph_size(ref.tokenize("ab"))
        >>> nodes > ref.num_params // 2 and edges > nodes
        True
        >>> _ = ref.step()
        >>> ref.graph_size() == (nodes, edges) and ref.node_count == nodes
        True
        """
        if tokens is not None:
            root = self._loss(tokens)
        elif self._last_loss is not None:
            root = self._last_loss
        else:
            return 0, 0
        seen = {root}
        stack = [root]
        edges = 0
        while stack:
            node = stack.pop()
            edges += len(node._inputs)
            for child in node._inputs:
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return len(seen), edges

    # -- inference ---------------------------------------------------------------------------
    def sample(self, num_samples=20, temperature=0.5):
        """Return ``num_samples`` generated documents, drawing tokens from the shared rng.

        >>> ref = Reference(["ann", "bob"], n_embd=4, n_head=2, block_size=4)
        >>> names = ref.sample(3)
        >>> len(names), all(set(s) <= set("abno") and len(s) <= 4 for s in names)
        (3, True)
        """
        out = []
        for _ in range(num_samples):
            keys = [[] for _ in range(self.n_layer)]
            values = [[] for _ in range(self.n_layer)]
            token = self.bos
            chars = []
            for pos in range(self.block_size):
                logits = self._gpt(token, pos, keys, values)
                probs = _softmax([lg / temperature for lg in logits])
                weights = [p.data for p in probs]
                token = self.rng.choices(range(self.vocab_size), weights=weights)[0]
                if token == self.bos:
                    break
                chars.append(self.uchars[token])
            out.append("".join(chars))
        return out


def main(argv=None):
    """Return 0 after training on a text file and printing what microgpt.py prints.

    >>> import os, tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
    ...     _ = f.write("ann\\nbob\\neve\\n")
    >>> main([f.name, "--steps", "2", "--samples", "1", "--n-embd", "4", "--n-head", "2"])
    num docs: 3
    vocab size: 7
    num params: 312
    step    1 /    2 | loss ...
    step    2 /    2 | loss ...
    --- inference (new, hallucinated names) ---
    sample  1: ...
    0
    >>> os.remove(f.name)
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="text file, one document per line")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-layer", type=int, default=1)
    parser.add_argument("--n-embd", type=int, default=16)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--temperature", type=float, default=0.5)
    args = parser.parse_args(argv)
    ref = Reference(
        load_docs(args.path),
        n_layer=args.n_layer,
        n_embd=args.n_embd,
        n_head=args.n_head,
        block_size=args.block_size,
        seed=args.seed,
        steps=args.steps,
    )
    print(f"num docs: {len(ref.docs)}")
    print(f"vocab size: {ref.vocab_size}")
    print(f"num params: {ref.num_params}")
    for s in range(args.steps):
        loss = ref.step()
        print(f"step {s + 1:4d} / {args.steps:4d} | loss {loss:.4f}", flush=True)
    print("--- inference (new, hallucinated names) ---")
    for i, name in enumerate(ref.sample(args.samples, args.temperature)):
        print(f"sample {i + 1:2d}: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
