"""Output streams, and no picture grows with the square of the model.

``sample --explain`` prints each name as it is drawn (a reader that leaves after two lines
gets them at once, and the command stops quietly); ``embeddings`` labels only what a reader
can see, so a model with thousands of positions gets a readable picture (labels that never
cover each other, as many as fit) in time that grows with the model, and ``attention`` labels
as many tokens of a large vocabulary as fit, always the true next ones; characters that no font
can draw are one warning line, not one per glyph. No test asserts a time: the timeouts only
turn a hang into a failure, and benchmarks/bench_embeddings.py measures the time.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import _env

from functional_gpt import checkpoint, pictures, train

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is absent")


def save_model(path: Path, docs: list[str], block_size: int = 8) -> Path:
    run = train.prepare(docs, seed=3, n_embd=4, n_head=2, block_size=block_size)
    *_, last = train.training(run.state, run.tokens, 1)
    checkpoint.save(path, checkpoint.Checkpoint(last.state, run.tokenizer, 3, run.rng, 1))
    return path


def command(cwd: Path, *args: str, **options) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "functional_gpt", *args], cwd=cwd,
                            env=_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_DFL),
                            **options)


# ------------------------------------------------------------------ sample --explain


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX pipes")
def test_sample_explain_streams_its_first_lines_and_stops_when_the_reader_leaves(tmp_path):
    model = save_model(tmp_path / "m.json", ["emma", "olivia", "ava", "mia"])
    # Ten million explained names would take hours and gigabytes if drawn before printing.
    proc = command(tmp_path, "sample", "--load", str(model), "--explain",
                   "--samples", "10000000")
    assert proc.stdout is not None
    try:
        seen = b""
        while seen.count(b"\n") < 2:  # as `| head -2` reads
            ready, _, _ = select.select([proc.stdout], [], [], 60)
            assert ready, f"no second line: {seen!r}"
            chunk = os.read(proc.stdout.fileno(), 4096)
            assert chunk, f"the command ended: {seen!r}"
            seen += chunk
        header, first = seen.decode().split("\n")[:2]
        assert header.startswith("p: each token's probability at temperature 0.5")
        assert re.fullmatch(r"sample  1: \w*", first)
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 141 and err == b""


# ------------------------------------------------------------------------ embeddings


def boxes(xs, ys, labels, spots):
    """Each drawn label's box in points, from the offsets: as draw_embeddings places text
    (about 7 points a character and 12 high, beside the point at the offset's corner)."""
    scale = 400.0 / max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)
    out = []
    for x, y, label, spot in zip(xs, ys, labels, spots):
        if spot is not None:
            dx, dy = spot
            w, h = 7.0 * len(label) + 2.0, 12.0
            left = x * scale + dx - (w if dx < 0 else 0.0)
            bottom = y * scale + dy - (h if dy < 0 else 0.0)
            out.append((left, bottom, left + w, bottom + h))
    return out


def overlapping(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


coordinates = st.floats(-10.0, 10.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=400))
def test_labels_never_cover_labels_and_small_panels_label_every_point(points) -> None:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    labels = [str(i) for i in range(len(points))]
    spots = pictures.label_offsets(xs, ys, labels)
    assert len(spots) == len(points) and spots[0] is not None  # the first always has room
    drawn = boxes(xs, ys, labels, spots)
    if len(points) <= pictures.LABEL_EVERY_POINT:
        assert len(drawn) == len(points)
    else:
        for i, a in enumerate(drawn):
            assert not any(overlapping(a, b) for b in drawn[i + 1:]), (a, drawn)


def test_a_long_line_of_positions_gets_as_many_labels_as_fit() -> None:
    n = 20_000
    xs, ys = [i / n for i in range(n)], [((i * 7919) % 101) / 1e4 for i in range(n)]
    labels = [str(i) for i in range(n)]
    drawn = boxes(xs, ys, labels, pictures.label_offsets(xs, ys, labels))
    # a strip 400 points long and about 8 high: a few dozen labels of up to 5 digits fit
    assert 15 <= len(drawn) <= 200
    assert all(not overlapping(a, b) for i, a in enumerate(drawn) for b in drawn[i + 1:])


def test_embeddings_of_a_long_block_draws_readable_labels(tmp_path) -> None:
    from functional_gpt.cli import main

    model = save_model(tmp_path / "m.json", ["emma", "olivia"], block_size=600)
    out = tmp_path / "e.svg"
    assert main(["embeddings", "--load", str(model), "-o", str(out)]) == 0
    texts = re.findall(r"<!-- (\d+) -->", out.read_text())  # the SVG names each text drawn
    positions = [int(t) for t in texts if int(t) < 600]
    assert "0" in texts and 10 <= len(positions) <= 300  # some, not all 600 on each other


# ------------------------------------------------------------------- missing glyphs


def test_characters_no_font_has_are_one_warning_line(tmp_path, capsys) -> None:
    from functional_gpt.cli import main

    hieroglyphs = [chr(0x13000 + i) for i in range(60)]
    docs = ["".join(hieroglyphs[i:i + 3]) for i in range(0, 60, 3)] + ["emma"]
    model = save_model(tmp_path / "m.json", docs)
    out = tmp_path / "e.png"
    assert main(["embeddings", "--load", str(model), "-o", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert stdout == f"wrote {out}\n" and out.read_bytes().startswith(b"\x89PNG")
    lines = stderr.splitlines()
    assert len(lines) == 1, lines[:5]  # not one per glyph
    assert lines[0].startswith("functional-gpt: warning: the fonts cannot draw 60 characters, "
                               "drawn as boxes: '\U00013000' '\U00013001'")


def test_attention_over_a_large_vocabulary_labels_what_fits_and_the_true_next(
        tmp_path, capsys, monkeypatch) -> None:
    from functional_gpt.cli import main

    # A narrower panel than the real 40 inches, so that a small vocabulary overflows it too.
    monkeypatch.setattr(pictures, "MAX_PROBS_WIDTH", 8.0)
    letters = [chr(0x4E00 + i) for i in range(300)]  # CJK ideographs, 300 tokens
    docs = ["".join(letters[i:i + 4]) for i in range(0, 300, 4)]
    model = save_model(tmp_path / "m.json", docs)
    out = tmp_path / "a.svg"
    text = letters[201] + letters[17]
    assert main(["attention", "--load", str(model), text, "-o", str(out)]) == 0
    capsys.readouterr()
    drawn = set(re.findall(r"<!-- (\S) -->", out.read_text()))  # each one-character text
    vocabulary = drawn & set(letters)
    assert {letters[201], letters[17], letters[0]} <= vocabulary  # read, next, and the first
    # 8 inches hold about 60 labels of 5 points: as many as can be read, not 300 on each other
    assert 20 <= len(vocabulary) <= 100
