"""End-to-end tests of ``python -m functional_gpt``: output, files, exit codes, Ctrl-C.

Every test runs the real command in a subprocess on a tiny data file with a
tiny model. Losses and samples are checked against the independent
``reference_microgpt.Reference`` (the mutable microgpt), not against the
package itself.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
from reference_microgpt import Reference

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn"]
TINY = ["--n-embd", "8", "--n-head", "2", "--block-size", "8"]
STEPS = 3
ERROR = "functional-gpt: error: "


def run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "functional_gpt", *args],
        cwd=cwd,
        env=_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _env(cwd: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    env["XDG_CACHE_HOME"] = str(cwd / "cache")  # a URL download would land here, not in ~
    env.pop("CI", None)
    return env


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the tiny data file ``names.txt``."""
    d = tmp_path_factory.mktemp("cli")
    (d / "names.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return d


class Trained(NamedTuple):
    proc: subprocess.CompletedProcess[str]
    losses: list[float]  # the reference's losses for the same run
    names: list[str]  # the reference's samples after it
    ref: Reference  # the trained reference model


@pytest.fixture(scope="module")
def trained(work: Path) -> Trained:
    """One tiny training run with --save and --log-json, and the reference run it must match."""
    proc = run("train", "--data", "names.txt", "--steps", str(STEPS), *TINY, "--samples", "3",
               "--save", "model.json", "--log-json", "log.jsonl", cwd=work)
    ref = Reference(NAMES, n_embd=8, n_head=2, block_size=8, seed=42, steps=STEPS)
    losses = [ref.step() for _ in range(STEPS)]
    return Trained(proc, losses, ref.sample(3, 0.5), ref)


# ---------------------------------------------------------------- training output


def test_train_prints_what_microgpt_prints(trained):
    proc = trained.proc
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert lines[0] == f"num docs: {len(NAMES)}"
    assert lines[1] == f"vocab size: {len(set(''.join(NAMES))) + 1}"
    v, e, b = len(set("".join(NAMES))) + 1, 8, 8
    assert lines[2] == f"num params: {2 * v * e + b * e + 12 * e * e}"
    for i, loss in enumerate(trained.losses, 1):
        assert lines[2 + i] == f"step {i:4d} / {STEPS:4d} | loss {loss:.4f}"
    assert re.fullmatch(r"training time: \d+\.\d\d s \(\d+\.\d ms/step\)", lines[3 + STEPS])
    assert lines[4 + STEPS] == "saved checkpoint: model.json"
    assert lines[5 + STEPS] == "--- inference (new, hallucinated names) ---"
    expected = [f"sample {i:2d}: {n}" for i, n in enumerate(trained.names, 1)]
    assert lines[6 + STEPS :] == expected


def test_log_json_has_one_exact_record_per_step(trained, work):
    records = [json.loads(line) for line in (work / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, STEPS + 1))
    assert all(set(r) == {"step", "loss", "lr", "ms"} for r in records)
    for r, loss in zip(records, trained.losses):
        assert r["loss"] == pytest.approx(loss, rel=0, abs=1e-12)  # not rounded for display
        assert r["lr"] == pytest.approx(0.01 * (1 - (r["step"] - 1) / STEPS), rel=1e-15)
        assert isinstance(r["ms"], float) and r["ms"] >= 0


def test_default_command_is_train(work):
    args = ["--data", "names.txt", "--steps", "1", *TINY, "--samples", "2"]
    implicit, explicit = run(*args, cwd=work), run("train", *args, cwd=work)
    assert implicit.returncode == explicit.returncode == 0
    drop_time = [line for line in implicit.stdout.splitlines() if "training time" not in line]
    assert drop_time == [ln for ln in explicit.stdout.splitlines() if "training time" not in ln]
    assert "step    1 /    1 | loss" in implicit.stdout


def test_quiet_prints_only_the_names(work):
    proc = run("--data", "names.txt", "--steps", "2", *TINY, "--samples", "4", "--quiet",
               cwd=work)
    assert proc.returncode == 0, proc.stderr
    ref = Reference(NAMES, n_embd=8, n_head=2, block_size=8, seed=42, steps=2)
    ref.step(), ref.step()
    assert proc.stdout.splitlines() == ref.sample(4, 0.5)
    assert proc.stderr == ""


def test_samples_zero_skips_sampling_and_other_options_reach_the_model(work):
    proc = run("--data", "names.txt", "--steps", "2", "--n-layer", "2", "--n-embd", "4",
               "--n-head", "1", "--block-size", "5", "--lr", "0.05", "--seed", "7",
               "--samples", "0", cwd=work)
    assert proc.returncode == 0, proc.stderr
    ref = Reference(NAMES, n_layer=2, n_embd=4, n_head=1, block_size=5, seed=7, steps=2, lr=0.05)
    losses = [ref.step() for _ in range(2)]
    lines = proc.stdout.splitlines()
    assert lines[2] == f"num params: {ref.num_params}"
    assert lines[3:5] == [f"step {i:4d} /    2 | loss {x:.4f}" for i, x in enumerate(losses, 1)]
    assert "inference" not in proc.stdout and "sample" not in proc.stdout


def test_bundled_names_are_the_default_data(work):
    proc = run("--steps", "1", "--n-embd", "4", "--n-head", "1", "--block-size", "4",
               "--samples", "1", cwd=work)
    assert proc.returncode == 0, proc.stderr
    text = (ROOT / "functional_gpt" / "data" / "names.txt").read_text(encoding="utf-8")
    docs = [line.strip() for line in text.splitlines() if line.strip()]
    assert proc.stdout.splitlines()[:2] == [
        f"num docs: {len(docs)}",
        f"vocab size: {len(set(''.join(docs))) + 1}",
    ]


def test_help_covers_both_commands(work):
    top = run("--help", cwd=work)
    assert top.returncode == 0 and "train" in top.stdout and "sample" in top.stdout
    train = run("train", "--help", cwd=work)
    for flag in ("--data", "--steps", "--seed", "--n-layer", "--n-embd", "--n-head",
                 "--block-size", "--lr", "--samples", "--temperature", "--save", "--log-json",
                 "--quiet"):
        assert flag in train.stdout
    sample = run("sample", "--help", cwd=work)
    for flag in ("--load", "--samples", "--temperature", "--prompt", "--seed"):
        assert flag in sample.stdout


# ------------------------------------------------------------------- sampling


def test_sample_load_continues_the_saved_random_state(trained, work):
    again = run("sample", "--load", "model.json", "--samples", "3", cwd=work)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"sample {i:2d}: {n}" for i, n in
                                         enumerate(trained.names, 1)]


def test_sample_with_seed_and_temperature_matches_the_reference(trained, work):
    proc = run("sample", "--load", "model.json", "--samples", "4", "--seed", "5",
               "--temperature", "0.8", "--quiet", cwd=work)
    assert proc.returncode == 0, proc.stderr
    ref = trained.ref
    ref.rng = random.Random(5)  # sampling reads the parameters only; the rng is all it changes
    assert proc.stdout.splitlines() == ref.sample(4, 0.8)


def test_sample_prompt_starts_every_name(trained, work):
    proc = run("sample", "--load", "model.json", "--samples", "5", "--prompt", "em",
               "--seed", "1", "--quiet", cwd=work)
    assert proc.returncode == 0, proc.stderr
    names = proc.stdout.splitlines()
    assert len(names) == 5
    assert all(n.startswith("em") and len(n) <= 8 for n in names)
    assert all(set(n) <= set("".join(NAMES)) for n in names)


# ----------------------------------------------------------------- usage errors

USAGE = [
    (["--steps", "0"], "--steps must be at least 1"),
    (["--steps", "-3"], "--steps must be at least 1"),
    (["--steps", "many"], "invalid int value"),
    (["--temperature", "0"], "--temperature must be a positive number"),
    (["--temperature", "-0.5"], "--temperature must be a positive number"),
    (["--temperature", "nan"], "--temperature must be a positive number"),
    (["--n-embd", "10", "--n-head", "4"], "--n-embd (10) must be divisible by --n-head (4)"),
    (["--block-size", "0"], "--block-size must be at least 1"),
    (["--n-layer", "0"], "--n-layer must be at least 1"),
    (["--n-embd", "0"], "--n-embd must be at least 1"),
    (["--n-head", "-1"], "--n-head must be at least 1"),
    (["--samples", "-1"], "--samples must be 0 or more"),
    (["--lr", "0"], "--lr must be a positive number"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["sample"], "the following arguments are required: --load"),
    (["sample", "--load", "model.json", "--temperature", "0"], "--temperature must be"),
    (["sample", "--load", "model.json", "--samples", "-2"], "--samples must be 0 or more"),
    (["sample", "--load", "model.json", "--prompt", "ex!"], "not in the vocabulary: '!', 'x'"),
    (["sample", "--load", "model.json", "--prompt", "emmaemmae"], "longer than the block size 8"),
]


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_usage_errors_exit_2(trained, work, args, message):
    extra = [] if args[0] == "sample" else ["--data", "names.txt"]
    proc = run(*args, *extra, cwd=work)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # one line, as the README promises
    assert lines[0].startswith(ERROR)
    assert re.search(r"\(see functional-gpt( train| sample)? --help\)$", lines[0])
    assert message in lines[0]


# ------------------------------------------------------------------ data errors


def _data_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 1
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(ERROR), proc.stderr
    for w in words:
        assert w in lines[0]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["no such file"]),
        (b"", ["empty"]),
        (b"  \n\t\n  ", ["only whitespace"]),
        (b"emma\x00\x01\x02\n", ["binary"]),
        (b"emma\nb\xe9a\n", ["not UTF-8"]),
    ],
)
def test_bad_data_files_exit_1(work, tmp_path, content, words):
    path = tmp_path / "data.txt"
    if content is not None:
        path.write_bytes(content)
    _data_error(run("--data", str(path), "--steps", "1", *TINY, cwd=work), str(path), *words)


def test_a_directory_as_data_exits_1(work, tmp_path):
    _data_error(run("--data", str(tmp_path), *TINY, cwd=work), "directory")


def test_an_unreachable_url_exits_1(work):
    url = "http://127.0.0.1:9/names.txt"  # the discard port: nothing listens, refused at once
    _data_error(run("--data", url, "--steps", "1", *TINY, cwd=work), "cannot download", url)


def _garbled(text: str) -> str:
    middle = len(text) // 2
    return text[:middle] + "\x07#@!" + text[middle + 4 :]


def _corrupt(text: str) -> str:
    obj = json.loads(text)
    obj["vocab"] = 12
    return json.dumps(obj)


def _mismatch(text: str) -> str:
    obj = json.loads(text)
    obj["params"]["wpe"] = obj["params"]["wpe"][:-1]  # one position short for block_size 8
    return json.dumps(obj)


def _wrong_version(text: str) -> str:
    return text.replace('"version": 2', '"version": 7', 1)


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (None, ["not found"]),
        (lambda t: t[: len(t) // 2], ["truncated"]),
        (_garbled, ["not valid JSON"]),
        (_corrupt, ["'vocab'"]),
        (_mismatch, ["'params.wpe' must be 8 rows of 8"]),
        (_wrong_version, ["version 7 is not supported"]),
        (lambda t: "", ["empty"]),
    ],
)
def test_bad_checkpoints_exit_1(trained, work, tmp_path, damage, words):
    path = tmp_path / "damaged.json"
    if damage is not None:
        path.write_text(damage((work / "model.json").read_text()))
    _data_error(run("sample", "--load", str(path), cwd=work), str(path), *words)


def test_binary_checkpoint_exits_1(work, tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    _data_error(run("sample", "--load", str(path), cwd=work), "not UTF-8")


@pytest.mark.parametrize("flag", ["--save", "--log-json"])
@pytest.mark.parametrize("where", ["missing-dir/out.json", "."])
def test_unwritable_outputs_fail_before_training(work, flag, where):
    # --steps 100000 would take minutes: a prompt failure shows the check comes first.
    proc = run("--data", "names.txt", "--steps", "100000", *TINY, flag, where, cwd=work,
               timeout=30)
    _data_error(proc, f"cannot write {flag} {where}")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere"
)
def test_read_only_directory_fails_before_training(work, tmp_path):
    tmp_path.chmod(0o500)
    try:
        proc = run("--data", "names.txt", "--steps", "100000", *TINY,
                   "--save", str(tmp_path / "m.json"), cwd=work, timeout=30)
    finally:
        tmp_path.chmod(0o700)
    _data_error(proc, "cannot write --save", "ermission denied")


# ---------------------------------------------------------------------- Ctrl-C


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")
def test_ctrl_c_stops_cleanly_and_saves_the_last_step(work, tmp_path):
    ckpt = tmp_path / "interrupted.json"

    def default_sigint() -> None:  # a background shell may have left SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        [sys.executable, "-m", "functional_gpt", "--data", "names.txt", "--steps", "100000",
         *TINY, "--save", str(ckpt)],
        cwd=work, env=_env(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("step "):
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.startswith("functional-gpt: interrupted (SIGINT) after step ")
    printed = [int(ln.split()[1]) for ln in seen + rest.splitlines() if ln.startswith("step ")]
    assert printed and printed == list(range(1, len(printed) + 1))
    assert "inference" not in rest  # no sampling after an interrupt
    saved_step = json.loads(ckpt.read_text())["optimizer"]["step"]
    assert saved_step >= printed[-1] >= 1
    assert f"after step {saved_step} of 100000; saved it to {ckpt}" in err
    again = run("sample", "--load", str(ckpt), "--samples", "2", cwd=work)
    assert again.returncode == 0 and len(again.stdout.splitlines()) == 2


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_terminal_gets_one_live_line(work):
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: become the command, its stdout the terminal
        try:
            os.chdir(work)
            os.execve(sys.executable, [sys.executable, "-m", "functional_gpt", "--data",
                                       "names.txt", "--steps", "4", *TINY, "--samples", "1"],
                      _env(work))
        finally:
            os._exit(127)  # only if exec failed: never run the rest of pytest in the child
    out = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    text = out.decode()
    assert "\rstep    4 /    4 | loss " in text and " steps/s | " in text and " left" in text
    lines = text.replace("\r\n", "\n").split("\n")
    assert sum(line.count("step    ") > 0 for line in lines) == 1  # all steps on one line
    assert "sample  1: " in text


def test_console_script_points_at_main():
    tomllib = pytest.importorskip("tomllib")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, name = scripts["functional-gpt"].partition(":")
    assert (module, name) == ("functional_gpt.__main__", "main")  # as `python -m` runs
    # It installs the signal handlers before the heavy imports: loading it loads only `shell`.
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, functional_gpt.__main__; "
         "print(sorted(m for m in sys.modules if m.startswith('functional_gpt')))"],
        env=_env(ROOT), capture_output=True, text=True, timeout=60, check=True).stdout
    assert loaded.split() == ["['functional_gpt',", "'functional_gpt.__main__',",
                              "'functional_gpt.shell']"]
