"""A short tour of the immutable tape, the way you would explore it in a REPL.

Run from the repository root (with the package installed):

    python examples/repl_tour.py

Every step below is a plain function call you can type at ``>>>``.
"""

import functional_gpt.tape as T
from functional_gpt import repl


def section(title: str) -> None:
    """Print a section heading."""
    print(f"\n== {title}")


def main() -> None:
    """Print the tour: build, inspect, differentiate and branch a tape."""
    section("Build f(x, y) = log(x * y + exp(y)) / y on an empty tape")
    print("Each op takes a tape and returns (new tape, node id).")
    tape, (x, y) = T.map_tape(T.new(), [2.0, 0.5], T.var)
    tape, xy = T.mul(tape, x, y)
    tape, ey = T.exp(tape, y)
    tape, inner = T.add(tape, xy, ey)
    tape, logged = T.log(tape, inner)
    tape, f = T.div(tape, logged, y)
    print(f"f(2, 0.5) = {T.data(tape, f):.6f}   tape: {tape!r}")

    section("The tape is data: one row per node")
    print(repl.table(tape))

    section("Gradients: backward folds the tape from the root down to node 0")
    grads = T.backward(tape, f)
    print(f"df/dx = {T.grad(grads, x):.6f}   df/dy = {T.grad(grads, y):.6f}")

    section("value_and_grad turns a tape function into a function of plain floats")

    def g(tape: T.Tape, ids: tuple[int, ...]) -> tuple[T.Tape, int]:
        a, b = ids
        tape, ab = T.mul(tape, a, b)
        tape, r = T.relu(tape, ab)
        return T.add(tape, r, a)  # g(a, b) = relu(a * b) + a

    vg = repl.value_and_grad(g)
    for point in ([3.0, 4.0], [3.0, -4.0]):
        value, (da, db) = vg(point)
        print(f"g{tuple(point)} = {value:g}   dg/da = {da:g}   dg/db = {db:g}")

    section("Persistence: two continuations branch off one tape")
    before = tuple(tape.nodes)  # a copy of every node (each a tuple of numbers)
    left, sq = T.pow(tape, f, 2.0)
    right, neg = T.neg(tape, f)
    print(f"left  continues with pow(f, 2) -> node {sq}: {T.data(left, sq):.6f}")
    print(f"right continues with neg(f)    -> node {neg}: {T.data(right, neg):.6f}")
    print(f"both got id {len(tape)}; lengths: {len(tape)} (old), {len(left)}, {len(right)}")
    unchanged = tuple(tape.nodes) == before and left.nodes[:-1] == right.nodes[:-1] == tape.nodes
    print(f"old tape unchanged and shared by both: {unchanged}")
    print("the last rows of `left`:")
    print(repl.table(left, limit=2))

    section("Between training steps: update keeps the parameters, drops the rest")
    nxt = T.update(tape, [2.5, 0.25])
    print(f"update(tape, [2.5, 0.25]) -> {nxt!r}, values {T.values(nxt, [x, y])}")
    print(f"the old tape still holds {T.values(tape, [x, y])} and {len(tape)} nodes")

    if not unchanged:
        raise SystemExit("persistence broken: the old tape changed")


if __name__ == "__main__":
    main()
