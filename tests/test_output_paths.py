"""Every command guards its outputs as ``train`` does, and writes pictures whole.

Each command that writes a file (``-o``, ``--save``, ``--log-json``) must refuse, before any
work, an output that is one of its inputs: the same path, a hard link or a symlink to it.
The table of commands here is written out by hand, not read from the program, so a command
that forgets the check fails it. A picture on a full disk (a real, small tmpfs) keeps the old
picture whole, as a checkpoint does.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_cli import ERROR, NAMES, TINY
from test_faults import leave_free, one_line, small_disk  # noqa: F401 (a fixture)

from functional_gpt.cli import main

pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is absent")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data file, a log and a checkpoint whose names would pass as picture names."""
    d = tmp_path_factory.mktemp("outputs")
    (d / "names.png").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    assert main(["--data", str(d / "names.png"), "--steps", "2", *TINY, "--samples", "0",
                 "--quiet", "--save", str(d / "model.svg"), "--log-json",
                 str(d / "log.png")]) == 0
    return d


# (command line, the output flag, the input it collides with); {x} is replaced by the path
COLLISIONS = [
    (["attention", "--load", "{model.svg}", "emma", "-o", "{model.svg}"], "-o", "--load"),
    (["attention", "--load", "{model.svg}", "emma", "--output", "{model.svg}"], "-o", "--load"),
    (["embeddings", "--load", "{model.svg}", "-o", "{model.svg}"], "-o", "--load"),
    (["plot", "{log.png}", "-o", "{log.png}"], "-o", "log 1"),
    (["plot", "{log.png}", "{log.png}", "-o", "{log.png}"], "-o", "log 1"),
    (["train", "--data", "{names.png}", *TINY, "--save", "{names.png}"], "--save", "--data"),
    (["train", "--data", "{names.png}", *TINY, "--log-json", "{names.png}"], "--log-json",
     "--data"),
    (["train", "--resume", "{model.svg}", "--log-json", "{model.svg}"], "--log-json",
     "--resume"),
]


@pytest.mark.parametrize("alias", ["same", "hard link", "symlink"])
@pytest.mark.parametrize("argv, output, source", COLLISIONS)
def test_no_command_writes_over_one_of_its_inputs(files, tmp_path, capsys, argv, output,
                                                  source, alias):
    collided = ""
    for arg in argv:
        if arg.startswith("{"):
            collided = arg.strip("{}")
    original = files / collided
    if alias == "same":
        target = original
    else:
        target = tmp_path / f"alias{original.suffix}"
        (os.link if alias == "hard link" else os.symlink)(original, target)
    before = original.read_bytes()
    out_flags = {"-o", "--output", "--save", "--log-json"}
    args = [str(target) if a.startswith("{") and i and argv[i - 1] in out_flags
            else str(files / a.strip("{}")) if a.startswith("{") else a
            for i, a in enumerate(argv)]
    assert main(args) == 1
    one_line(capsys.readouterr().err, ERROR, f"{output} {target} is the {source} file")
    assert original.read_bytes() == before


# ----------------------------------------------------------- pictures are written whole


@pytest.mark.parametrize("command", [["attention", "olivia"], ["embeddings"]])
def test_a_picture_on_a_full_disk_keeps_the_old_one_whole(files, small_disk, capsys,  # noqa: F811
                                                          command):
    picture = small_disk / "inside.svg"
    argv = [command[0], "--load", str(files / "model.svg"), *command[1:], "-o", str(picture)]
    assert main(argv) == 0
    old = picture.read_bytes()
    picture.write_bytes(old[: len(old) // 2] + b"<!-- the old picture -->")  # to tell apart
    old = picture.read_bytes()
    leave_free(small_disk, 4096)  # far less than a picture
    assert main(argv) == 1
    one_line(capsys.readouterr().err, ERROR, f"cannot write {picture}",
             "No space left on device")
    assert picture.read_bytes() == old  # not torn, not truncated
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "inside.svg"]
