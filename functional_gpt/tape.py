"""The immutable tape: reverse-mode autodiff as a persistent Wengert list.

Read this file first. It is the whole idea, in this order: what a node is and what a tape is;
``push``, the one way a node gets onto a tape; the primitives, each one line of forward math
plus its local gradients, followed by its rule for the second order; ``map_tape`` and
``zip_map_tape``, which thread a tape through a list; the backward pass, a fold from the root
down into a persistent vector of gradients, and its twin onto the tape; and ``reset`` /
``update``, which carry the parameters from one training step to the next.

Every operation takes a tape first and returns ``(new_tape, node_id)``. The tape passed in is
never changed, so old tapes stay valid and two computations can branch from one tape.

>>> import functional_gpt.tape as T
>>> tape, x = T.var(T.new(), 3.0)
>>> tape, y = T.var(tape, 4.0)
>>> tape, xy = T.mul(tape, x, y)
>>> tape, z = T.add(tape, xy, x)          # z = x*y + x
>>> T.data(tape, z)
15.0
>>> grads = T.backward(tape, z)
>>> T.grad(grads, x), T.grad(grads, y)    # dz/dx = y + 1, dz/dy = x
(5.0, 3.0)

The whole truth, in five answers:

- **A Tape** is a persistent vector of nodes: node ``i`` (its id) is a ``Node``, a value with
  the ids of its inputs and one local gradient per input, and every input has a smaller id.
  How it is stored (the parameters as one tuple, the nodes pushed after them in chunks of
  ``CHUNK``, a layer's rows as one ``Block``) is ``tape_storage.py``; nothing here depends on it.
- **Backward** is ``backward_spec``: a fold from the root down into a persistent vector of
  adjoints (the persistent map from ids to gradients, ids being 0, 1, 2, ...). Training runs
  ``backward_as_tuple`` (``fast_backward.py``), the same fold as one loop over a local list;
  ``backward`` calls it too. ``tests/test_backward.py`` proves them equal bit for bit: a
  hypothesis property over random tapes built from everything the public API accepts (Blocks
  and Runs in any order, members alone or reading earlier members, mixed batches) that
  compares every gradient's bits.
- **A layer** is primitives fused into fewer nodes (``layers.py``). ``layers.linear`` is one
  ``dot`` node per row of ``w``: forward ``y_k = w_k . x``; backward, the local gradients of
  row ``k`` are ``x``'s values for ``w_k`` and ``w_k``'s values for ``x``, so ``backward``
  hands ``g_k * x`` to ``w_k`` and ``g_k * w_k`` to ``x``. The rows are stored as one Block
  (with a bias, each row is one ``dot_add`` node that also hands ``g_k`` to ``b_k``).
- **Second order.** Each op is an ``Op``: its name and a rule, defined beside it
  (``defop``), that puts its local gradients on the tape as nodes. ``backward_on_tape``, next
  to ``backward_spec``, is the same fold with the adjoints pushed as nodes, so a gradient can be
  differentiated again; ``fused_adjoints.py`` is its fast twin, one node per adjoint, which
  ``transforms.py`` (``tape_gradient``, ``hessian``, ``hvp``) runs. ``tests/test_second_order.py``
  proves them equal.
- **A training step** (``train.train_step``) pushes the loss onto the tape of parameters
  (``model.doc_loss``), runs ``backward_as_tuple`` from it, takes an Adam step on the
  parameters' gradients and hands the new values to the next step with ``update``.
- **Exact, or only for speed.** This file is the definition. ``tape_storage``, ``exact_folds``
  (the fastest exact left fold on each Python) and ``fast_backward`` exist only for speed, each
  tested bit for bit against its plain twin (``tests/test_tape_storage.py``,
  ``tests/test_folds.py``, ``tests/test_backward.py``). The fused layers compute microgpt.py's
  float operations; the README's Exactness section says what is bit for bit and what is equal
  to rounding.

``__all__`` lists first the names defined here, then those this module only re-exports from
the three modules above, for the layers and for anyone writing an op of their own. The
transformations (``value_and_grad``, ``hessian``, ...) stand above the tape, in ``transforms``,
and the tools for looking (``check_grads``, ``table``, ...) in ``repl``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import reduce
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

from pyrsistent import PMap, PVector, pmap, pvector

from .exact_folds import fold_dot, fold_dots, fold_sum
from .fast_backward import backward_as_tuple, finite_adjoints
from .tape_storage import (
    CHUNK,
    EMPTY,
    Block,
    Entry,
    NonFiniteError,
    Run,
    RunMatrix,
    Tape,
    appended,
    block_nodes,
    checked_ids,
    finite_number,
    finite_numbers,
    leaves,
    matrix_values,
    node_tuple,
    op_value,
    op_values,
    parameter_count,
    parameter_values,
    push_block,
    push_many,
    push_trusted,
)

__all__ = [
    # defined here: the idea
    "Node", "Id", "as_ids", "node_ids", "operand", "new", "node", "data", "values", "push", "var",
    "constant",
    "add", "sub", "mul", "div", "neg", "scale", "add_constant", "pow", "log", "exp",
    "relu", "tanh", "sigmoid", "sqrt", "abs", "sum", "dot", "weighted_sum", "reciprocal",
    "map_tape", "zip_map_tape", "backward_spec", "backward", "grad",
    "reset", "update",
    # ... and the second order: each op's rule, and the backward pass onto the tape
    "Op", "Local", "Rule", "defop", "built_in_ops", "constant_locals", "swapped_halves",
    "op_to_store", "op_parts", "NoRuleError", "local_grads_on_tape", "backward_on_tape",
    "ADD", "SUB", "MUL", "DIV", "NEG", "SCALE", "ADD_CONSTANT", "POW", "LOG", "EXP", "RELU",
    "TANH", "SIGMOID", "SQRT", "ABS", "SUM", "DOT", "WEIGHTED_SUM", "RECIPROCAL",
    # only re-exported: from tape_storage (how a tape is stored) ...
    "Tape", "NonFiniteError", "Block", "Run", "RunMatrix", "CHUNK", "Entry", "leaves",
    "op_value", "op_values", "matrix_values", "parameter_values", "push_many", "push_trusted",
    "push_block", "block_nodes",
    # ... from exact_folds (the exact left folds) and fast_backward (what training runs)
    "fold_sum", "fold_dot", "fold_dots", "backward_as_tuple",
]

A = TypeVar("A")
B = TypeVar("B")
R = TypeVar("R")
S = TypeVar("S")  # what map_tape threads: a Tape, or any other state

# ------------------------------------------------------------ nodes and tapes


class Node(NamedTuple):
    """One node of the Wengert list: a value, its inputs and d(value)/d(input) for each.

    The fields, in this order: ``value``, ``inputs`` (the ids of the nodes it
    reads), ``local_grads`` (one per input, in the same order) and ``op`` (the
    name of the operation, for people, pictures and tools: ``backward`` never
    reads it). ``push`` takes the same four in another order, the op first:
    ``push(tape, op, value, inputs, local_grads)``.

    ``op`` names the op that made it; ``params`` are that op's static
    arguments that its second-order rule needs (pow's exponent, softmax's
    first output), empty for most ops.

    >>> Node(6.0, (0, 1), (3.0, 2.0), "mul")
    Node(value=6.0, inputs=(0, 1), local_grads=(3.0, 2.0), op='mul', params=())
    """

    value: float
    inputs: tuple[int, ...]
    local_grads: tuple[float, ...]
    op: str
    params: tuple[Any, ...] = ()


class Id(int):
    """A node id, as ops hand them out: the int ``i`` of node ``i``, marked as an id.

    Where a primitive wants a node it takes an ``Id``, so a number can never
    be mistaken for a node: ``mul(tape, x, 2)`` is refused with a message
    saying to write ``2.0`` (a number, with ``scale`` or ``constant``) or
    ``Id(2)`` (node 2). An Id is an int in every other way, and reading a tape
    (``data``, ``values``, ``node``, ``grad``) takes plain ints too. Layers and
    ``push_many`` hand out a ``Run`` (it costs nothing to make), which the
    n-ary ops and layers take as it is; ``as_ids`` marks its plain ints for
    the primitives (see "the one rule for ids" below).

    >>> tape, x = var(new(), 3.0)
    >>> type(x).__name__, x, x == 0
    ('Id', 0, True)
    >>> mul(tape, x, 2)
    Traceback (most recent call last):
    ...
    TypeError: mul: 2 is a plain int, not a node id; for the number write 2.0 (T.scale, ...
    """

    __slots__ = ()


def as_ids(plain: Iterable[int]) -> tuple[Id, ...]:
    """Return the node ids ``plain`` (a layer's output, a ``Run``) as ``Id``s, for the primitives.

    >>> tape, xs = map_tape(new(), [1.0, -2.0], var)
    >>> tape, run = push_many(tape, [(2.0, (0,), (2.0,), "double")])
    >>> tape, r = relu(tape, as_ids(run)[0])
    >>> data(tape, r)
    2.0
    """
    plain = tuple(plain)
    if any(isinstance(i, bool) or not hasattr(i, "__index__") for i in plain):
        bad = next(i for i in plain if isinstance(i, bool) or not hasattr(i, "__index__"))
        raise TypeError(f"as_ids: {bad!r} is not a node id (ids are ints; a bool is not one)")
    return tuple(map(Id, plain))


# The one rule for ids. A node id is what the tape hands out: an ``Id`` (from a primitive), or
# an element of a ``Run`` (from ``push_many`` and the layers). Where an op wants nodes, a plain
# int is refused, because a user may have meant the number (``sum(tape, [0, 1])``); a bool is
# never an id; and where an op wants a number (a factor, an exponent, a value, a weight, a
# local gradient, a target index), an Id is refused. Reading a tape by position (``data``,
# ``values``, ``node``, ``grad``, ``push``'s inputs) takes plain ints too: there an int can only
# mean a node. Each refusal says what to write for each reading: ``node_ids`` and ``operand``
# below for nodes, ``tape_storage.finite_number`` for numbers.


def node_ids(op: str, ids: Iterable[int]) -> tuple[int, ...]:
    """Return ``ids`` as a tuple of node ids for the op ``op``: a ``Run`` as it is, otherwise
    every element must be an ``Id``. A plain int, a bool or a number is refused with a message
    that offers both readings.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> node_ids("sum", xs) == xs
    True
    >>> node_ids("sum", [0, 1])
    Traceback (most recent call last):
    ...
    TypeError: sum: 0 is a plain int, not a node id; for the number write 0.0 (T.constant, ...
    """
    if type(ids) is Run:
        return ids
    try:
        ids = tuple(ids)
    except TypeError:
        raise TypeError(f"{op}: expected a sequence of node ids, got {ids!r}") from None
    if {*map(type, ids)} <= _ID_TYPES:
        return ids
    bad = next(i for i in ids if type(i) is not Id)
    if isinstance(bad, bool):
        raise TypeError(f"{op}: {bad!r} is a bool, not a node id")
    if hasattr(bad, "__index__"):
        k = int(bad)
        raise TypeError(f"{op}: {bad!r} is a plain int, not a node id; for the number write "
                        f"{float(k)!r} (T.constant, T.weighted_sum), for node {k} write "
                        f"T.Id({k}) (T.as_ids marks a sequence of them)")
    if isinstance(bad, float) or hasattr(bad, "__float__"):
        raise TypeError(f"{op}: {bad!r} is a number, not a node id; push it with "
                        f"T.constant(tape, {bad!r}), or use T.weighted_sum for plain weights")
    return ids  # anything else: the op's read of the tape refuses it, naming what it is


_ID_TYPES = frozenset({Id})


def operand(tape: Tape, op: str, a: Id) -> float:
    """Return the value of node ``a`` where the primitive ``op`` wants a node: ``a`` must be an
    ``Id``; a plain int, a number or a list is refused with a message saying what to write.

    >>> tape, x = var(new(), 3.0)
    >>> operand(tape, "my_op", x)
    3.0
    >>> operand(tape, "my_op", 0.5)
    Traceback (most recent call last):
    ...
    TypeError: my_op: 0.5 is a number, not a node id; for a constant write T.scale or ...
    """
    if type(a) is Id:
        return op_value(tape, op, a)
    if hasattr(a, "__index__") and not isinstance(a, bool):
        k = int(a)
        raise TypeError(f"{op}: {a!r} is a plain int, not a node id; for the number write "
                        f"{float(k)!r} (T.scale, T.add_constant, T.constant), for node {k} "
                        f"write T.Id({k}) (T.as_ids marks the plain ids a layer returns)")
    op_value(tape, op, a)  # raises the error that names what ``a`` is
    raise TypeError(f"{op}: expected a node id, got {a!r}")  # pragma: no cover - a safeguard


# A tape is a persistent vector of nodes: node i sits at index i, so it is also the map from the
# ids 0, 1, 2, ... to nodes. A node's inputs have smaller ids than the node itself, so creation
# order is a topological order. The core needs three things of a tape: len(tape) (the next id),
# node(tape, i), and a new tape with a node appended, the old one unchanged. ``Tape``
# (tape_storage.py) is that vector, laid out for speed.


def new() -> Tape:
    """Return the empty tape.

    >>> new()
    <Tape: 0 nodes (0 leaves), 0 edges>
    """
    return EMPTY


def node(tape: Tape, i: int) -> Node:
    """Return node ``i`` as a ``Node`` record.

    >>> tape, x = var(new(), 3.0)
    >>> tape, y = exp(tape, x)
    >>> node(tape, y).inputs, node(tape, y).op
    ((0,), 'exp')
    """
    value, inputs, local_grads, stored_op = node_tuple(tape, i)
    name, params, _ = op_parts(stored_op)
    return Node(value, inputs, local_grads, name, params)


def data(tape: Tape, i: int) -> float:
    """Return the value of node ``i``.

    >>> tape, x = var(new(), 7.0)
    >>> data(tape, x)
    7.0
    >>> data(tape, 3)
    Traceback (most recent call last):
    ...
    IndexError: data: node id 3 is not on this tape of 1 nodes
    """
    return op_value(tape, "data", i)


def values(tape: Tape, ids: Iterable[int]) -> tuple[float, ...]:
    """Return the values of the nodes ``ids``, in order.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> values(tape, xs)
    (1.0, 2.0)
    """
    ids = ids if type(ids) is Run else tuple(ids)
    if type(ids) is not Run and bool in {*map(type, ids)}:
        raise TypeError(f"values: {next(i for i in ids if type(i) is bool)!r} is a bool, "
                        "not a node id")
    return op_values(tape, "values", ids)


# --------------------------------------------------------- ops and their rules
# ``backward`` needs of a node only the floats pushed with it. Differentiating a second time
# needs more: each local gradient as a function of the inputs, that is, as a node of the tape.
# An ``Op`` carries that: its rule puts a node's local gradients on the tape, written with the
# tape ops themselves, so they too can be differentiated, to any order. Each primitive below is
# followed by its Op; ``backward_on_tape`` calls the rules and knows no op by name.

Local = Any  # one local gradient on the tape: an Id of the node holding it, or a float constant
Rule = Callable[[Tape, int, Node], tuple[Tape, Sequence[Local]]]


class Op(NamedTuple):
    """An op that can be differentiated at every order: its name and its rule.

    ``rule(tape, i, node) -> (tape, locals)`` puts the local gradients of
    node ``i`` on the tape as functions of its inputs: one entry per input,
    either the ``Id`` of a node whose value is that local gradient or a plain
    float where it is a constant (add's 1.0, relu's 0.0 or 1.0). Their values
    must be the floats pushed with the node. Push a node with an ``Op``
    instead of a name and ``backward_on_tape`` can differentiate through it.

    >>> def square_rule(tape, i, node):          # d(x*x)/dx = 2x, as a node
    ...     tape, two_x = scale(tape, Id(node.inputs[0]), 2.0)
    ...     return tape, (two_x,)
    >>> SQUARE = Op("square", square_rule)
    >>> tape, x = var(new(), 3.0)
    >>> tape, y = push(tape, SQUARE, 9.0, (x,), (6.0,))     # y = x * x
    >>> node(tape, y).op
    'square'
    """

    name: str
    rule: Rule


def _one(pushed: tuple[Tape, Local]) -> tuple[Tape, tuple[Local]]:
    """``(tape, id)`` as ``(tape, (id,))``: the rule of a one-input op."""
    return pushed[0], (pushed[1],)


# The built-in ops by name, each defined once at import time (``defop``) and never changed
# after; a plain ``push`` may not take their names, so a name on the tape means one op.
_BUILT_IN: dict[str, Op] = {}


def defop(name: str, rule: Rule) -> Op:
    """Return the built-in ``Op(name, rule)``, registered under ``name`` (at import time only).

    This package's own ops are defined this way, each beside its forward
    math, so that nodes can store just the name. A name is defined once.

    >>> node(*mul(*map_tape(new(), [2.0, 3.0], var)[0:1], Id(0), Id(1))).op
    'mul'
    >>> defop("mul", MUL.rule)
    Traceback (most recent call last):
    ...
    ValueError: defop: the op 'mul' is already defined
    """
    if name in _BUILT_IN:
        raise ValueError(f"defop: the op {name!r} is already defined")
    op = _BUILT_IN[name] = Op(name, rule)  # the registry is written here only, at import
    return op


def built_in_ops() -> Mapping[str, Op]:
    """Return the built-in ops by name, read-only: this module's primitives and, once imported,
    the fused ops of ``layers`` (and the ``adjoint`` of ``fused_adjoints``).

    >>> built_in_ops()["exp"] is EXP, "square" in built_in_ops()
    (True, False)
    """
    return MappingProxyType(_BUILT_IN)


def constant_locals(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[float, ...]]:
    """The rule of an op whose local gradients are constants: the floats pushed with the node.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = sub(tape, x, y)
    >>> constant_locals(tape, z, node(tape, z))[1]
    (1.0, -1.0)
    """
    return tape, n.local_grads


def swapped_halves(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[int, ...]]:
    """The rule of a dot of ``xs`` and ``ys`` (inputs ``xs + ys``): d/dx_k = y_k, d/dy_k = x_k,
    the other operand's nodes, no new node. ``mul`` is a dot of one pair, and the dot blocks of
    ``layers`` are read by it too.

    >>> tape, ids = map_tape(new(), [1.0, 2.0, 3.0, 4.0], var)
    >>> tape, d = dot(tape, ids[:2], ids[2:])
    >>> swapped_halves(tape, d, node(tape, d))[1]
    (2, 3, 0, 1)
    """
    half = len(n.inputs) // 2
    return tape, n.inputs[half:] + n.inputs[:half]


# ----------------------------------------------------------------------- push


def push(
    tape: Tape, op: str | Op, value: float, inputs: Sequence[int], local_grads: Sequence[float],
    params: Sequence[Any] = (),
) -> tuple[Tape, Id]:
    """Return ``(tape + one node, its Id)``: the one way a node gets onto a tape.

    Every primitive below is its forward value plus its local gradients
    handed to ``push``, and so is any op of your own. The arguments come in
    this order: the op's name first (every error names it), then ``value``,
    ``inputs`` and ``local_grads``, in ``Node``'s order; the stored ``Node``
    holds the op last. ``push`` checks what a custom op can get wrong: one
    local gradient per input, inputs that are already on the tape (so never
    the new node itself), and finite numbers only, for the value and every
    local gradient. It keeps copies (tuples) of ``inputs`` and
    ``local_grads``, never the caller's lists.

    ``op`` is a name, or an ``Op`` (a name and a rule). A node pushed with a
    name can be differentiated once: ``backward`` uses its float local
    gradients. One pushed with an ``Op`` can be differentiated again, to any
    order (``backward_on_tape``), and ``params`` keeps the static arguments
    its rule reads. The names of the built-in ops are theirs alone.

    >>> tape, x = var(new(), 2.0)
    >>> tape, sq = push(tape, "square", 4.0, (x,), (4.0,))   # d(x*x)/dx = 2x
    >>> grad(backward(tape, sq), x)
    4.0
    >>> push(tape, "bad", float("inf"), (), ())
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: bad: result inf is not finite
    >>> push(tape, "bad", 1.0, (x, sq), (1.0,))
    Traceback (most recent call last):
    ...
    ValueError: bad: 2 inputs but 1 local gradients; give one local gradient per input
    >>> push(tape, "mul", 4.0, (x, x), (2.0, 2.0))
    Traceback (most recent call last):
    ...
    ValueError: push: 'mul' is the name of a built-in op; give your op another name
    """
    stored_op = op_to_store(op, params)
    name = op.name if isinstance(op, Op) else op
    if type(value) is not float or not math.isfinite(value):
        try:
            value = finite_number(name, value)
        except NonFiniteError:
            raise NonFiniteError(f"{name}: result {value!r} is not finite") from None
    inputs = checked_ids(tape, name, inputs)
    local_grads = finite_numbers(f"{name}: local gradient", local_grads)
    if len(local_grads) != len(inputs):
        raise ValueError(f"{name}: {len(inputs)} inputs but {len(local_grads)} local gradients; "
                         "give one local gradient per input")
    return appended(tape, ((value, inputs, local_grads, stored_op),)), Id(len(tape))


def op_to_store(op: str | Op, params: Sequence[Any] = ()) -> Any:
    """Return how a node stores its op: the name of a built-in op, the ``Op`` of a custom one,
    or a name alone (differentiable once); with ``params``, a tuple of that and them.

    >>> op_to_store(MUL), op_to_store(POW, (2.0,)), op_to_store("mine")
    ('mul', ('pow', 2.0), 'mine')
    >>> op_to_store("exp")
    Traceback (most recent call last):
    ...
    ValueError: push: 'exp' is the name of a built-in op; give your op another name
    """
    if type(op) is Op:
        if _BUILT_IN.get(op.name) is op:
            head: Any = op.name
        elif op.name in _BUILT_IN:
            raise ValueError(f"push: {op.name!r} is the name of a built-in op; "
                             "give your op another name")
        else:
            head = op
    elif type(op) is str:
        if op in _BUILT_IN:
            raise ValueError(f"push: {op!r} is the name of a built-in op; "
                             "give your op another name")
        head = op
    else:
        raise TypeError(f"push: op must be a name or a T.Op, got {op!r}")
    params = tuple(params)
    return (head, *params) if params else head


def op_parts(stored_op: Any) -> tuple[str, tuple[Any, ...], Op | None]:
    """Return ``(name, params, Op or None)`` of a node's stored op (see ``op_to_store``).

    >>> op_parts("mul") == ("mul", (), MUL), op_parts(("pow", 2.0)) == ("pow", (2.0,), POW)
    (True, True)
    >>> op_parts("mine")
    ('mine', (), None)
    """
    if type(stored_op) is str:
        return stored_op, (), _BUILT_IN.get(stored_op)
    if type(stored_op) is Op:
        return stored_op.name, (), stored_op
    head, params = stored_op[0], tuple(stored_op[1:])
    if type(head) is Op:
        return head.name, params, head
    return head, params, _BUILT_IN.get(head)


def var(tape: Tape, x: float) -> tuple[Tape, Id]:
    """Return ``(tape, id)`` of a new leaf holding ``x`` (a parameter or an input).

    >>> tape, x = var(new(), 0.5)
    >>> x, data(tape, x)
    (0, 0.5)
    >>> var(tape, float("nan"))
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: var: value nan is not finite
    """
    return push(tape, "var", finite_number("var", x), (), ())


def constant(tape: Tape, x: float) -> tuple[Tape, Id]:
    """Return ``(tape, id)`` of a new leaf holding the constant ``x``.

    A constant is a leaf like ``var``; the name only documents intent (its
    gradient is computed and simply not used).

    >>> tape, c = constant(new(), 2.0)
    >>> node(tape, c)
    Node(value=2.0, inputs=(), local_grads=(), op='const', params=())
    """
    return push(tape, "const", finite_number("constant", x), (), ())


# ----------------------------------------------------------------- primitives
# One line of forward math and its local gradients each.


def add(tape: Tape, a: Id, b: Id) -> tuple[Tape, Id]:
    """Return ``(tape, a + b)``; d/da = d/db = 1.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = add(tape, x, y)
    >>> data(tape, z)
    5.0
    >>> add(tape, x, 1.0)
    Traceback (most recent call last):
    ...
    TypeError: add: 1.0 is a number, not a node id; for a constant write T.scale or ...
    """
    va, vb = operand(tape, "add", a), operand(tape, "add", b)
    return push(tape, ADD, va + vb, (a, b), (1.0, 1.0))


ADD = defop("add", constant_locals)  # d/da = d/db = 1, constants


def sub(tape: Tape, a: Id, b: Id) -> tuple[Tape, Id]:
    """Return ``(tape, a - b)``; d/da = 1, d/db = -1.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = sub(tape, x, y)
    >>> data(tape, z), backward(tape, z)[y]
    (-1.0, -1.0)
    """
    va, vb = operand(tape, "sub", a), operand(tape, "sub", b)
    return push(tape, SUB, va - vb, (a, b), (1.0, -1.0))


SUB = defop("sub", constant_locals)  # 1 and -1, constants


def mul(tape: Tape, a: Id, b: Id) -> tuple[Tape, Id]:
    """Return ``(tape, a * b)``; d/da = b, d/db = a.

    >>> tape, (x, y) = map_tape(new(), [2.0, 3.0], var)
    >>> tape, z = mul(tape, x, y)
    >>> data(tape, z), node(tape, z).local_grads
    (6.0, (3.0, 2.0))
    """
    va, vb = operand(tape, "mul", a), operand(tape, "mul", b)
    return push(tape, MUL, va * vb, (a, b), (vb, va))


MUL = defop("mul", swapped_halves)  # d/da is node b, d/db is node a


def div(tape: Tape, a: Id, b: Id) -> tuple[Tape, Id]:
    """Return ``(tape, a / b)``, computed as ``a * b**-1`` like microgpt.py; d/da = 1/b.

    >>> tape, (x, y) = map_tape(new(), [1.0, 4.0], var)
    >>> tape, z = div(tape, x, y)
    >>> data(tape, z), node(tape, z).local_grads
    (0.25, (0.25, -0.0625))
    >>> tape, zero = constant(tape, 0.0)
    >>> div(tape, x, zero)
    Traceback (most recent call last):
    ...
    ValueError: div: division by zero (divisor node 3 is 0.0)
    """
    va, vb = operand(tape, "div", a), operand(tape, "div", b)
    if vb == 0.0:
        raise ValueError(f"div: division by zero (divisor node {b} is {vb!r})")
    try:
        inv = vb**-1
    except OverflowError:
        raise NonFiniteError(f"div: 1 / {vb!r} overflows") from None
    return push(tape, DIV, va * inv, (a, b), (inv, -va * inv * inv))


def _div_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id, Id]]:
    """d(a/b)/da = b**-1 and d(a/b)/db = -a * b**-1 * b**-1, as ``div`` computes them."""
    a, b = map(Id, n.inputs)
    tape, inv = pow(tape, b, -1.0)
    tape, minus_a = neg(tape, a)
    tape, minus_a_inv = mul(tape, minus_a, inv)
    tape, d_b = mul(tape, minus_a_inv, inv)
    return tape, (inv, d_b)


DIV = defop("div", _div_rule)


def neg(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, -a)``; d/da = -1.

    >>> tape, x = var(new(), 2.0)
    >>> tape, y = neg(tape, x)
    >>> data(tape, y)
    -2.0
    """
    return push(tape, NEG, -operand(tape, "neg", a), (a,), (-1.0,))


NEG = defop("neg", constant_locals)  # -1, a constant


def scale(tape: Tape, a: Id, s: float) -> tuple[Tape, Id]:
    """Return ``(tape, a * s)`` for a plain number ``s`` (no node for ``s``); d/da = s.

    >>> tape, x = var(new(), 3.0)
    >>> tape, y = scale(tape, x, 0.5)
    >>> data(tape, y), node(tape, y).local_grads
    (1.5, (0.5,))
    """
    s = finite_number("scale", s)
    return push(tape, SCALE, operand(tape, "scale", a) * s, (a,), (s,))


SCALE = defop("scale", constant_locals)  # s, a constant


def add_constant(tape: Tape, a: Id, c: float) -> tuple[Tape, Id]:
    """Return ``(tape, a + c)`` for a plain number ``c`` (no node for ``c``); d/da = 1.

    >>> tape, y = var(new(), 0.25)
    >>> tape, margin = add_constant(tape, y, 1.0)     # 1 + y
    >>> data(tape, margin), node(tape, margin).local_grads
    (1.25, (1.0,))
    """
    c = finite_number("add_constant", c)
    return push(tape, ADD_CONSTANT, operand(tape, "add_constant", a) + c, (a,), (1.0,))


ADD_CONSTANT = defop("add_constant", constant_locals)  # 1, a constant


def pow(tape: Tape, a: Id, p: float) -> tuple[Tape, Id]:
    """Return ``(tape, a ** p)`` for a plain exponent ``p``; d/da = p * a**(p-1).

    >>> tape, x = var(new(), 4.0)
    >>> tape, y = pow(tape, x, -0.5)
    >>> data(tape, y), node(tape, y).local_grads
    (0.5, (-0.0625,))
    >>> tape, m = var(tape, -8.0)
    >>> pow(tape, m, 1 / 3)
    Traceback (most recent call last):
    ...
    ValueError: pow: negative base -8.0 to the fractional power 0.3333333333333333
    """
    p = finite_number("pow", p)
    x = operand(tape, "pow", a)
    if x < 0.0 and not p.is_integer():
        raise ValueError(f"pow: negative base {x!r} to the fractional power {p!r}")
    if x == 0.0 and p < 1.0 and p != 0.0:
        raise ValueError(f"pow: zero base to the power {p!r} has no finite gradient")
    try:
        value, local = x**p, (p * x ** (p - 1) if p else 0.0)  # x ** 0 is flat, even at 0
    except OverflowError:
        raise NonFiniteError(f"pow: {x!r} ** {p!r} overflows") from None
    return push(tape, POW, value, (a,), (local,), (p,))


def _pow_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Local]]:
    """d(a**p)/da = p * a**(p-1): a pow and a scale (0.0, a constant, where p is 0)."""
    (p,) = n.params
    if not p:
        return tape, (0.0,)
    tape, a_p1 = pow(tape, Id(n.inputs[0]), p - 1)
    return _one(scale(tape, a_p1, p))


POW = defop("pow", _pow_rule)


def log(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, ln a)``; d/da = 1/a. Needs ``a > 0``.

    >>> tape, x = var(new(), 2.0)
    >>> tape, y = log(tape, x)
    >>> round(data(tape, y), 6), node(tape, y).local_grads
    (0.693147, (0.5,))
    >>> log(*var(tape, 0.0))
    Traceback (most recent call last):
    ...
    ValueError: log: needs a positive number, got 0.0
    """
    x = operand(tape, "log", a)
    if x <= 0.0:
        raise ValueError(f"log: needs a positive number, got {x!r}")
    return push(tape, LOG, math.log(x), (a,), (1 / x,))


def _log_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id]]:
    """d(ln a)/da = 1/a."""
    return _one(reciprocal(tape, Id(n.inputs[0])))


LOG = defop("log", _log_rule)


def exp(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, e ** a)``; d/da = e ** a.

    >>> tape, x = var(new(), 0.0)
    >>> tape, y = exp(tape, x)
    >>> data(tape, y), node(tape, y).local_grads
    (1.0, (1.0,))
    >>> exp(*var(tape, 1000.0))
    Traceback (most recent call last):
    ...
    functional_gpt.tape_storage.NonFiniteError: exp: e ** 1000.0 overflows
    """
    x = operand(tape, "exp", a)
    try:
        e = math.exp(x)
    except OverflowError:
        raise NonFiniteError(f"exp: e ** {x!r} overflows") from None
    return push(tape, EXP, e, (a,), (e,))


def _exp_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[int]]:
    """d(e**a)/da = e**a: the node itself."""
    return tape, (i,)


EXP = defop("exp", _exp_rule)


def relu(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, max(0, a))``; d/da = 1 where a > 0, else 0 (at the kink a = 0 too).

    >>> tape, (x, y) = map_tape(new(), [-1.0, 2.0], var)
    >>> tape, (rx, ry) = map_tape(tape, [x, y], relu)
    >>> values(tape, [rx, ry]), node(tape, rx).local_grads
    ((0.0, 2.0), (0.0,))
    """
    x = operand(tape, "relu", a)
    return push(tape, RELU, x if x > 0.0 else 0.0, (a,), (1.0 if x > 0.0 else 0.0,))


RELU = defop("relu", constant_locals)  # 0 or 1, constants: no curvature, as is usual


def tanh(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, tanh a)``; d/da = 1 - tanh(a)**2. Finite for every finite ``a``.

    >>> tape, x = var(new(), 0.0)
    >>> tape, y = tanh(tape, x)
    >>> data(tape, y), node(tape, y).local_grads
    (0.0, (1.0,))
    >>> data(*tanh(*var(new(), 1000.0)))
    1.0
    """
    t = math.tanh(operand(tape, "tanh", a))
    return push(tape, TANH, t, (a,), (1.0 - t * t,))


def _tanh_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id]]:
    """d(tanh a)/da = 1 - t*t, with t the node itself."""
    tape, t_t = mul(tape, Id(i), Id(i))
    tape, minus_t_t = neg(tape, t_t)
    return _one(add_constant(tape, minus_t_t, 1.0))


TANH = defop("tanh", _tanh_rule)


def sigmoid(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, 1 / (1 + e ** -a))``; d/da = s * (1 - s). Finite for every finite ``a``.

    For ``a < 0`` it is computed as ``e**a / (1 + e**a)``, which cannot overflow.

    >>> tape, x = var(new(), 0.0)
    >>> tape, y = sigmoid(tape, x)
    >>> data(tape, y), node(tape, y).local_grads
    (0.5, (0.25,))
    >>> data(*sigmoid(*var(new(), -1000.0)))
    0.0
    """
    x = operand(tape, "sigmoid", a)
    if x >= 0.0:
        s = 1.0 / (1.0 + math.exp(-x))
    else:
        e = math.exp(x)
        s = e / (1.0 + e)
    return push(tape, SIGMOID, s, (a,), (s * (1.0 - s),))


def _sigmoid_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id]]:
    """d(sigmoid a)/da = s * (1 - s), with s the node itself."""
    tape, minus_s = neg(tape, Id(i))
    tape, one_minus_s = add_constant(tape, minus_s, 1.0)
    return _one(mul(tape, Id(i), one_minus_s))


SIGMOID = defop("sigmoid", _sigmoid_rule)


def sqrt(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, sqrt a)``; d/da = 1 / (2 sqrt a). Needs ``a > 0``: infinite slope at 0.

    >>> tape, x = var(new(), 4.0)
    >>> tape, y = sqrt(tape, x)
    >>> data(tape, y), node(tape, y).local_grads
    (2.0, (0.25,))
    >>> sqrt(*var(new(), 0.0))
    Traceback (most recent call last):
    ...
    ValueError: sqrt: needs a positive number, got 0.0 (at 0 its gradient is infinite)
    """
    x = operand(tape, "sqrt", a)
    if x <= 0.0:
        raise ValueError(f"sqrt: needs a positive number, got {x!r} "
                         "(at 0 its gradient is infinite)")
    r = math.sqrt(x)
    return push(tape, SQRT, r, (a,), (0.5 / r,))


def _sqrt_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id]]:
    """d(sqrt a)/da = 0.5 / r, with r the node itself: (1 / r) * 0.5 is the same float."""
    tape, inv_r = reciprocal(tape, Id(i))
    return _one(scale(tape, inv_r, 0.5))


SQRT = defop("sqrt", _sqrt_rule)


def abs(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, |a|)``; d/da = 1 where a > 0, -1 where a < 0, and 0 at the kink a = 0.

    >>> tape, (x, y, z) = map_tape(new(), [-2.0, 3.0, 0.0], var)
    >>> tape, ids = map_tape(tape, [x, y, z], abs)
    >>> values(tape, ids), [node(tape, i).local_grads for i in ids]
    ((2.0, 3.0, 0.0), [(-1.0,), (1.0,), (0.0,)])
    """
    x = operand(tape, "abs", a)
    return push(tape, ABS, -x if x < 0.0 else x + 0.0,  # + 0.0: |-0.0| is 0.0
                (a,), (1.0 if x > 0.0 else -1.0 if x < 0.0 else 0.0,))


ABS = defop("abs", constant_locals)  # -1, 0 or 1, constants


def sum(tape: Tape, ids: Sequence[int]) -> tuple[Tape, Id]:
    """Return ``(tape, ids[0] + ids[1] + ...)`` as ONE node with one input per id.

    The sum is a left fold from 0.0 in list order (as Python's ``sum`` over
    microgpt's Values is), so results match the unfused chain of ``add``.

    >>> tape, xs = map_tape(new(), [1.0, 2.0, 3.0], var)
    >>> tape, s = sum(tape, xs)
    >>> data(tape, s), node(tape, s).local_grads
    (6.0, (1.0, 1.0, 1.0))
    """
    ids = node_ids("sum", ids)
    return push(tape, SUM, fold_sum(op_values(tape, "sum", ids)), ids, (1.0,) * len(ids))


SUM = defop("sum", constant_locals)  # 1 for each input, constants


def dot(tape: Tape, xs: Sequence[int], ys: Sequence[int]) -> tuple[Tape, Id]:
    """Return ``(tape, xs . ys)`` as ONE node: the left fold of ``x_i * y_i`` from 0.0.

    Its inputs are ``xs + ys``; the local gradient of ``x_i`` is ``y_i`` and
    the other way round. A 16-wide linear layer is then 16 nodes, not 512.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> tape, ys = map_tape(tape, [3.0, 4.0], var)
    >>> tape, d = dot(tape, xs, ys)
    >>> data(tape, d), node(tape, d).inputs, node(tape, d).local_grads
    (11.0, (0, 1, 2, 3), (3.0, 4.0, 1.0, 2.0))
    >>> dot(tape, xs, ys[:1])
    Traceback (most recent call last):
    ...
    ValueError: dot: lengths differ (2 and 1)
    """
    xs, ys = node_ids("dot", xs), node_ids("dot", ys)
    if len(xs) != len(ys):
        raise ValueError(f"dot: lengths differ ({len(xs)} and {len(ys)})")
    vx, vy = op_values(tape, "dot", xs), op_values(tape, "dot", ys)
    return push(tape, DOT, fold_dot(vx, vy), xs + ys, (*vy, *vx))


DOT = defop("dot", swapped_halves)


def weighted_sum(tape: Tape, xs: Sequence[int], weights: Sequence[float]) -> tuple[Tape, Id]:
    """Return ``(tape, sum of x_i * w_i)`` for plain numbers ``w_i`` as ONE node: a dot of nodes
    with constants (no nodes for the weights); d/dx_i = w_i.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> tape, s = weighted_sum(tape, xs, [0.5, -1.0])
    >>> data(tape, s), node(tape, s).local_grads
    (-1.5, (0.5, -1.0))
    """
    xs, ws = node_ids("weighted_sum", xs), finite_numbers("weighted_sum", weights)
    if len(xs) != len(ws):
        raise ValueError(f"weighted_sum: lengths differ ({len(xs)} ids and {len(ws)} weights)")
    return push(tape, WEIGHTED_SUM, fold_dot(op_values(tape, "weighted_sum", xs), ws), xs, ws)


WEIGHTED_SUM = defop("weighted_sum", constant_locals)  # the weights, constants


def reciprocal(tape: Tape, a: Id) -> tuple[Tape, Id]:
    """Return ``(tape, 1 / a)``; d/da = -(r * r), with r = 1 / a. Needs ``a != 0``.

    >>> tape, x = var(new(), 4.0)
    >>> tape, r = reciprocal(tape, x)
    >>> data(tape, r), node(tape, r).local_grads
    (0.25, (-0.0625,))
    """
    x = operand(tape, "reciprocal", a)
    if x == 0.0:
        raise ValueError("reciprocal: 1 / 0 is not a number")
    r = 1.0 / x
    return push(tape, RECIPROCAL, r, (a,), (-(r * r),))


def _reciprocal_rule(tape: Tape, i: int, n: Node) -> tuple[Tape, tuple[Id]]:
    """d(1/a)/da = -(r * r), with r the node itself."""
    tape, r_r = mul(tape, Id(i), Id(i))
    return _one(neg(tape, r_r))


RECIPROCAL = defop("reciprocal", _reciprocal_rule)


# ----------------------------------------------------- threading through lists


def map_tape(
    tape: S, items: Iterable[A], f: Callable[[S, A], tuple[S, R]]
) -> tuple[S, tuple[R, ...]]:
    """Thread ``tape`` through ``f`` over ``items`` (Haskell's mapAccumL).

    ``f(tape, item) -> (tape, result)``; returns ``(last tape, results)``.

    >>> tape, xs = map_tape(new(), [1.0, 2.0, 3.0], var)
    >>> tape, doubled = map_tape(tape, xs, lambda t, x: scale(t, x, 2.0))
    >>> values(tape, doubled)
    (2.0, 4.0, 6.0)
    """
    results = []  # local transient: appended to here only, frozen into a tuple below
    for item in items:
        tape, r = f(tape, item)
        results.append(r)
    return tape, tuple(results)


def zip_map_tape(
    tape: S, xs: Sequence[A], ys: Sequence[B], f: Callable[[S, A, B], tuple[S, R]]
) -> tuple[S, tuple[R, ...]]:
    """Thread ``tape`` through ``f`` over pairs from ``xs`` and ``ys``, which must be as long.

    >>> tape, xs = map_tape(new(), [1.0, 2.0], var)
    >>> tape, ys = map_tape(tape, [10.0, 20.0], var)
    >>> tape, zs = zip_map_tape(tape, xs, ys, add)
    >>> values(tape, zs)
    (11.0, 22.0)
    >>> zip_map_tape(tape, xs, ys[:1], add)
    Traceback (most recent call last):
    ...
    ValueError: zip_map_tape: lengths differ (2 and 1)
    """
    if len(xs) != len(ys):
        raise ValueError(f"zip_map_tape: lengths differ ({len(xs)} and {len(ys)})")
    results = []  # local transient: appended to here only, frozen into a tuple below
    for x, y in zip(xs, ys):
        tape, r = f(tape, x, y)
        results.append(r)
    return tape, tuple(results)


# ---------------------------------------------------------------- backward


def backward_spec(tape: Tape, root: int) -> PVector[float]:
    """Return d(root)/d(node) for every node: the backward pass, as its specification.

    A fold over the node ids from ``root`` down to 0 into a persistent vector
    of adjoints, starting from 1 at the root and 0 elsewhere. Node ``i`` hands
    its adjoint ``g`` to each input ``j``, in the order of its inputs:
    ``adjoint[j] + local_grad * g``. A node's inputs have smaller ids, so when
    the fold reaches ``i`` every node that reads ``i`` has already handed over:
    no graph search is needed, and no op is named. A gradient that overflows
    ends in ``NonFiniteError`` naming its node (``fast_backward.finite_adjoints``),
    never in ``inf`` or ``nan``.

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, xy = mul(tape, x, y)
    >>> tape, z = add(tape, xy, x)
    >>> list(backward_spec(tape, z))
    [5.0, 3.0, 1.0, 1.0]
    """
    op_value(tape, "backward", root)

    def hand_over(adjoint: PVector[float], i: int) -> PVector[float]:
        g = adjoint[i]
        _, inputs, local_grads, *_ = node(tape, i)
        return reduce(lambda adj, j_local: adj.set(j_local[0], adj[j_local[0]] + j_local[1] * g),
                      zip(inputs, local_grads), adjoint)

    start = pvector([0.0] * len(tape)).set(root, 1.0)
    return finite_adjoints(tape, reduce(hand_over, range(root, -1, -1), start))


class NoRuleError(TypeError):
    """A node's op has no rule, so its local gradients exist only as floats: it can be
    differentiated once (``backward``), not twice (``backward_on_tape``)."""


def local_grads_on_tape(tape: Tape, i: int) -> tuple[Tape, tuple[Local, ...]]:
    """Return ``(tape, locals)``: node ``i``'s local gradients as tape values, by its op's rule.

    Each is the ``Id`` of a node holding that local gradient, or a float
    constant. A node pushed with a name only has no rule: ``NoRuleError``.
    The built-in rules give node ids as plain ints (cheaper); a rule of your
    own must give ``Id``s, so that no number is read as a node.

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, xy = mul(tape, x, y)
    >>> local_grads_on_tape(tape, xy)[1]          # d(xy)/dx is node y, d(xy)/dy is node x
    (1, 0)
    >>> tape, sq = push(tape, "square", 9.0, (x,), (6.0,))
    >>> local_grads_on_tape(tape, sq)
    Traceback (most recent call last):
    ...
    functional_gpt.tape.NoRuleError: square: node 3 was pushed with float local gradients only, ...
    """
    value, inputs, local_grads, stored_op = node_tuple(tape, i)
    if not inputs:
        return tape, ()
    name, params, op = op_parts(stored_op)
    if op is None:
        raise NoRuleError(
            f"{name}: node {i} was pushed with float local gradients only, so it can be "
            "differentiated once; to differentiate it again, push it with T.Op(name, rule), a "
            "rule that puts its local gradients on the tape (see help(T.Op))")
    tape, given = op.rule(tape, i, Node(value, inputs, local_grads, name, params))
    given = tuple(given)
    if len(given) != len(inputs):
        raise ValueError(f"{name}: its rule gave {len(given)} local gradients for "
                         f"{len(inputs)} inputs")
    built_in = _BUILT_IN.get(name) is op
    return tape, tuple([_local(tape, name, x, built_in) for x in given])


def _local(tape: Tape, name: str, x: Any, built_in: bool) -> Local:
    """One local gradient a rule gave: an Id (a built-in rule's plain int too) or a float."""
    if type(x) is Id or (built_in and type(x) is int):
        op_value(tape, name, x)
        return Id(x)
    if type(x) is float:
        return x
    if isinstance(x, int) and not isinstance(x, bool):
        raise TypeError(f"{name}: its rule gave {x!r}, a plain int; give T.Id({x}) for node "
                        f"{x} or {float(x)!r} for the number")
    raise TypeError(f"{name}: its rule gave {x!r}; give a node's Id or a float constant")


def backward_on_tape(tape: Tape, root: int) -> tuple[Tape, PMap[int, Id]]:
    """Return ``(tape, adjoints)``: ``backward_spec`` with the adjoints as nodes of the tape.

    The same fold over the ids from ``root`` down, with ``(tape, a persistent
    map from node id to the id of its adjoint)`` as the accumulator instead of
    a vector of floats. Node ``i`` hands its adjoint ``g`` to each input
    ``j`` in order: ``adjoint[j] + local * g``, pushed as tape ops, with the
    local gradients put on the tape by the op's rule. Nodes the root does not
    depend on are not in the map: their adjoint is 0. Each adjoint is a node
    of the tape, so it can be differentiated again, to any order. On first
    order its value is ``backward_spec``'s, bit for bit, wherever a rule
    computes the float its op pushed the same way (every primitive does).

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, xy = mul(tape, x, y)
    >>> tape2, adjoints = backward_on_tape(tape, xy)     # d(xy)/dx = y, d(xy)/dy = x
    >>> data(tape2, adjoints[x]), data(tape2, adjoints[y])
    (4.0, 3.0)
    >>> tape3, second = backward_on_tape(tape2, adjoints[x])   # d(d(xy)/dx)/dy = 1
    >>> data(tape3, second[y]), x in second
    (1.0, False)
    """
    op_value(tape, "backward_on_tape", root)

    def hand_over(acc: tuple[Tape, PMap[int, Id]], i: int) -> tuple[Tape, PMap[int, Id]]:
        tape, adjoint = acc
        if i not in adjoint:  # i does not reach the root: its adjoint is 0, it hands over 0
            return acc
        g = adjoint[i]
        tape, locals_ = local_grads_on_tape(tape, i)

        def add_to(acc: tuple[Tape, PMap[int, Id]], j_local: tuple[int, Local]):
            tape, adjoint = acc
            j, local = j_local
            tape, product = (mul(tape, local, g) if type(local) is Id
                             else scale(tape, g, local))
            tape, total = (add(tape, adjoint[j], product) if j in adjoint
                           else add_constant(tape, product, 0.0))  # 0.0 + the first product
            return tape, adjoint.set(j, total)

        return reduce(add_to, zip(node(tape, i).inputs, locals_), (tape, adjoint))

    tape, one = constant(tape, 1.0)
    return reduce(hand_over, range(root, -1, -1), (tape, pmap({root: one})))


def backward(tape: Tape, root: int) -> PVector[float]:
    """Return ``backward_spec(tape, root)``, bit for bit, computed by ``fast_backward``.

    Training calls ``backward_as_tuple``, the same numbers as a tuple.

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, xy = mul(tape, x, y)
    >>> tape, z = add(tape, xy, x)
    >>> backward(tape, z) == backward_spec(tape, z)
    True
    """
    return pvector(backward_as_tuple(tape, root))


def grad(grads: Sequence[float], i: int) -> float:
    """Return the gradient of node ``i`` from ``backward``'s result (0.0 if it had no effect).

    >>> tape, (x, y) = map_tape(new(), [3.0, 4.0], var)
    >>> tape, z = mul(tape, x, x)
    >>> grads = backward(tape, z)
    >>> grad(grads, x), grad(grads, y)
    (6.0, 0.0)
    """
    if type(i) not in (int, Id) or not 0 <= i < len(grads):
        raise IndexError(f"grad: node id {i!r} is not among {len(grads)} gradients")
    return grads[i]


# ------------------------------------------------------------- between steps


def reset(tape: Tape, num_params: int) -> Tape:
    """Return a tape of only nodes ``0..num_params-1``, as leaves with their current values.

    >>> tape, (w, b) = map_tape(new(), [0.5, -1.0], var)
    >>> tape, y = add(tape, w, b)
    >>> reset(tape, 2)
    <Tape: 2 nodes (2 leaves), 0 edges>
    >>> values(reset(tape, 2), [0, 1])
    (0.5, -1.0)
    """
    if type(num_params) is not int or not 0 <= num_params <= len(tape):
        raise ValueError(f"reset: num_params {num_params!r} is not in 0..{len(tape)}")
    return leaves(parameter_values(tape, num_params))


def update(tape: Tape, new_values: Sequence[float]) -> Tape:
    """Return a tape of ``len(new_values)`` leaves: node ``i`` holds ``new_values[i]``.

    This is how a training step hands its updated parameters to the next step
    (``train.train_step`` calls it after Adam): the result is the tape
    ``reset(tape, len(new_values))`` gives, with the new values in place of
    the old. Like ``reset``, it keeps no other node: every node after the
    first ``len(new_values)`` is dropped, and each kept node becomes a leaf
    with op ``"var"``. ``tape`` itself is unchanged.

    It takes one value per parameter, the tape's leading leaves, so that no
    leaf is dropped unseen:

    - a tape made by ``leaves``, ``reset`` or ``update`` (``model.init``'s,
      for one) starts with a known number of parameters;
    - on a tape built with ``var`` (or ``constant``) on ``new()``, they are
      the nodes before the first one with inputs. To keep fewer, say so:
      ``update(reset(tape, n), values)``.

    Each value must be a finite number (``NonFiniteError`` otherwise).

    >>> tape, (w, b) = map_tape(new(), [0.5, -1.0], var)
    >>> tape, y = add(tape, w, b)
    >>> nxt = update(tape, [0.25, 2.0])
    >>> nxt, values(nxt, [0, 1]), values(tape, [0, 1])
    (<Tape: 2 nodes (2 leaves), 0 edges>, (0.25, 2.0), (0.5, -1.0))
    >>> update(nxt, [1.0])
    Traceback (most recent call last):
    ...
    ValueError: update: 1 values for a tape of 2 parameters; give one value per parameter
    >>> update(tape, [1.0, 2.0, 3.0])
    Traceback (most recent call last):
    ...
    ValueError: update: node 2 is not a leaf; only the first nodes of a tape, its parameters, ...
    >>> update(tape, [1.0])
    Traceback (most recent call last):
    ...
    ValueError: update: 1 values for a tape whose first 2 nodes are leaves; give one value per ...
    >>> update(reset(tape, 1), [1.0])
    <Tape: 1 nodes (1 leaves), 0 edges>
    """
    n, n_params = len(new_values), parameter_count(tape)
    if n_params and n != n_params:
        raise ValueError(f"update: {n} values for a tape of {n_params} parameters; "
                         "give one value per parameter")
    if n > len(tape):
        raise ValueError(f"update: {n} values for a tape of {len(tape)} nodes")
    if not n_params:
        not_leaf = next((i for i in range(len(tape)) if node(tape, i).inputs), len(tape))
        if not_leaf < n:
            raise ValueError(f"update: node {not_leaf} is not a leaf; only the first nodes of "
                             "a tape, its parameters, can be given new values")
        if n < not_leaf:
            raise ValueError(f"update: {n} values for a tape whose first {not_leaf} nodes are "
                             f"leaves; give one value per leading leaf, or keep only the first "
                             f"{n} with update(reset(tape, {n}), values)")
    return leaves(new_values, "update")


# ------------------------------------------------------------ names that moved

# Deprecated names, for one release: the old name reads the new one, with a DeprecationWarning.
_RENAMED = {"StoredNode": ("Entry", Entry)}
# The REPL tools and transformations that this module used to re-export, and the module each
# lives in now. They stand above the tape (they import it), so re-exporting them here was an
# import circle: the old name says where the tool is now.
_MOVED = {
    **dict.fromkeys(("value_and_grad", "gradient"), "transforms"),
    **dict.fromkeys((
        "GradCheck", "check_grads", "GRAD_EPS", "GRAD_RTOL", "GRAD_ATOL", "GRAD_CHECK_ROWS",
        "KINK_OPS", "table", "html_table", "HTML_ROWS", "HTML_ITEMS",
        "ROUNDING_SAFETY", "rounding_bound", "within_tolerance",  # new, and there from the start
    ), "repl"),
}


def __getattr__(name: str) -> Any:
    """Names that moved (PEP 562): a renamed one with a DeprecationWarning, a REPL tool with an
    AttributeError that says where it is now.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     alias = __getattr__("StoredNode")
    >>> alias is Entry, caught[0].category.__name__, str(caught[0].message)[:44]
    (True, 'DeprecationWarning', 'functional_gpt.tape.StoredNode is now functi')
    >>> __getattr__("table")
    Traceback (most recent call last):
    ...
    AttributeError: functional_gpt.tape.table is now functional_gpt.repl.table: the REPL tools ...
    """
    if name in _RENAMED:
        new_name, value = _RENAMED[name]
        warnings.warn(f"{__name__}.{name} is now {__name__}.{new_name}; the old name goes in the "
                      "next release", DeprecationWarning, stacklevel=2)
        return value
    if name in _MOVED:
        home = _MOVED[name]
        raise AttributeError(f"{__name__}.{name} is now functional_gpt.{home}.{name}: the REPL "
                             "tools and transformations stand above the tape (from "
                             f"functional_gpt import {home})")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
