"""Draw a small tape: one attention-style softmax feeding a cross-entropy loss.

Run from the repository root (with the package installed):

    python examples/draw_tape.py [OUT.svg|OUT.png]

It builds the tape, checks its gradients against central differences, writes
the DOT text and, when Graphviz's ``dot`` is installed, the picture (default
``tape.svg`` in the system's temporary folder). Each box shows a node's id,
op, value and gradient; each arrow is labelled with a local gradient.
"""

import os
import sys
import tempfile

import functional_gpt.layers as L
import functional_gpt.tape as T
from functional_gpt import graph, repl


def loss(tape: T.Tape, ids: tuple[int, ...]) -> tuple[T.Tape, int]:
    """softmax weights over two logits mix two values; then the loss of picking class 0."""
    q, k0, k1, v0, v1 = ids
    tape, logits = L.scaled_dots(tape, [q], [[k0], [k1]], 0.5)
    tape, weights = L.softmax(tape, logits)  # a Run of ids, as layers hand them out
    tape, mixed = T.dot(tape, weights, [v0, v1])
    return L.cross_entropy(tape, [mixed, q], 0)


def main() -> None:
    """Build, check and draw the tape of ``loss``."""
    xs = [0.5, 1.0, -1.0, 2.0, 0.25]
    print(repl.check_grads(loss, xs))
    tape, ids = T.map_tape(T.new(), xs, T.var)
    tape, out = loss(tape, ids)
    grads = T.backward(tape, out)
    print(repl.table(tape))
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "tape.svg")
    dot_path = os.path.splitext(path)[0] + ".dot"
    with open(dot_path, "w", encoding="utf-8") as f:
        f.write(graph.to_dot(tape, root=out, grads=grads))
    print(f"wrote {dot_path}")
    try:
        print(f"wrote {graph.draw(tape, path, root=out, grads=grads)}")
    except graph.GraphvizError as e:
        print(e)


if __name__ == "__main__":
    main()
