"""Every piece of advice the command line prints can be followed: the advised command is accepted.

Each test provokes one message that advises something, reads the advice out of
the message, runs what it says (in this process, through ``cli.main``) and
checks that the program takes it: no usage error, no refusal of the very
thing it advised. Two pieces of advice are left out because a test cannot
follow them here: ``pip install 'functional_gpt[plot]'`` (a network install)
and "use its 'raw' address" for a GitHub page.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from test_checkpoint_readers import run_main

NAMES = ["emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper"]
TINY = ["--n-embd", "4", "--n-head", "1", "--block-size", "10", "--samples", "0", "--quiet"]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    path = tmp_path / "names.txt"
    path.write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    return path


def refused(argv: list[str]) -> str:
    """The one error line of ``argv``, which must fail with status 1 or 2."""
    status, _, err = run_main(argv)
    assert status in (1, 2) and len(err.splitlines()) == 1, (argv, status, err)
    return err.strip()


def accepted(argv: list[str]) -> int:
    """Run ``argv``: the program must take it (no usage error); return its status."""
    status, _, err = run_main(argv)
    assert status != 2 and "cannot be given" not in err, (argv, err)
    assert "Traceback" not in err
    return status


def smaller_lr(message: str) -> str:
    """A learning rate smaller than the one the message names, as ``--lr`` takes it."""
    found = re.search(r"a smaller --lr \(this run's is ([^)]+)\)", message)
    assert found, message
    return repr(float(found.group(1)) / 10)


def scaled(path: Path, part: str, factor: float, out: Path) -> Path:
    """A copy of the checkpoint ``path`` with every number of ``part`` times ``factor``.

    ``part`` is a field, or ``optimizer.m``.
    """
    obj = json.loads(path.read_text(encoding="utf-8"))

    def times(x):
        if isinstance(x, dict):
            return {k: times(v) for k, v in x.items()}
        if isinstance(x, list):
            return [times(v) for v in x]
        return x * factor if isinstance(x, float) else x

    if "." in part:
        outer, inner = part.split(".")
        obj[outer][inner] = times(obj[outer][inner])
    else:
        obj[part] = times(obj[part])
    out.write_text(json.dumps(obj), encoding="utf-8")
    return out


def trained(data: Path, folder: Path, *extra: str) -> Path:
    path = folder / "model.json"
    assert run_main(["train", "--data", str(data), "--steps", "3", *TINY, "--lr", "0.5",
                     "--save", str(path), *extra])[0] == 0
    return path


# ------------------------------------------------------------------ divergence


def test_a_fresh_run_that_diverges_advises_a_smaller_lr_which_train_takes(data, tmp_path):
    message = refused(["train", "--data", str(data), "--lr", "100", "--steps", "30", *TINY,
                       "--save", str(tmp_path / "d.json")])
    assert "diverged" in message and "Train again with a smaller --lr" in message, message
    assert "last good" not in message  # the saved weights' loss is not finite: not good
    assert accepted(["train", "--data", str(data), "--lr", smaller_lr(message), "--steps", "3",
                     *TINY]) in (0, 1)


def test_a_weight_over_the_limit_advises_a_smaller_lr_to_train_or_resume_with(data, tmp_path):
    saved = tmp_path / "w.json"
    message = refused(["train", "--data", str(data), "--lr", "1e7", "--steps", "30", *TINY,
                       "--save", str(saved)])
    assert "a weight grew beyond the limit" in message and "the last good step is 0" in message
    lr = smaller_lr(message)
    assert accepted(["train", "--data", str(data), "--lr", lr, "--steps", "3", *TINY]) in (0, 1)
    assert accepted(["train", "--resume", str(saved), "--lr", lr, "--samples", "0"]) in (0, 1)


def test_a_resumed_run_that_cannot_step_advises_resuming_with_a_smaller_lr(data, tmp_path):
    wild = scaled(trained(data, tmp_path), "optimizer.m", 1e300, tmp_path / "wild.json")
    message = refused(["train", "--resume", str(wild), "--steps", "10", "--samples", "0"])
    assert f"the weights of {wild} (step 3) could not take a step" in message, message
    assert "last good" not in message and "Resume it with a smaller --lr" in message
    assert accepted(["train", "--resume", str(wild), "--lr", smaller_lr(message),
                     "--steps", "10", "--samples", "0"]) in (0, 1)


def test_a_resumed_run_whose_loss_is_not_finite_advises_training_again(data, tmp_path):
    huge = scaled(trained(data, tmp_path), "params", 1e5, tmp_path / "huge.json")
    message = refused(["train", "--resume", str(huge), "--steps", "10", "--samples", "0"])
    assert "no learning rate continues them" in message and "last good" not in message, message
    assert "train again from the start (without --resume)" in message
    assert accepted(["train", "--data", str(data), "--lr", smaller_lr(message), "--steps", "3",
                     *TINY]) == 0


def test_resume_takes_lr_from_the_next_step_on_and_saves_it(data, tmp_path):
    first = trained(data, tmp_path)
    log = tmp_path / "log.jsonl"
    status, out, err = run_main(["train", "--resume", str(first), "--lr", "0.25", "--steps",
                                 "5", "--samples", "0", "--log-json", str(log)])
    assert status == 0, err
    assert "--lr 0.25 from step 4 on, instead of the saved 0.5" in out
    lrs = [json.loads(line)["lr"] for line in log.read_text().splitlines()]
    assert lrs == [0.25 * (1 - 3 / 5), 0.25 * (1 - 4 / 5)]
    status, _, err = run_main(["train", "--resume", str(first), "--lr", "0", "--samples", "0"])
    assert status == 2 and "--lr must be a positive number" in err


# ------------------------------------------------------------------ other advice


def test_a_model_over_the_size_limit_advises_a_smaller_shape(data):
    message = refused(["train", "--data", str(data), "--block-size", "100000000", "--steps", "1",
                       "--samples", "0"])
    assert "make --n-layer, --n-embd or --block-size smaller" in message
    assert accepted(["train", "--data", str(data), "--block-size", "16", "--steps", "1",
                     "--samples", "0", "--quiet"]) == 0


@pytest.mark.parametrize("argv", [["sample", "--load"], ["train", "--steps", "0"],
                                  ["score", "--load", "x.json"], ["plot"]])
def test_every_usage_error_names_a_help_that_works(argv):
    message = refused(argv)
    found = re.search(r"\(see (functional-gpt(?: \w+)?) --help\)$", message)
    assert found, message
    status, out, _ = run_main([*found.group(1).split()[1:], "--help"])
    assert status == 0 and "usage:" in out


def test_a_moved_data_file_is_found_again_with_data(data, tmp_path):
    saved = trained(data, tmp_path)
    moved = tmp_path / "moved.txt"
    shutil.move(data, moved)
    message = refused(["train", "--resume", str(saved), "--steps", "4", "--samples", "0"])
    assert "give --data if the file has moved" in message
    assert accepted(["train", "--resume", str(saved), "--data", str(moved), "--steps", "4",
                     "--samples", "0"]) == 0


def test_an_unsupported_scheme_advises_what_data_takes(data, tmp_path):
    message = refused(["train", "--data", "s3://bucket/names.txt", "--steps", "1"])
    assert "give an http(s):// URL or a local path, or leave it out" in message
    assert accepted(["train", "--data", str(data), "--steps", "1", *TINY]) == 0
    assert accepted(["train", "--steps", "1", "--samples", "0", "--quiet"]) == 0  # left out


def test_a_download_that_fails_advises_a_local_path(data, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    message = refused(["train", "--data", "http://127.0.0.1:9/names.txt", "--steps", "1"])
    assert "a local file path works too" in message
    assert accepted(["train", "--data", str(data), "--steps", "1", *TINY]) == 0
