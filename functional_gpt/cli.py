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
Exit status: 0 done, 1 bad data, checkpoint or output path, or a diverged
run, 2 bad arguments, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, NamedTuple, TextIO

from . import __version__, checkpoint, datasets, inside, pictures, plot
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .evaluate import Evaluation, evaluate, running_evaluation, score, weights_of
from .model import num_params
from .optim import Adam
from .sample import samples
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


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    top = argparse.ArgumentParser(
        prog=PROG,
        description="Train a tiny GPT on names (or any one-document-per-line text) and sample "
        "from it, in pure Python on an immutable autodiff tape.",
        epilog=f"Without a command, 'train' is run: '{PROG} --steps 100' trains for 100 steps. "
        f"'{PROG} COMMAND --help' lists a command's options. Exit status: 0 done, 1 bad data, "
        "checkpoint or output path, or a diverged run, 2 bad arguments, 130 interrupted "
        "(Ctrl-C), 143 terminated (SIGTERM).",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = top.add_subparsers(dest="command", metavar="{" + ",".join(_COMMANDS) + "}")
    train = sub.add_parser(
        "train",
        help="train a model and print samples (the default)",
        description="Train a GPT as microgpt.py does, print the loss of every step, then "
        "sample names. With --save, the model is saved at the end, on Ctrl-C or SIGTERM, "
        "after the last good step of a diverging run, and every --save-every steps. "
        "--resume continues a saved run exactly where it stopped.",
    )
    train.add_argument(
        "--resume", metavar="CKPT",
        help="continue the run saved in CKPT: its model, data, seed, schedule and optimizer "
        "state; the losses are exactly those of the run left alone. --steps may extend it, "
        "but then the learning rate decays over the new total, unlike a run planned that long",
    )
    train.add_argument(
        "--data", metavar="PATH|URL",
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
                       help="Adam learning rate, decayed linearly to 0 (default 0.01)")
    train.add_argument("--holdout", type=int, metavar="K",
                       help="keep the last K shuffled documents out of training and report the "
                       "model's loss on them at the end (default 0)")
    train.add_argument("--samples", type=int, default=20, metavar="K",
                       help="names to sample after training; 0 for none (default 20)")
    train.add_argument("--temperature", type=float, default=0.5, metavar="T",
                       help="sampling temperature, above 0 (default 0.5)")
    train.add_argument("--save", metavar="PATH",
                       help="save a checkpoint (JSON) here after training, on Ctrl-C or SIGTERM")
    train.add_argument("--save-every", type=int, metavar="N",
                       help="also save the checkpoint every N steps (needs --save)")
    train.add_argument("--log-json", metavar="PATH",
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
    evaluating.add_argument("--load", metavar="CKPT", required=True, help="checkpoint to load")
    evaluating.add_argument(
        "--data", metavar="PATH|URL",
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
    scoring.add_argument("--load", metavar="CKPT", required=True, help="checkpoint to load")
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
    plotting.add_argument("logs", nargs="+", metavar="LOG.jsonl", help="--log-json files to draw")
    plotting.add_argument("-o", "--output", required=True, metavar="PATH",
                      help="picture to write: a .png or .svg file")
    plotting.add_argument("--window", type=int, metavar="N",
                      help="steps in the moving average (default: a tenth of the longest log, "
                      "at most 50)")
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
    attention.add_argument("--load", metavar="CKPT", required=True, help="checkpoint to load")
    attention.add_argument("text", metavar="TEXT",
                           help="the text to read: characters of the vocabulary, and with its "
                           "end at most the block size")
    attention.add_argument("-o", "--output", required=True, metavar="PATH",
                           help="picture to write: a .png or .svg file")
    embeddings = sub.add_parser(
        "embeddings",
        help="draw a saved model's token and position embeddings",
        description="Draw the token embeddings (wte) projected on their first two principal "
        "components, each point labelled with its character, and the position embeddings "
        "(wpe) in a second panel. Needs matplotlib: pip install 'functional_gpt[plot]'.",
    )
    embeddings.add_argument("--load", metavar="CKPT", required=True, help="checkpoint to load")
    embeddings.add_argument("-o", "--output", required=True, metavar="PATH",
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
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        parser.error(f"--temperature must be a positive number, got {args.temperature}")


_DEFAULTS = {"steps": 1000, "seed": 42, "n_layer": 1, "n_embd": 16, "n_head": 4,
             "block_size": 16, "lr": 0.01, "holdout": 0}
_FIXED_BY_RESUME = ("seed", "n_layer", "n_embd", "n_head", "block_size", "lr", "holdout")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Check the train options; without --resume, fill in the defaults of those left out."""
    if args.resume:
        given = [name for name in _FIXED_BY_RESUME if getattr(args, name) is not None]
        if given:
            parser.error(f"{_flag(given[0])} cannot be given with --resume: the saved run "
                         "fixes the model, seed, learning rate and holdout")
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
        if not (math.isfinite(args.lr) and args.lr > 0):
            parser.error(f"--lr must be a positive number, got {args.lr}")
        if args.holdout < 0:
            parser.error(f"--holdout must be 0 or more, got {args.holdout}")
    if args.save_every is not None:
        if args.save_every < 1:
            parser.error(f"--save-every must be at least 1, got {args.save_every}")
        if not args.save:
            parser.error("--save-every needs --save PATH")
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



class _Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while training; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def _on_stop_signals(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM call ``handler``; the old handlers come back after.

    Outside the main thread signals cannot be changed, and the block runs as it is.
    """
    try:
        old = [(sig, signal.signal(sig, handler)) for sig in _STOP_SIGNALS]
    except ValueError:
        old = []
    try:
        yield
    finally:
        for sig, previous in old:
            signal.signal(sig, previous)


def _raise_stopped(signum: int, frame: object) -> None:
    raise _Stopped(signum)


def _save(path: str, ckpt: checkpoint.Checkpoint) -> tuple[int, ...]:
    """Save with Ctrl-C and SIGTERM held off, so that no signal can lose the checkpoint.

    Returns the signals that arrived meanwhile, for the caller to act on.
    """
    pending: list[int] = []  # local transient

    def note(signum: int, frame: object) -> None:
        pending.append(signum)

    with _on_stop_signals(note):
        try:
            checkpoint.save(path, ckpt)
        except OSError as e:
            raise _Fail(f"cannot save checkpoint {path}: {e.strerror or e}") from None
    return tuple(pending)


class _Outcome(NamedTuple):
    """How a training loop ended: its last event, and the signal or divergence that stopped it."""

    last: StepEvent | None
    signum: int | None = None
    diverged: Diverged | None = None


def _steps(
    events: Iterator[StepEvent], steps: int, log: IO[str] | None, out: TextIO, mode: str,
    save_every: int | None = None, save: Callable[[TrainState], tuple[int, ...]] | None = None,
) -> _Outcome:
    """Run the training stream, logging and showing each step, saving every ``save_every``.

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
            if save_every and save is not None and event.step % save_every == 0:
                pending = save(event.state)
                if pending:
                    raise _Stopped(pending[0])
    except KeyboardInterrupt as e:
        if mode == "live" and last is not None:
            draw(last, time.perf_counter())
        return _Outcome(last, e.signum if isinstance(e, _Stopped) else signal.SIGINT)
    except Diverged as e:
        return _Outcome(last, diverged=e)
    finally:
        if mode == "live" and width:
            out.write("\n")
        out.flush()
    return _Outcome(last)


class _Setup(NamedTuple):
    """A run ready to train from the shell: fresh or resumed."""

    run: PreparedRun
    data: datasets.DataSource
    seed: int
    steps: int
    hyper: Adam
    holdout: int


def _fresh(args: argparse.Namespace) -> _Setup:
    docs = datasets.load_docs(args.data)
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
    return _Setup(run, record, ckpt.seed, steps, ckpt.hyper, ckpt.holdout)


def _evaluation_line(label: str, result: Evaluation) -> str:
    return (f"{label}: {result.docs} docs, {result.tokens} tokens, loss {result.loss:.4f}, "
            f"perplexity {result.perplexity:.3f}")


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    _check_train(parser, args)
    for path, flag in ((args.save, "--save"), (args.log_json, "--log-json")):
        if path:
            _check_writable(path, flag)
    setup = _resumed(parser, args) if args.resume else _fresh(args)
    run, steps = setup.run, setup.steps
    try:
        train_docs, held_out = split_holdout(run.tokens, setup.holdout)
    except ValueError as e:
        parser.error(f"--holdout: {e}")
    config = run.state.config
    done = run.state.adam.step
    mode = "quiet" if args.quiet else "live" if out.isatty() else "lines"
    if not args.quiet:
        if args.resume:
            print(f"resuming {args.resume} after step {done} of {steps}", file=out)
        print(f"num docs: {len(run.docs)}", file=out)
        if setup.holdout:
            print(f"held out: {setup.holdout}", file=out)
        print(f"vocab size: {run.tokenizer.vocab_size}", file=out)
        print(f"num params: {num_params(config)}", file=out, flush=True)

    def to_checkpoint(state: TrainState) -> checkpoint.Checkpoint:
        return checkpoint.Checkpoint(state, run.tokenizer, setup.seed, run.rng, steps,
                                     setup.hyper, setup.data, setup.holdout)

    try:
        mode_of_log = "a" if args.resume else "w"  # a resumed run's log continues the old one
        log = open(args.log_json, mode_of_log, encoding="utf-8") if args.log_json else None
    except OSError as e:
        raise _Fail(f"cannot write --log-json {args.log_json}: {e.strerror or e}") from None
    start = time.perf_counter()
    try:
        with fewer_gc_collections(), _on_stop_signals(_raise_stopped):
            outcome = _steps(
                training(run.state, train_docs, steps, setup.hyper), steps, log, out, mode,
                args.save_every, lambda state: _save(args.save, to_checkpoint(state)),
            )
    finally:
        if log is not None:
            log.close()
    elapsed = time.perf_counter() - start
    state = run.state if outcome.last is None else outcome.last.state
    if outcome.diverged is not None:
        state = outcome.diverged.last_good
    if args.save:
        _save(args.save, to_checkpoint(state))
    saved = f"; saved it to {args.save}" if args.save else ""
    if outcome.diverged is not None:
        bad = outcome.diverged
        print(f"{PROG}: error: training diverged at step {bad.step} of {steps} ({bad.reason}); "
              f"the last good step is {state.adam.step}{saved}. Try a smaller --lr "
              f"(this run's is {setup.hyper.lr:g})", file=sys.stderr)
        return 1
    if outcome.signum is not None:
        what = "terminated (SIGTERM)" if outcome.signum == signal.SIGTERM else "interrupted"
        print(f"{PROG}: {what} after step {state.adam.step} of {steps}{saved}", file=sys.stderr)
        return 128 + outcome.signum
    if not args.quiet:
        ran = max(1, state.adam.step - done)
        print(f"training time: {elapsed:.2f} s ({elapsed * 1000 / ran:.1f} ms/step)", file=out)
        if args.save:
            print(f"saved checkpoint: {args.save}", file=out)
        if held_out:
            result = evaluate(weights_of(state), config, held_out)
            print(_evaluation_line("held-out eval", result), file=out)
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


# ------------------------------------------------------------ eval and score


def _eval(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    ckpt = checkpoint.load(args.load)
    config, tok = ckpt.state.config, ckpt.tokenizer
    if args.data is None:
        run, _ = _saved_documents(ckpt, args.load, None)
        docs, _ = split_holdout(run.tokens, ckpt.holdout)
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
    progress = sys.stderr if sys.stderr.isatty() else None
    result, drawn = None, 0.0
    for result in running_evaluation(weights_of(ckpt.state), config, docs):
        now = time.perf_counter()
        if progress is not None and now - drawn >= 0.1:
            progress.write(f"\reval: {result.docs} / {len(docs)} docs | loss {result.loss:.4f}")
            progress.flush()
            drawn = now
    if progress is not None and drawn:
        progress.write("\n")
    assert result is not None  # load_docs and the holdout split never give zero documents
    if args.json:
        print(json.dumps(result._asdict()), file=out)
    else:
        print(f"docs: {result.docs}", file=out)
        print(f"tokens: {result.tokens}", file=out)
        print(f"loss: {result.loss:.4f}", file=out)
        print(f"perplexity: {result.perplexity:.3f}", file=out)
    return 0


def _score(parser: argparse.ArgumentParser, args: argparse.Namespace, out: TextIO) -> int:
    ckpt = checkpoint.load(args.load)
    config, tok = ckpt.state.config, ckpt.tokenizer
    texts = list(args.texts)
    if "-" in texts:
        if texts != ["-"]:
            parser.error("give either texts or -, not both")
        texts = [line.strip() for line in sys.stdin if line.strip()]
    w = weights_of(ckpt.state)
    results = []  # local transient
    for text in texts:
        try:
            results.append(score(w, config, tok, text))
        except T.NonFiniteError:
            raise
        except ValueError as e:
            message = str(e)
            if message.startswith("encode: "):
                message = f"{text!r}: {message.removeprefix('encode: ')}"
            parser.error(message)
    for s in results:
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
        _, explained = inside.explain_samples(weights_of(ckpt.state), config, ckpt.tokenizer,
                                              rng, args.samples, args.temperature, args.prompt)
        _print_explained(explained, args.temperature,
                         inside.label_of(ckpt.tokenizer, ckpt.tokenizer.bos), out)
        return 0
    _, names = samples(ckpt.state.tape, config, ckpt.tokenizer, rng, args.samples,
                       args.temperature, args.prompt)
    _print_names(names, args.quiet, out)
    return 0


def _print_explained(
    explained: Sequence[inside.Explained], temperature: float, bos: str, out: TextIO
) -> None:
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
        if args.command == "eval":
            return _eval(parser, args, out)
        if args.command == "score":
            return _score(parser, args, out)
        if args.command == "attention":
            return _attention(parser, args, out)
        if args.command == "embeddings":
            return _embeddings(parser, args, out)
        return _train(parser, args, out)
    except (_Fail, datasets.DataError, checkpoint.CheckpointError, plot.PlotError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except T.NonFiniteError as e:
        print(f"{PROG}: error: the model's forward pass is not finite ({e}): its weights "
              "overflow", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        signum = e.signum if isinstance(e, _Stopped) else signal.SIGINT
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        return 128 + signum
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, and keep Python's
        # final flush of stdout from failing too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
