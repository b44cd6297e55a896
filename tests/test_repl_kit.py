"""The REPL kit: gradient, check_grads, the testing helpers, to_dot/draw and html_table.

Oracles: the naive mutable autograd (``reference_autograd.replay``) for
gradients, a depth-first search for what a root depends on, and Graphviz's
own parser (the real ``dot`` program) for the DOT text.
"""

import importlib
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reference_autograd import replay
from strategies import Program, finite, program_function, programs, run_on_tape

import functional_gpt.layers as L
import functional_gpt.tape as T
from functional_gpt import graph, repl, testing, trees
from functional_gpt.testing import assert_grads_ok, inputs

DOT = shutil.which("dot")
needs_dot = pytest.mark.skipif(DOT is None, reason="Graphviz's dot is not installed")


def reference_gradient(program: Program) -> tuple[float, ...]:
    """d(output)/d(input) for each input, from the mutable reference autograd."""
    values = replay(program)
    values[-1].backward()
    return tuple(v.grad for v in values[: len(program.inputs)])


# -------------------------------------------------------------------- gradient


@given(programs())
def test_gradient_is_value_and_grads_second_half(program: Program) -> None:
    f = program_function(program)
    assert repl.gradient(f)(program.inputs) == repl.value_and_grad(f)(program.inputs)[1]


@given(programs())
def test_gradient_matches_the_mutable_reference(program: Program) -> None:
    got = repl.gradient(program_function(program))(program.inputs)
    want = reference_gradient(program)
    assert len(got) == len(program.inputs)
    for g, w in zip(got, want):
        assert abs(g - w) <= 1e-9 * max(1.0, abs(w)), (got, want)


# ----------------------------------------------------------------- check_grads


@given(programs())
def test_check_grads_accepts_every_correct_program(program: Program) -> None:
    check = repl.check_grads(program_function(program), program.inputs)
    assert check.ok, check
    assert check.analytic == repl.gradient(program_function(program))(program.inputs)
    assert len(check.numeric) == len(program.inputs) and not any(check.bad)


def wrong_square(k: float):
    """x*x pushed with the local gradient k*x instead of 2*x."""

    def f(tape, ids):
        (x,) = ids
        v = T.data(tape, x)
        return T.push(tape, "square", v * v, (x,), (k * v,))

    return f


@given(finite(0.1, 100.0), st.sampled_from([-1.0, 1.0]),
       finite(-5.0, 5.0).filter(lambda k: abs(k - 2.0) > 0.01))
def test_check_grads_flags_a_wrong_local_gradient(x: float, sign: float, k: float) -> None:
    check = repl.check_grads(wrong_square(k), [sign * x])
    assert not check.ok, check
    assert check.bad == (True,)
    assert math.isclose(check.numeric[0], 2 * sign * x, rel_tol=1e-6)
    assert check.max_abs_error == abs(check.analytic[0] - check.numeric[0])
    assert "<- differs" in repr(check)


@given(finite(-3.0, 3.0), finite(-3.0, 3.0), finite(0.001, 0.5))
def test_check_grads_flags_a_slightly_wrong_primitive(x: float, y: float, rel: float) -> None:
    """exp(x*y) whose exp node claims a gradient off by a factor (1 + rel).

    The error it makes on input i is |true gradient| * rel; the tolerance the
    check reports is what a step can resolve (its rounding allowance) plus rtol
    * |gradient|. Clearly above it the input is flagged, clearly below it is not.
    """

    def f(tape, ids):
        tape, xy = T.mul(tape, *ids)
        e = math.exp(T.data(tape, xy))
        return T.push(tape, "my_exp", e, (xy,), (e * (1 + rel),))

    check = repl.check_grads(f, [x, y])
    e = math.exp(x * y)
    for i, other in enumerate((y, x)):
        true = other * e
        error = abs(true) * rel
        tolerance = check.tolerance[i]
        assert tolerance <= 1e-8 * max(1.0, e) + repl.GRAD_RTOL * abs(true) * (1 + rel) * 1.01
        if error > 2 * tolerance:
            assert check.bad[i], (i, check)
        elif error < tolerance / 2:
            assert not check.bad[i], (i, check)


def test_check_grads_marks_only_the_wrong_input() -> None:
    def f(tape, ids):
        x, y = ids
        vx, vy = T.values(tape, ids)
        return T.push(tape, "odd", vx * vy, (x, y), (vy, 2 * vx))  # d/dy is wrong

    check = repl.check_grads(f, [3.0, 4.0])
    assert check.bad == (False, True) and not check.ok
    lines = repr(check).splitlines()
    assert lines[0].startswith("GradCheck(ok=False")
    assert "<- differs" not in lines[2] and "<- differs" in lines[3]


@pytest.mark.parametrize("xs, eps, error", [
    ([float("nan")], 1e-6, ValueError),
    ([float("inf")], 1e-6, ValueError),
    (["1.0"], 1e-6, TypeError),
    ([1.0], 0.0, ValueError),
    ([1.0], -1e-6, ValueError),
    ([1.0], float("nan"), ValueError),
    ([1.0], True, ValueError),
])
def test_check_grads_refuses_bad_arguments(xs, eps, error) -> None:
    with pytest.raises(error, match="check_grads"):
        repl.check_grads(lambda tape, ids: T.exp(tape, ids[0]), xs, eps=eps)


def test_check_grads_of_no_inputs_is_ok() -> None:
    check = repl.check_grads(lambda tape, ids: T.constant(tape, 2.0), [])
    assert check.ok and check.analytic == () and check.max_abs_error == 0.0


def cube_times(tape, ids):  # x**3 * y
    x, y = ids
    tape, x3 = T.pow(tape, x, 3.0)
    return T.mul(tape, x3, y)


def exp_of_product(tape, ids):  # e**(x*y)
    tape, xy = T.mul(tape, *ids)
    return T.exp(tape, xy)


def log_of_square_plus_one(tape, ids):  # log(x*x + 1); y unused
    x, _ = ids
    tape, xx = T.mul(tape, x, x)
    tape, one = T.constant(tape, 1.0)
    tape, s = T.add(tape, xx, one)
    return T.log(tape, s)


def quotient(tape, ids):  # x / y
    return T.div(tape, *ids)


KNOWN = [  # a tape function, its gradient in closed form, and a domain for (x, y)
    (cube_times, lambda x, y: (3 * x * x * y, x**3), inputs(2, -3.0, 3.0)),
    (exp_of_product, lambda x, y: (y * math.exp(x * y), x * math.exp(x * y)),
     inputs(2, -3.0, 3.0)),
    (log_of_square_plus_one, lambda x, y: (2 * x / (x * x + 1), 0.0), inputs(2, -50.0, 50.0)),
    (quotient, lambda x, y: (1 / y, -x / y**2),
     st.tuples(finite(-10.0, 10.0), finite(0.1, 10.0) | finite(-10.0, -0.1))),
]


@pytest.mark.parametrize("f, derivative, domain", KNOWN, ids=lambda k: getattr(k, "__name__", ""))
@given(data=st.data())
def test_check_grads_agrees_with_derivatives_known_in_closed_form(f, derivative, domain, data):
    """Both columns match the closed form: numeric within the documented tolerance."""
    x, y = data.draw(domain)
    check = repl.check_grads(f, [x, y])
    assert check.ok, check
    size = max(1.0, abs(repl.value_and_grad(f)([x, y])[0]))
    for analytic, numeric, want in zip(check.analytic, check.numeric, derivative(x, y)):
        assert math.isclose(analytic, want, rel_tol=1e-12, abs_tol=1e-12), check
        assert abs(numeric - want) <= 1e-8 * size + repl.GRAD_RTOL * abs(want) * 1.01, check


@given(st.lists(st.booleans(), max_size=40))
def test_grad_check_repr_lists_what_differs_and_counts_the_rest(bad: list[bool]) -> None:
    n = len(bad)
    numeric = tuple(2.0 if b else 1.0 for b in bad)
    check = repl.GradCheck((1.0,) * n, numeric, float(any(bad)), 0.5 * any(bad), not any(bad),
                        tuple(bad))
    lines = repr(check).splitlines()
    assert lines[0].startswith(f"GradCheck(ok={not any(bad)}")
    rows = [line for line in lines[2:] if not line.lstrip().startswith("...")]
    shown = [int(line.split()[0]) for line in rows]
    assert shown == sorted(shown) and len(shown) == min(n, repl.GRAD_CHECK_ROWS)
    differ = [i for i in range(n) if bad[i]]
    assert [i for i in shown if bad[i]] == differ[: repl.GRAD_CHECK_ROWS]
    assert all(("<- differs" in line) == bad[i] for i, line in zip(shown, rows))
    if n > repl.GRAD_CHECK_ROWS:
        hidden = len(differ) - sum(bad[i] for i in shown)
        tail = "all within tolerance" if not hidden else f"{hidden} of them differ"
        assert lines[-1] == f"  ... and {n - len(shown)} more inputs, {tail}"
    else:
        assert len(lines) == n + 2


# ---------------------------------------------------------- testing: dogfood


def softmax_first(tape, ids):
    tape, ps = L.softmax(tape, ids)
    return tape, ps[0]


def rms_first(tape, ids):
    tape, ys = L.rmsnorm(tape, ids)
    return tape, ys[-1]


def cross_entropy_of_1(tape, ids):
    return L.cross_entropy(tape, ids, 1)


@given(inputs(4, -5.0, 5.0))
def test_fused_layers_pass_the_public_helper(xs) -> None:
    assert_grads_ok(softmax_first, xs)
    assert_grads_ok(cross_entropy_of_1, xs)


@given(inputs(3, 0.5, 5.0))
def test_rmsnorm_passes_the_public_helper(xs) -> None:
    assert_grads_ok(rms_first, xs)


@given(inputs(2, -5.0, 5.0), finite(0.01, 2.0))
def test_the_helper_fails_a_wrong_gradient(xs, off) -> None:
    def wrong_mul(tape, ids):
        x, y = ids
        vx, vy = T.values(tape, ids)
        return T.push(tape, "my_mul", vx * vy, (x, y), (vy + off, vx))

    with pytest.raises(AssertionError, match="gradients differ"):
        assert_grads_ok(wrong_mul, xs)


def test_the_helper_fails_a_function_that_drops_its_tape() -> None:
    with pytest.raises(AssertionError, match="does not start with"):
        testing.check_tape_function(lambda tape, ids: T.var(T.new(), 1.0), [1.0, 2.0])


def test_the_helper_fails_a_result_that_is_not_on_the_tape() -> None:
    with pytest.raises(IndexError):
        testing.check_tape_function(lambda tape, ids: (tape, 99), [1.0])


@given(inputs(2, -3.0, 3.0))
def test_the_helper_fails_a_function_that_reads_fixed_ids(xs) -> None:
    def first_two(tape, ids):  # reads nodes 0 and 1, not ids
        return T.mul(tape, T.Id(0), T.Id(1))

    with pytest.raises(AssertionError, match="with another node before the inputs"):
        assert_grads_ok(first_two, xs)


def test_testing_without_hypothesis_says_what_to_install(monkeypatch) -> None:
    monkeypatch.delitem(sys.modules, "functional_gpt.testing")
    for name in [m for m in sys.modules if m == "hypothesis" or m.startswith("hypothesis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hypothesis", None)  # makes `import hypothesis` fail
    with pytest.raises(ImportError, match=r"hypothesis: pip install 'functional_gpt\[test\]'"):
        importlib.import_module("functional_gpt.testing")


@given(st.integers(0, 6), finite(-2.0, 2.0), finite(2.0, 9.0), st.data())
def test_inputs_draws_n_finite_floats_in_range(n, lo, hi, data) -> None:
    xs = data.draw(inputs(n, lo, hi))
    assert len(xs) == n and all(lo <= x <= hi and math.isfinite(x) for x in xs)


def test_inputs_refuses_a_bad_count() -> None:
    with pytest.raises(ValueError, match="inputs"):
        inputs(-1)


# ---------------------------------------------------------------------- to_dot


def depends_on(tape: T.Tape, root: int) -> set[int]:
    """Depth-first search from root over the inputs: an oracle for graph.ancestors."""
    seen, todo = set(), [root]
    while todo:
        i = todo.pop()
        if i not in seen:
            seen.add(i)
            todo.extend(T.node(tape, i).inputs)
    return seen


def dot_lines(source: str) -> tuple[list[str], list[str]]:
    lines = [line.strip() for line in source.splitlines()]
    nodes = [line for line in lines if re.match(r"n\d+ \[", line)]
    edges = [line for line in lines if " -> " in line]
    return nodes, edges


@given(programs())
def test_to_dot_has_a_box_per_node_and_an_edge_per_input(program: Program) -> None:
    tape = run_on_tape(program)
    nodes, edges = dot_lines(graph.to_dot(tape))
    assert len(nodes) == len(tape)
    assert len(edges) == sum(len(T.node(tape, i).inputs) for i in range(len(tape)))
    for i in range(len(tape)):
        assert nodes[i].startswith(f"n{i} [") and f"#{i} " in nodes[i]


@given(programs(), st.data())
def test_to_dot_with_a_root_keeps_exactly_what_it_depends_on(program: Program, data) -> None:
    tape = run_on_tape(program)
    root = data.draw(st.integers(0, len(tape) - 1))
    want = depends_on(tape, root)
    assert set(graph.ancestors(tape, root)) == want
    nodes, edges = dot_lines(graph.to_dot(tape, root=root, grads=T.backward(tape, root)))
    assert {int(line.split(" ")[0][1:]) for line in nodes} == want
    for e in edges:
        src, dst = e.split(" -> ")
        assert int(src[1:]) in want and int(dst.split(" ")[0][1:]) in want
    assert all("grad " in line for line in nodes)


@given(programs(), st.booleans())
def test_to_dot_shades_the_leaves_and_puts_them_on_the_bottom_row(program, whole) -> None:
    tape = run_on_tape(program)
    root = None if whole else program.root
    source = graph.to_dot(tape, root=root)
    nodes, _ = dot_lines(source)
    kept = range(len(tape)) if whole else sorted(depends_on(tape, program.root))
    leaves = [i for i in kept if not T.node(tape, i).inputs]
    assert [line for line in nodes if graph.LEAF_STYLE in line] == [
        line for line in nodes if int(line.split(" ")[0][1:]) in leaves
    ]
    ranks = [line.strip() for line in source.splitlines() if "rank=min" in line]
    assert ranks == ([f"{{rank=min; {' '.join(f'n{i}' for i in leaves)}}}"] if leaves else [])


def test_to_dot_refuses_too_few_gradients_and_a_bad_root() -> None:
    tape, xs = T.map_tape(T.new(), [1.0, 2.0], T.var)
    tape, s = T.add(tape, *xs)
    with pytest.raises(ValueError, match="gradients"):
        graph.to_dot(tape, grads=[1.0])
    with pytest.raises(IndexError):
        graph.to_dot(tape, root=7)


@needs_dot
@given(st.text(min_size=1, max_size=12).filter(lambda name: name not in T.built_in_ops()))
def test_dot_parses_any_op_name(op: str) -> None:
    tape, x = T.var(T.new(), 1.5)
    tape, y = T.push(tape, op, 2.0, (x,), (-0.5,))
    done = subprocess.run([DOT, "-Tsvg"], input=graph.to_dot(tape), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<")])
def test_draw_renders_a_real_picture(tmp_path, suffix, magic) -> None:
    tape, (x, y) = T.map_tape(T.new(), [3.0, 4.0], T.var)
    tape, z = T.mul(tape, x, y)
    out = tmp_path / f"tape{suffix}"
    assert graph.draw(tape, out, root=z, grads=T.backward(tape, z)) == str(out)
    data = out.read_bytes()
    assert data.startswith(magic) and len(data) > 500
    if suffix == ".svg":
        text = data.decode()
        assert "<svg" in text and "#2 mul" in text and "grad 1" in text


def test_draw_without_dot_says_so_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    tape, _ = T.var(T.new(), 1.0)
    with pytest.raises(graph.GraphvizError) as info:
        graph.draw(tape, tmp_path / "t.png")
    assert "graphviz" in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "t.png").exists()


@needs_dot
def test_draw_into_a_missing_folder_fails_cleanly(tmp_path) -> None:
    tape, _ = T.var(T.new(), 1.0)
    with pytest.raises(graph.GraphvizError, match="could not write"):
        graph.draw(tape, tmp_path / "no" / "such" / "t.svg")


def test_draw_refuses_an_unknown_format(tmp_path) -> None:
    tape, _ = T.var(T.new(), 1.0)
    with pytest.raises(ValueError, match=r"\.svg or \.png"):
        graph.draw(tape, tmp_path / "t.jpg")


@pytest.mark.parametrize("hide_dot", [True, False])
def test_the_example_writes_the_dot_text_and_a_picture(tmp_path, hide_dot) -> None:
    """examples/draw_tape.py: its gradient check passes; it writes DOT and, with dot, a PNG."""
    example = Path(__file__).resolve().parent.parent / "examples" / "draw_tape.py"
    out = tmp_path / "tape.png"
    env = {**os.environ, "PATH": str(tmp_path)} if hide_dot else None
    done = subprocess.run([sys.executable, str(example), str(out)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("GradCheck(ok=True")
    source = (tmp_path / "tape.dot").read_text()
    nodes, edges = dot_lines(source)
    assert len(nodes) == 11 and len(edges) == 14 and "cross_entropy" in source
    if hide_dot or DOT is None:
        assert "dot program is not installed" in done.stdout and not out.exists()
    else:
        data = out.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000


# ------------------------------------------------------------------ html_table


@given(st.integers(0, 60), st.integers(2, 30))
def test_html_table_shows_every_row_or_elides_the_middle(n: int, max_rows: int) -> None:
    tape = T.leaves([float(i) for i in range(n)])
    page = repl.html_table(tape, max_rows=max_rows)
    rows = page.count("<tr>") - 1  # minus the header
    if n <= max_rows:
        assert rows == n and "hidden" not in page
    else:
        half = max_rows // 2
        assert rows == 2 * half + 1
        assert f"{n - 2 * half} nodes hidden" in page
        assert f"<td>{n - 1}</td>" in page and f"<td>{half - 1}</td>" in page


@given(st.integers(0, 20))
def test_html_table_lists_a_few_inputs_and_counts_the_rest(k: int) -> None:
    tape = T.leaves([0.5] * k)
    tape, s = T.sum(tape, T.as_ids(range(k)))
    last_row = repl.html_table(tape).split("<tr>")[-1]
    cells = re.findall(r"<td>(.*?)</td>", last_row)
    listed = min(k, repl.HTML_ITEMS)
    ids = ", ".join(str(i) for i in range(listed))
    ones = ", ".join(["1"] * listed)
    if k > repl.HTML_ITEMS:
        assert cells[3:] == [f"{ids}, … ({k} in all)", f"{ones}, … ({k} in all)"]
    else:
        assert cells[3:] == [ids, ones]


def test_html_table_escapes_and_is_the_notebook_repr() -> None:
    tape, x = T.var(T.new(), 1.0)
    tape, _ = T.push(tape, "<b>&", 2.0, (x,), (1.0,))
    page = repl.html_table(tape)
    assert "&lt;b&gt;&amp;" in page and "<b>" not in page
    assert tape._repr_html_() == page
    with pytest.raises(ValueError, match="max_rows"):
        repl.html_table(tape, max_rows=1)


# ----------------------------------------------------------- kinks and verdicts


def relu_neuron(tape, ids):
    """relu(w * x + b): the kink is where w * x + b = 0."""
    w, x, b = ids
    tape, wx = T.mul(tape, w, x)
    tape, z = T.add(tape, wx, b)
    return T.relu(tape, z)


@given(inputs(2, -3.0, 3.0))
def test_an_input_on_a_relus_kink_is_marked_not_failed(wx) -> None:
    """With b = -w*x the relu sits on its kink: the inputs that move it (w unless x is 0, x
    unless w is 0, and b) are marked at_kink, and the check stays ok."""
    w, x = wx
    check = repl.check_grads(relu_neuron, [w, x, -(w * x)])
    expected = (x != 0.0, w != 0.0, True)
    assert check.at_kink == expected and check.ok
    assert f"{sum(expected)} not checked: at a kink" in repr(check).splitlines()[0]
    assert repr(check).count("<- at a kink, not checked") == sum(expected)


@given(inputs(3, -3.0, 3.0))
def test_away_from_kinks_nothing_is_marked(xs) -> None:
    w, x, b = xs
    z = w * x + b
    h = repl.GRAD_EPS * max(1.0, *map(abs, xs)) * (abs(w) + abs(x) + 1.0) * 4
    if abs(z) > h:  # no perturbation of one input by its step crosses 0
        check = repl.check_grads(relu_neuron, xs)
        assert check.at_kink == (False, False, False) and check.ok


def test_at_a_kink_the_sides_differ_and_kinks_off_says_so() -> None:
    """relu(x) at x = 0: the difference is 0.5, the tape's slope 0; kinks=() reports it."""
    f = lambda tape, ids: T.relu(tape, ids[0])  # noqa: E731
    assert repl.check_grads(f, [0.0]).ok
    strict = repl.check_grads(f, [0.0], kinks=())
    assert not strict.ok and strict.bad == (True,) and strict.at_kink == (False,)
    assert repr(strict).startswith("GradCheck(ok=False): 1 of 1 inputs differ")


def test_a_wrong_gradient_beside_a_kink_still_fails() -> None:
    def f(tape, ids):
        x, y = ids
        tape, r = T.relu(tape, x)  # x = 0: on the kink
        v = T.data(tape, y)
        tape, sq = T.push(tape, "square", v * v, (y,), (3 * v,))  # wrong: should be 2v
        return T.add(tape, r, sq)

    check = repl.check_grads(f, [0.0, 2.0])
    assert check.at_kink == (True, False) and check.bad == (False, True) and not check.ok


def test_a_zero_gradient_has_no_relative_error() -> None:
    """d/dy of x + 0*y is 0 and its difference is rounding: max_rel_error must not read 1."""
    def f(tape, ids):
        x, y = ids
        tape, zero_y = T.scale(tape, y, 0.0)
        return T.add(tape, x, zero_y)

    check = repl.check_grads(f, [1e8, 3.0])
    assert check.ok and check.max_rel_error < 1e-6
    assert repr(check).startswith("GradCheck(ok=True): 2 of 2 inputs agree")


def test_kinks_must_be_a_sequence_of_names() -> None:
    with pytest.raises(TypeError, match="kinks must be a sequence of op names"):
        repl.check_grads(relu_neuron, [1.0, 1.0, 1.0], kinks="relu")


# ---------------------------------------------------- value_and_grad over trees



class Layer(NamedTuple):
    w: tuple
    b: float


@given(st.lists(finite(-2.0, 2.0), min_size=5, max_size=5))
def test_value_and_grad_over_a_tree_is_the_flat_one_in_its_shape(xs) -> None:
    """A tree of parameters gives the value and gradients of the same function written over the
    flat list, rebuilt in the tree's shape; the tree passed in is not changed."""
    params = {"layer": Layer(w=(xs[0], xs[1]), b=xs[2]), "extra": [xs[3], xs[4]]}
    before = repr(params)

    def on_tree(tape, p):
        tape, d = T.dot(tape, p["layer"].w, p["extra"])
        return T.add(tape, d, p["layer"].b)

    def on_flat(tape, ids):  # flatten's order: "extra" before "layer", then w, b
        e0, e1, w0, w1, b = ids
        tape, d = T.dot(tape, (w0, w1), (e0, e1))
        return T.add(tape, d, b)

    value, grads = repl.value_and_grad(on_tree)(params)
    flat_leaves, treedef = trees.flatten(params)
    flat_value, flat_grads = repl.value_and_grad(on_flat)(list(flat_leaves))
    assert value == flat_value
    assert grads == trees.unflatten(treedef, flat_grads)
    assert type(grads["layer"]) is Layer and isinstance(grads["extra"], list)
    assert repr(params) == before


def test_has_aux_returns_what_f_returns_beside_its_output() -> None:
    def f(tape, ids):
        tape, scores = T.map_tape(tape, ids, lambda t, i: T.scale(t, i, 2.0))
        tape, total = T.sum(tape, scores)
        return tape, (total, T.values(tape, scores))

    (value, aux), grads = repl.value_and_grad(f, has_aux=True)([1.0, -3.0])
    assert (value, aux, grads) == (-4.0, (2.0, -6.0), (2.0, 2.0))
    assert repl.gradient(f, has_aux=True)([1.0, -3.0]) == ((2.0, 2.0), (2.0, -6.0))


def test_an_aux_without_has_aux_says_to_pass_it() -> None:
    def f(tape, ids):
        return tape, (ids[0], "aux")

    with pytest.raises(TypeError, match="to return auxiliary values too, pass has_aux=True"):
        repl.value_and_grad(f)([1.0])


def test_has_aux_without_an_aux_says_what_to_return() -> None:
    with pytest.raises(TypeError, match=r"must return \(tape, \(out_id, aux\)\)"):
        repl.value_and_grad(lambda tape, ids: T.exp(tape, ids[0]), has_aux=True)([1.0])
