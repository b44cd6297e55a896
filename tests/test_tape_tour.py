"""The REPL tour in examples/ runs to the end and its persistence claim holds."""

import runpy
from pathlib import Path

import pytest

TOUR = Path(__file__).resolve().parent.parent / "examples" / "repl_tour.py"


def test_repl_tour_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """Running examples/repl_tour.py prints a tape table and reports the old tape unchanged."""
    runpy.run_path(str(TOUR), run_name="__main__")
    out = capsys.readouterr().out
    assert out.count("id  op") >= 2  # the full table and the tail of a branch
    assert "old tape unchanged and shared by both: True" in out
