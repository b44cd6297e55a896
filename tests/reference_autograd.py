"""Independent oracles for the tape's gradients: a naive mutable autograd and finite differences.

``Value`` is deliberately the opposite of the tape: every scalar is a mutable
object that knows its children and carries a closure pushing its ``grad``
into theirs; ``backward`` orders the graph by a recursive depth-first search
and mutates ``grad`` fields in place (micrograd's design). It shares no code
with ``functional_gpt.tape``, so agreement between the two means something.

>>> x, y = Value(3.0), Value(4.0)
>>> z = x * y + x
>>> z.backward()
>>> z.data, x.grad, y.grad
(15.0, 5.0, 3.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["Value", "central_difference", "replay", "vdot", "vsum"]


class Value:
    """A scalar with a mutable ``grad``, its children and a closure for its backward step.

    >>> v = Value(2.0).log()
    >>> v.backward()
    >>> round(v.data, 6), v.children[0].grad
    (0.693147, 0.5)
    """

    def __init__(self, data: float, children: tuple[Value, ...] = ()) -> None:
        self.data = float(data)
        self.grad = 0.0
        self.children = children
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        return f"Value(data={self.data!r}, grad={self.grad!r})"

    def _unary(self, data: float, dout_dself: float) -> Value:
        out = Value(data, (self,))

        def _backward() -> None:
            self.grad += dout_dself * out.grad

        out._backward = _backward
        return out

    def __add__(self, other: Value) -> Value:
        out = Value(self.data + other.data, (self, other))

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __sub__(self, other: Value) -> Value:
        out = Value(self.data - other.data, (self, other))

        def _backward() -> None:
            self.grad += out.grad
            other.grad -= out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value) -> Value:
        out = Value(self.data * other.data, (self, other))

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __truediv__(self, other: Value) -> Value:
        out = Value(self.data / other.data, (self, other))

        def _backward() -> None:  # quotient rule: d(a/b) = da/b - a db/b^2
            self.grad += out.grad / other.data
            other.grad -= self.data * out.grad / (other.data * other.data)

        out._backward = _backward
        return out

    def __neg__(self) -> Value:
        return self._unary(-self.data, -1.0)

    def scaled(self, s: float) -> Value:
        """Return ``self * s`` for a plain float ``s``."""
        return self._unary(self.data * s, s)

    def __pow__(self, p: float) -> Value:
        slope = 0.0 if p == 0 else p * self.data ** (p - 1)  # x**0 is constant
        return self._unary(self.data**p, slope)

    def log(self) -> Value:
        """Return ``ln self``."""
        return self._unary(math.log(self.data), 1.0 / self.data)

    def exp(self) -> Value:
        """Return ``e ** self``."""
        e = math.exp(self.data)
        return self._unary(e, e)

    def relu(self) -> Value:
        """Return ``max(self, 0)``."""
        return self._unary(max(self.data, 0.0), 1.0 if self.data > 0 else 0.0)

    def backward(self) -> None:
        """Set ``grad`` of every Value this one depends on to d(self)/d(it), in place."""
        order: list[Value] = []
        seen: set[int] = set()

        def visit(v: Value) -> None:
            if id(v) not in seen:
                seen.add(id(v))
                for child in v.children:
                    visit(child)
                order.append(v)

        visit(self)
        for v in order:
            v.grad = 0.0
        self.grad = 1.0
        for v in reversed(order):
            v._backward()


def vsum(values: Iterable[Value]) -> Value:
    """Return the sum of ``values`` as a chain of ``+`` starting from ``Value(0.0)``."""
    total = Value(0.0)
    for v in values:
        total = total + v
    return total


def vdot(xs: Sequence[Value], ys: Sequence[Value]) -> Value:
    """Return the dot product of ``xs`` and ``ys`` as a chain of ``*`` and ``+``."""
    return vsum(x * y for x, y in zip(xs, ys, strict=True))


def replay(program: Any, xs: Sequence[float] | None = None) -> list[Value]:
    """Return one ``Value`` per node of ``program`` (see ``strategies.Program``), run on Values.

    Duck-typed on purpose: it reads ``program.inputs`` and each instruction's
    ``op``, ``args`` and ``param`` and nothing from the tape module.

    >>> from types import SimpleNamespace as NS
    >>> prog = NS(inputs=(2.0, 5.0), instrs=[NS(op="div", args=(0, 1), param=0.0)])
    >>> [v.data for v in replay(prog)]
    [2.0, 5.0, 0.4]
    """
    nodes = [Value(x) for x in (program.inputs if xs is None else xs)]
    for ins in program.instrs:
        nodes.append(_step(ins.op, [nodes[i] for i in ins.args], ins.param))
    return nodes


def _step(op: str, a: list[Value], p: float) -> Value:
    """The Value that instruction ``op`` makes from the Values ``a`` and the parameter ``p``."""
    if op in ("var", "const"):
        return Value(p)
    if op in ("add", "sub", "mul", "div"):
        binary = {"add": Value.__add__, "sub": Value.__sub__, "mul": Value.__mul__}
        return binary[op](a[0], a[1]) if op in binary else a[0] / a[1]
    if op == "neg":
        return -a[0]
    if op == "scale":
        return a[0].scaled(p)
    if op == "pow":
        return a[0] ** p
    if op in ("log", "exp", "relu"):
        return getattr(a[0], op)()
    if op == "sum":
        return vsum(a)
    if op == "dot":
        half = len(a) // 2
        return vdot(a[:half], a[half:])
    raise ValueError(f"reference: unknown op {op!r}")


def central_difference(
    f: Callable[[Sequence[float]], float], xs: Sequence[float], i: int, rel_step: float = 1e-6
) -> float:
    """Return ``(f(xs + h e_i) - f(xs - h e_i)) / 2h``, the numeric d f / d xs[i].

    The step is ``rel_step`` scaled by ``max(1, |xs[i]|)``.

    >>> round(central_difference(lambda v: v[0] ** 3, [2.0], 0), 6)
    12.0
    """
    h = rel_step * max(1.0, abs(xs[i]))
    up = [x + h if j == i else x for j, x in enumerate(xs)]
    down = [x - h if j == i else x for j, x in enumerate(xs)]
    return (f(up) - f(down)) / (up[i] - down[i])
