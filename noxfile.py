"""The test suite on every CPython from 3.10 on that this machine has, with nox.

    nox                          # every session; a missing interpreter is skipped, saying so
    nox -s tests-3.12            # one Python
    nox -s pure-pyrsistent       # 3.11 without pyrsistent's C extension (as 3.13+ always is)

Each session installs the package with its test extra into a fresh virtual
environment and runs ``python -m pytest -m "not slow"``: doctests, properties,
the exactness tests against the mutable reference, ruff, mypy. The tests marked
``slow`` (the tour, the examples and the benchmarks run as a user runs them, the
memory limits) run once, in CI's first run, the README's command, on the
machine's default Python. Extra arguments go to pytest: ``nox -- -x -q``.
"""

from __future__ import annotations

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.error_on_missing_interpreters = False  # skip a Python this machine lacks
nox.options.reuse_existing_virtualenvs = False


def _pytest(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run(
        "python", "-c",
        "import sys, pyrsistent; print('python', sys.version.split()[0], '| pvector:',"
        " type(pyrsistent.pvector()).__module__ + '.' + type(pyrsistent.pvector()).__name__)",
    )
    session.run("python", "-m", "pytest", "-m", "not slow", *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The whole suite on one Python."""
    _pytest(session)


@nox.session(python="3.11", name="pure-pyrsistent")
def pure_pyrsistent(session: nox.Session) -> None:
    """The whole suite with pyrsistent's pure-Python PVector, as on Python 3.13 and newer."""
    session.env["PYRSISTENT_NO_C_EXTENSION"] = "1"
    _pytest(session)
