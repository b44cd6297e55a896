"""The trainer's life cycle: exact resume, SIGTERM, kill -9 with --save-every, divergence,
eval and score, and every bad input around them.

The defining property of resume: a run stopped after any step k, saved, loaded and resumed
gives exactly the losses, final parameters and samples of the same run left alone. Library
tests check it for every k (hypothesis); the end-to-end tests check it through real signals
sent to the real command. eval and score are checked against the tape's own training loss
(``model.doc_loss``), an independent path through the code.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli import ERROR, NAMES, TINY, _env, run

import functional_gpt.tape as T
from functional_gpt import checkpoint as C
from functional_gpt import datasets, evaluate, model, train
from functional_gpt import sample as S
from functional_gpt.optim import Adam
from functional_gpt.shell import STOP_SIGNALS

HERE = Path(__file__).resolve().parent
V1 = HERE / "data" / "checkpoint_v1.json"
V1_NAMES = HERE / "data" / "v1_names.txt"
posix = pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX signals")


def bits(xs) -> tuple[bytes, ...]:
    return tuple(struct.pack("<d", x) for x in xs)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("lifecycle")
    (d / "names.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    (d / "other.txt").write_text("\n".join(NAMES[:-1]) + "\n", encoding="utf-8")
    return d


def one_error_line(proc: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    assert proc.returncode == status, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    for w in words:
        assert w in last, (w, proc.stderr)
    return last


# ------------------------------------------------------------- resume, library


@given(st.integers(0, 6), st.integers(0, 2**32 - 1), st.integers(7, 9))
@settings(max_examples=15)
def test_a_run_stopped_after_any_step_resumes_exactly(k, seed, steps) -> None:
    run = train.prepare(NAMES, seed, n_embd=4, n_head=2, block_size=6)
    hyper = Adam(lr=0.02)
    alone = list(train.training(run.state, run.tokens, steps, hyper))
    state_k = run.state if k == 0 else alone[k - 1].state
    # through the checkpoint format, as on disk
    ckpt = C.Checkpoint(state_k, run.tokenizer, seed, run.rng, steps, hyper,
                        datasets.source_of(None, NAMES), 0)
    loaded = C.loads(C.dumps(ckpt))
    resumed = list(train.training(loaded.state, run.tokens, loaded.steps, loaded.hyper))
    assert [e.step for e in resumed] == list(range(k + 1, steps + 1))
    assert [e.loss for e in resumed] == [e.loss for e in alone[k:]]  # exactly
    assert bits(train.param_values(resumed[-1].state)) == bits(train.param_values(alone[-1].state))
    config = run.state.config
    assert (S.samples(resumed[-1].state.tape, config, loaded.tokenizer, loaded.rng, 4)
            == S.samples(alone[-1].state.tape, config, run.tokenizer, run.rng, 4))


def test_divergence_ends_the_stream_with_the_last_good_state() -> None:
    run = train.prepare(NAMES, 42, n_embd=4, n_head=2, block_size=6)
    seen = []
    with pytest.raises(train.Diverged) as info:
        for event in train.training(run.state, run.tokens, 50, Adam(lr=100.0)):
            seen.append(event)
    err = info.value
    assert err.step == len(seen) + 1
    good = seen[-1].state if seen else run.state
    assert err.last_good is good
    assert all(map(math.isfinite, train.param_values(err.last_good)))
    with pytest.raises(T.NonFiniteError):  # the failed step really fails
        train.train_step(err.last_good, run.tokens[err.step - 1], 100.0 * (1 - (err.step - 1) / 50),
                         Adam(lr=100.0))


# ------------------------------------------------------------- eval and score


@given(st.lists(st.text("abemoilsv", min_size=0, max_size=7), min_size=1, max_size=6),
       st.integers(0, 2**32 - 1), st.integers(2, 8))
@settings(max_examples=30)
def test_score_and_eval_agree_with_the_training_loss(docs, seed, block_size) -> None:
    run = train.prepare(NAMES, seed, n_embd=4, n_head=2, block_size=block_size)
    *_, last = train.training(run.state, run.tokens, 3)
    state, config, tok = last.state, last.state.config, run.tokenizer
    w = evaluate.weights_of(state)
    params = model.layout(config)
    total, tokens = 0.0, 0
    for doc in docs:
        doc_ids = (tok.bos, *(tok.chars.index(c) for c in doc), tok.bos)
        tape, loss = model.doc_loss(state.tape, params, config, doc_ids)
        n = min(block_size, len(doc_ids) - 1)
        if len(doc) + 1 <= block_size:
            s = evaluate.score(w, config, tok, doc)
            assert s.tokens == n
            assert abs(-s.logprob - T.data(tape, loss) * n) <= 1e-9 * max(1.0, -s.logprob)
            assert s.nats_per_token == -s.logprob / n
        else:
            with pytest.raises(ValueError, match="does not fit"):
                evaluate.score(w, config, tok, doc)
        total += T.data(tape, loss) * n
        tokens += n
    result = evaluate.evaluate(w, config, [
        (tok.bos, *(tok.chars.index(c) for c in d), tok.bos) for d in docs])
    assert (result.docs, result.tokens) == (len(docs), tokens)
    assert abs(result.loss * result.tokens - total) <= 1e-9 * max(1.0, total)
    assert result.perplexity == math.exp(result.loss)


def test_score_refuses_unknown_characters() -> None:
    run = train.prepare(NAMES, 1, n_embd=4, n_head=2, block_size=8)
    w = evaluate.weights_of(run.state)
    with pytest.raises(ValueError, match="'Z'"):
        evaluate.score(w, run.state.config, run.tokenizer, "emZa")


# ------------------------------------------------------------------ the CLI


def start(work: Path, *args: str) -> subprocess.Popen[str]:
    def default_signals() -> None:  # a background shell may have left them ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    return subprocess.Popen(
        [sys.executable, "-m", "functional_gpt", *args], cwd=work, env=_env(work),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals,
    )


def stop_after(proc: subprocess.Popen[str], step: int, sig: int) -> tuple[str, str]:
    """Read step lines until ``step`` was printed, send ``sig``, return the rest of the output."""
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("step ") and int(line.split()[1]) >= step:
                break
        proc.send_signal(sig)
        return proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def losses_of(log: Path) -> list[tuple[int, float]]:
    return [(row["step"], row["loss"]) for row in map(json.loads, log.read_text().splitlines())]


@posix
@pytest.mark.parametrize("sig, status, word", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                               (signal.SIGINT, 130, "interrupted")])
def test_a_signalled_run_saves_and_resumes_exactly(work, tmp_path, sig, status, word) -> None:
    steps = "400"
    alone = run("--data", "names.txt", "--steps", steps, *TINY, "--samples", "4", "--quiet",
                "--log-json", str(tmp_path / "alone.jsonl"), cwd=work, timeout=120)
    assert alone.returncode == 0
    ckpt, log = tmp_path / "ckpt.json", tmp_path / "part.jsonl"
    proc = start(work, "--data", "names.txt", "--steps", steps, *TINY, "--samples", "4",
                 "--save", str(ckpt), "--log-json", str(log))
    _, err = stop_after(proc, 5, sig)
    assert proc.returncode == status, err
    assert err.count("\n") == 1 and word in err and "Traceback" not in err
    k = json.loads(ckpt.read_text())["optimizer"]["step"]
    assert f"after step {k} of {steps}; saved it to {ckpt}" in err
    assert 5 <= k < int(steps)
    again = run("train", "--resume", str(ckpt), "--samples", "4", "--quiet", "--log-json",
                str(log), cwd=work, timeout=120)
    assert again.returncode == 0, again.stderr
    assert losses_of(log) == losses_of(tmp_path / "alone.jsonl")  # the log continues at k+1
    assert again.stdout == alone.stdout  # the same samples


_SHELL = ("functional_gpt.__main__", "functional_gpt.cli", "functional_gpt.shell")


def _train_hung_up_at(
    events: tuple[int, ...], data: Path, ckpt: Path
) -> tuple[bool | None, int, str, str]:
    """Run ``train`` in this process as ``python -m functional_gpt`` does (``__main__.main``)
    and send it SIGHUP at each of the ``events``-th calls or returns of a function of the entry
    point, the command line or the shell (its files, outputs and signals). Return whether the
    first was sent (None: the run had fewer events; False: no handler was installed yet), the
    status, stdout and stderr."""
    from functional_gpt.__main__ import main

    seen, sent = 0, False

    def hang_up(frame, what, arg) -> None:
        nonlocal seen, sent
        if what in ("call", "return") and not frame.f_code.co_name.startswith("<") and \
                frame.f_globals.get("__name__") in _SHELL:
            seen += 1
            if seen in events and callable(signal.getsignal(signal.SIGHUP)):
                sent = sent or seen == events[0]
                os.kill(os.getpid(), signal.SIGHUP)  # the handler runs at this boundary

    out, err = io.StringIO(), io.StringIO()
    argv = ["functional-gpt", "train", "--data", str(data), "--steps", "3", "--n-embd", "4",
            "--n-head", "2", "--block-size", "8", "--samples", "2", "--save", str(ckpt)]
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        sys.setprofile(hang_up)
        try:
            status = main()
        finally:
            sys.setprofile(None)
            for sig, handler in handlers.items():  # main leaves them ignored, as it exits
                signal.signal(sig, handler)
    return (sent if seen >= events[0] else None), status, out.getvalue(), err.getvalue()


@posix
@pytest.mark.parametrize("later", [(), (3,)], ids=["one-hang-up", "two-hang-ups"])
def test_a_hang_up_at_any_moment_loses_no_step_shown_and_says_one_line(work, tmp_path,
                                                                       later) -> None:
    """Every moment of a run, from parsing its arguments to its last sample, is tried. Wherever
    the signal lands, every step the run showed is in a whole checkpoint, and the run says so
    in one line with status 129 (the line names the step saved); or the work was all done
    and the late signal changes nothing. A dropped terminal hangs up twice (the kernel, then
    the login shell): the second, a few moments later, adds nothing."""
    data, ckpt = work / "names.txt", tmp_path / "c.json"
    stopped = 0
    for event in range(1, 1000):
        ckpt.unlink(missing_ok=True)
        sent, status, out, err = _train_hung_up_at((event, *(event + d for d in later)), data,
                                                   ckpt)
        if sent is None:
            break  # the run ended before this event
        if not sent:
            continue  # before the handlers were installed
        shown = [int(line.split()[1]) for line in out.splitlines() if line.startswith("step ")]
        if shown:
            assert C.load(ckpt).state.adam.step >= shown[-1], (event, out, err)
        if status == 0:  # a signal as the program exits: the run was whole
            assert err == "" and "sample  2: " in out and shown == [1, 2, 3], (event, out, err)
            continue
        stopped += 1
        assert status == 129, (event, status, err)
        assert len(err.splitlines()) == 1, (event, err)
        assert err.startswith("functional-gpt: hung up (SIGHUP)"), (event, err)
        if shown:  # the line says which step is saved, unless the report already did
            assert " after step " in err or f"saved checkpoint: {ckpt}" in out, (event, out, err)
        if " after step " in err:
            saved = int(err.split(" after step ")[1].split()[0])
            assert f"saved it to {ckpt}" in err and C.load(ckpt).state.adam.step == saved
    assert stopped > 100  # the moments of a run, not a few of them


@posix
def test_kill_9_loses_at_most_save_every_steps(work, tmp_path) -> None:
    ckpt = tmp_path / "every.json"
    proc = start(work, "--data", "names.txt", "--steps", "100000", *TINY,
                 "--save", str(ckpt), "--save-every", "3")
    stop_after(proc, 8, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    loaded = C.load(ckpt)  # whole, whatever moment the kill came
    assert loaded.state.adam.step % 3 == 0 and loaded.state.adam.step >= 6
    assert loaded.data is not None and loaded.data.kind == "path"


def test_stray_temp_files_are_cleaned_on_the_next_save(work, tmp_path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    strays = [f".checkpoint-{dead}-abc.tmp", ".checkpoint-xyz.tmp"]
    kept = [f".checkpoint-{os.getpid()}-live.tmp", "notes.tmp", ".checkpoint-x.json"]
    for name in strays + kept:
        (tmp_path / name).write_text("partial")
    proc = run("--data", "names.txt", "--steps", "2", *TINY, "--samples", "0",
               "--save", str(tmp_path / "m.json"), cwd=work)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["m.json"])


def test_divergence_is_one_line_exit_1_and_saves_the_last_good_step(work, tmp_path) -> None:
    ckpt = tmp_path / "d.json"
    proc = run("--data", "names.txt", "--lr", "100", "--steps", "30", *TINY,
               "--save", str(ckpt), cwd=work)
    line = one_error_line(proc, 1, ERROR, "diverged at step", "smaller --lr", "100")
    bad_step = int(line.split("diverged at step ")[1].split()[0])
    saved = C.load(ckpt)
    assert saved.state.adam.step == bad_step - 1
    kept = bad_step - 1  # good, or (as at this rate) finite weights whose loss is not finite
    assert (f"the last good step is {kept}; saved it to {ckpt}" in line
            or f"the weights of step {kept} are finite but their loss is not; saved it to {ckpt}"
            in line), line
    assert "inference" not in proc.stdout


def test_resume_extends_a_finished_run_and_v1_needs_data(work, tmp_path) -> None:
    log = tmp_path / "v1.jsonl"
    nodata = run("train", "--resume", str(V1), "--steps", "10", cwd=work)
    one_error_line(nodata, 1, ERROR, "version 1", "give --data")
    ok = run("train", "--resume", str(V1), "--data", str(V1_NAMES), "--steps", "10",
             "--samples", "0", "--log-json", str(log), "--save", str(tmp_path / "v2.json"),
             cwd=work)
    assert ok.returncode == 0, ok.stderr
    assert [s for s, _ in losses_of(log)] == [9, 10]
    upgraded = C.load(tmp_path / "v2.json")
    assert upgraded.data is not None and upgraded.data.docs == len(V1_NAMES.read_text().split())
    assert upgraded.steps == 10 and upgraded.state.adam.step == 10


@pytest.mark.parametrize("args, status, words", [
    (["--n-embd", "8"], 2, ["--n-embd cannot be given with --resume"]),
    (["--seed", "1"], 2, ["--seed cannot be given with --resume"]),
    (["--holdout", "1"], 2, ["--holdout cannot be given"]),
    (["--steps", "1"], 2, ["fewer than the 2 steps"]),
    (["--data", "other.txt"], 1, ["not the ones", "SHA-256"]),
    (["--data", "missing.txt"], 1, ["missing.txt"]),
])
def test_bad_resumes_are_refused_in_one_line(work, tmp_path, args, status, words) -> None:
    ckpt = tmp_path / "two.json"
    assert run("--data", "names.txt", "--steps", "2", *TINY, "--samples", "0",
               "--save", str(ckpt), cwd=work).returncode == 0
    proc = run("train", "--resume", str(ckpt), *args, cwd=work)
    one_error_line(proc, status, *words)


def test_resume_reads_a_moved_copy_and_refuses_a_vanished_file(work, tmp_path) -> None:
    data = tmp_path / "mine.txt"
    data.write_text("\n".join(NAMES) + "\n")
    ckpt = tmp_path / "m.json"
    assert run("--data", str(data), "--steps", "3", *TINY, "--samples", "0", "--save", str(ckpt),
               cwd=work).returncode == 0
    moved = tmp_path / "moved.txt"
    data.rename(moved)
    gone = run("train", "--resume", str(ckpt), "--steps", "4", cwd=work)
    one_error_line(gone, 1, ERROR, "give --data if the file has moved")
    ok = run("train", "--resume", str(ckpt), "--data", str(moved), "--steps", "4",
             "--samples", "0", cwd=work)
    assert ok.returncode == 0 and "step    4 /    4" in ok.stdout, ok.stderr


@pytest.mark.parametrize("args, words", [
    (["--save-every", "5"], ["--save-every needs --save"]),
    (["--save-every", "0", "--save", "x.json"], ["--save-every must be at least 1"]),
    (["--holdout", "-1"], ["--holdout must be 0 or more"]),
    (["--holdout", str(len(NAMES))], ["leaves no documents to train on"]),
])
def test_bad_train_options_exit_2(work, args, words) -> None:
    proc = run("--data", "names.txt", "--steps", "2", *TINY, *args, cwd=work)
    one_error_line(proc, 2, *words)


def test_holdout_trains_on_the_rest_and_reports_their_loss(work, tmp_path) -> None:
    ckpt = tmp_path / "h.json"
    proc = run("--data", "names.txt", "--steps", "4", *TINY, "--holdout", "3", "--samples", "0",
               "--save", str(ckpt), cwd=work)
    assert proc.returncode == 0, proc.stderr
    saved = C.load(ckpt)
    assert saved.holdout == 3
    run_ = train.prepare(NAMES, 42, n_embd=8, n_head=2, block_size=8)
    held = run_.tokens[-3:]
    want = evaluate.evaluate(evaluate.weights_of(saved.state), saved.state.config, held)
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("held-out eval"))
    assert f"3 docs, {want.tokens} tokens, loss {want.loss:.4f}" in line
    # the default eval of a checkpoint is its training documents: the other six
    ev = run("eval", "--load", str(ckpt), "--json", cwd=work)
    assert ev.returncode == 0, ev.stderr
    got = json.loads(ev.stdout)
    want_train = evaluate.evaluate(evaluate.weights_of(saved.state), saved.state.config,
                                   run_.tokens[:-3])
    assert got == want_train._asdict()


def test_eval_and_score_through_the_cli(work, tmp_path) -> None:
    ckpt = tmp_path / "e.json"  # block size 12: every name and its end fit, so score them all
    assert run("--data", "names.txt", "--steps", "5", "--n-embd", "8", "--n-head", "2",
               "--block-size", "12", "--samples", "0", "--save", str(ckpt),
               cwd=work).returncode == 0
    saved = C.load(ckpt)
    ev = run("eval", "--load", str(ckpt), "--data", "names.txt", cwd=work)
    assert ev.returncode == 0, ev.stderr
    fields = dict(line.split(": ") for line in ev.stdout.splitlines())
    assert set(fields) == {"docs", "tokens", "loss", "perplexity"}
    assert fields["docs"] == str(len(NAMES))
    sc = run("score", "--load", str(ckpt), "--json", *NAMES, cwd=work)
    assert sc.returncode == 0, sc.stderr
    rows = [json.loads(line) for line in sc.stdout.splitlines()]
    assert [r["text"] for r in rows] == NAMES
    assert sum(r["tokens"] for r in rows) == int(fields["tokens"])
    total = -sum(r["logprob"] for r in rows)
    assert abs(total / int(fields["tokens"]) - float(fields["loss"])) < 5e-5
    w, cfg, tok = evaluate.weights_of(saved.state), saved.state.config, saved.tokenizer
    for r in rows:
        assert r["logprob"] == evaluate.score(w, cfg, tok, r["text"]).logprob
    piped = subprocess.run([sys.executable, "-m", "functional_gpt", "score", "--load", str(ckpt),
                            "-"], input="emma\n\n ava \n", capture_output=True, text=True,
                           cwd=work, env=_env(work), timeout=60)
    assert piped.returncode == 0 and [ln.split()[-1] for ln in piped.stdout.splitlines()] == [
        "emma", "ava"]


@pytest.mark.parametrize("args, status, words", [
    (["score", "--load", "{ckpt}", "emQa"], 2, ["'emQa'", "'Q'"]),
    (["score", "--load", "{ckpt}", "isabellaisabella"], 2, ["does not fit in the block size 8"]),
    (["score", "--load", "{ckpt}", "emma", "-"], 2, ["either texts or -"]),
    (["eval", "--load", "{ckpt}", "--data", "{bad}"], 1, ["document 2", "'Z'"]),
    (["eval", "--load", str(V1)], 1, ["version 1", "give --data"]),
    (["eval", "--load", "{missing}"], 1, ["not found"]),
    (["score", "--load", "{missing}", "emma"], 1, ["not found"]),
])
def test_bad_eval_and_score_inputs(work, tmp_path, args, status, words) -> None:
    ckpt = tmp_path / "s.json"
    assert run("--data", "names.txt", "--steps", "2", *TINY, "--samples", "0",
               "--save", str(ckpt), cwd=work).returncode == 0
    bad = tmp_path / "bad.txt"
    bad.write_text("emma\nZoe\n")
    argv = [a.format(ckpt=ckpt, bad=bad, missing=tmp_path / "nope.json") for a in args]
    one_error_line(run(*argv, cwd=work), status, *words)


@pytest.mark.parametrize("command", [["sample"], ["eval"], ["score", "emma"]])
def test_weights_that_overflow_give_one_line_not_a_traceback(work, tmp_path, command) -> None:
    ckpt = tmp_path / "o.json"
    assert run("--data", "names.txt", "--steps", "2", *TINY, "--samples", "0",
               "--save", str(ckpt), cwd=work).returncode == 0
    obj = json.loads(ckpt.read_text())
    obj["params"]["wte"] = [[1e308] * len(row) for row in obj["params"]["wte"]]
    ckpt.write_text(json.dumps(obj))
    proc = run(command[0], "--load", str(ckpt), *command[1:], cwd=work)
    one_error_line(proc, 1, ERROR, "larger than the limit", "overflow", str(ckpt))
