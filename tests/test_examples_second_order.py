"""The examples of gradients of gradients, run as a user runs them, with their claims checked."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # run once in CI, not in every nox session (see noxfile.py)

ROOT = Path(__file__).resolve().parent.parent


def run(script: str, *args: str) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_newton_converges_in_a_handful_of_steps_where_gradient_descent_needs_hundreds():
    out = run("newton.py")
    newton, descent = map(int, re.search(r"Newton: (\d+) steps; gradient descent: (\d+) steps",
                                         out).groups())
    assert newton <= 10 and descent >= 100, out
    assert float(re.search(r"the losses differ by (\S+)", out).group(1)) < 1e-9


def test_sharpness_prints_both_eigenvalues_and_draws_them(tmp_path):
    picture = tmp_path / "sharpness.png"
    out = run("sharpness.py", "--steps", "20", "--names", "2", "--iterations", "3",
              "--plot", str(picture))
    before, after = map(float, re.search(r"largest eigenvalue: (\S+) at init, (\S+) after",
                                         out).groups())
    assert before != after
    if "drew" in out:
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
