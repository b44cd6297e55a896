"""The linter and the type checker are part of the test command."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_ruff_finds_nothing():
    """ruff reports no problem in the package, tests, examples, benchmarks and scripts."""
    dirs = [d for d in ("functional_gpt", "tests", "examples", "benchmarks", "scripts")
            if (ROOT / d).is_dir()]
    result = _run("ruff", "check", *dirs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    """mypy type-checks the package cleanly."""
    result = _run("mypy", "functional_gpt")
    assert result.returncode == 0, result.stdout + result.stderr


# Examples run, with their claims checked, by a test of their own (test_examples_second_order).
CHECKED_ELSEWHERE = {"newton.py", "sharpness.py"}


@pytest.mark.slow
def test_every_example_runs():
    """Every script in examples/ runs to completion with exit status 0."""
    scripts = sorted((ROOT / "examples").glob("*.py"))
    assert scripts, "examples/ has no scripts"
    assert CHECKED_ELSEWHERE <= {script.name for script in scripts}
    for script in scripts:
        if script.name in CHECKED_ELSEWHERE:
            continue
        result = subprocess.run([sys.executable, str(script)], cwd=ROOT,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{script.name}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py")))
def test_benchmarks_run_at_a_tiny_size(script):
    """Each benchmark still runs (at --quick size) and prints its table; no time is asserted."""
    if script == "bench_instructions.py" and shutil.which("valgrind") is None:
        pytest.skip("bench_instructions.py counts instructions with valgrind, not installed here")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{script}:\n{result.stdout}\n{result.stderr}"
    assert "| --- |" in result.stdout, result.stdout


def test_the_fingerprint_of_a_run_is_its_floats() -> None:
    """The same run twice gives one fingerprint; another seed, whose losses differ, another."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fingerprint import fingerprint

    docs = ["emma", "olivia", "ava", "isabella", "sophia", "mia"]
    first, (losses, _) = fingerprint(docs, 3, 2)
    again, (losses_again, _) = fingerprint(docs, 3, 2)
    other, (other_losses, _) = fingerprint(docs, 3, 2, seed=7)
    assert first == again and losses == losses_again
    assert other_losses != losses and other != first
