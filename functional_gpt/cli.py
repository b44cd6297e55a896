"""The command line: ``functional-gpt [train] [options]``, ``sample --load PATH``, ``plot LOGS``.

This is the imperative shell: it parses arguments, reads and writes files,
reads the clock and prints. Every computation is a library call (``datasets``,
``rng``, ``tokenizer``, ``train``, ``sample``, ``checkpoint``), so a REPL can
do the same step by step; ``train.prepare`` is the set-up both share.

``train`` (the default command) does what microgpt.py does::

    num docs: 32033
    vocab size: 27
    num params: 4192
    step    1 / 1000 | loss 3.3660
    ...
    training time: 12.10 s (12.1 ms/step)
    --- inference (new, hallucinated names) ---
    sample  1: kamon
    ...

On a terminal the step lines are one live line (with steps/s and time left);
piped, they are one line per step. ``--quiet`` prints only the sampled names,
one per line and nothing else. ``train --resume`` continues a saved run
exactly; ``eval`` and ``score`` judge a saved model; ``plot`` draws logs;
``attention`` and ``embeddings`` draw what a saved model does inside, and
``sample --explain`` the choice behind each sampled character.
Exit status: 0 done, 1 bad data, checkpoint or output path, a diverged run,
an output that cannot be written or memory that ran out, 2 bad arguments,
129 hung up (SIGHUP), 130 interrupted (Ctrl-C), 141 standard output closed
by its reader, 143 terminated (SIGTERM). ``shell.py`` holds the guards: what a stop signal
does, outputs that go away, and the output paths that are refused.

>>> main(["sample", "--load", "/no/such/checkpoint.json"])
1
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import Any, NamedTuple, NoReturn, TextIO, cast

from . import __version__, checkpoint, datasets, inside, limits, pictures, plot
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .evaluate import Evaluation, evaluate, running_evaluation, score, weights_of
from .model import Config, num_params
from .optim import Adam
from .sample import sample_stream
from .shell import (
    BROKEN_PIPE_STATUS,
    Output,
    OutputGone,
    PathRefused,
    Stopped,
    StopSignals,
    check_output_paths,
    discard,
    say,
    signal_status,
    stop_words,
)
from .train import Diverged, PreparedRun, StepEvent, TrainState, prepare, split_holdout, training

__all__ = ["step_line", "live_line", "fewer_gc_collections", "main"]

PROG = "functional-gpt"
_COMMANDS = ("train", "sample", "eval", "score", "plot", "attention", "embeddings")


def step_line(step: int, steps: int, loss: float) -> str:
    """Return microgpt.py's progress line for one step.

    >>> step_line(1, 1000, 3.3659669475848504)
    'step    1 / 1000 | loss 3.3660'
    """
    return f"step {step:4d} / {steps:4d} | loss {loss:.4f}"


def live_line(step: int, steps: int, loss: float, elapsed: float) -> str:
    """Return the terminal's live progress line: the step line, steps per second and time left.

    >>> live_line(50, 1000, 2.5, 2.0)
    'step   50 / 1000 | loss 2.5000 | 25.0 steps/s | 0:38 left'
    """
    rate = step / elapsed if elapsed > 0 else 0.0
    left = (steps - step) / rate if rate > 0 else 0.0
    minutes, seconds = divmod(round(left), 60)
    return f"{step_line(step, steps, loss)} | {rate:.1f} steps/s | {minutes}:{seconds:02d} left"


# ------------------------------------------------------------------ arguments


class _Fail(Exception):
    """A problem with data, files or checkpoints: exit status 1 with a one-line message."""


_say = say  # one line on standard error, never an error itself


def _error(message: str) -> None:
    _say(f"{PROG}: error: {message}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors: ``functional-gpt: error: ...``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        _error(f"{message} (see {self.prog} --help)")
        sys.exit(2)


def _file_argument(
    role: str, parser: argparse.ArgumentParser, *names: str, shown_as: str | None = None,
    **options: Any,
) -> None:
    """Add an argument naming files the command ``role`` ("reads" or "writes"), and record it.

    The parser's ``reads`` and ``writes`` defaults list ``(dest, name)`` for
    each such argument (its name as messages give it: its first flag, such as
    ``--save`` or ``-o``, or ``shown_as``), so that ``_guard_files`` checks
    every command's outputs the same way, whatever the command.
    """
    action = parser.add_argument(*names, **options)
    name = shown_as or names[0]
    parser.set_defaults(**{role: (*(parser.get_default(role) or ()), (action.dest, name))})


def _reads(parser: argparse.ArgumentParser, *names: str, **options: Any) -> None:
    """Add an argument naming a file (or files) the command reads."""
    _file_argument("reads", parser, *names, **options)


def _writes(parser: argparse.ArgumentParser, *names: str, **options: Any) -> None:
    """Add an argument naming a file the command writes: it may not be one the command reads."""
    _file_argument("writes", parser, *names, **options)


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    top = _Parser(
        prog=PROG,
        description="Train a tiny GPT on names (or any one-document-per-line text) and sample "
        "from it, in pure Python on an immutable autodiff tape.",
        epilog=f"Without a command, 'train' is run: '{PROG} --steps 100' trains for 100 steps. "
        f"'{PROG} COMMAND --help' lists a command's options. Exit status: 0 done, 1 bad data, "
        "checkpoint or output path, a diverged run, an output that cannot be written or "
        "memory that ran out, "
        "2 bad arguments, 129 hung up (SIGHUP), 130 interrupted (Ctrl-C), 141 standard output "
        "closed by its reader, 143 terminated (SIGTERM).",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{" + ",".join(_COMMANDS) + "}")
    train = sub.add_parser(
        "train",
        help="train a model and print samples (the default)",
        description="Train a GPT as microgpt.py does, print the loss of every step, then "
        "sample names. With --save, the model is saved at the end, on Ctrl-C, SIGTERM or "
        "SIGHUP, when the output goes away, "
        "as it was before a step that diverges, and every --save-every steps. "
        "--resume continues a saved run exactly where it stopped.",
    )
    train.set_defaults(may_replace={"--save": "--resume"})  # a resumed run saves over it
    _reads(
        train, "--resume", metavar="CKPT",
        help="continue the run saved in CKPT: its model, data, seed, schedule and optimizer "
        "state; the losses are exactly those of the run left alone. --steps may extend it, "
        "but then the learning rate decays over the new total, unlike a run planned that long; "
        "--lr changes the rate from the next step on",
    )
    _reads(
        train, "--data", metavar="PATH|URL",
        help="text file or http(s) URL, one document per line (default: the bundled names; "
        "a URL is downloaded once and cached)",
    )
    train.add_argument("--steps", type=int, metavar="N",
                       help="training steps in all (default 1000; with --resume, the saved plan)")
    train.add_argument("--seed", type=int, metavar="S", help="random seed (default 42)")
    train.add_argument("--n-layer", type=int, metavar="N",
                       help="transformer blocks (default 1)")
    train.add_argument("--n-embd", type=int, metavar="N",
                       help="embedding width (default 16)")
    train.add_argument("--n-head", type=int, metavar="N",
                       help="attention heads; must divide --n-embd (default 4)")
    train.add_argument("--block-size", type=int, metavar="N",
                       help="longest context in tokens (default 16)")
    train.add_argument("--lr", type=float, metavar="RATE",
                       help="Adam learning rate, decayed linearly to 0 (default 0.01; with "
                       "--resume, the saved one, and a new one applies from the next step on)")
    train.add_argument("--holdout", type=int, metavar="K",
                       help="keep the last K shuffled documents out of training and report the "
                       "model's loss on them at the end (default 0)")
    train.add_argument("--samples", type=int, default=20, metavar="K",
                       help="names to sample after training; 0 for none (default 20)")
    train.add_argument("--temperature", type=float, default=0.5, metavar="T",
                       help="sampling temperature, above 0 (default 0.5)")
    _writes(train, "--save", metavar="PATH",
            help="save a checkpoint (JSON) here after training, on Ctrl-C, SIGTERM "
                       "or SIGHUP; a symlink is written through to its target")
    train.add_argument("--save-every", type=int, metavar="N",
                       help="also save the checkpoint every N steps (needs --save)")
    _writes(train, "--log-json", metavar="PATH",
            help="write one JSON object per step: step, loss, lr, ms "
                       "(with --resume, appended)")
    train.add_argument("--quiet", action="store_true",
                       help="print only the sampled names, one per line")
    sample = sub.add_parser(
        "sample",
        help="sample names from a saved checkpoint",
        description="Sample names from a checkpoint written by 'train --save'. Without --seed "
        "the sampling continues the saved random state, so (at the same --temperature) the "
        "first names are the ones training printed.",
    )
    _reads(sample, "--load", metavar="PATH", required=True, help="checkpoint to load")
    sample.add_argument("--samples", type=int, default=20, metavar="K",
                        help="names to sample (default 20)")
    sample.add_argument("--temperature", type=float, default=0.5, metavar="T",
                        help="sampling temperature, above 0 (default 0.5)")
    sample.add_argument("--prompt", default="", metavar="TEXT",
                        help="text every name starts with (default: none)")
    sample.add_argument("--seed", type=int, metavar="S",
                        help="random seed (default: the saved random state)")
    sample.add_argument("--quiet", action="store_true",
                        help="print only the names, one per line")
    sample.add_argument("--explain", action="store_true",
                        help="under each name, one line per character: its probability at the "
                        "temperature, the three likeliest alternatives and the running "
                        "log-probability of the name (the names stay the same)")
    evaluating = sub.add_parser(
        "eval",
        help="the loss of a saved model on a data set",
        description="Report a checkpoint's mean loss per predicted token (nats) and perplexity "
        "on documents, each truncated to the block size as in training and including its end.",
    )
    _reads(evaluating, "--load", metavar="CKPT", required=True, help="checkpoint to load")
    _reads(
        evaluating, "--data", metavar="PATH|URL",
        help="documents to evaluate on (default: the checkpoint's own training documents)",
    )
    evaluating.add_argument("--json", action="store_true",
                            help='print one JSON object {"docs", "tokens", "loss", "perplexity"}')
    scoring = sub.add_parser(
        "score",
        help="how likely a saved model finds each name",
        description="Print, for each text, the natural-log probability of the whole text "
        "followed by its end, the number of predicted tokens and the nats per token. '-' "
        "reads texts from standard input, one per line.",
    )
    _reads(scoring, "--load", metavar="CKPT", required=True, help="checkpoint to load")
    scoring.add_argument("--json", action="store_true",
                         help='print one JSON object per text: {"text", "logprob", "tokens", '
                         '"nats_per_token"}')
    scoring.add_argument("texts", nargs="+", metavar="TEXT", help="texts to score, or -")
    plotting = sub.add_parser(
        "plot",
        help="draw the loss per step of --log-json files",
        description="Draw the loss of every step from one or more files written by "
        "'train --log-json', one line per file with its name in the legend, plus a moving "
        "average. Needs matplotlib: pip install 'functional_gpt[plot]'.",
    )
    _reads(plotting, "logs", nargs="+", metavar="LOG.jsonl", shown_as="log",
           help="--log-json files to draw")
    _writes(plotting, "-o", "--output", required=True, metavar="PATH",
            help="picture to write: a .png or .svg file")
    plotting.add_argument("--window", type=int, metavar="N",
                          help="steps in the moving average (default: a tenth of the longest "
                          "log, at most 50)")
    return top, {"train": train, "sample": sample, "eval": evaluating, "score": scoring,
                 "plot": plotting, **_inside_parsers(sub)}


def _inside_parsers(sub: argparse._SubParsersAction) -> dict[str, argparse.ArgumentParser]:
    """The commands that draw what a saved model does inside: ``attention``, ``embeddings``."""
    attention = sub.add_parser(
        "attention",
        help="draw a saved model's attention maps while it reads a text",
        description="Draw, for every layer and head, the attention weights while the model "
        "reads TEXT (rows: the query at each position; columns: the keys of the positions up "
        "to it; BOS, the start of every name, first), and under them the probability of "
        "every token coming next at each position, the true next one outlined. Needs "
        "matplotlib: "
        "pip install 'functional_gpt[plot]'.",
    )
    _reads(attention, "--load", metavar="CKPT", required=True, help="checkpoint to load")
    attention.add_argument("text", metavar="TEXT",
                           help="the text to read: characters of the vocabulary, and with its "
                           "end at most the block size")
    _writes(attention, "-o", "--output", required=True, metavar="PATH",
            help="picture to write: a .png or .svg file")
    embeddings = sub.add_parser(
        "embeddings",
        help="draw a saved model's token and position embeddings",
        description="Draw the token embeddings (wte) projected on their first two principal "
        "components, each point labelled with its character, and the position embeddings "
        "(wpe) in a second panel. Needs matplotlib: pip install 'functional_gpt[plot]'.",
    )
    _reads(embeddings, "--load", metavar="CKPT", required=True, help="checkpoint to load")
    _writes(embeddings, "-o", "--output", required=True, metavar="PATH",
            help="picture to write: a .png or .svg file")
    return {"attention": attention, "embeddings": embeddings}


def _with_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``train`` put first when it names no command (and asks for no top help)."""
    if argv and argv[0] in (*_COMMANDS, "-h", "--help", "--version"):
        return list(argv)
    return ["train", *argv]


def _check_sampling(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.samples < 0:
        parser.error(f"--samples must be 0 or more, got {args.samples}")
    low, high = limits.MIN_TEMPERATURE, limits.MAX_TEMPERATURE
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        parser.error(f"--temperature must be a positive number, got {args.temperature}")
    if not low <= args.temperature <= high:
        parser.error(f"--temperature must be from {low:g} to {high:g}, got {args.temperature:g}")


_DEFAULTS = {"steps": 1000, "seed": 42, "n_layer": 1, "n_embd": 16, "n_head": 4,
             "block_size": 16, "lr": 0.01, "holdout": 0}
_FIXED_BY_RESUME = ("seed", "n_layer", "n_embd", "n_head", "block_size", "holdout")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the train options; without --resume, fill in the defaults of those left out."""
    if args.resume:
        given = [name for name in _FIXED_BY_RESUME if getattr(args, name) is not None]
        if given:
            parser.error(f"{_flag(given[0])} cannot be given with --resume: the saved run "
                         "fixes the model, seed and holdout")
    else:
        for name, value in _DEFAULTS.items():
            if getattr(args, name) is None:
                setattr(args, name, value)  # the shell's own namespace
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    if not args.resume:
        for flag in ("n_layer", "n_embd", "n_head", "block_size"):
            value = getattr(args, flag)
            if value < 1:
                parser.error(f"{_flag(flag)} must be at least 1, got {value}")
        if args.n_embd % args.n_head:
            parser.error(f"--n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})")
        if args.holdout < 0:
            parser.error(f"--holdout must be 0 or more, got {args.holdout}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if args.save_every is not None:
        if args.save_every < 1:
            parser.error(f"--save-every must be at least 1, got {args.save_every}")
        if not args.save:
            parser.error("--save-every needs --save PATH")
    _check_sampling(parser, args)


# ---------------------------------------------------------------------- train

GC_THRESHOLD = 50_000


@contextmanager
def fewer_gc_collections(threshold: int = GC_THRESHOLD) -> Iterator[None]:
    """Within the block, run CPython's cyclic garbage collector less often; restore it after.

    Training allocates millions of small tuples that form no reference cycles,
    so the youngest generation may grow to ``threshold`` objects (CPython's
    default is 700) before a collection, and everything made before the block
    (documents, parameters) is frozen out of collections. A runtime setting, so
    it belongs to the shell; results are the same either way.

    >>> with fewer_gc_collections(10_000):
    ...     gc.get_threshold()[0]
    10000
    >>> gc.get_threshold()[0] != 10_000
    True
    """
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()



def _save(path: str, ckpt: checkpoint.Checkpoint, stops: StopSignals) -> None:
    """Save atomically with every stop signal held off: none can lose the checkpoint."""
    with stops.deferred():
        try:
            checkpoint.save(path, ckpt)
        except OSError as e:
            raise _Fail(f"cannot save checkpoint {path}: {e.strerror or e} (an earlier save "
                        "there, if any, is whole)") from None


class _Outcome(NamedTuple):
    """How a training loop ended: its last event, and what stopped it early, if anything.

    ``signum`` is the first stop signal, ``diverged`` a divergence,
    ``gone`` an output (standard output or the log) that could not be written
    and ``out_of_memory`` a step that ran out of memory. ``unfinished`` is
    what still ends the terminal's live line (its last state and a newline):
    written only after the save (``_end_live_line``).
    """

    last: StepEvent | None
    signum: int | None = None
    diverged: Diverged | None = None
    gone: OutputGone | None = None
    unfinished: str = ""
    out_of_memory: bool = False


def _steps(
    events: Iterator[StepEvent], steps: int, log: Output | None, out: TextIO, mode: str,
    stops: StopSignals, save_every: int | None = None,
    save: Callable[[TrainState], None] | None = None,
) -> _Outcome:
    """Run the training stream, logging and showing each step, saving every ``save_every``.

    ``mode`` is "lines" (one line per step), "live" (one line redrawn on a
    terminal, at most ten times a second) or "quiet" (nothing shown). Only the
    computation of a step can be interrupted by a stop signal; one that comes
    while a step is logged, shown or saved ends the loop after it. Once a stop
    has been asked for or an output has failed, nothing more is shown: the
    caller saves first, and only then ends the live line (``_end_live_line``),
    so that a terminal that hung up (where every write fails or blocks) cannot
    stand between the run and its save.
    """
    last: StepEvent | None = None
    start = previous = drawn = time.perf_counter()
    width = 0
    gone: OutputGone | None = None
    diverged: Diverged | None = None
    out_of_memory = False

    def live(event: StepEvent, now: float) -> str:
        return live_line(event.step, steps, event.loss, now - start)

    with stops.deferred():
        try:
            while stops.first is None:
                with stops.interruptible():
                    event = next(events, None)
                if event is None:
                    break
                now = time.perf_counter()
                last = event
                if log is not None:  # a file, written even after a stop: it logs what is saved
                    ms = round((now - previous) * 1000, 3)
                    log.write(json.dumps({"step": event.step, "loss": event.loss,
                                          "lr": event.lr, "ms": ms}) + "\n")
                previous = now
                if stops.first is not None:
                    pass  # asked to stop: show nothing more before the save
                elif mode == "lines":
                    print(step_line(event.step, steps, event.loss), file=out)
                elif mode == "live" and (now - drawn >= 0.1 or event.step in (1, steps)):
                    line = live(event, now)
                    out.write("\r" + line.ljust(width))  # over the last drawing, all of it
                    out.flush()
                    width, drawn = len(line), now
                if save_every and save is not None and event.step % save_every == 0:
                    save(event.state)
        except Stopped:
            pass  # the step under way is dropped; ``last`` is the last completed one
        except Diverged as e:
            diverged = e
        except MemoryError:  # the step is dropped; ``last`` is the last completed one
            out_of_memory = True
        except OutputGone as e:
            gone = e
    unfinished = ""
    if mode == "live" and last is not None and gone is None:
        unfinished = "\r" + live(last, time.perf_counter()).ljust(width) + "\n"
    return _Outcome(last, stops.first, diverged, gone, unfinished, out_of_memory)


def _end_live_line(out: TextIO, outcome: _Outcome) -> _Outcome:
    """After the save: end the terminal's live line; an output that fails now joins the outcome."""
    if not outcome.unfinished:
        return outcome
    try:
        out.write(outcome.unfinished)
        out.flush()
    except OutputGone as e:
        return outcome._replace(gone=e, unfinished="")
    return outcome._replace(unfinished="")


def _trim_log(path: str, done: int) -> int:
    """Cut a resumed run's log after step ``done``; return how many records were cut.

    A run killed after its last save logged steps the checkpoint does not
    hold, and a kill during a write can leave half a line: both go, so that
    the resumed run's records follow on at step ``done + 1``.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return 0
    except OSError as e:
        raise _Fail(f"cannot read --log-json {path}: {e.strerror or e}") from None
    keep, cut = 0, 0
    for line in data.splitlines(keepends=True):
        try:
            step = json.loads(line).get("step") if line.endswith(b"\n") else None
        except (ValueError, AttributeError):
            step = None
        if isinstance(step, int) and step <= done and not cut:
            keep += len(line)
        else:
            cut += 1
    if keep < len(data):
        try:
            os.truncate(path, keep)
        except OSError as e:
            raise _Fail(f"cannot write --log-json {path}: {e.strerror or e}") from None
    return cut


class _Setup(NamedTuple):
    """A run ready to train from the shell: fresh or resumed."""

    run: PreparedRun
    data: datasets.DataSource
    seed: int
    steps: int
    hyper: Adam
    holdout: int
    saved_lr: float | None = None  # a resumed run's learning rate before --lr changed it


def _fresh(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Setup:
    docs = datasets.load_docs(args.data)
    vocab_size = len(set().union(*docs)) + 1  # as tokenizer.build counts it: characters and BOS
    try:
        limits.check_model_size(Config(vocab_size, args.n_layer, args.n_embd, args.n_head,
                                       args.block_size))
    except ValueError as e:
        parser.error(f"{e}: make --n-layer, --n-embd or --block-size smaller")
    run = prepare(docs, args.seed, args.n_layer, args.n_embd, args.n_head, args.block_size)
    return _Setup(run, datasets.source_of(args.data, docs), args.seed, args.steps,
                  Adam(lr=args.lr), args.holdout)


def _saved_documents(
    ckpt: checkpoint.Checkpoint, path: str, data: str | None
) -> tuple[PreparedRun, datasets.DataSource]:
    """The run of a checkpoint's documents (from ``data`` if given), checked against its record."""
    saved = ckpt.data
    source: str | None
    if data is not None:
        source = data
    elif saved is None:
        raise _Fail(f"{path} (checkpoint version 1) does not record its documents: "
                    "give --data with the file it was trained on")
    else:
        source = saved.location
    try:
        docs = datasets.load_docs(source)
    except datasets.DataError as e:
        hint = "; give --data if the file has moved" if data is None else ""
        raise _Fail(f"{e}{hint}") from None
    record = datasets.source_of(source, docs)
    where = source or "the bundled names"
    if saved is not None and record.sha256 != saved.sha256:
        raise _Fail(
            f"the documents in {where} are not the ones {path} was trained on "
            f"(SHA-256 {record.sha256[:12]}..., {record.docs} documents; the checkpoint "
            f"expects {saved.sha256[:12]}..., {saved.docs} documents)"
        )
    config = ckpt.state.config
    run = prepare(docs, ckpt.seed, config.n_layer, config.n_embd, config.n_head, config.block_size)
    if run.tokenizer != ckpt.tokenizer:
        raise _Fail(f"the documents in {where} have another vocabulary than {path}")
    return run._replace(state=ckpt.state, rng=ckpt.rng), record


def _resumed(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Setup:
    ckpt = checkpoint.load(args.resume)
    run, record = _saved_documents(ckpt, args.resume, args.data)
    done = ckpt.state.adam.step
    steps = ckpt.steps if args.steps is None else args.steps
    if steps < done:
        parser.error(f"--steps {steps} is fewer than the {done} steps {args.resume} has taken")
    hyper = ckpt.hyper if args.lr is None else ckpt.hyper._replace(lr=args.lr)
    return _Setup(run, record, ckpt.seed, steps, hyper, ckpt.holdout, ckpt.hyper.lr)


def _evaluation_line(label: str, result: Evaluation) -> str:
    return (f"{label}: {result.docs} docs, {result.tokens} tokens, loss {result.loss:.4f}, "
            f"perplexity {result.perplexity:.3f}")


def _discard(gone: OutputGone) -> None:
    """After standard output failed: discard it, so that Python's last flush cannot fail."""
    if gone.name == "standard output":
        discard(sys.stdout)


def _settle(out: TextIO) -> None:
    """After a stop signal: flush standard output, or discard it where it cannot take the text
    (a terminal that hung up), so that Python's last flush at exit cannot fail."""
    try:
        out.flush()
    except OutputGone:
        discard(sys.stdout)


def _output_gone(gone: OutputGone, detail: str = "") -> int:
    """Report an output that could not be written; return the exit status.

    A reader that went away (``| head``) is no error: the run stops quietly with
    status 141, as a Unix tool killed by SIGPIPE does. Anything else (a full
    disk, a closed descriptor) is one error line and status 1.
    """
    _discard(gone)
    if gone.broken_pipe and gone.name == "standard output":
        return BROKEN_PIPE_STATUS
    _error(f"{gone}{detail}")
    return 1


def _train(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO,
    stops: StopSignals | None = None,
) -> int:
    stops = StopSignals() if stops is None else stops
    _check_train(parser, args)
    setup = _resumed(parser, args) if args.resume else _fresh(parser, args)
    if args.resume and args.data is None and setup.data.kind == "path":
        _guard_files(args, {"--data": setup.data.location})  # the file the checkpoint names
    run, steps = setup.run, setup.steps
    try:
        train_docs, held_out = split_holdout(run.tokens, setup.holdout)
    except ValueError as e:
        if args.resume:
            raise _Fail(f"{args.resume}: its holdout does not fit its documents: {e}") from None
        parser.error(f"--holdout: {e}")
    config = run.state.config
    done = run.state.adam.step
    trimmed = _trim_log(args.log_json, done) if args.resume and args.log_json else 0
    mode = "quiet" if args.quiet else "live" if out.isatty() else "lines"
    if not args.quiet:
        if args.resume:
            print(f"resuming {args.resume} after step {done} of {steps}", file=out)
            if args.lr is not None:
                print(f"--lr {setup.hyper.lr:g} from step {done + 1} on, instead of the saved "
                      f"{setup.saved_lr:g}: the run now differs from the one left alone",
                      file=out)
        if trimmed:
            print(f"--log-json {args.log_json}: cut {trimmed} records after step {done} "
                  "(steps the checkpoint does not hold, or a torn last line)", file=out)
        print(f"num docs: {len(run.docs)}", file=out)
        if setup.holdout:
            print(f"held out: {setup.holdout}", file=out)
        print(f"vocab size: {run.tokenizer.vocab_size}", file=out)
        print(f"num params: {num_params(config)}", file=out)

    def to_checkpoint(state: TrainState) -> checkpoint.Checkpoint:
        return checkpoint.Checkpoint(state, run.tokenizer, setup.seed, run.rng, steps,
                                     setup.hyper, setup.data, setup.holdout)

    def save(state: TrainState) -> None:
        _save(args.save, to_checkpoint(state), stops)

    try:
        mode_of_log = "a" if args.resume else "w"  # a resumed run's log continues the old one
        log_file = open(args.log_json, mode_of_log, encoding="utf-8") if args.log_json else None
    except OSError as e:
        raise _Fail(f"cannot write --log-json {args.log_json}: {e.strerror or e}") from None
    log = None if log_file is None else Output(log_file, f"--log-json {args.log_json}")
    start = time.perf_counter()
    saved: TrainState | None = None  # the state the run ends with, once it is saved
    try:
        # From the first step to the final save a stop signal is only recorded (but for the
        # computation of a step, which ``_steps`` lets it cut short): one that comes as the
        # loop ends, after a failed output, say, must not stand between the run and its save.
        with stops.deferred():
            try:
                with fewer_gc_collections():
                    outcome = _steps(
                        training(run.state, train_docs, steps, setup.hyper), steps, log, out,
                        mode, stops, args.save_every, save if args.save else None,
                    )
            finally:
                if log_file is not None:
                    try:
                        log_file.close()
                    except OSError:
                        pass  # its failure was reported as the run's outcome
            elapsed = time.perf_counter() - start
            if outcome.out_of_memory:
                gc.collect()  # the failed step's tape, held by cycles through its traceback, goes
            state = run.state if outcome.last is None else outcome.last.state
            if outcome.diverged is not None:
                state = outcome.diverged.last_good
            if args.save:
                save(state)
            saved = state
        outcome = _end_live_line(out, outcome)  # only now: nothing printed comes before the save
        return _report(args, out, stops, outcome, state, steps,
                       _Ending(done, elapsed, held_out, run, setup.hyper.lr))
    except Stopped as e:
        if saved is None:
            raise  # before the first step: the stop is all there is to say
        return _stopped(args, out, e.signum, saved, steps)  # still naming the step saved


def _stopped(
    args: argparse.Namespace, out: TextIO, signum: int, state: TrainState, steps: int
) -> int:
    """Say that training stopped, after which step and where it is saved; return the status."""
    _settle(out)
    saved = f"; saved it to {args.save}" if args.save else ""
    _say(f"{PROG}: {stop_words(signum)} after step {state.adam.step} of {steps}{saved}")
    return signal_status(signum)


class _Ending(NamedTuple):
    """What the end of a training run reports besides its outcome."""

    done: int  # steps taken before this run
    elapsed: float
    held_out: tuple[Sequence[int], ...]
    run: PreparedRun
    lr: float


def _report(
    args: argparse.Namespace, out: TextIO, stops: StopSignals, outcome: _Outcome,
    state: TrainState, steps: int, ending: _Ending,
) -> int:
    """After the final save: say how the run ended, sample, and return the exit status.

    A run that ended early says so in one line, which a stop signal does not
    cut short (nor follow with a line of its own); a finished run reports and
    samples, and a stop signal there ends it (``_train`` says after which step).
    """
    saved = f"; saved it to {args.save}" if args.save else ""
    after = f"after step {state.adam.step} of {steps}{saved}"
    with stops.deferred():
        if outcome.diverged is not None:
            _error(_diverged_message(args, outcome.diverged, steps, ending, saved))
            return 1
        if outcome.out_of_memory:
            _error(f"{_OUT_OF_MEMORY}; stopped {after}")
            return 1
        if stops.first is not None:  # also when it came during the final save
            if outcome.gone is not None:  # a hung-up terminal fails too: the signal says why
                _discard(outcome.gone)
            return _stopped(args, out, stops.first, state, steps)
        if outcome.gone is not None:
            return _output_gone(outcome.gone, f"; stopped {after}")
    with stops.interruptible():  # at once, if a stop came just now
        _finished(args, out, state, ending)
    return 0


def _finished(args: argparse.Namespace, out: TextIO, state: TrainState, ending: _Ending) -> None:
    """A finished run's report: its time, its checkpoint, its held-out loss and its samples."""
    config, run = state.config, ending.run
    if not args.quiet:
        ran = max(1, state.adam.step - ending.done)
        print(f"training time: {ending.elapsed:.2f} s "
              f"({ending.elapsed * 1000 / ran:.1f} ms/step)", file=out)
        if args.save:
            print(f"saved checkpoint: {args.save}", file=out)
        if ending.held_out:
            result = evaluate(weights_of(state), config, ending.held_out)
            print(_evaluation_line("held-out eval", result), file=out)
    if args.samples:
        if not args.quiet:
            print("--- inference (new, hallucinated names) ---", file=out)
        stream = sample_stream(state.tape, config, run.tokenizer, run.rng, args.temperature)
        _print_names((name for _, name in islice(stream, args.samples)), args.quiet, out)


def _diverged_message(
    args: argparse.Namespace, bad: Diverged, steps: int, ending: _Ending, saved: str
) -> str:
    """What a diverged run says: where, why, what was saved, and advice the program accepts.

    ``last_good`` is called good only when a step of this run made it; a
    resumed run that fails at once says the checkpoint's weights could not take
    a step. A smaller ``--lr`` is advised where it could help (``train --lr``
    and ``train --resume --lr`` both take it); where the weights' own loss is
    not finite, no learning rate continues them, and the advice is to train
    again.
    """
    kept = bad.last_good.adam.step
    where = f"training diverged at step {bad.step} of {steps} ({bad.reason})"
    smaller = f"a smaller --lr (this run's is {ending.lr:g})"
    if args.resume and kept == ending.done:  # the checkpoint's own weights failed
        head = f"{where}: the weights of {args.resume} (step {kept}) could not take a step{saved}"
        if bad.loss_fails:
            return (f"{head}. Their loss is not finite, so no learning rate continues them: "
                    f"train again from the start (without --resume) with {smaller}")
        return f"{head}. Resume it with {smaller}"
    if bad.loss_fails:
        return (f"{where}; the weights of step {kept} are finite but their loss is not{saved}. "
                f"Train again with {smaller}")
    return f"{where}; the last good step is {kept}{saved}. Try {smaller}"


def _print_names(names: Iterable[str], quiet: bool, out: TextIO) -> None:
    """Print each name as soon as it is drawn."""
    for i, name in enumerate(names, 1):
        print(name if quiet else f"sample {i:2d}: {name}", file=out)


# ------------------------------------------------------------ eval and score


def _eval(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    ckpt = checkpoint.load(args.load)
    config, tok = ckpt.state.config, ckpt.tokenizer
    if args.data is None:
        run, _ = _saved_documents(ckpt, args.load, None)
        try:
            docs, _ = split_holdout(run.tokens, ckpt.holdout)
        except ValueError as e:
            raise _Fail(f"{args.load}: its holdout does not fit its documents: {e}") from None
    else:
        texts = datasets.load_docs(args.data)
        encoded = []  # local transient
        for line, text in enumerate(texts, 1):
            try:
                encoded.append(tk.doc_tokens(tok, text))
            except ValueError as e:
                raise _Fail(f"{args.data}: document {line} ({text!r}): "
                            f"{str(e).removeprefix('encode: ')}") from None
        docs = tuple(encoded)
    terminal = sys.stderr is not None and sys.stderr.isatty()
    progress = Output(sys.stderr, "standard error") if terminal else None
    result, drawn = None, 0.0
    for result in running_evaluation(weights_of(ckpt.state), config, docs):
        now = time.perf_counter()
        if progress is not None and now - drawn >= 0.1:
            try:
                progress.write(f"\reval: {result.docs} / {len(docs)} docs | "
                               f"loss {result.loss:.4f}")
                progress.flush()
            except OutputGone:
                progress = None  # the terminal went away: the result still goes to stdout
            drawn = now
    if progress is not None and drawn:
        try:
            progress.write("\n")
        except OutputGone:
            pass
    assert result is not None  # load_docs and the holdout split never give zero documents
    if args.json:
        print(json.dumps(result._asdict()), file=out)
    else:
        print(f"docs: {result.docs}", file=out)
        print(f"tokens: {result.tokens}", file=out)
        print(f"loss: {result.loss:.4f}", file=out)
        print(f"perplexity: {result.perplexity:.3f}", file=out)
    return 0


_LONGEST_LINE = 1 << 20  # characters of one line of score's standard input


def _stdin_texts() -> Iterator[tuple[str, str]]:
    """``(where, text)`` for each non-blank line of standard input, read one line at a time."""
    if sys.stdin is None:
        raise _Fail("cannot read standard input: it is closed")
    number = 0
    while True:
        number += 1
        try:
            line = sys.stdin.readline(_LONGEST_LINE)
        except UnicodeDecodeError:
            raise _Fail(f"standard input, line {number}: not UTF-8 text") from None
        except OSError as e:
            raise _Fail(f"cannot read standard input: {e.strerror or e}") from None
        if not line:
            return
        if len(line) == _LONGEST_LINE and not line.endswith("\n"):
            raise _Fail(f"standard input, line {number}: longer than {_LONGEST_LINE} characters")
        if line.strip():
            yield f"line {number}: ", line.strip()


def _score(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    ckpt = checkpoint.load(args.load)
    config, tok = ckpt.state.config, ckpt.tokenizer
    texts: Iterable[tuple[str, str]] = (("", text) for text in args.texts)
    if "-" in args.texts:
        if args.texts != ["-"]:
            parser.error("give either texts or -, not both")
        texts = _stdin_texts()
    w = weights_of(ckpt.state)
    for where, text in texts:  # each score is printed as soon as it is known
        try:
            s = score(w, config, tok, text)
        except T.NonFiniteError:
            raise
        except ValueError as e:
            message = str(e)
            if message.startswith("encode: "):
                message = f"{text!r}: {message.removeprefix('encode: ')}"
            parser.error(f"{where}{message}")
        if args.json:
            print(json.dumps(s._asdict(), ensure_ascii=False), file=out)
        else:
            print(f"{s.logprob:10.4f}  {s.tokens:3d} tokens  {s.nats_per_token:.4f} nats/token  "
                  f"{s.text}", file=out)
    return 0


# --------------------------------------------------------------------- sample


def _sample(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _check_sampling(parser, args)
    if args.explain and args.quiet:
        parser.error("--explain cannot be given with --quiet")
    ckpt = checkpoint.load(args.load)
    config = ckpt.state.config  # checked when the checkpoint was read
    try:
        tk.encode(ckpt.tokenizer, args.prompt)
    except ValueError as e:
        parser.error(f"--prompt {args.prompt!r}: {str(e).removeprefix('encode: ')}")
    if len(args.prompt) > config.block_size:
        parser.error(
            f"--prompt of {len(args.prompt)} characters is longer than the block size "
            f"{config.block_size}"
        )
    rng = ckpt.rng if args.seed is None else R.seed(args.seed)
    if args.explain:
        explained = inside.explain_stream(weights_of(ckpt.state), config, ckpt.tokenizer, rng,
                                          args.temperature, args.prompt)
        _print_explained((ex for _, ex in islice(explained, args.samples)), args.temperature,
                         inside.label_of(ckpt.tokenizer, ckpt.tokenizer.bos), out)
        return 0
    stream = sample_stream(ckpt.state.tape, config, ckpt.tokenizer, rng, args.temperature,
                           args.prompt)
    _print_names((name for _, name in islice(stream, args.samples)), args.quiet, out)
    return 0


def _print_explained(
    explained: Iterable[inside.Explained], temperature: float, bos: str, out: TextIO
) -> None:
    """Print the header, then each name and its explanation as soon as it is drawn."""
    print(f"p: each token's probability at temperature {temperature:g}; ln p: the name's "
          f"log-probability so far; {bos} is BOS, the end", file=out)
    for i, name in enumerate(explained, 1):
        print(f"sample {i:2d}: {name.text}", file=out)
        for line in inside.explanation_lines(name):
            print(line, file=out)


# ----------------------------------------------------------------------- plot


def _plot(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    suffix = os.path.splitext(args.output)[1].lower().lstrip(".")
    if suffix not in plot.FORMATS:
        parser.error(f"-o {args.output}: the file name must end in .png or .svg")
    if args.window is not None and args.window < 1:
        parser.error(f"--window must be at least 1, got {args.window}")
    curves = [plot.read_log(path) for path in args.logs]
    print(f"wrote {plot.plot_losses(curves, args.output, args.window)}", file=out)
    return 0


# ------------------------------------------------------ attention, embeddings


def _picture_path(parser: argparse.ArgumentParser, path: str) -> None:
    """Exit 2 unless ``path`` ends in a picture format."""
    try:
        plot.output_format(path)
    except plot.PlotError:
        parser.error(f"-o {path}: the file name must end in .png or .svg")


def _attention(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _picture_path(parser, args.output)
    ckpt = checkpoint.load(args.load)
    try:
        reading = inside.read(weights_of(ckpt.state), ckpt.state.config, ckpt.tokenizer,
                              args.text)
    except T.NonFiniteError:
        raise
    except ValueError as e:
        message = str(e)
        if message.startswith("encode: "):
            message = f"{args.text!r}: {message.removeprefix('encode: ')}"
        parser.error(message)
    print(f"wrote {pictures.draw_attention(reading, args.output)}", file=out)
    return 0


def _embeddings(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _picture_path(parser, args.output)
    ckpt = checkpoint.load(args.load)
    found = inside.embeddings(weights_of(ckpt.state), ckpt.tokenizer)
    print(f"wrote {pictures.draw_embeddings(found, args.output)}", file=out)
    return 0


# ----------------------------------------------------------------------- main


def _paths(args: argparse.Namespace, role: str) -> dict[str, str | None]:
    """The local files named by the arguments that ``role`` ("reads", "writes"), by name.

    A URL or a standard input ``-`` is no local file, so it is left out.
    """
    paths: dict[str, str | None] = {}  # local transient
    for dest, name in getattr(args, role, None) or ():
        value = getattr(args, dest, None)
        values = value if isinstance(value, list) else [value]
        for i, path in enumerate(values, 1):
            key = f"{name} {i}" if isinstance(value, list) else name
            paths[key] = None if path is None or datasets.is_url(path) else path
    return paths


def _guard_files(args: argparse.Namespace, more_inputs: dict[str, str | None] | None = None,
                 ) -> None:
    """The one check of every command's outputs, before it works: ``check_output_paths``
    refuses an output that is one of the command's inputs (or another output), a
    directory, a device or FIFO, or a file that cannot be written."""
    try:
        check_output_paths(_paths(args, "writes"), {**_paths(args, "reads"), **(more_inputs or {})},
                           may_replace=getattr(args, "may_replace", None))
    except PathRefused as e:
        raise _Fail(str(e)) from None


def _run(argv: Sequence[str], out: TextIO, stops: StopSignals) -> int:
    """Parse ``argv``, check its output paths against its inputs, and run its command."""
    top, parsers = _parser()
    args = top.parse_args(_with_command(argv))
    parser = parsers[args.command]
    _guard_files(args)
    try:
        return _dispatch(parser, args, out, stops)
    except T.NonFiniteError as e:  # weights within the limit, yet a probability underflows
        model_of = getattr(args, "load", None) or "the model"
        raise _Fail(f"{model_of}: the model's forward pass is not finite ({e}): its weights "
                    "are too large") from None


def _dispatch(
    parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO, stops: StopSignals
) -> int:
    """Run the parsed command."""
    if args.command == "sample":
        return _sample(parser, args, out)
    if args.command == "plot":
        return _plot(parser, args, out)
    if args.command == "eval":
        return _eval(parser, args, out)
    if args.command == "score":
        return _score(parser, args, out)
    if args.command == "attention":
        return _attention(parser, args, out)
    if args.command == "embeddings":
        return _embeddings(parser, args, out)
    return _train(parser, args, out, stops)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """Show a warning (such as ``plot.MissingGlyphs``) as one line, as the errors are."""
    _say(f"{PROG}: warning: {message}")


def main(argv: Sequence[str] | None = None, stops: StopSignals | None = None) -> int:
    """Return the exit status after running the command line ``argv`` (default ``sys.argv``).

    Usage errors print one line ``functional-gpt: error: ...`` and exit with
    status 2; bad data, checkpoints or output paths print such a line and
    return 1. SIGINT, SIGTERM and SIGHUP stop the command (training saves its
    last completed step first) with status 130, 143 or 129; standard output
    closed by its reader ends it quietly with 141 (see ``shell``). ``stops``
    is the process's record of signals, when the caller caught them first
    (``__main__`` does): then a stop is reported once, however many come.
    """
    out = cast(TextIO, Output(sys.stdout, "standard output"))
    stops = StopSignals() if stops is None else stops
    try:
        with stops.installed(), warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return _run(sys.argv[1:] if argv is None else argv, out, stops)
    except (_Fail, datasets.DataError, checkpoint.CheckpointError, plot.PlotError) as e:
        _error(str(e))
        return 1
    except OutputGone as e:
        return _output_gone(e)
    except Stopped as e:
        _settle(out)
        _say(f"{PROG}: {stop_words(e.signum)}")
        return signal_status(e.signum)
    except MemoryError:
        _error(_OUT_OF_MEMORY)
        return 1


_OUT_OF_MEMORY = ("out of memory: the files, model or number of samples are too large for the "
                  "memory this process may use")
