"""Pictures of training: reading --log-json files, the moving average, and `functional-gpt plot`.

The picture is checked as a file: a real PNG or SVG, read back with
matplotlib, with the runs' colours on it.
"""

import json
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import finite

from functional_gpt import plot
from functional_gpt.cli import main

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is absent")


def write_log(path, losses, extra=True):
    with open(path, "w", encoding="utf-8") as f:
        for step, loss in enumerate(losses, 1):
            row = {"step": step, "loss": loss}
            if extra:
                row.update(lr=0.01, ms=1.5)
            f.write(json.dumps(row) + "\n")
    return path


# ---------------------------------------------------------------- pure parts


@given(st.lists(finite(0.0, 10.0), min_size=1, max_size=50), st.booleans())
def test_parse_log_reads_back_what_train_writes(losses, blank_lines) -> None:
    lines = [json.dumps({"step": i, "loss": x, "lr": 0.01, "ms": 2.0})
             for i, x in enumerate(losses, 1)]
    text = ("\n\n" if blank_lines else "\n").join(lines) + "\n"
    curve = plot.parse_log(text, "run.jsonl")
    assert curve == plot.LossCurve("run.jsonl", tuple(range(1, len(losses) + 1)), tuple(losses))


@pytest.mark.parametrize("line, why", [
    ("not json", "not a JSON object"),
    ("[1, 2]", "not a JSON object"),
    ('{"loss": 1.0}', '"step" is not a whole number'),
    ('{"step": 1.5, "loss": 1.0}', '"step" is not a whole number'),
    ('{"step": true, "loss": 1.0}', '"step" is not a whole number'),
    ('{"step": 1}', '"loss" is not a finite number'),
    ('{"step": 1, "loss": NaN}', '"loss" is not a finite number'),
    ('{"step": 1, "loss": Infinity}', '"loss" is not a finite number'),
    ('{"step": 1, "loss": "2.0"}', '"loss" is not a finite number'),
])
def test_parse_log_names_the_bad_line(line, why) -> None:
    text = '{"step": 1, "loss": 2.0}\n' + line + "\n"
    with pytest.raises(plot.PlotError) as info:
        plot.parse_log(text, "x.jsonl")
    assert str(info.value) == f"x.jsonl:2: {why}"


@given(st.lists(finite(-100.0, 100.0), max_size=40), st.integers(1, 12))
def test_moving_average_is_the_mean_of_the_trailing_window(xs, window) -> None:
    got = plot.moving_average(xs, window)
    assert len(got) == len(xs)
    for i, g in enumerate(got):
        chunk = xs[max(0, i + 1 - window): i + 1]
        assert g == pytest.approx(sum(chunk) / len(chunk), abs=1e-9)


def test_moving_average_refuses_a_bad_window() -> None:
    with pytest.raises(ValueError, match="window"):
        plot.moving_average([1.0], 0)


# ------------------------------------------------------------------- pictures


def colour_fraction(png_path, rgb) -> float:
    """Fraction of the picture's pixels within a small distance of ``rgb`` (0-1 floats)."""
    import numpy as np
    from matplotlib import image

    pixels = image.imread(png_path)[..., :3]
    near = np.abs(pixels - np.array(rgb)).max(axis=-1) < 0.08
    return float(near.mean())


def test_cli_plot_draws_each_run_in_its_own_colour(tmp_path, capsys) -> None:
    from matplotlib.colors import to_rgb

    a = write_log(tmp_path / "fast.jsonl", [3.3 - 0.002 * i for i in range(400)])
    b = write_log(tmp_path / "slow.jsonl", [3.3 - 0.001 * i for i in range(400)], extra=False)
    out = tmp_path / "loss.png"
    assert main(["plot", str(a), str(b), "-o", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    data = out.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    assert colour_fraction(out, to_rgb("C0")) > 0.001  # the first run's lines
    assert colour_fraction(out, to_rgb("C1")) > 0.001  # the second run's lines
    assert colour_fraction(out, to_rgb("C2")) < 0.0001  # no third run


def test_cli_plot_writes_svg_with_the_legend(tmp_path) -> None:
    a = write_log(tmp_path / "run-a.jsonl", [2.0, 1.5, 1.2, 1.0])
    out = tmp_path / "loss.svg"
    assert main(["plot", str(a), "-o", str(out), "--window", "2"]) == 0
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    assert "run-a.jsonl" in text and "the mean of the last 2" in text


@pytest.mark.parametrize("make, args, status, message", [
    (None, ["plot", "{d}/missing.jsonl", "-o", "{d}/x.png"], 1, "cannot read"),
    ("bad", ["plot", "{d}/bad.jsonl", "-o", "{d}/x.png"], 1, "bad.jsonl:1: not a JSON object"),
    ("empty", ["plot", "{d}/empty.jsonl", "-o", "{d}/x.png"], 1, "no steps in the log"),
    ("good", ["plot", "{d}/good.jsonl", "-o", "{d}/x.jpg"], 2, "must end in .png or .svg"),
    ("good", ["plot", "{d}/good.jsonl", "-o", "{d}/x.png", "--window", "0"], 2, "--window"),
    ("good", ["plot", "{d}/good.jsonl", "-o", "{d}/no/such/dir/x.png"], 1, "cannot write"),
    ("good", ["plot", "{d}/good.jsonl"], 2, "required"),
])
def test_cli_plot_bad_inputs_give_one_line(tmp_path, capsys, make, args, status, message):
    contents = {"bad": "oops\n", "empty": "", "good": '{"step": 1, "loss": 1.0}\n'}
    if make:
        (tmp_path / f"{make}.jsonl").write_text(contents[make])
    argv = [a.format(d=tmp_path) for a in args]
    if status == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == status
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("functional-gpt: error:")
    assert not (tmp_path / "x.png").exists()


def test_cli_plot_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch) -> None:
    a = write_log(tmp_path / "run.jsonl", [2.0, 1.0])
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    assert main(["plot", str(a), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("functional-gpt: error: plotting needs matplotlib: "
                   "pip install 'functional_gpt[plot]'")
    assert not (tmp_path / "x.png").exists()
