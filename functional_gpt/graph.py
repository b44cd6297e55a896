"""Pictures of a tape: Graphviz DOT source (pure) and rendering it with the ``dot`` program (shell).

``to_dot`` writes the graph as text; no library is involved, DOT is a small
format. Each tape node is a box showing its id, op and value (and, given
``grads``, its gradient); each edge runs from an input to the node that reads
it and is labelled with that input's local gradient. Leaves (the inputs) are
shaded and share the bottom row. ``draw`` hands the text
to Graphviz's ``dot`` to make an SVG or PNG file.

>>> import functional_gpt.tape as T
>>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
>>> tape, z = T.mul(tape, x, y)
>>> print(to_dot(tape))
digraph tape {
  rankdir=BT;
  node [shape=record, fontname="Helvetica", fontsize=10];
  edge [fontname="Helvetica", fontsize=9];
  n0 [label="{#0 var|3}", style=filled, fillcolor="#e8eef7"];
  n1 [label="{#1 var|4}", style=filled, fillcolor="#e8eef7"];
  n2 [label="{#2 mul|12}"];
  n0 -> n2 [label="4"];
  n1 -> n2 [label="3"];
  {rank=min; n0 n1}
}
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from typing import NamedTuple

from . import tape as T
from .tape import Tape

__all__ = ["GraphvizError", "ancestors", "to_dot", "draw", "FORMATS", "OpRun", "op_runs",
           "runs_to_dot", "draw_runs"]

FORMATS = ("svg", "png")
LEAF_STYLE = 'style=filled, fillcolor="#e8eef7"'  # leaves (inputs) are shaded, on the bottom row


class GraphvizError(RuntimeError):
    """Graphviz's ``dot`` is missing or failed; the message is one line saying which.

    >>> issubclass(GraphvizError, RuntimeError)
    True
    """


def ancestors(tape: Tape, root: int) -> tuple[int, ...]:
    """Return the ids of ``root`` and every node it depends on, in increasing order.

    A fold from ``root`` down: ids only ever point at smaller ids, so one pass
    over the ids below ``root`` marks everything reachable.

    >>> tape, (x, y, w) = T.map_tape(T.new(), [1.0, 2.0, 5.0], T.var)
    >>> tape, z = T.add(tape, x, y)
    >>> ancestors(tape, z)
    (0, 1, 3)
    """
    T.data(tape, root)  # IndexError naming the id when it is not on the tape
    needed = {root}  # local transient: a set that only grows, returned frozen as a tuple
    for i in range(root, -1, -1):
        if i in needed:
            needed.update(T.node(tape, i).inputs)
    return tuple(sorted(needed))


def _quote(text: str) -> str:
    """``text`` as the inside of a quoted DOT record label.

    Quotes, backslashes and the record syntax ``{}|<>`` are escaped; control
    characters are shown as ``\\xNN`` so that any op name draws.
    """
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    for ch in "{}|<>":
        out = out.replace(ch, "\\" + ch)
    return "".join(
        f"\\\\x{ord(ch):02x}" if ord(ch) < 32 or ord(ch) == 127 else ch for ch in out
    )


def to_dot(
    tape: Tape, root: int | None = None, grads: Sequence[float] | None = None
) -> str:
    """Return Graphviz DOT source drawing the tape (or only what ``root`` depends on).

    ``grads`` (``backward``'s result) adds each node's gradient to its box.
    Edges point from an input to the node reading it, labelled with the local
    gradient; the graph is drawn bottom-up, inputs below.

    >>> import functional_gpt.tape as T
    >>> tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    >>> tape, z = T.mul(tape, x, y)
    >>> tape, unused = T.exp(tape, x)
    >>> dot = to_dot(tape, root=z, grads=T.backward(tape, z))
    >>> "n3" in dot, dot.count(" -> ")
    (False, 2)
    >>> [line.strip() for line in dot.splitlines() if line.strip().startswith("n2 [")]
    ['n2 [label="{#2 mul|12|grad 1}"];']
    """
    ids = range(len(tape)) if root is None else ancestors(tape, root)
    if grads is not None and len(grads) < (max(ids) + 1 if len(ids) else 0):
        raise ValueError(f"to_dot: {len(grads)} gradients for a tape of {len(tape)} nodes")
    lines = [  # local transient
        "digraph tape {",
        "  rankdir=BT;",
        '  node [shape=record, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    edges: list[str] = []  # local transients too
    leaves: list[str] = []
    for i in ids:
        value, inputs, local_grads, op = T.node(tape, i)
        fields = [f"#{i} {op}", f"{value:.6g}"]
        if grads is not None:
            fields.append(f"grad {grads[i]:.6g}")
        style = "" if inputs else f", {LEAF_STYLE}"
        lines.append(f'  n{i} [label="{{{"|".join(_quote(f) for f in fields)}}}"{style}];')
        edges.extend(
            f'  n{j} -> n{i} [label="{_quote(f"{g:.6g}")}"];' for j, g in zip(inputs, local_grads)
        )
        if not inputs:
            leaves.append(f"n{i}")
    bottom = [f"  {{rank=min; {' '.join(leaves)}}}"] if leaves else []
    return "\n".join([*lines, *edges, *bottom, "}"])


class OpRun(NamedTuple):
    """Consecutive nodes ``first..last`` of one op: one box of ``runs_to_dot``.

    >>> OpRun("dot", 4, 7).size
    4
    """

    op: str
    first: int
    last: int

    @property
    def size(self) -> int:
        """How many nodes the run holds."""
        return self.last - self.first + 1


def op_runs(tape: Tape, start: int = 0) -> tuple[OpRun, ...]:
    """Return the nodes from ``start`` on as runs: consecutive nodes of one op, none reading one.

    A GPT's tape is long but regular: a linear layer is a run of ``dot``
    nodes, an activation a run of ``relu`` nodes. A run ends where the op
    changes or where a node reads a node of the run (the next layer begins).
    Nodes before ``start`` (the parameters, say) are left out.

    >>> tape, xs = T.map_tape(T.new(), [1.0, -2.0], T.var)
    >>> tape, ys = T.map_tape(tape, xs, T.relu)
    >>> tape, zs = T.map_tape(tape, ys, T.relu)
    >>> [(run.op, run.first, run.size) for run in op_runs(tape)]
    [('var', 0, 2), ('relu', 2, 2), ('relu', 4, 2)]
    """
    runs: list[OpRun] = []  # local transient, frozen into a tuple below
    for i in range(start, len(tape)):
        _, inputs, _, op = T.node(tape, i)
        last = runs[-1] if runs else None
        if last is not None and last.op == op and not any(j >= last.first for j in inputs):
            runs[-1] = last._replace(last=i)
        else:
            runs.append(OpRun(op, i, i))
    return tuple(runs)


def runs_to_dot(
    tape: Tape, start: int = 0, inputs: Sequence[tuple[str, int, int]] = (),
    labels: Sequence[str] = (),
) -> str:
    """Return Graphviz DOT source drawing the tape from ``start`` on, one box per ``op_runs`` run.

    A box says the op, how many nodes and their ids (and the matching entry of
    ``labels``, if given); an edge says how many inputs one run reads from
    another. Nodes before ``start`` are drawn as the shaded boxes ``inputs``,
    ``(name, first, last)`` each, for example the model's weight matrices; a
    node before ``start`` that none of them covers is one more box. This is
    how the tape of a whole GPT position fits on a page.

    >>> tape, xs = T.map_tape(T.new(), [1.0, -2.0], T.var)
    >>> tape, ys = T.map_tape(tape, xs, T.relu)
    >>> tape, s = T.sum(tape, ys)
    >>> print(runs_to_dot(tape, 2, inputs=[("x", 0, 1)], labels=["relu of x", "their sum"]))
    digraph runs {
      rankdir=BT;
      node [shape=record, fontname="Helvetica", fontsize=10];
      edge [fontname="Helvetica", fontsize=9];
      r0 [label="{relu ×2|#2-3|relu of x}"];
      r1 [label="{sum|#4|their sum}"];
      in0 [label="{x|#0-1}", style=filled, fillcolor="#e8eef7"];
      in0 -> r0 [label="2"];
      r0 -> r1 [label="2"];
      {rank=min; in0}
    }
    """
    runs = op_runs(tape, start)
    groups = [(name, first, last) for name, first, last in inputs]  # local transient
    owner: dict[int, str] = {}  # local transient: node id -> the box it is drawn in
    for k, (_, first, last) in enumerate(groups):
        owner.update(dict.fromkeys(range(first, last + 1), f"in{k}"))
    for k, run in enumerate(runs):
        owner.update(dict.fromkeys(range(run.first, run.last + 1), f"r{k}"))
    edges: dict[tuple[str, str], int] = {}  # local transient: (from box, to box) -> inputs read
    for k, run in enumerate(runs):
        for i in range(run.first, run.last + 1):
            for j in T.node(tape, i).inputs:
                if j not in owner:  # an input no group covers: a box of its own
                    owner[j] = f"in{len(groups)}"
                    groups.append((f"node {j}", j, j))
                key = (owner[j], f"r{k}")
                edges[key] = edges.get(key, 0) + 1
    lines = [
        "digraph runs {",
        "  rankdir=BT;",
        '  node [shape=record, fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for k, run in enumerate(runs):
        fields = [run.op + (f" ×{run.size}" if run.size > 1 else ""),
                  f"#{run.first}" + (f"-{run.last}" if run.size > 1 else "")]
        fields += [labels[k]] if k < len(labels) else []
        lines.append(f'  r{k} [label="{{{"|".join(_quote(f) for f in fields)}}}"];')
    for k, (name, first, last) in enumerate(groups):
        ids = f"#{first}" + (f"-{last}" if last > first else "")
        lines.append(f'  in{k} [label="{{{_quote(name)}|{ids}}}", {LEAF_STYLE}];')
    lines += [f'  {a} -> {b} [label="{n}"];' for (a, b), n in edges.items()]
    if groups:
        lines.append(f"  {{rank=min; {' '.join(f'in{k}' for k in range(len(groups)))}}}")
    return "\n".join([*lines, "}"])


def _render(source: str, path: str | os.PathLike[str], who: str) -> str:
    """Hand the DOT ``source`` to Graphviz's ``dot`` to write ``path`` (.svg or .png)."""
    name = os.fspath(path)
    fmt = os.path.splitext(name)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{who}: {name}: the file name must end in .svg or .png")
    program = shutil.which("dot")
    if program is None:
        raise GraphvizError(
            f"{who}: Graphviz's dot program is not installed "
            "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz)"
        )
    try:
        done = subprocess.run(
            [program, f"-T{fmt}", "-o", name], input=source, capture_output=True, text=True,
            timeout=120,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GraphvizError(f"{who}: running dot failed: {e}") from None
    if done.returncode != 0:
        first = (done.stderr.strip().splitlines() or ["no message"])[0]
        raise GraphvizError(f"{who}: dot could not write {name}: {first}")
    return name


def draw_runs(
    tape: Tape, path: str | os.PathLike[str], start: int = 0,
    inputs: Sequence[tuple[str, int, int]] = (), labels: Sequence[str] = (),
) -> str:
    """Render ``runs_to_dot(tape, start, inputs, labels)`` to ``path`` (.svg or .png), as ``draw``.

    >>> tape, x = T.var(T.new(), 1.0)
    >>> draw_runs(tape, "runs.pdf")
    Traceback (most recent call last):
    ...
    ValueError: draw_runs: runs.pdf: the file name must end in .svg or .png
    """
    return _render(runs_to_dot(tape, start, inputs, labels), path, "draw_runs")


def draw(
    tape: Tape,
    path: str | os.PathLike[str],
    root: int | None = None,
    grads: Sequence[float] | None = None,
) -> str:
    """Render ``to_dot(tape, root, grads)`` to ``path`` (``.svg`` or ``.png``); return the path.

    Needs the ``dot`` program (Debian and Ubuntu: ``apt-get install graphviz``);
    without it, ``GraphvizError`` says so in one line.

    >>> import functional_gpt.tape as T
    >>> tape, x = T.var(T.new(), 1.0)
    >>> draw(tape, "tape.pdf")
    Traceback (most recent call last):
    ...
    ValueError: draw: tape.pdf: the file name must end in .svg or .png
    """
    return _render(to_dot(tape, root, grads), path, "draw")
