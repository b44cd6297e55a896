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
one per line and nothing else. Exit status: 0 done, 1 bad data, checkpoint
or output path, 2 bad arguments, 130 interrupted (Ctrl-C).

>>> main(["sample", "--load", "/no/such/checkpoint.json"])
1
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from . import __version__, checkpoint, datasets, plot
from . import rng as R
from . import tokenizer as tk
from .model import num_params
from .optim import Adam
from .sample import samples
from .train import StepEvent, prepare, training

__all__ = ["step_line", "live_line", "fewer_gc_collections", "main"]

PROG = "functional-gpt"
_COMMANDS = ("train", "sample", "plot")


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


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Train a tiny GPT on names (or any one-document-per-line text) and sample "
        "from it, in pure Python on an immutable autodiff tape.",
        epilog=f"Without a command, 'train' is run: '{PROG} --steps 100' trains for 100 steps. "
        f"'{PROG} COMMAND --help' lists a command's options. Exit status: 0 done, 1 bad data, "
        "checkpoint or output path, 2 bad arguments, 130 interrupted.",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{train,sample,plot}")
    train = sub.add_parser(
        "train",
        help="train a model and print samples (the default)",
        description="Train a GPT as microgpt.py does, print the loss of every step, then "
        "sample names. With --save, the model is saved at the end and on Ctrl-C.",
    )
    train.add_argument(
        "--data", metavar="PATH|URL",
        help="text file or http(s) URL, one document per line (default: the bundled names; "
        "a URL is downloaded once and cached)",
    )
    train.add_argument("--steps", type=int, default=1000, metavar="N",
                       help="training steps (default 1000)")
    train.add_argument("--seed", type=int, default=42, metavar="S", help="random seed (default 42)")
    train.add_argument("--n-layer", type=int, default=1, metavar="N",
                       help="transformer blocks (default 1)")
    train.add_argument("--n-embd", type=int, default=16, metavar="N",
                       help="embedding width (default 16)")
    train.add_argument("--n-head", type=int, default=4, metavar="N",
                       help="attention heads; must divide --n-embd (default 4)")
    train.add_argument("--block-size", type=int, default=16, metavar="N",
                       help="longest context in tokens (default 16)")
    train.add_argument("--lr", type=float, default=0.01, metavar="RATE",
                       help="Adam learning rate, decayed linearly to 0 (default 0.01)")
    train.add_argument("--samples", type=int, default=20, metavar="K",
                       help="names to sample after training; 0 for none (default 20)")
    train.add_argument("--temperature", type=float, default=0.5, metavar="T",
                       help="sampling temperature, above 0 (default 0.5)")
    train.add_argument("--save", metavar="PATH",
                       help="save a checkpoint (JSON) here after training or on Ctrl-C")
    train.add_argument("--log-json", metavar="PATH",
                       help="write one JSON object per step: step, loss, lr, ms")
    train.add_argument("--quiet", action="store_true",
                       help="print only the sampled names, one per line")
    sample = sub.add_parser(
        "sample",
        help="sample names from a saved checkpoint",
        description="Sample names from a checkpoint written by 'train --save'. Without --seed "
        "the sampling continues the saved random state, so (at the same --temperature) the "
        "first names are the ones training printed.",
    )
    sample.add_argument("--load", metavar="PATH", required=True, help="checkpoint to load")
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
    plotting = sub.add_parser(
        "plot",
        help="draw the loss per step of --log-json files",
        description="Draw the loss of every step from one or more files written by "
        "'train --log-json', one line per file with its name in the legend, plus a moving "
        "average. Needs matplotlib: pip install 'functional_gpt[plot]'.",
    )
    plotting.add_argument("logs", nargs="+", metavar="LOG.jsonl", help="--log-json files to draw")
    plotting.add_argument("-o", "--output", required=True, metavar="PATH",
                      help="picture to write: a .png or .svg file")
    plotting.add_argument("--window", type=int, metavar="N",
                      help="steps in the moving average (default: a tenth of the longest log, "
                      "at most 50)")
    return top, {"train": train, "sample": sample, "plot": plotting}


def _with_command(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``train`` put first when it names no command (and asks for no top help)."""
    if argv and argv[0] in (*_COMMANDS, "-h", "--help", "--version"):
        return list(argv)
    return ["train", *argv]


def _check_sampling(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.samples < 0:
        parser.error(f"--samples must be 0 or more, got {args.samples}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        parser.error(f"--temperature must be a positive number, got {args.temperature}")


def _check_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    for flag in ("n_layer", "n_embd", "n_head", "block_size"):
        value = getattr(args, flag)
        if value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1, got {value}")
    if args.n_embd % args.n_head:
        parser.error(f"--n-embd ({args.n_embd}) must be divisible by --n-head ({args.n_head})")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    _check_sampling(parser, args)


def _check_writable(path: str, flag: str) -> None:
    """Fail unless a file can be created at ``path`` (tried with a temp file beside it)."""
    where = f"cannot write {flag} {path}"
    if os.path.isdir(path):
        raise _Fail(f"{where}: it is a directory")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise _Fail(f"{where}: no such directory {folder}")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise _Fail(f"{where}: permission denied")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".functional-gpt-", dir=folder)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise _Fail(f"{where}: {e.strerror or e}") from None


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



def _save(path: str, ckpt: checkpoint.Checkpoint) -> None:
    """Save with Ctrl-C held off, so an impatient second Ctrl-C cannot lose the checkpoint."""
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: signals cannot be changed, save anyway
        old = None
    try:
        checkpoint.save(path, ckpt)
    except OSError as e:
        raise _Fail(f"cannot save checkpoint {path}: {e.strerror or e}") from None
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)


def _steps(
    events: Iterator[StepEvent], steps: int, log: TextIO | None, out: TextIO, mode: str
) -> tuple[StepEvent | None, bool]:
    """Run the training stream, logging and showing each step; return (last event, interrupted).

    ``mode`` is "lines" (one line per step), "live" (one line redrawn on a
    terminal, at most ten times a second) or "quiet" (nothing shown).
    """
    last: StepEvent | None = None
    start = previous = drawn = time.perf_counter()
    width = 0

    def draw(event: StepEvent, now: float) -> None:
        nonlocal width, drawn
        line = live_line(event.step, steps, event.loss, now - start)
        out.write("\r" + line.ljust(width))
        out.flush()
        width, drawn = len(line), now

    try:
        for event in events:
            now = time.perf_counter()
            last = event
            if log is not None:
                ms = round((now - previous) * 1000, 3)
                log.write(json.dumps({"step": event.step, "loss": event.loss, "lr": event.lr,
                                      "ms": ms}) + "\n")
                log.flush()
            previous = now
            if mode == "lines":
                print(step_line(event.step, steps, event.loss), file=out, flush=True)
            elif mode == "live" and (now - drawn >= 0.1 or event.step in (1, steps)):
                draw(event, now)
    except KeyboardInterrupt:
        if mode == "live" and last is not None:
            draw(last, time.perf_counter())
        return last, True
    finally:
        if mode == "live" and width:
            out.write("\n")
        out.flush()
    return last, False


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _check_train(parser, args)
    for path, flag in ((args.save, "--save"), (args.log_json, "--log-json")):
        if path:
            _check_writable(path, flag)
    docs = datasets.load_docs(args.data)
    run = prepare(docs, args.seed, args.n_layer, args.n_embd, args.n_head, args.block_size)
    config = run.state.config
    hyper = Adam(lr=args.lr)
    mode = "quiet" if args.quiet else "live" if out.isatty() else "lines"
    if not args.quiet:
        print(f"num docs: {len(run.docs)}", file=out)
        print(f"vocab size: {run.tokenizer.vocab_size}", file=out)
        print(f"num params: {num_params(config)}", file=out, flush=True)
    try:
        log = open(args.log_json, "w", encoding="utf-8") if args.log_json else None
    except OSError as e:
        raise _Fail(f"cannot write --log-json {args.log_json}: {e.strerror or e}") from None
    start = time.perf_counter()
    try:
        with fewer_gc_collections():
            last, interrupted = _steps(
                training(run.state, run.tokens, args.steps, hyper), args.steps, log, out, mode
            )
    finally:
        if log is not None:
            log.close()
    elapsed = time.perf_counter() - start
    state = run.state if last is None else last.state
    if args.save:
        _save(args.save, checkpoint.Checkpoint(
            state, run.tokenizer, args.seed, run.rng, args.steps, hyper))
    if interrupted:
        saved = f"; saved it to {args.save}" if args.save else ""
        print(f"{PROG}: interrupted after step {state.adam.step} of {args.steps}{saved}",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"training time: {elapsed:.2f} s ({elapsed * 1000 / args.steps:.1f} ms/step)",
              file=out)
        if args.save:
            print(f"saved checkpoint: {args.save}", file=out)
    if args.samples:
        if not args.quiet:
            print("--- inference (new, hallucinated names) ---", file=out)
        _, names = samples(state.tape, config, run.tokenizer, run.rng, args.samples,
                           args.temperature)
        _print_names(names, args.quiet, out)
    return 0


def _print_names(names: Sequence[str], quiet: bool, out: TextIO) -> None:
    for i, name in enumerate(names, 1):
        print(name if quiet else f"sample {i:2d}: {name}", file=out)


# --------------------------------------------------------------------- sample


def _sample(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _check_sampling(parser, args)
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
    _, names = samples(ckpt.state.tape, config, ckpt.tokenizer, rng, args.samples,
                       args.temperature, args.prompt)
    _print_names(names, args.quiet, out)
    return 0


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


# ----------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    """Return the exit status after running the command line ``argv`` (default ``sys.argv``).

    Usage errors exit with status 2 through argparse; bad data, checkpoints or
    output paths print ``functional-gpt: error: ...`` and return 1.
    """
    top, parsers = _parser()
    args = top.parse_args(_with_command(sys.argv[1:] if argv is None else argv))
    parser = parsers[args.command]
    out = sys.stdout
    try:
        if args.command == "sample":
            return _sample(parser, args, out)
        if args.command == "plot":
            return _plot(parser, args, out)
        return _train(parser, args, out)
    except (_Fail, datasets.DataError, checkpoint.CheckpointError, plot.PlotError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python's
        # final flush of stdout from failing too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
