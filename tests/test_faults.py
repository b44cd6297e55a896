"""Faults around the process, with the real thing: signals, vanishing outputs, hostile paths.

Signals are real signals sent to a real command and to its whole process group (as a terminal
and ``timeout`` send them); a full disk is ``/dev/full`` or a small tmpfs (mounted when the
tests run as root, skipped otherwise); FIFOs are real ``os.mkfifo`` pipes. Downloads are in
``test_downloads.py``. The property every test checks is the issue's: nothing lost (the last
completed step is in a whole checkpoint), one line on stderr naming the real problem, the
documented exit status, and no traceback, hang or unbounded memory. No test asserts a time;
the subprocess timeouts are only there so that a hang fails instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli import ERROR, NAMES, TINY, _env, run

from functional_gpt import checkpoint as C
from functional_gpt import plot
from functional_gpt.cli import main

posix = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
LONG = ["--data", "names.txt", "--steps", "100000", *TINY]  # never finishes within a test


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("faults")
    (d / "names.txt").write_text("\n".join([*NAMES, "zoë"]) + "\n", encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def model(work: Path) -> Path:
    """A small trained checkpoint."""
    proc = run("--data", "names.txt", "--steps", "3", *TINY, "--samples", "0", "--quiet",
               "--save", "model.json", cwd=work)
    assert proc.returncode == 0, proc.stderr
    return work / "model.json"


def default_signals() -> None:
    """In the child: the stop signals at their defaults, whatever the test runner left."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


_STARTED: list[subprocess.Popen[str]] = []  # every process a test started, ended after it


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    """A test that fails half-way (or is interrupted) must not leave its process running."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(cwd: Path, *args: str, prefix: tuple[str, ...] = (),
          stdout: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    """The command in a new session, so that its process group can be signalled as a whole."""
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "functional_gpt", *args], cwd=cwd, env=_env(cwd),
        stdout=stdout, stderr=subprocess.PIPE, text=True, start_new_session=True,
        preexec_fn=default_signals,
    )
    _STARTED.append(proc)
    return proc


def wait_for_step(proc: subprocess.Popen[str], step: int) -> list[str]:
    """Read stdout until the line of ``step`` (or a later one); return the lines read."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if line.startswith("step ") and int(line.split()[1]) >= step:
            return seen
    raise AssertionError(f"the run ended before step {step}: {seen[-3:]}")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def one_line(err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, err)
    return lines[0]


def saved_step(path: Path) -> int:
    return C.load(path).state.adam.step  # loads only a whole, consistent checkpoint


# ------------------------------------------------------------------------ signals


@posix
@pytest.mark.skipif(shutil.which("timeout") is None, reason="needs coreutils' timeout")
@pytest.mark.parametrize("sig, status, words", [
    (signal.SIGINT, 130, "interrupted (SIGINT)"),
    (signal.SIGTERM, 143, "terminated (SIGTERM)"),
    (signal.SIGHUP, 129, "hung up (SIGHUP)"),
])
def test_a_signal_to_the_whole_group_under_timeout_saves(work, tmp_path, sig, status, words):
    # Ctrl-C in a terminal signals the whole group; `timeout` passes the signal on again.
    ckpt = tmp_path / "c.json"
    proc = start(work, *LONG, "--save", str(ckpt), prefix=("timeout", "120"))
    printed = wait_for_step(proc, 3)
    os.killpg(proc.pid, sig)
    rest, err = finish(proc)
    assert proc.returncode == status, err
    line = one_line(err, f"functional-gpt: {words} after step ")
    k = saved_step(ckpt)
    assert f"after step {k} of 100000; saved it to {ckpt}" in line
    steps = [int(s.split()[1]) for s in printed + rest.splitlines() if s.startswith("step ")]
    assert k >= steps[-1] >= 3  # the last step shown is saved
    assert "inference" not in rest


@posix
def test_a_burst_of_mixed_signals_still_saves_and_reports_one(work, tmp_path):
    # Schedulers send SIGTERM twice; an impatient user adds Ctrl-C and the terminal a SIGHUP.
    ckpt = tmp_path / "c.json"
    proc = start(work, *LONG, "--save", str(ckpt))
    wait_for_step(proc, 3)
    burst = [signal.SIGTERM, signal.SIGTERM] + [signal.SIGINT, signal.SIGHUP] * 10
    for sig in burst:
        os.killpg(proc.pid, sig)
    _, err = finish(proc)
    # the kernel hands pending signals over lowest number first, so any of them may be first
    words = {129: "hung up (SIGHUP)", 130: "interrupted (SIGINT)", 143: "terminated (SIGTERM)"}
    assert proc.returncode in words, err
    one_line(err, f"{words[proc.returncode]} after step", "saved it to")
    assert saved_step(ckpt) >= 3


@posix
def test_signals_during_the_final_save_stop_the_run_after_it(work, tmp_path, monkeypatch,
                                                            capsys):
    # Deterministic: real signals to this very process while the final save is under way.
    saves = []
    real_save = C.save

    def save_under_fire(path, ckpt):
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        real_save(path, ckpt)
        saves.append(ckpt.state.adam.step)

    monkeypatch.setattr(C, "save", save_under_fire)
    ckpt = tmp_path / "final.json"
    status = main(["--data", str(work / "names.txt"), "--steps", "4", *TINY, "--samples", "5",
                   "--save", str(ckpt)])
    out, err = capsys.readouterr()
    assert status == 143  # not 0: the signal is not swallowed
    assert saves == [4] and saved_step(ckpt) == 4  # the save itself was not cut short
    one_line(err, "terminated (SIGTERM) after step 4 of 4", f"saved it to {ckpt}")
    assert "inference" not in out and "sample " not in out  # no sampling after the signal


@posix
def test_sigterm_during_sampling_exits_143_with_the_checkpoint_whole(work, tmp_path):
    ckpt = tmp_path / "c.json"
    proc = start(work, "--data", "names.txt", "--steps", "3", *TINY, "--samples", "10000000",
                 "--save", str(ckpt))
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("sample  3:"):  # names stream while the run goes on
            break
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = finish(proc)
    assert proc.returncode == 143
    one_line(err, "terminated (SIGTERM)")
    assert saved_step(ckpt) == 3


# ---------------------------------------------------------------- outputs going away


@posix
def test_a_reader_that_goes_away_saves_and_exits_quietly(work, tmp_path):
    ckpt = tmp_path / "c.json"
    proc = start(work, *LONG, "--save", str(ckpt))  # as `functional-gpt ... | head`
    printed = wait_for_step(proc, 3)
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = finish(proc)
    assert proc.returncode == 141  # as a Unix tool stopped by SIGPIPE
    assert err == ""  # quiet
    assert saved_step(ckpt) >= int(printed[-1].split()[1])


@posix
def test_sample_streams_and_stops_quietly_when_the_reader_leaves(model, work):
    # Ten million names would take hours; the first ones arrive at once, one per line.
    proc = start(work, "sample", "--load", str(model), "--samples", "10000000")
    assert proc.stdout is not None
    first = [proc.stdout.readline() for _ in range(3)]
    assert [line.split(":")[0] for line in first] == ["sample  1", "sample  2", "sample  3"]
    proc.stdout.close()
    _, err = finish(proc)
    assert proc.returncode == 141 and err == ""


@posix
def test_score_streams_one_line_per_name_read(model, work):
    proc = subprocess.Popen(
        [sys.executable, "-m", "functional_gpt", "score", "--load", str(model), "-"],
        cwd=work, env=_env(work), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for name in ("emma", "ava"):
            proc.stdin.write(name + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()  # answered before the input ends
            assert line.rstrip().endswith(f"nats/token  {name}")
        proc.stdin.write("mia\nem!ma\nolivia\n")
        proc.stdin.close()
        proc.stdin = None  # closed here; communicate only reads
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2
    assert rest.rstrip().endswith("mia")  # the scores before the bad name are kept
    one_line(err, ERROR, "line 4", "'em!ma'", "'!'")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_disk_is_one_line_and_the_checkpoint_is_whole(work, tmp_path):
    ckpt = tmp_path / "c.json"
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "functional_gpt", "--data", "names.txt", "--steps", "5",
             *TINY, "--quiet", "--samples", "3", "--save", str(ckpt)],
            cwd=work, env=_env(work), stdout=full, stderr=subprocess.PIPE, text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    one_line(proc.stderr, ERROR, "cannot write standard output: No space left on device")
    assert saved_step(ckpt) == 5  # trained and saved before the names failed to print


@posix
def test_a_closed_stdout_is_one_line_and_a_run_that_prints_nothing_succeeds(work, tmp_path):
    def closed_stdout() -> None:
        os.close(1)

    def without_stdout(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "functional_gpt", *args], cwd=work,
                              env=_env(work), stderr=subprocess.PIPE, text=True, timeout=60,
                              preexec_fn=closed_stdout)

    failed = without_stdout("--data", "names.txt", "--steps", "2", *TINY)
    assert failed.returncode == 1
    one_line(failed.stderr, ERROR, "standard output", "Bad file descriptor")
    ckpt = tmp_path / "c.json"
    silent = without_stdout("--data", "names.txt", "--steps", "2", *TINY, "--quiet",
                            "--samples", "0", "--save", str(ckpt))
    assert silent.returncode == 0, silent.stderr
    assert saved_step(ckpt) == 2


def test_an_ascii_terminal_gets_escapes_not_a_traceback(model, work):
    env = {**_env(work), "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "functional_gpt", "score", "--load",
                           str(model), "zoë"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("zo\\xeb")


# ------------------------------------------------------------- a small, real disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root and a machine that lets it mount one; skipped otherwise)."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root on Linux")
    mnt = tmp_path / "disk"
    mnt.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def leave_free(disk: Path, free: int) -> None:
    """Fill ``disk`` with one file so that about ``free`` bytes stay free."""
    st = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - free))


def test_a_log_on_a_full_disk_stops_the_run_and_saves_it(work, tmp_path, small_disk):
    leave_free(small_disk, 8192)
    ckpt, log = tmp_path / "c.json", small_disk / "log.jsonl"
    proc = run(*LONG, "--save", str(ckpt), "--log-json", str(log), cwd=work, timeout=120)
    assert proc.returncode == 1
    one_line(proc.stderr, ERROR, f"cannot write --log-json {log}: No space left on device",
             "saved it to")
    complete = [json.loads(x) for x in log.read_bytes().split(b"\n")[:-1]]
    assert len(complete) >= 10
    assert saved_step(ckpt) >= complete[-1]["step"]


def test_stdout_on_a_full_disk_mid_run_saves_the_last_step(work, tmp_path, small_disk):
    leave_free(small_disk, 8192)
    ckpt = tmp_path / "c.json"
    with open(small_disk / "out.txt", "w") as out:
        proc = subprocess.run([sys.executable, "-m", "functional_gpt", *LONG,
                               "--save", str(ckpt)], cwd=work, env=_env(work), stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1
    one_line(proc.stderr, ERROR, "cannot write standard output: No space left on device",
             "stopped after step", "saved it to")
    lines = (small_disk / "out.txt").read_text().split("\n")[:-1]
    last_shown = int([x for x in lines if x.startswith("step ")][-1].split()[1])
    assert saved_step(ckpt) >= last_shown >= 10


def test_a_checkpoint_on_a_full_disk_keeps_the_last_whole_save(work, small_disk):
    ckpt = small_disk / "c.json"
    proc = run("--data", "names.txt", "--steps", "1", *TINY, "--samples", "0", "--quiet",
               "--save", str(ckpt), cwd=work)
    assert proc.returncode == 0
    one_save = ckpt.stat().st_size
    ckpt.unlink()
    leave_free(small_disk, one_save + one_save // 2)  # room for one save, not for two at once
    proc = run(*LONG, "--save", str(ckpt), "--save-every", "1", cwd=work, timeout=120)
    assert proc.returncode == 1
    one_line(proc.stderr, ERROR, f"cannot save checkpoint {ckpt}: No space left on device")
    assert saved_step(ckpt) >= 1  # the earlier save is whole
    assert not [p for p in small_disk.iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_disk_is_named_as_such(work, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    proc = run(*LONG, "--save", str(small_disk / "c.json"), cwd=work, timeout=60)
    assert proc.returncode == 1
    one_line(proc.stderr, ERROR, "cannot write --save", "Read-only file system")


# ------------------------------------------------------------------ dangerous paths


def sha(path: Path) -> bytes:
    return path.read_bytes()


@pytest.mark.parametrize("flags, words", [
    (["--save", "{data}"], "--save {data} is the --data file"),
    (["--log-json", "{data}"], "--log-json {data} is the --data file"),
    (["--save", "{d}/x.json", "--log-json", "{d}/x.json"], "--save and --log-json are the same"),
    (["--save", "{d}/hard.txt"], "is the --data file"),  # a hard link to the data
    (["--save", "/dev/null"], "not a regular file"),
    (["--log-json", "/dev/null"], "not a regular file"),
    (["--save", "{d}"], "it is a directory"),
    (["--save", ""], "--save: the path is empty"),
])
def test_outputs_that_would_destroy_data_are_refused_before_training(work, tmp_path, capsys,
                                                                     flags, words):
    data = tmp_path / "names.txt"
    shutil.copy(work / "names.txt", data)
    os.link(data, tmp_path / "hard.txt")
    before = sha(data)
    args = [a.format(data=data, d=tmp_path) for a in flags]
    # 100000 steps would take minutes: returning at all shows the check comes first
    assert main(["--data", str(data), "--steps", "100000", *TINY, *args]) == 1
    out, err = capsys.readouterr()
    one_line(err, ERROR, words.format(data=data, d=tmp_path))
    assert out == "" and sha(data) == before
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@posix
def test_a_fifo_as_an_output_or_a_checkpoint_never_blocks(work, tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for argv, words in [
        (["--data", str(work / "names.txt"), *TINY, "--log-json", str(fifo)], "not a regular"),
        (["--data", str(work / "names.txt"), *TINY, "--save", str(fifo)], "not a regular"),
        (["sample", "--load", str(fifo)], "not a regular file"),
        (["train", "--resume", str(fifo)], "not a regular file"),
        (["eval", "--load", "/dev/urandom"], "not a regular file"),
        (["plot", str(fifo), "-o", str(tmp_path / "x.png")], "not a regular file"),
    ]:
        assert main(argv) == 1, argv
        one_line(capsys.readouterr().err, ERROR, words)


def test_log_json_onto_the_resumed_checkpoint_is_refused(model, work, capsys):
    before = sha(model)
    assert main(["train", "--resume", str(model), "--log-json", str(model)]) == 1
    one_line(capsys.readouterr().err, ERROR, f"--log-json {model} is the --resume file")
    assert sha(model) == before


def test_save_onto_a_symlink_writes_through_to_its_target(work, tmp_path, capsys):
    target, link = tmp_path / "real.json", tmp_path / "link.json"
    target.write_text("old")
    link.symlink_to(target)
    assert main(["--data", str(work / "names.txt"), "--steps", "2", *TINY, "--samples", "0",
                 "--quiet", "--save", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert saved_step(target) == 2


def test_plot_onto_one_of_its_logs_is_refused(tmp_path, capsys):
    log = tmp_path / "run.png"
    log.write_text('{"step": 1, "loss": 2.0}\n')
    assert main(["plot", str(log), "-o", str(log)]) == 1
    one_line(capsys.readouterr().err, ERROR, "is the log 1 file")
    assert log.read_text() == '{"step": 1, "loss": 2.0}\n'


# ------------------------------------------------------------------------ odd values


def edited(model: Path, tmp_path: Path, change) -> Path:
    obj = json.loads(model.read_text())
    change(obj)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(obj))
    return path


@pytest.mark.parametrize("change, words", [
    (lambda o: o["optimizer"].update(eps=0), "'optimizer.eps' is 0.0, not a positive number"),
    (lambda o: o["optimizer"].update(lr=-1), "'optimizer.lr' is -1.0"),
    (lambda o: o["optimizer"].update(beta1=5), "'optimizer.beta1' is 5.0"),
    (lambda o: o.update(version=2.0), "version 2.0 is not supported"),
    (lambda o: o.update(holdout=10**6), "'holdout' is 1000000, which leaves none"),
    (lambda o: o["config"].update(block_size=10**9), "more than the limit of 1000000"),
])
@pytest.mark.parametrize("command", ["resume", "eval", "sample"])
def test_hand_edited_checkpoints_get_one_line(model, tmp_path, capsys, change, words, command):
    path = str(edited(model, tmp_path, change))
    argv = {"resume": ["train", "--resume", path], "eval": ["eval", "--load", path],
            "sample": ["sample", "--load", path]}[command]
    assert main(argv) == 1
    line = one_line(capsys.readouterr().err, ERROR, words)
    assert "--holdout" not in line  # never blamed on an option that was not given


def test_a_checkpoint_with_a_5000_digit_number_gets_one_line(model, tmp_path, capsys):
    path = tmp_path / "big.json"
    text = model.read_text()
    assert '"holdout": 0' in text
    path.write_text(text.replace('"holdout": 0', '"holdout": ' + "7" * 5000, 1))
    assert main(["sample", "--load", str(path)]) == 1
    one_line(capsys.readouterr().err, ERROR, str(path))


@pytest.mark.parametrize("args, words", [
    (["--temperature", "1e-310"], "--temperature must be from 1e-06 to 1e+06"),
    (["--block-size", "1000000000"], "more than the limit of 1000000"),
    (["--n-layer", "1000000000"], "more than the limit of 1000000"),
    (["--data", ""], "the data path is empty"),
    (["--data", "http://[::1"], "not a valid URL"),
    (["--data", "na\nmes.txt"], "no such file: na\\nmes.txt"),
])
def test_odd_values_are_one_line_before_any_training(work, capsys, args, words):
    argv = ["--data", str(work / "names.txt"), "--steps", "100000", *TINY, *args]
    try:
        status = main(argv)
    except SystemExit as e:  # usage errors leave through argparse
        status = e.code
    assert status in (1, 2)
    one_line(capsys.readouterr().err, ERROR, words)


# ------------------------------------------------------------------------------ logs


@posix
def test_resume_after_kill_9_gives_a_log_with_every_step_once(work, tmp_path):
    ckpt, log = tmp_path / "c.json", tmp_path / "log.jsonl"
    proc = start(work, *LONG, "--save", str(ckpt), "--save-every", "7", "--log-json", str(log))
    wait_for_step(proc, 16)
    os.killpg(proc.pid, signal.SIGKILL)
    finish(proc)
    with open(log, "a") as f:
        f.write('{"step": 99, "lo')  # as if the kill had torn the last line
    k = saved_step(ckpt)
    assert k % 7 == 0 and k >= 14
    logged = log.read_text().splitlines()
    assert len(logged) > k  # the killed run logged steps its checkpoint does not hold
    resumed = run("train", "--resume", str(ckpt), "--steps", str(k + 5), "--samples", "0",
                  "--log-json", str(log), cwd=work)
    assert resumed.returncode == 0, resumed.stderr
    assert f"cut {len(logged) - k} records after step {k}" in resumed.stdout
    lines = log.read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == list(range(1, k + 6))  # each step once
    assert lines[:k] == logged[:k]  # what the checkpoint holds is kept as it was
    assert plot.read_log(log).steps == tuple(range(1, k + 6))
