"""A terminal that goes away, with the real thing: a pseudo-terminal whose master side closes.

Over ssh, a dropped connection closes the terminal: the kernel sends SIGHUP to the session
and from then on every write to the terminal fails with EIO. The run must still save its last
completed step, exit 129 and say so in one line where standard error still works. Signals
that come while the program is still loading its modules are one line too, never a
``KeyboardInterrupt`` traceback. No test asserts a time; the timeouts only turn a hang into a
failure.
"""

from __future__ import annotations

import fcntl
import os
import select
import signal
import subprocess
import sys
import termios
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import NAMES, TINY, _env

from functional_gpt import checkpoint as C

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux pseudo-terminals")
LONG = ["--data", "names.txt", "--steps", "100000", *TINY]  # never finishes within a test
STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("terminal")
    (d / "names.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return d


_STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _on_terminal(slave: int):
    def become_its_session() -> None:
        """In the child: a session of its own whose controlling terminal is the pty, as a
        login shell's job is (so closing the master hangs it up), with default signals."""
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for sig in STATUS:
            signal.signal(sig, signal.SIG_DFL)

    return become_its_session


def read_until(master: int, count: int, word: bytes) -> bytes:
    """Read the terminal until ``word`` has appeared ``count`` times; fail after 60 s of silence."""
    seen = b""
    while seen.count(word) < count:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, f"nothing more on the terminal: {seen[-200:]!r}"
        seen += os.read(master, 4096)
    return seen


def last_step_shown(screen: bytes) -> int:
    """The step of the live line's last complete drawing."""
    drawings = [d for d in screen.split(b"\r") if d.startswith(b"step ") and b" left" in d]
    return int(drawings[-1].split()[1])


@pytest.mark.parametrize("stderr_on_terminal", [False, True], ids=["stderr-piped", "stderr-tty"])
def test_a_hung_up_terminal_saves_the_last_step_and_exits_129(work, tmp_path,
                                                              stderr_on_terminal):
    ckpt = tmp_path / "c.json"
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "functional_gpt", *LONG, "--save", str(ckpt)],
            cwd=work, env=_env(work), stdin=slave, stdout=slave,
            stderr=slave if stderr_on_terminal else subprocess.PIPE,
            preexec_fn=_on_terminal(slave),
        )
        _STARTED.append(proc)
    finally:
        os.close(slave)
    screen = read_until(master, 3, b"steps/s")  # the live line, drawn on a terminal
    shown = last_step_shown(screen)
    os.close(master)  # the connection drops: the kernel hangs the terminal up
    try:
        os.kill(proc.pid, signal.SIGHUP)  # and the login shell passes SIGHUP on to its job
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err  # not 1 (the EIO), not 120 (a failed flush at exit)
    step = C.load(ckpt).state.adam.step  # a whole checkpoint ...
    assert step >= shown >= 1  # ... of at least the last step the user saw
    if not stderr_on_terminal:
        lines = err.decode().splitlines()
        assert lines == [f"functional-gpt: hung up (SIGHUP) after step {step} of 100000; "
                         f"saved it to {ckpt}"]


@pytest.mark.parametrize("explain", [[], ["--explain"]], ids=["sample", "sample-explain"])
def test_sample_on_a_hung_up_terminal_exits_129_with_one_line(work, explain):
    from functional_gpt import train

    run = train.prepare(NAMES, seed=3, n_embd=4, n_head=2, block_size=8)
    model = work / "model.json"
    C.save(model, C.Checkpoint(run.state, run.tokenizer, 3, run.rng, 1))
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "functional_gpt", "sample", "--load", str(model),
             "--samples", "10000000", *explain],
            cwd=work, env=_env(work), stdin=slave, stdout=slave, stderr=subprocess.PIPE,
            preexec_fn=_on_terminal(slave),
        )
        _STARTED.append(proc)
    finally:
        os.close(slave)
    read_until(master, 3, b"sample ")  # names stream onto the terminal
    os.close(master)
    try:
        os.kill(proc.pid, signal.SIGHUP)
    except ProcessLookupError:
        pass
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 129, err  # not 120: what the terminal could not take is dropped
    assert err.decode().splitlines() == ["functional-gpt: hung up (SIGHUP)"]


# A child that runs the command line as `python -m functional_gpt` does, hung up twice as a
# dropped terminal is (the kernel, then the login shell): once while the command runs (when it
# reads its checkpoint) and once more just after the command has answered the first.
_HUNG_UP_TWICE = """
import os, runpy, signal, sys
from functional_gpt import checkpoint, cli

def hang_up():
    os.kill(os.getpid(), signal.SIGHUP)
    for _ in range(1000):  # the handler runs here, between two instructions
        pass

def load(path):
    hang_up()
    raise AssertionError("the first hang-up did not stop the command")

command_line = cli.main

def main(argv=None, stops=None):
    status = command_line(argv, stops)
    hang_up()
    return status

checkpoint.load, cli.main = load, main
sys.argv = ["functional-gpt", "sample", "--load", "model.json"]
runpy.run_module("functional_gpt", run_name="__main__", alter_sys=True)
"""


def test_a_second_hang_up_after_the_command_answered_the_first_changes_nothing(work):
    proc = subprocess.run([sys.executable, "-c", _HUNG_UP_TWICE], cwd=work, env=_env(work),
                          capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in STATUS])
    assert proc.returncode == 129, proc.stderr
    assert proc.stderr.splitlines() == ["functional-gpt: hung up (SIGHUP)"]


# A child that loads the command line as `python -m functional_gpt` does, and sends itself
# a signal while the modules load (when `tape` is looked for): deterministic, unlike a race.
_SIGNAL_WHILE_LOADING = """
import os, runpy, sys
from importlib.abc import MetaPathFinder

class SignalWhileLoading(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "functional_gpt.tape":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), {signum})
        return None

sys.meta_path.insert(0, SignalWhileLoading())
sys.argv = ["functional-gpt", *{args!r}]
runpy.run_module("functional_gpt", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("sig", list(STATUS), ids=lambda s: signal.Signals(s).name)
def test_a_signal_while_the_program_loads_is_one_line(work, sig):
    script = _SIGNAL_WHILE_LOADING.format(signum=int(sig), args=[*LONG, "--save", "c.json"])
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=work, env=_env(work),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in STATUS])
    _STARTED.append(proc)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == STATUS[sig], err
    words = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated",
             signal.SIGHUP: "hung up"}[sig]
    assert err.splitlines() == [f"functional-gpt: {words} ({signal.Signals(sig).name})"]
    assert out == "" and not (work / "c.json").exists()  # stopped before any work
