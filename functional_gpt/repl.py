"""Tools for looking at tapes and checking tape functions, in a REPL or a notebook.

None of this is needed to train; all of it is for people composing their own tape functions:
``check_grads`` compares a tape function's gradients with central differences, and ``table`` /
``html_table`` show a tape as the Wengert list it is (a ``Tape`` shows itself as
``html_table`` in Jupyter). ``graph`` draws tapes and ``testing`` property-tests tape functions.
The transformations (``value_and_grad``, ``gradient``, ``tape_gradient``, ``hessian``, ``hvp``)
live in ``transforms``, directly above the tape, and are re-exported here for the REPL.
These tools stand above the tape: they import ``functional_gpt.tape``, and the tape imports
nothing of theirs (``tests/test_imports.py`` checks the package has no import circle).

>>> import functional_gpt.tape as T
>>> from functional_gpt import repl
>>> def f(tape, ids):                       # f(x, y) = x * y + x
...     x, y = ids
...     tape, xy = T.mul(tape, x, y)
...     return T.add(tape, xy, x)
>>> repl.value_and_grad(f)([3.0, 4.0])
(15.0, (5.0, 3.0))
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from . import tape as T
from .tape_html import HTML_ITEMS, HTML_ROWS, wengert_html
from .tape_storage import Tape, finite_number
from .transforms import gradient, hessian, hvp, tape_gradient, value_and_grad

__all__ = [
    "value_and_grad",  # the transformations, from transforms (see there)
    "gradient",
    "tape_gradient",
    "hessian",
    "hvp",
    "GradCheck",
    "check_grads",
    "GRAD_EPS",
    "GRAD_RTOL",
    "GRAD_ATOL",
    "ROUNDING_SAFETY",
    "rounding_bound",
    "within_tolerance",
    "GRAD_CHECK_ROWS",
    "KINK_OPS",
    "table",
    "html_table",
    "HTML_ROWS",
    "HTML_ITEMS",
]


GRAD_EPS = 1e-6  # central-difference step, relative to max(1, |x|)
GRAD_RTOL = 1e-5  # allowed error relative to the gradient's size (truncation, backward's rounding)
GRAD_ATOL = 0.0  # an absolute error allowed on top of the rounding bound (none by default)
ROUNDING_SAFETY = 4.0  # how many times the bound on a central difference's rounding is allowed


GRAD_CHECK_ROWS = 10  # inputs a GradCheck's repr lists before it counts the rest


KINK_OPS = ("relu", "abs")  # ops whose slope jumps where their input is 0


class GradCheck(NamedTuple):
    """What ``check_grads`` found: tape gradients against central differences, input by input.

    ``ok`` is True when every input checked is within the tolerance that
    ``check_grads`` documents; ``bad`` says which inputs are not, and
    ``at_kink`` which were not checked because their central difference
    crosses a kink. The repr says so in words, then shows a small table that
    marks those inputs; past ``GRAD_CHECK_ROWS`` inputs it lists the marked
    ones first and counts the rest. ``tolerance`` holds, per input, the
    largest error that was allowed. ``max_rel_error`` is taken over the inputs
    whose gradient is larger than their rounding allowance (a relative error
    of a gradient that is 0 to within rounding says nothing).

    >>> GradCheck((6.0, 1.0), (4.0, 1.0), 2.0, 1 / 3, False, (True, False))
    GradCheck(ok=False): 1 of 2 inputs differ from central differences; max error 2, rel 0.333
      input  analytic  numeric  abs error
          0         6        4          2  <- differs
          1         1        1          0
    >>> ones = (1.0,) * 11
    >>> many = GradCheck(ones + (1.0,), ones + (2.0,), 1.0, 0.5, False, (False,) * 11 + (True,))
    >>> print("\\n".join(repr(many).splitlines()[-2:]))
         11         1        2          1  <- differs
      ... and 2 more inputs, all within tolerance
    """

    analytic: tuple[float, ...]
    numeric: tuple[float, ...]
    max_abs_error: float
    max_rel_error: float
    ok: bool
    bad: tuple[bool, ...] = ()
    at_kink: tuple[bool, ...] = ()
    tolerance: tuple[float, ...] = ()  # per input: the largest error check_grads allowed

    def __repr__(self) -> str:
        n = len(self.analytic)
        bad = self.bad + (False,) * (n - len(self.bad))
        kink = self.at_kink + (False,) * (n - len(self.at_kink))
        n_bad, n_kink = builtins.sum(bad), builtins.sum(kink)
        skipped = f", {n_kink} not checked: at a kink" if n_kink else ""
        verdict = (f"{n_bad} of {n} inputs differ from central differences" if n_bad
                   else f"{n - n_kink} of {n} inputs agree with central differences")
        head = (f"GradCheck(ok={self.ok}): {verdict}{skipped}; max error "
                f"{self.max_abs_error:.3g}, rel {self.max_rel_error:.3g}")
        marked = [i for i in range(n) if bad[i] or kink[i]]
        listed = min(len(marked), GRAD_CHECK_ROWS)  # the marked inputs come first ...
        rest = [i for i in range(n) if not (bad[i] or kink[i])][: GRAD_CHECK_ROWS - listed]
        shown = sorted(marked[:listed] + rest)  # ... then these
        rows = [("input", "analytic", "numeric", "abs error")] + [
            (str(i), f"{self.analytic[i]:.8g}", f"{self.numeric[i]:.8g}",
             f"{abs(self.analytic[i] - self.numeric[i]):.3g}")
            for i in shown
        ]
        widths = [max(len(r[k]) for r in rows) for k in range(4)]
        marks = ("",) + tuple("  <- differs" if bad[i] else "  <- at a kink, not checked"
                              if kink[i] else "" for i in shown)
        lines = [
            "  " + "  ".join(cell.rjust(w) for cell, w in zip(r, widths)) + mark
            for r, mark in zip(rows, marks)
        ]
        if n > len(shown):
            hidden = set(range(n)) - set(shown)
            hid_bad = builtins.sum(bad[i] for i in hidden)
            hid_kink = builtins.sum(kink[i] for i in hidden)
            said = ([f"{hid_bad} of them differ"] * bool(hid_bad)
                    + [f"{hid_kink} at a kink"] * bool(hid_kink))
            lines.append(f"  ... and {len(hidden)} more inputs, "
                         + (", ".join(said) if said else "all within tolerance"))
        return "\n".join([head, *lines])


def _kink_signs(tape: Tape, kinks: Sequence[str]) -> tuple[float, ...]:
    """The sign of the input of every kinked node of ``tape``, in node order (0 at the kink)."""
    signs = []  # local transient, frozen into a tuple below
    for i in range(len(tape)):
        value, inputs, _, op, _ = T.node(tape, i)
        if op in kinks and inputs:
            x = T.data(tape, inputs[0])
            signs.append((x > 0.0) - (x < 0.0))
    return tuple(signs)


_U = 2.0**-53  # the unit roundoff of a float: a rounded result is within _U of it, relatively
_TINY = 2.0**-1074  # the absolute error of a result rounded among the subnormals


def rounding_bound(tape: Tape, out: int, grads: Sequence[float] | None = None) -> float:
    """Return a bound on the rounding error in the value of node ``out``, from the tape itself.

    Each node of ``n`` inputs computes its value ``v`` within
    ``u * (2|v| + n * sum_j |local_j * input_j|)`` of the exact result of its
    rounded inputs (``u = 2**-53``: one or two roundings of ``v``, and a fold
    of ``n`` terms errs by at most ``n * u`` times the sum of their sizes),
    plus ``(n + 1) * 2**-1074`` among the subnormals. That error reaches
    ``out`` multiplied by d(out)/d(node): the bound is the sum of these
    products over the nodes (a first-order running error bound). ``grads``
    is ``T.backward(tape, out)`` if the caller has it.

    >>> tape, (x, y) = T.map_tape(T.new(), [1e6, 0.5], T.var)
    >>> tape, z = T.add(tape, x, y)
    >>> rounding_bound(tape, z) < 1e-9          # 1e6 + 0.5 is within 2**-53 * 1e6 or so
    True
    """
    grads = T.backward(tape, out) if grads is None else grads
    nodes = tape.nodes
    vals = [node[0] for node in nodes]  # local
    total = 0.0
    for g, (value, inputs, local_grads, _) in zip(grads, nodes):
        if g and inputs:
            terms = builtins.sum([builtins.abs(lg * vals[j]) for j, lg in zip(inputs, local_grads)])
            n = len(inputs)
            node_error = _U * (2 * builtins.abs(value) + n * terms) + (n + 1) * _TINY
            total += builtins.abs(g) * node_error
    return total


def within_tolerance(analytic: float, numeric: float, tolerance: float) -> bool:
    """Return whether two gradients agree: both finite and at most ``tolerance`` apart.

    A NaN or an infinity never agrees with anything, itself included.

    >>> within_tolerance(2.0, 2.0 + 1e-9, 1e-8), within_tolerance(2.0, 2.1, 1e-8)
    (True, False)
    >>> within_tolerance(float("nan"), 1.0, 1e9), within_tolerance(float("inf"), float("inf"), 1.0)
    (False, False)
    """
    return (math.isfinite(analytic) and math.isfinite(numeric) and math.isfinite(tolerance)
            and builtins.abs(analytic - numeric) <= tolerance)


def check_grads(
    f: Callable[[Tape, tuple[int, ...]], tuple[Tape, int]],
    xs: Sequence[float],
    eps: float = GRAD_EPS,
    rtol: float = GRAD_RTOL,
    atol: float = GRAD_ATOL,
    kinks: Sequence[str] = KINK_OPS,
) -> GradCheck:
    """Return a ``GradCheck`` comparing ``f``'s tape gradients at ``xs`` with central differences.

    For input ``i`` with step ``h = eps * max(1, |x_i|)``, the numeric
    gradient is ``(f(x + h e_i) - f(x - h e_i)) / (2h)``, dividing by the step
    actually taken in floats. Input ``i`` passes when both are finite and
    ``|analytic - numeric| <= tolerance_i``, where ``tolerance_i`` is
    ``rtol * max(|analytic|, |numeric|) + atol + ROUNDING_SAFETY * 2E / (2h)``.

    Why that is sound. ``E = rounding_bound(tape, out)`` bounds the rounding
    error in the computed ``f(x)``, node by node, from the tape itself. Each of
    the two values of the difference errs by about ``E``, so their difference
    divided by the step errs by at most ``2E / 2h``; four times that is
    allowed. Where an input would fail, the bound is taken again from the two
    tapes of its difference themselves (a step can move values far from those
    at ``x``: ``x * x`` at ``x = 1e-178``). This is
    what a step of ``h`` costs, at any scale of ``f`` and of its inner values,
    and nothing more: ``1e6 * x + 0.5 * y`` reported with ``d/dy = 0`` fails.
    The truncation error of a central difference, ``h**2 / 6`` times the
    third derivative, is inside ``rtol`` of the gradient for most functions;
    where an input would fail without it, the check measures it: the
    difference with step ``2h`` errs by four times as much, so the two
    differences differ by three times the truncation error, and that whole
    difference is allowed too (``x**3`` at 0, whose slope 0 differs from
    ``h**2``, passes).
    A gradient or difference that is not finite never passes, and a gradient
    that overflows in backward ends in ``NonFiniteError`` (never ``ok``).

    At a kink the two sides legitimately differ: where moving input ``i`` by
    ``±h`` moves the input of a node whose op is in ``kinks`` (``relu`` and
    ``abs``) to or across 0, input ``i`` is marked ``at_kink`` and not
    checked. ``kinks=()`` checks every input. A node pushed with a wrong local
    gradient fails:

    >>> def square(tape, ids):
    ...     (x,) = ids
    ...     v = T.data(tape, x)
    ...     return T.push(tape, "square", v * v, (x,), (3 * v,))   # should be 2 * v
    >>> check_grads(square, [2.0])
    GradCheck(ok=False): 1 of 1 inputs differ from central differences; max error 2, rel 0.333
      input  analytic  numeric  abs error
          0         6        4          2  <- differs
    >>> def f(tape, ids):
    ...     x, y = ids
    ...     tape, xy = T.mul(tape, x, y)
    ...     return T.relu(tape, xy)
    >>> check_grads(f, [0.5, -1.0]).ok
    True
    >>> check_grads(f, [0.0, 1.0])      # x * y = 0: the relu's kink, which x moves
    GradCheck(ok=True): 1 of 2 inputs agree with central differences, 1 not checked: at a kink; ...
    """
    xs = tuple(finite_number("check_grads", x) for x in xs)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (
        math.isfinite(eps) and eps > 0
    ):
        raise ValueError(f"check_grads: eps must be a positive number, got {eps!r}")
    if isinstance(kinks, str):
        raise TypeError(f"check_grads: kinks must be a sequence of op names, got {kinks!r}")
    rtol, atol = finite_number("check_grads", rtol), finite_number("check_grads", atol)

    def run(at: tuple[float, ...]) -> tuple[Tape, int, tuple[int, ...]]:
        tape, ids = T.map_tape(T.new(), at, T.var)
        tape, out = f(tape, ids)
        return tape, out, ids

    tape, out, ids = run(xs)
    grads = T.backward(tape, out)
    analytic = tuple(T.grad(grads, i) for i in ids)
    rounding = 2 * ROUNDING_SAFETY * rounding_bound(tape, out, grads)  # two values, each <= E
    signs = _kink_signs(tape, kinks)
    numeric = []  # local transients, frozen into tuples below
    at_kink = []
    allowed = []  # per input: the rounding allowance, atol included
    def difference(i: int, h: float, careful: bool) -> tuple[float, float, bool]:
        """The central difference of input i with step h, its rounding allowance (from the
        tape at x, or, careful, from the two tapes of the difference), and: at a kink?"""
        x = xs[i]
        up, down = x + h, x - h
        t_up, out_up, _ = run(xs[:i] + (up,) + xs[i + 1 :])
        t_down, out_down, _ = run(xs[:i] + (down,) + xs[i + 1 :])
        kink = bool(kinks) and not (
            _kink_signs(t_up, kinks) == signs == _kink_signs(t_down, kinks))
        error = rounding
        if careful:
            error = max(error, ROUNDING_SAFETY * (rounding_bound(t_up, out_up)
                                                  + rounding_bound(t_down, out_down)))
        return ((T.data(t_up, out_up) - T.data(t_down, out_down)) / (up - down),
                atol + error / (up - down), kink)

    for i, x in enumerate(xs):
        h = eps * max(1.0, builtins.abs(x))
        d, allow, kink = difference(i, h, False)
        if not (kink or within_tolerance(analytic[i], d, allow + rtol * max(
                builtins.abs(analytic[i]), builtins.abs(d)))):
            # Only where it matters: the rounding of the two tapes of the difference (a step
            # can move the values far from those at x), and the truncation error (h**2 / 6
            # times the third derivative), measured: the difference with step 2h errs by 4
            # times as much, so the two differ by 3 times the truncation error of this one.
            d, allow, kink = difference(i, h, True)
            d2, allow2, kink2 = difference(i, 2 * h, True)
            kink = kink or kink2
            allow += allow2 + builtins.abs(d2 - d)
        numeric.append(d)
        allowed.append(allow)
        at_kink.append(kink)
    sizes = [max(builtins.abs(a), builtins.abs(n)) for a, n in zip(analytic, numeric)]
    tolerance = tuple(a + rtol * s for a, s in zip(allowed, sizes))
    bad = tuple(not k and not within_tolerance(a, n, t)
                for a, n, t, k in zip(analytic, numeric, tolerance, at_kink))
    errors = [builtins.abs(a - n) for a, n in zip(analytic, numeric)]
    checked = [(e, s, a) for e, s, a, k in zip(errors, sizes, allowed, at_kink) if not k]
    return GradCheck(
        analytic,
        tuple(numeric),
        max((e for e, _, _ in checked), default=0.0),
        max((e / s for e, s, a in checked if s > a), default=0.0),
        not any(bad),
        bad,
        tuple(at_kink),
        tolerance,
    )


def table(tape: Tape, limit: int | None = None) -> str:
    """Return the tape as a table, one node a row: id, op, value, inputs, local gradients.

    ``limit`` keeps only the last ``limit`` rows.

    >>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, z = T.mul(tape, x, y)
    >>> print(table(tape))
     id  op        value  inputs  local_grads
      0  var           3
      1  var           4
      2  mul          12  0, 1    4, 3
    """
    nodes = tape.nodes
    start = 0 if limit is None else max(0, len(nodes) - limit)

    def fmt(x: float) -> str:
        return f"{x:.6g}"

    rows = [
        (str(i), T.op_parts(op)[0], fmt(value), ", ".join(map(str, inputs)),
         ", ".join(map(fmt, local_grads)))
        for i, (value, inputs, local_grads, op) in enumerate(nodes[start:], start)
    ]
    header = ("id", "op", "value", "inputs", "local_grads")
    w_id = max([len(header[0]) + 1] + [len(r[0]) for r in rows])
    w_op = max([len(header[1]) + 6] + [len(r[1]) for r in rows])
    w_val = max([len(header[2])] + [len(r[2]) for r in rows])
    w_in = max([len(header[3])] + [len(r[3]) for r in rows])

    def line(r: tuple[str, ...]) -> str:
        return f"{r[0]:>{w_id}}  {r[1]:<{w_op}}  {r[2]:>{w_val}}  {r[3]:<{w_in}}  {r[4]}".rstrip()

    return "\n".join([line(header), *map(line, rows)])


def html_table(tape: Tape, max_rows: int = HTML_ROWS) -> str:
    """Return the tape as an HTML table, one node a row: what a notebook shows for a ``Tape``.

    A tape longer than ``max_rows`` shows its first and last ``max_rows // 2``
    nodes and, between them, one row saying how many are hidden. A node with
    more than ``HTML_ITEMS`` inputs lists the first of them and their number.
    It is ``tape_html.wengert_html`` for a tape, the function ``Tape._repr_html_``
    calls.

    >>> tape, xs = T.map_tape(T.new(), [1.0, 2.0, 3.0], T.var)
    >>> tape, s = T.sum(tape, xs)
    >>> page = html_table(tape, max_rows=2)
    >>> page.count("<tr>"), "2 nodes hidden" in page
    (4, True)
    >>> "<td>sum</td>" in html_table(tape)
    True
    >>> tape, big = T.sum(tape, T.as_ids([0, 1, 2] * 3 + [3]))
    >>> "<td>0, 1, 2, 0, 1, 2, 0, 1, … (10 in all)</td>" in html_table(tape)
    True
    >>> html_table(tape) == tape._repr_html_()
    True
    """
    return wengert_html(repr(tape), len(tape), partial(T.node, tape), max_rows)  # type: ignore[arg-type]
