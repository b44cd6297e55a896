"""The transformations of tape functions, with JAX's conventions: gradients, and gradients of them.

``value_and_grad`` and ``gradient`` turn a tape function into a plain function of floats whose
gradient is floats (``backward``): a dead end. ``tape_gradient(f)`` instead returns a tape
function whose outputs are the gradient's nodes on the tape (``backward_on_tape``), so it can be
differentiated again, and its result again, to any order. ``hessian`` and ``hvp`` are built from
it and return plain floats: ``hvp`` is one reverse pass over the gradient's nodes, without
forming the Hessian. ``repl`` re-exports all five for the REPL.

A tape function is ``f(tape, ids) -> (tape, out_id)``; the inputs of the transformed functions
are a flat list of numbers or any tree of numbers (``trees``), and with ``has_aux=True`` ``f``
returns ``(tape, (out_id, aux))``.

>>> import functional_gpt.tape as T
>>> def f(tape, ids):                      # f(x, y) = x*x*y + y
...     x, y = ids
...     tape, xx = T.mul(tape, x, x)
...     tape, xxy = T.mul(tape, xx, y)
...     return T.add(tape, xxy, y)
>>> hessian(f)([3.0, 2.0])                 # [[2y, 2x], [2x, 0]]
((4.0, 6.0), (6.0, 0.0))
>>> hvp(f)([3.0, 2.0], [1.0, 0.0])        # its first column
(4.0, 6.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from toolz import compose, second

from . import tape as T
from . import trees
from .fused_adjoints import adjoints_on_tape
from .tape import Tape

__all__ = ["value_and_grad", "gradient", "tape_gradient", "hessian", "hvp", "inputs_on_tape"]

TapeFunction = Callable[[Tape, Any], tuple[Tape, Any]]


def _is_flat(params: Any) -> bool:
    """Whether ``params`` is a plain list or tuple of numbers (and not a tree of them): the
    inputs the transformations take as a flat list.

    >>> _is_flat([1.0, 2]), _is_flat((True,)), _is_flat({"w": 1.0}), _is_flat([(1.0,)])
    (True, False, False, False)
    """
    return type(params) in (list, tuple) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in params)


def _output_and_aux(name: str, result: Any, has_aux: bool) -> tuple[Any, Any]:
    """Split what a tape function returned besides its tape into (its output, its aux): with
    ``has_aux`` a pair, without it one output; ``name`` says who is asking, in the errors.

    >>> _output_and_aux("hvp", (7, "aux"), True), _output_and_aux("hvp", 7, False)
    ((7, 'aux'), (7, None))
    >>> _output_and_aux("hvp", (7, 8), False)
    Traceback (most recent call last):
    ...
    TypeError: hvp: f returned (tape, (7, 8)), not (tape, out_id): it must return one node, a ...
    """
    if has_aux:
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"{name}: with has_aux=True, f must return (tape, (out_id, aux)), "
                            f"not (tape, {result!r})")
        return result
    if isinstance(result, (tuple, list)):
        raise TypeError(f"{name}: f returned (tape, {result!r}), not (tape, out_id): it must "
                        "return one node, a scalar; to return auxiliary values too, pass "
                        "has_aux=True")
    return result, None


def _scalar_output(name: str, tape: Tape, out: Any) -> T.Id:
    """``out`` as the Id of a node of ``tape``: one node, a scalar, of this very tape."""
    if isinstance(out, bool) or not isinstance(out, int):
        raise TypeError(f"{name}: f must return one node id (a scalar output), got {out!r}")
    if not 0 <= out < len(tape):
        raise IndexError(f"{name}: f returned node id {out!r}, which is not on its tape of "
                         f"{len(tape)} nodes (an id of another tape?)")
    return T.Id(out)


def value_and_grad(
    f: Callable[[Tape, Any], tuple[Tape, Any]], has_aux: bool = False,
) -> Callable[[Any], tuple[Any, Any]]:
    """Return a function of plain floats giving ``(f's value, its gradient)``, as JAX's does.

    ``f(tape, ids) -> (tape, out_id)`` is any tape function. Its inputs are
    either a flat list of numbers (``ids`` is then a tuple of ids, and the
    gradient a tuple of floats) or any tree of numbers (nested tuples, lists,
    dicts, NamedTuples: see ``trees``), pushed by ``trees.to_tape``; ``ids``
    and the gradient then have the tree's shape. With ``has_aux=True``, ``f``
    returns ``(tape, (out_id, aux))`` and the result is
    ``((value, aux), gradient)``: put plain values in ``aux`` (``T.values``),
    since the tape is gone once ``f`` returns.

    >>> def f(tape, ids):                       # f(x, y) = x * y + x
    ...     x, y = ids
    ...     tape, xy = T.mul(tape, x, y)
    ...     return T.add(tape, xy, x)
    >>> value_and_grad(f)([3.0, 4.0])
    (15.0, (5.0, 3.0))
    >>> def neuron(tape, p):                    # tanh(w . x + b), and its pre-activation
    ...     tape, xs = T.map_tape(tape, [1.0, -2.0], T.constant)
    ...     tape, z = T.dot(tape, p["w"], xs)
    ...     tape, z = T.add(tape, z, p["b"])
    ...     tape, y = T.tanh(tape, z)
    ...     return tape, (y, T.data(tape, z))
    >>> (value, z), grads = value_and_grad(neuron, has_aux=True)({"w": (0.5, 0.25), "b": 0.0})
    >>> z, grads["b"] == 1 - value ** 2, grads["w"] == (grads["b"], -2 * grads["b"])
    (0.0, True, True)
    """

    def value_and_gradient(params: Any) -> tuple[Any, Any]:
        if _is_flat(params):
            tape, ids = T.map_tape(T.new(), params, T.var)
        else:
            tape, ids = trees.to_tape(T.new(), params)
        tape, result = f(tape, ids)
        out, aux = _output_and_aux("value_and_grad", result, has_aux)
        grads = T.backward(tape, out)
        if _is_flat(params):
            gradient = tuple(T.grad(grads, i) for i in ids)
        else:
            gradient = trees.grads_of(grads, ids)
        value = T.data(tape, out)
        return ((value, aux), gradient) if has_aux else (value, gradient)

    return value_and_gradient


def gradient(
    f: Callable[[Tape, Any], tuple[Tape, Any]], has_aux: bool = False,
) -> Callable[[Any], Any]:
    """Return a function of plain floats giving ``f``'s gradient (and, with ``has_aux``, its aux).

    ``value_and_grad`` without the value (JAX's ``grad``): one float per
    input, in the inputs' shape; ``(gradient, aux)`` with ``has_aux=True``.
    ``T.grad(grads, i)`` is something else: it reads one entry of
    ``backward``'s result.

    >>> def f(tape, ids):                       # f(x, y) = x * y + x
    ...     x, y = ids
    ...     tape, xy = T.mul(tape, x, y)
    ...     return T.add(tape, xy, x)
    >>> gradient(f)([3.0, 4.0])
    (5.0, 3.0)
    """
    if has_aux:
        vg = value_and_grad(f, has_aux=True)

        def gradient_and_aux(params: Any) -> tuple[Any, Any]:
            (_, aux), g = vg(params)
            return g, aux

        return gradient_and_aux
    return compose(second, value_and_grad(f))


def tape_gradient(f: TapeFunction, has_aux: bool = False) -> TapeFunction:
    """Return the tape function ``g(tape, ids) -> (tape, grad_ids)``: f's gradient, on the tape.

    ``grad_ids`` has the shape of ``ids`` and holds, for each input, the node
    of d(out)/d(input) (a constant 0.0 where out does not depend on it). As
    they are nodes, ``g`` is a tape function like ``f``: ``tape_gradient`` of
    a function built from ``g`` gives third and fourth derivatives. With
    ``has_aux=True``, ``f`` returns ``(tape, (out_id, aux))`` and ``g``
    returns ``(tape, (grad_ids, aux))``.

    >>> import functional_gpt.tape as T
    >>> def cube(tape, ids):
    ...     (x,) = ids
    ...     return T.pow(tape, x, 3.0)
    >>> def d_cube(tape, ids):                # 3x**2, as a scalar function again
    ...     tape, (g,) = tape_gradient(cube)(tape, ids)
    ...     return tape, g
    >>> tape, (x,) = inputs_on_tape([2.0])
    >>> tape, (g2,) = tape_gradient(d_cube)(tape, (x,))       # 6x
    >>> T.data(tape, g2)
    12.0
    """

    def gradient_on_tape(tape: Tape, ids: Any) -> tuple[Tape, Any]:
        tape, grads, rebuild, aux = _gradient_nodes(f, has_aux, tape, ids)
        grad_ids = rebuild(T.as_ids(grads))
        return (tape, (grad_ids, aux)) if has_aux else (tape, grad_ids)

    return gradient_on_tape


def _gradient_nodes(
    f: TapeFunction, has_aux: bool, tape: Tape, ids: Any,
) -> tuple[Tape, tuple[int, ...], Callable[[Sequence[Any]], Any], Any]:
    """``tape_gradient``'s work: the tape, the gradient's node ids (plain ints) in the order of
    the leaves of ``ids``, how to put them in ``ids``'s shape, and f's aux."""
    leaves, rebuild = _leaves_of(ids)
    T.values(tape, leaves)  # every input must be a node of this tape
    tape, result = f(tape, ids)
    out, aux = _output_and_aux("tape_gradient", result, has_aux)
    out = _scalar_output("tape_gradient", tape, out)
    tape, adjoints = adjoints_on_tape(tape, out)
    found = list(map(adjoints.get, leaves))  # local
    if None in found:  # the inputs out does not depend on share one constant 0.0
        tape, zero = T.constant(tape, 0.0)
        found = [zero if a is None else a for a in found]
    return tape, tuple(found), rebuild, aux  # type: ignore[arg-type]  # no None is left


def _leaves_of(ids: Any) -> tuple[Sequence[int], Callable[[Sequence[Any]], Any]]:
    """The leaves of a tree of ids, and how to put a tree of that shape back together; a flat
    tuple of ids (a ``Run`` too) is its own leaves and comes back as a tuple."""
    if type(ids) in (tuple, T.Run) and set(map(type, ids)) == {T.Id}:
        return ids, tuple
    leaves, treedef = trees.flatten(ids)
    return leaves, lambda xs: trees.unflatten(treedef, xs)


def inputs_on_tape(params: Any, tape: Tape | None = None) -> tuple[Tape, Any]:
    """Return ``(tape, ids)``: the numbers ``params`` pushed as leaves, ids in their shape.

    A flat list or tuple of numbers gives a tuple of ``Id``s; any other tree
    of numbers is pushed by ``trees.to_tape``. On a new tape the leaves are
    its parameters (``T.leaves``), read by slices as ``model.layout`` expects.

    >>> tape, ids = inputs_on_tape([0.5, 2.0])
    >>> ids, T.values(tape, ids)
    ((0, 1), (0.5, 2.0))
    >>> inputs_on_tape({"w": (1.0, 2.0)})[1]
    {'w': (0, 1)}
    """
    if _is_flat(params):
        if tape is None or not len(tape):
            return T.leaves(params), T.Run.of(T.as_ids(range(len(params))))
        return T.map_tape(tape, params, T.var)
    return trees.to_tape(T.new() if tape is None else tape, params)


def hessian(f: TapeFunction, has_aux: bool = False) -> Callable[[Any], Any]:
    """Return a function of plain floats giving f's n x n Hessian as a tuple of rows.

    Rows and columns follow the inputs' leaves in ``trees.flatten`` order (a
    flat list: its order). Row ``i`` is one reverse pass over the node of
    d(out)/d(x_i). With ``has_aux=True`` the result is ``(hessian, aux)``.

    >>> import functional_gpt.tape as T
    >>> def f(tape, ids):                      # f(x, y) = x * y + exp(x)
    ...     x, y = ids
    ...     tape, xy = T.mul(tape, x, y)
    ...     tape, ex = T.exp(tape, x)
    ...     return T.add(tape, xy, ex)
    >>> hessian(f)([0.0, 5.0])                 # [[exp(x), 1], [1, 0]]
    ((1.0, 1.0), (1.0, 0.0))
    """

    def hessian_of(params: Any) -> Any:
        tape, ids = inputs_on_tape(params)
        leaves = _leaves_of(ids)[0]
        tape, grads, _, aux = _gradient_nodes(f, has_aux, tape, ids)
        rows = []  # local transient, frozen into a tuple below
        for g in grads:
            adjoint = T.backward_as_tuple(tape, g)
            rows.append(tuple([adjoint[j] for j in leaves]))
        return (tuple(rows), aux) if has_aux else tuple(rows)

    return hessian_of


def hvp(f: TapeFunction, has_aux: bool = False) -> Callable[[Any, Any], Any]:
    """Return a function of plain floats giving the Hessian of ``f`` at ``xs`` times ``vs``.

    ``vs`` has the shape of ``xs``, and so has the result. It is the gradient
    of ``g . vs`` with ``g`` f's gradient on the tape: one forward pass, one
    backward pass on the tape and one ordinary backward pass, never the n x n
    Hessian. With ``has_aux=True`` the result is ``(product, aux)``.

    >>> import functional_gpt.tape as T
    >>> def f(tape, ids):                      # f(x, y) = x**2 * y
    ...     x, y = ids
    ...     tape, xx = T.mul(tape, x, x)
    ...     return T.mul(tape, xx, y)
    >>> hvp(f)([1.0, 2.0], [1.0, 1.0])         # [[2y, 2x], [2x, 0]] @ [1, 1]
    (6.0, 2.0)
    >>> hvp(f)([1.0, 2.0], [1.0])
    Traceback (most recent call last):
    ...
    ValueError: hvp: vs has 1 numbers for 2 inputs; give one per input, in the inputs' shape
    """

    def hvp_of(params: Any, vs: Any) -> Any:
        tape, ids = inputs_on_tape(params)
        leaves, rebuild = _leaves_of(ids)
        v_leaves = _matching_leaves("hvp", vs, ids, len(leaves))
        tape, grads, _, aux = _gradient_nodes(f, has_aux, tape, ids)
        tape, g_dot_v = T.weighted_sum(tape, T.as_ids(grads), v_leaves)
        adjoint = T.backward_as_tuple(tape, g_dot_v)
        product = rebuild(tuple([adjoint[j] for j in leaves]))
        return (product, aux) if has_aux else product

    return hvp_of


def _matching_leaves(name: str, vs: Any, ids: Any, n: int) -> Sequence[float]:
    """The numbers of ``vs``, which must be shaped as the inputs ``ids`` (n leaves)."""
    if type(vs) in (list, tuple) and type(ids) in (tuple, T.Run):
        v_leaves = tuple(vs)
    else:
        v_leaves, v_def = trees.flatten(vs)
        if len(v_leaves) == n and v_def != trees.flatten(ids)[1]:
            raise ValueError(f"{name}: vs is shaped {v_def}, the inputs "
                             f"{trees.flatten(ids)[1]}")
    if len(v_leaves) != n:
        raise ValueError(f"{name}: vs has {len(v_leaves)} numbers for {n} inputs; give one per "
                         "input, in the inputs' shape")
    return v_leaves
