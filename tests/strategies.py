"""Hypothesis strategies for the tape tests: random programs over every primitive.

A ``Program`` is plain data: input values and a list of ``Instr``, each
naming one primitive and the ids of earlier nodes it reads. Inputs are nodes
``0..n-1`` and instruction ``k`` becomes node ``n + k``, exactly the ids the
tape hands out when the program is replayed on an empty tape, so the same
program can be run on the tape, on the reference autograd, and (perturbed)
for finite differences.

>>> prog = Program((2.0, 3.0), (Instr("mul", (0, 1)), Instr("log", (2,))))
>>> tape = run_on_tape(prog)
>>> len(tape), prog.root, round(T.data(tape, prog.root), 6)
(4, 3, 1.791759)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

from hypothesis import strategies as st

import functional_gpt.tape as T
from functional_gpt import model
from functional_gpt import rng as R

__all__ = [
    "BOUND",
    "MARGIN",
    "PRIMITIVES",
    "Instr",
    "Program",
    "apply_instr",
    "bad_ids",
    "blocks",
    "finite",
    "instructions",
    "program_function",
    "programs",
    "run_on_tape",
    "snapshot",
]

BOUND = 1e3  # every node of a generated program stays within [-BOUND, BOUND] ...
MARGIN = 0.1  # ... and this far inside the domain of log, div, relu and fractional pow
PRIMITIVES = (
    "const", "add", "sub", "mul", "div", "neg", "scale", "pow", "log", "exp", "relu", "sum", "dot",
)  # fmt: skip
INTEGER_POWERS = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
FRACTIONAL_POWERS = (-0.5, 0.5, 1.5, 1 / 3)


class Instr(NamedTuple):
    """One step of a program: a primitive, the node ids it reads, and its float parameter.

    ``param`` is the factor of ``scale``, the constant of ``add_constant``, the
    exponent of ``pow`` and the value of ``const``/``var``; ``weighted_sum``
    weighs ``args[k]`` by ``param + k``; ``dot`` reads ``args[:k]`` against
    ``args[k:]``.

    >>> Instr("scale", (0,), 2.5)
    Instr(op='scale', args=(0,), param=2.5)
    """

    op: str
    args: tuple[int, ...] = ()
    param: float = 0.0


class Program(NamedTuple):
    """A straight-line program: inputs (nodes ``0..n-1``) then one node per instruction.

    >>> Program((1.0,), (Instr("neg", (0,)),)).root
    1
    """

    inputs: tuple[float, ...]
    instrs: tuple[Instr, ...]

    @property
    def root(self) -> int:
        """Return the id of the program's last node, its output."""
        return len(self.inputs) + len(self.instrs) - 1


def finite(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Return a strategy of ordinary floats in ``[lo, hi]``: no nan, inf or subnormals."""
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# ------------------------------------------------------------ running programs


def apply_instr(tape: T.Tape, ins: Instr) -> tuple[T.Tape, int]:
    """Return ``(tape, id)`` after running one instruction on the tape.

    >>> tape, x = T.var(T.new(), 4.0)
    >>> tape, y = apply_instr(tape, Instr("pow", (x,), 0.5))
    >>> T.data(tape, y)
    2.0
    """
    op, plain_args, p = ins
    args = T.as_ids(plain_args)  # the primitives take node ids as T.Id
    if op == "var":
        return T.var(tape, p)
    if op == "const":
        return T.constant(tape, p)
    if op in ("scale", "add_constant", "pow"):
        return getattr(T, op)(tape, args[0], p)
    if op == "sum":
        return T.sum(tape, args)
    if op == "dot":
        half = len(args) // 2
        return T.dot(tape, args[:half], args[half:])
    if op == "weighted_sum":
        return T.weighted_sum(tape, args, [p + k for k in range(len(args))])
    return getattr(T, op)(tape, *args)


def run_on_tape(program: Program, xs: Sequence[float] | None = None) -> T.Tape:
    """Return the tape of ``program`` run on its own inputs, or on ``xs`` instead."""
    tape, _ = T.map_tape(T.new(), program.inputs if xs is None else xs, T.var)
    tape, _ = T.map_tape(tape, program.instrs, apply_instr)
    return tape


def program_function(program: Program) -> Callable[[T.Tape, tuple[int, ...]], tuple[T.Tape, int]]:
    """Return the program as ``f(tape, ids) -> (tape, out)`` for ``value_and_grad``.

    The instructions address inputs as ``0..n-1``, so ``ids`` must be the
    first nodes of the tape (as ``value_and_grad`` arranges).
    """

    def f(tape: T.Tape, ids: tuple[int, ...]) -> tuple[T.Tape, int]:
        assert ids == tuple(range(len(program.inputs))), ids
        tape, outs = T.map_tape(tape, program.instrs, apply_instr)
        return tape, outs[-1]

    return f


def snapshot(tape: T.Tape) -> tuple[tuple[object, ...], ...]:
    """Return a deep copy of the tape's nodes as plain tuples, to compare with it later."""
    return tuple(
        (value, tuple(inputs), tuple(local_grads), op)
        for value, inputs, local_grads, op in tape.nodes
    )


# ------------------------------------------------------- generating programs


def _evaluate(ins: Instr, vals: Sequence[float]) -> float:
    """Plain-math value of ``ins`` (only to keep generated programs in bounds)."""
    op, args, p = ins
    xs = [vals[i] for i in args]
    if op == "dot":
        half = len(xs) // 2
        return math.fsum(x * y for x, y in zip(xs[:half], xs[half:]))
    fns: dict[str, Callable[[], float]] = {
        "const": lambda: p,
        "add": lambda: xs[0] + xs[1],
        "sub": lambda: xs[0] - xs[1],
        "mul": lambda: xs[0] * xs[1],
        "div": lambda: xs[0] / xs[1],
        "neg": lambda: -xs[0],
        "scale": lambda: xs[0] * p,
        "pow": lambda: xs[0] ** p,
        "log": lambda: math.log(xs[0]),
        "exp": lambda: math.exp(xs[0]),
        "relu": lambda: max(xs[0], 0.0),
        "sum": lambda: math.fsum(xs),
    }
    return fns[op]()


def _safe(ins: Instr, vals: Sequence[float]) -> bool:
    """Whether ``ins`` stays MARGIN inside its op's domain and its value within BOUND."""
    op, args, p = ins
    x = vals[args[0]] if args else 0.0
    if op == "div":
        x = vals[args[1]]
    unsafe = {
        "div": abs(x) < MARGIN,
        "log": x < MARGIN,
        "relu": abs(x) < MARGIN,  # keep away from the kink
        "exp": x > math.log(BOUND),
        "pow": x < MARGIN if not float(p).is_integer() else (p < 0 and abs(x) < MARGIN),
    }
    return not unsafe.get(op, False) and abs(_evaluate(ins, vals)) <= BOUND


@st.composite
def _step(draw: st.DrawFn, vals: tuple[float, ...]) -> Instr:
    """Draw one in-bounds instruction over the nodes whose values are ``vals``."""
    node = st.integers(0, len(vals) - 1)
    op = draw(st.sampled_from(PRIMITIVES))

    def pick(make: Callable[[int], Instr]) -> Instr | None:
        fits = [i for i in range(len(vals)) if _safe(make(i), vals)]
        return make(draw(st.sampled_from(fits))) if fits else None

    ins: Instr | None
    if op == "const":
        ins = Instr("const", (), draw(finite(-3.0, 3.0)))
    elif op in ("add", "sub", "mul", "div"):
        a = draw(node)
        ins = pick(lambda b: Instr(op, (a, b)))
    elif op in ("neg", "log", "exp", "relu"):
        ins = pick(lambda a: Instr(op, (a,)))
    elif op in ("scale", "pow"):
        powers = INTEGER_POWERS + FRACTIONAL_POWERS
        p = draw(finite(-2.0, 2.0) if op == "scale" else st.sampled_from(powers))
        ins = pick(lambda a: Instr(op, (a,), p))
    elif op == "sum":
        ins = Instr("sum", tuple(draw(st.lists(node, max_size=4))))
    else:
        k = draw(st.integers(0, 3))
        ins = Instr("dot", tuple(draw(st.lists(node, min_size=2 * k, max_size=2 * k))))
    if ins is None or not _safe(ins, vals):
        ins = Instr("neg", (draw(node),))  # always safe: |-x| = |x| <= BOUND
    return ins


@st.composite
def programs(draw: st.DrawFn, max_inputs: int = 4, max_steps: int = 14) -> Program:
    """Draw a random program over every primitive, ending in the sum of all its unused nodes.

    Every instruction reads earlier nodes only and is guarded (``_safe``) to
    stay well inside its op's domain with values in ``[-BOUND, BOUND]``, so
    the program is smooth near its inputs and finite differences apply. The
    final ``sum`` makes the output depend on every node.
    """
    inputs = tuple(draw(st.lists(finite(-3.0, 3.0), min_size=1, max_size=max_inputs)))
    vals = list(inputs)  # local transient: the values so far, for the guards
    instrs = []  # local transient: frozen into the Program below
    for _ in range(draw(st.integers(0, max_steps))):
        ins = draw(_step(tuple(vals)))
        instrs.append(ins)
        vals.append(_evaluate(ins, vals))
    used = {i for ins in instrs for i in ins.args}
    instrs.append(Instr("sum", tuple(i for i in range(len(vals)) if i not in used)))
    return Program(inputs, tuple(instrs))


def instructions(n_nodes: int) -> st.SearchStrategy[Instr]:
    """Return a strategy of unguarded instructions over nodes ``0..n_nodes-1``.

    Any op (leaves included) with any in-range ids and parameter; the result
    may be a domain error, which is part of what the state machine exercises.
    """
    params = finite(-4.0, 4.0)
    leaves = st.builds(Instr, st.sampled_from(("var", "const")), st.just(()), params)
    if n_nodes == 0:
        return st.one_of(leaves, st.just(Instr("sum", ())), st.just(Instr("dot", ())))
    node = st.integers(0, n_nodes - 1)
    unary = st.builds(
        Instr, st.sampled_from(("neg", "log", "exp", "relu")), st.tuples(node), st.just(0.0)
    )
    binary = st.builds(
        Instr, st.sampled_from(("add", "sub", "mul", "div")), st.tuples(node, node), st.just(0.0)
    )
    with_param = st.builds(Instr, st.sampled_from(("scale", "pow")), st.tuples(node), params)
    sums = st.builds(Instr, st.just("sum"), st.lists(node, max_size=4).map(tuple))
    dots = st.integers(0, 3).flatmap(
        lambda k: st.builds(Instr, st.just("dot"), st.tuples(*[node] * (2 * k)))
    )
    return st.one_of(leaves, unary, binary, with_param, sums, dots)


def bad_ids(n_nodes: int) -> st.SearchStrategy[object]:
    """Return a strategy of things that are not node ids of a tape of ``n_nodes`` nodes.

    Too large, negative, or not an int at all (floats, strings, None).
    """
    return st.one_of(
        st.integers(n_nodes, n_nodes + 1000),
        st.integers(-1000, -1),
        st.floats(allow_nan=False),
        st.text(max_size=3),
        st.none(),
    )


@st.composite
def blocks(draw: st.DrawFn) -> tuple[T.Tape, T.Block, tuple[float, ...]]:
    """Leaves, then a random Block over them with finite gradients, and its member values.

    Half of them read ids at random (repeats, and ids both common and a member's own); the
    other half are shaped like a layer: own ids (rows, or Runs as layout's weights) apart from
    distinct common ids, the case backward may hand over by columns.
    """
    values = finite(-4.0, 4.0)
    n_leaves = draw(st.integers(2, 12))
    tape = T.leaves(draw(st.lists(values, min_size=n_leaves, max_size=n_leaves)))
    layer_like = draw(st.booleans())
    split = draw(st.integers(1, n_leaves - 1)) if layer_like else n_leaves
    own_ids = st.integers(0, split - 1)
    m, n_own = draw(st.integers(0, 5)), draw(st.integers(0, 4))

    def row() -> tuple[int, ...]:
        if n_own <= split and draw(st.booleans()):
            start = draw(st.integers(0, split - n_own))
            return T.Run(start, start + n_own)
        return tuple(draw(st.lists(own_ids, min_size=n_own, max_size=n_own)))

    member_ids = tuple(row() for _ in range(m))
    common_grads = tuple(draw(st.lists(values, min_size=n_own, max_size=n_own)))
    if layer_like:
        common = st.lists(st.integers(split, n_leaves - 1), unique=True, max_size=4)
    else:
        common = st.lists(st.integers(0, n_leaves - 1), max_size=4)
    common_ids = tuple(draw(common))
    n_common = len(common_ids)
    member_grads = tuple(tuple(draw(st.lists(values, min_size=n_common, max_size=n_common)))
                         for _ in range(m))
    member_values = tuple(draw(st.lists(values, min_size=m, max_size=m)))
    return tape, T.Block(member_ids, common_grads, common_ids, member_grads), member_values


# ------------------------------------------------------------------ GPT models


@st.composite
def gpt_models(
    draw: st.DrawFn, max_head: int, max_vocab: int, max_layer: int, max_head_size: int,
    max_block: int, scales: Sequence[float],
) -> tuple[model.Config, T.Tape, tuple[int, ...]]:
    """A random config within the bounds, its initial parameters times one of ``scales``
    (larger weights: sharper softmaxes, riskier floats) and a token sequence for it."""
    n_head = draw(st.integers(1, max_head))
    config = model.Config(
        vocab_size=draw(st.integers(2, max_vocab)),
        n_layer=draw(st.integers(1, max_layer)),
        n_embd=n_head * draw(st.integers(1, max_head_size)),
        n_head=n_head,
        block_size=draw(st.integers(1, max_block)),
    )
    _, tape = model.init(R.seed(draw(st.integers(0, 2**32 - 1))), config)
    scale = draw(st.sampled_from(scales))
    tape = T.update(tape, [x * scale for x in T.values(tape, range(len(tape)))])
    tokens = draw(st.lists(st.integers(0, config.vocab_size - 1), min_size=2,
                           max_size=config.block_size + 2))
    return config, tape, tuple(tokens)
