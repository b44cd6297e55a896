"""Every command that reads a checkpoint, on real checkpoints mutated at random.

A checkpoint is checked once, whole, when it is read (``checkpoint.load``), so
each command either works on it or exits 1 with one line naming the file:
never a traceback, never a picture or a list of names computed from numbers
that overflow. The commands run in this process (``cli.main`` with captured
output), which is fast enough for a property.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from functional_gpt import checkpoint, inside
from functional_gpt.cli import main
from functional_gpt.evaluate import weights_of

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper"]
TINY = ["--n-embd", "4", "--n-head", "1", "--block-size", "10"]


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``(status, stdout, stderr)`` of the command line ``argv``, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(argv)
        except SystemExit as e:  # usage errors exit 2 through argparse
            status = e.code if isinstance(e.code, int) else 1
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A directory with a data file and a real 3-step checkpoint of it, and that JSON data."""
    folder = tmp_path_factory.mktemp("readers")
    (folder / "names.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    status, _, err = run_main(["train", "--data", str(folder / "names.txt"), "--steps", "3",
                               *TINY, "--samples", "0", "--quiet",
                               "--save", str(folder / "real.json")])
    assert status == 0, err
    return folder, json.loads((folder / "real.json").read_text(encoding="utf-8"))


def commands(ckpt: Path, folder: Path) -> list[list[str]]:
    """Every command line that reads the checkpoint ``ckpt``."""
    load = ["--load", str(ckpt)]
    return [
        ["sample", *load, "--samples", "3", "--quiet"],
        ["sample", *load, "--samples", "2", "--explain"],
        ["eval", *load],
        ["score", *load, "emma"],
        ["attention", *load, "emma", "-o", str(folder / "attention.svg")],
        ["embeddings", *load, "-o", str(folder / "embeddings.svg")],
        ["train", "--resume", str(ckpt), "--steps", "4", "--samples", "2", "--quiet"],
    ]


# ------------------------------------------------------------------ mutations


def paths(obj: Any, where: tuple = ()) -> list[tuple]:
    """The path (keys and indexes) of every node of the JSON data ``obj``."""
    found = [where]
    if isinstance(obj, dict):
        for key, value in obj.items():
            found += paths(value, (*where, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj):
            found += paths(value, (*where, i))
    return found


def replaced(obj: Any, where: tuple, new: Any) -> Any:
    """A copy of ``obj`` with the node at ``where`` replaced by ``new`` (``KeyError``: deleted)."""
    if not where:
        return new
    head, rest = where[0], where[1:]
    out = dict(obj) if isinstance(obj, dict) else list(obj)
    if new is KeyError and not rest:
        del out[head]
    else:
        out[head] = replaced(obj[head], rest, new)
    return out


def scaled(obj: Any, factor: float) -> Any:
    """``obj`` with every number in it multiplied by ``factor``."""
    if isinstance(obj, dict):
        return {k: scaled(v, factor) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scaled(v, factor) for v in obj]
    if isinstance(obj, float):
        return obj * factor
    return obj


values = st.one_of(
    st.sampled_from([10**400, -(10**400), 10**20, 1e154, -1e300, 1e300, 5e-324, 0, -1, 2**64,
                     True, None, "", "0.5", [], {}, [1.0], "\n", "ab"]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(),
    st.text(max_size=3),
)


@st.composite
def mutants(draw: st.DrawFn, obj: dict[str, Any]) -> Any:
    """``obj`` changed in one way: a value, a type, a shape, a key, the vocabulary, the scale."""
    kind = draw(st.sampled_from(["value", "delete", "extra key", "vocab", "scale", "matrix"]))
    event(kind)
    if kind == "scale":  # every weight, moment or hyperparameter far too large
        part = draw(st.sampled_from(["params", "optimizer"]))
        factor = draw(st.sampled_from([1e154, 1e300, -1e200, 1e30]))
        return {**obj, part: scaled(obj[part], factor)}
    if kind == "vocab":
        vocab = list(obj["vocab"])
        i = draw(st.integers(0, len(vocab) - 1))
        vocab[i] = draw(st.one_of(st.sampled_from(["\n", "\r", "\t", "\x1b", "ab", "", " ",
                                                   "\u2028", "z", "\x00"]), st.text(max_size=2)))
        return {**obj, "vocab": sorted(vocab) if draw(st.booleans()) else vocab}
    if kind == "matrix":  # a whole row or matrix changes shape
        name = draw(st.sampled_from(sorted(obj["params"])))
        rows = obj["params"][name]
        shape = draw(st.sampled_from(["drop row", "extra row", "short row", "flat"]))
        new_rows = {"drop row": rows[:-1], "extra row": rows + rows[:1],
                    "short row": [rows[0][:-1], *rows[1:]], "flat": sum(rows, [])}[shape]
        return {**obj, "params": {**obj["params"], name: new_rows}}
    where = draw(st.sampled_from(paths(obj)[1:]))
    if kind == "delete":
        return replaced(obj, where, KeyError)
    if kind == "extra key":
        parent = where[:-1]
        node = obj
        for key in parent:
            node = node[key]
        if isinstance(node, dict):
            return replaced(obj, parent, {**node, "surprise": draw(values)})
        return replaced(obj, parent, [*node, draw(values)])
    return replaced(obj, where, draw(values))


# ------------------------------------------------------------------ the property


def names_were_right(argv: list[str], out: str) -> None:
    """``sample --quiet --samples 3`` and ``train ... --samples 2 --quiet``: one name a line."""
    if "--quiet" in argv:
        want = int(argv[argv.index("--samples") + 1])
        assert len(out.splitlines()) == want, out


def picture_was_right(path: Path) -> None:
    """A picture drawn from a checkpoint whose projection or reading is finite."""
    ckpt = checkpoint.load(path)
    found = inside.embeddings(weights_of(ckpt.state), ckpt.tokenizer)
    numbers = [found.tokens.total_variance, *found.tokens.variances,
               found.positions.total_variance, *found.positions.variances,
               *(x for p in found.tokens.coords for x in p)]
    assert all(map(math.isfinite, numbers)), numbers


# Each example runs seven commands: few examples (READERS_EXAMPLES=400 for a long search).
@settings(max_examples=int(os.environ.get("READERS_EXAMPLES", "25")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_every_reader_works_or_says_one_line(real, data) -> None:
    folder, obj = real
    mutant = data.draw(mutants(obj))
    path = folder / "mutant.json"
    path.write_text(json.dumps(mutant), encoding="utf-8")
    for argv in commands(path, folder):
        status, out, err = run_main(argv)
        assert "Traceback" not in err, (argv, err)
        if status == 0:
            names_were_right(argv, out)
            if argv[0] == "embeddings":
                picture_was_right(path)
            continue
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("functional-gpt: error: "), (argv, err)
        if status == 2:  # a text the (changed) vocabulary cannot spell; the checkpoint was fine
            assert argv[0] in ("score", "attention") and "not in the vocabulary" in err, (argv, err)
        else:
            assert status == 1, (argv, status, err)


@pytest.mark.parametrize("mutation, words", [
    (lambda o: replaced(o, ("params", "wte", 0, 0), 10**400), "too large"),
    (lambda o: {**o, "params": scaled(o["params"], 1e154)}, "larger than"),
    (lambda o: {**o, "params": scaled(o["params"], 1e300)}, "larger than"),
    (lambda o: replaced(o, ("vocab", 0), "\n"), "printable"),
])
def test_the_issue_cases_are_refused_by_every_reader_with_the_same_line(real, mutation, words):
    folder, obj = real
    path = folder / "case.json"
    path.write_text(json.dumps(mutation(obj)), encoding="utf-8")
    seen = set()
    for argv in commands(path, folder):
        status, _, err = run_main(argv)
        assert status == 1 and len(err.splitlines()) == 1, (argv, err)
        assert str(path) in err and words in err, (argv, err)
        seen.add(err)
    assert len(seen) == 1  # one check, at the read: every command says the same
