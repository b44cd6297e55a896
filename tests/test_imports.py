"""The package's imports: no circle anywhere, a light core, and layers that keep out of storage.

The import graph is read from the source with ``ast``, every import statement counted wherever
it stands (at the top of a module, or inside a function, where a lazy import hides a circle
from Python but not from a reader). The package's ``__init__`` imports its submodules lazily
(PEP 562), by name: it counts as importing each module its ``__all__`` names.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "functional_gpt"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
MODULES = {f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: p
           for p in SOURCE.glob("*.py") if p.stem != "__main__"}

# What ``import functional_gpt.tape`` may load: the tape, the three modules it is made of
# (tape.py's docstring names them), and the package itself, whose __init__ loads nothing.
TAPE_CORE = {PACKAGE, f"{PACKAGE}.tape", f"{PACKAGE}.tape_storage", f"{PACKAGE}.exact_folds",
             f"{PACKAGE}.fast_backward"}


def resolve(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package modules that the import statement ``node`` in ``module`` imports."""
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    else:
        if node.level:  # relative: from the package (no subpackages here)
            base = ".".join([PACKAGE] + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        # ``from pkg import name`` imports the submodule pkg.name where there is one, else pkg.
        names = {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                 for alias in node.names}
    return {name for name in names if name in MODULES and name != module}


def lazy_submodules(tree: ast.Module) -> set[str]:
    """The submodules named in ``__all__`` of the package's ``__init__`` (loaded on first use)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return {f"{PACKAGE}.{name}" for name in ast.literal_eval(node.value)
                    if f"{PACKAGE}.{name}" in MODULES}
    return set()


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, anywhere in its source."""
    graph = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        edges = set().union(*(resolve(module, node) for node in ast.walk(tree)
                              if isinstance(node, (ast.Import, ast.ImportFrom))))
        if module == PACKAGE:
            edges |= lazy_submodules(tree)
        graph[module] = edges
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` as a path that ends where it starts, or None (depth-first)."""
    state: dict[str, str] = {}  # local: "open" on the current path, "done" once finished
    path: list[str] = []  # local

    def visit(m: str) -> list[str] | None:
        state[m] = "open"
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == "open":
                return path[path.index(n):] + [n]
            if n not in state and (circle := visit(n)):
                return circle
        path.pop()
        state[m] = "done"
        return None

    for m in sorted(graph):
        if m not in state and (circle := visit(m)):
            return circle
    return None


def test_the_finder_finds_a_circle_and_only_a_circle():
    """The checker itself: a circle through a lazy import is found; a diamond is no circle."""
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None
    source = "def f():\n    from . import tape\n"
    node = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.ImportFrom))
    assert resolve(f"{PACKAGE}.repl", node) == {f"{PACKAGE}.tape"}


def test_the_package_has_no_import_circle():
    graph = import_graph()
    assert graph[f"{PACKAGE}.layers"] >= {f"{PACKAGE}.tape"}  # the walk sees real imports
    circle = find_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle or [])


def test_the_storage_does_not_know_the_repl():
    """The storage imports nothing above the tape; the HTML drawing it calls imports nothing."""
    graph = import_graph()
    assert graph[f"{PACKAGE}.tape_storage"] <= {f"{PACKAGE}.tape_html"}
    assert graph[f"{PACKAGE}.tape_html"] == set()
    assert graph[f"{PACKAGE}.tape"] <= TAPE_CORE


def test_importing_the_tape_loads_only_the_tape_modules():
    """In a fresh interpreter, ``import functional_gpt.tape`` loads the tape's own modules."""
    code = ("import sys, functional_gpt.tape; "
            f"print(*sorted(m for m in sys.modules if m.split('.')[0] == {PACKAGE!r}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=SOURCE.parent).stdout.split()
    assert set(out) == TAPE_CORE


def test_the_package_loads_its_modules_on_first_use():
    code = ("import sys, functional_gpt as fg; n = len([m for m in sys.modules "
            f"if m.startswith({PACKAGE + '.'!r})]); print(n, fg.rng.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=SOURCE.parent).stdout.split()
    assert out == ["0", f"{PACKAGE}.rng"]


@pytest.mark.parametrize("module", ["layers", "train"])
def test_layers_and_training_do_not_reach_into_storage(module):
    """They read a tape through documented functions, never its stored parts or private names."""
    tree = ast.parse((SOURCE / f"{module}.py").read_text(encoding="utf-8"))
    stored = {"base", "chunks", "tail"}
    reached = [f"line {n.lineno}: .{n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr in stored]
    private = [f"line {n.lineno}: {n.attr}" for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr.startswith("_")
               and isinstance(n.value, ast.Name) and n.value.id == "T"]
    assert reached + private == []
