"""How a tape looks in a notebook: its Wengert list as an HTML table, one node a row.

A REPL tool, like those of ``repl``, kept in a module of its own that imports nothing from the
package: ``Tape._repr_html_`` (what Jupyter calls to show a tape) imports ``wengert_html`` from
here when a notebook first shows a tape, so the storage never imports the REPL tools, and
``repl.html_table`` is this function for a ``Tape``. It reads a tape only through the two
things it is given: how many nodes there are and how to read node ``i`` as a
``(value, inputs, local_grads, op)`` tuple.

>>> nodes = [(3.0, (), (), "var"), (9.0, (0,), (6.0,), "square")]
>>> page = wengert_html("two nodes", len(nodes), nodes.__getitem__)
>>> page.count("<tr>"), "<td>square</td>" in page
(3, True)
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Sequence

__all__ = ["wengert_html", "HTML_ROWS", "HTML_ITEMS"]

HTML_ROWS = 40  # rows wengert_html shows before it elides the middle of a tape
HTML_ITEMS = 8  # inputs (and local gradients) a cell lists before it counts them

NodeReader = Callable[[int], tuple[float, Sequence[int], Sequence[float], str]]


def wengert_html(caption: str, n: int, node_at: NodeReader, max_rows: int = HTML_ROWS) -> str:
    """Return the ``n`` nodes that ``node_at(i)`` reads as an HTML table under ``caption``.

    A list longer than ``max_rows`` shows its first and last ``max_rows // 2``
    nodes and, between them, one row saying how many are hidden. A node with
    more than ``HTML_ITEMS`` inputs lists the first of them and their number.

    >>> nodes = [(float(i), (), (), "var") for i in range(5)]
    >>> page = wengert_html("five leaves", 5, nodes.__getitem__, max_rows=2)
    >>> page.count("<tr>"), "3 nodes hidden" in page
    (4, True)
    >>> wengert_html("none", 0, nodes.__getitem__, max_rows=1)
    Traceback (most recent call last):
    ...
    ValueError: html_table: max_rows must be a whole number of at least 2, got 1
    """
    if type(max_rows) is not int or max_rows < 2:
        raise ValueError(
            f"html_table: max_rows must be a whole number of at least 2, got {max_rows!r}"
        )
    half = max_rows // 2
    shown = range(n) if n <= max_rows else [*range(half), *range(n - half, n)]

    def cells(tag: str, texts: Iterable[str]) -> str:
        return "".join(f"<{tag}>{html.escape(t)}</{tag}>" for t in texts)

    def items(texts: Sequence[str]) -> str:
        if len(texts) <= HTML_ITEMS:
            return ", ".join(texts)
        return ", ".join(texts[:HTML_ITEMS]) + f", … ({len(texts)} in all)"

    def row(i: int) -> str:
        value, inputs, local_grads, op = node_at(i)
        return "<tr>" + cells("td", (
            str(i), op, f"{value:.6g}", items([str(j) for j in inputs]),
            items([f"{g:.6g}" for g in local_grads]),
        )) + "</tr>"

    rows = [row(i) for i in shown]  # local transient
    if n > max_rows:
        rows.insert(half, f'<tr><td colspan="5">… {n - 2 * half} nodes hidden …</td></tr>')
    head = "<tr>" + cells("th", ("id", "op", "value", "inputs", "local_grads")) + "</tr>"
    return (f"<table><caption>{html.escape(caption)}</caption>"
            f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
