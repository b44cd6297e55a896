"""Pictures of training: the loss per step from ``train --log-json`` files, with a moving average.

Reading and smoothing are pure (``parse_log``, ``moving_average``); ``read_log``
and ``plot_losses`` are the shell. Drawing needs matplotlib, an optional extra
(``pip install 'functional_gpt[plot]'``); nothing else in the package does.

>>> curve = parse_log('{"step": 1, "loss": 3.3}\\n{"step": 2, "loss": 3.1}\\n', "run.jsonl")
>>> curve
LossCurve(name='run.jsonl', steps=(1, 2), losses=(3.3, 3.1))
>>> moving_average(curve.losses, 2)
(3.3, 3.2)
"""

from __future__ import annotations

import json
import math
import os
import stat
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from operator import add
from typing import Any, NamedTuple

from toolz import accumulate

from .shell import write_atomically

__all__ = [
    "PlotError",
    "LossCurve",
    "FORMATS",
    "parse_log",
    "read_log",
    "moving_average",
    "default_window",
    "output_format",
    "new_figure",
    "MissingGlyphs",
    "undrawable",
    "text_fonts",
    "save_figure",
    "plot_losses",
]

FORMATS = ("png", "svg")
MAX_LOSS = 1e100
EXTRA_HINT = "pip install 'functional_gpt[plot]'"


class PlotError(ValueError):
    """A log that cannot be read or a picture that cannot be made; the message is one line.

    >>> issubclass(PlotError, ValueError)
    True
    """


class LossCurve(NamedTuple):
    """One run's losses: the log's name (for the legend), its step numbers and losses."""

    name: str
    steps: tuple[int, ...]
    losses: tuple[float, ...]


def parse_log(text: str, name: str) -> LossCurve:
    """Return the ``LossCurve`` in a ``--log-json`` text: one JSON object per line.

    Each line needs a whole-number ``step`` and a finite ``loss`` of at most
    ``MAX_LOSS`` in size (a real run's losses are a few nats; larger ones
    cannot be averaged or drawn); other keys are ignored, blank lines skipped.
    A last line that is cut short (no newline, not JSON), as a run killed
    while it wrote leaves it, is left out.

    >>> parse_log('{"step": 1, "loss": "high"}', "bad.jsonl")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: bad.jsonl:1: "loss" is not a finite number
    >>> parse_log('{"step": 1, "loss": 2.5}\\n{"step": 2, "lo', "torn.jsonl").steps
    (1,)
    >>> parse_log('{"step": 1, "loss": 1e308}', "huge.jsonl")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: huge.jsonl:1: "loss" 1e+308 is too large to draw (at most 1e+100)
    >>> parse_log("", "empty.jsonl")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: empty.jsonl: no steps in the log
    """
    steps, losses = [], []  # local transients, frozen into tuples below
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            obj = json.loads(line)
        except ValueError:
            if number == len(lines) and not text.endswith("\n"):
                break  # torn by a kill during the write
            raise PlotError(f"{where}: not a JSON object") from None
        if not isinstance(obj, dict):
            raise PlotError(f"{where}: not a JSON object")
        step, loss = obj.get("step"), obj.get("loss")
        if isinstance(step, bool) or not isinstance(step, int):
            raise PlotError(f'{where}: "step" is not a whole number')
        if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not math.isfinite(loss):
            raise PlotError(f'{where}: "loss" is not a finite number')
        if abs(loss) > MAX_LOSS:
            raise PlotError(f'{where}: "loss" {loss:g} is too large to draw (at most {MAX_LOSS:g})')
        steps.append(step)
        losses.append(float(loss))
    if not steps:
        raise PlotError(f"{name}: no steps in the log")
    return LossCurve(name, tuple(steps), tuple(losses))


def read_log(path: str | os.PathLike[str]) -> LossCurve:
    """Return the ``LossCurve`` of the log file at ``path``, named by its file name.

    >>> read_log("/no/such/log.jsonl")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: cannot read /no/such/log.jsonl: No such file or directory
    """
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block, a device not end
            raise PlotError(f"cannot read {os.fspath(path)}: not a regular file")
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise PlotError(f"cannot read {os.fspath(path)}: {reason}") from None
    return parse_log(text, os.path.basename(os.fspath(path)))


def moving_average(xs: Sequence[float], window: int) -> tuple[float, ...]:
    """Return the trailing mean of the last ``window`` values at each position (fewer at the start).

    >>> moving_average([1.0, 2.0, 3.0, 4.0], 2)
    (1.0, 1.5, 2.5, 3.5)
    """
    if type(window) is not int or window < 1:
        raise ValueError(
            f"moving_average: window must be a whole number of at least 1, got {window!r}"
        )
    prefix = tuple(accumulate(add, xs, 0.0))  # prefix[i] = xs[0] + ... + xs[i-1]
    return tuple(
        (prefix[i + 1] - prefix[max(0, i + 1 - window)]) / min(i + 1, window)
        for i in range(len(xs))
    )


def default_window(curves: Sequence[LossCurve]) -> int:
    """Return the moving-average window: a tenth of the longest run, between 1 and 50 steps.

    >>> default_window([LossCurve("a", (1, 2, 3), (1.0, 1.0, 1.0))])
    1
    >>> default_window([LossCurve("a", tuple(range(1000)), (1.0,) * 1000)])
    50
    """
    longest = max((len(c.steps) for c in curves), default=0)
    return max(1, min(50, longest // 10))


def output_format(path: str | os.PathLike[str]) -> str:
    """Return the picture format a file name asks for, "png" or "svg", or PlotError saying so.

    >>> output_format("loss.SVG")
    'svg'
    >>> output_format("loss.jpg")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: loss.jpg: the file name must end in .png or .svg
    """
    name = os.fspath(path)
    fmt = os.path.splitext(name)[1].lower().lstrip(".")
    if fmt not in FORMATS:
        raise PlotError(f"{name}: the file name must end in .png or .svg")
    return fmt


def new_figure(**options: Any) -> Any:
    """Return a new matplotlib ``Figure`` (``options`` as ``Figure`` takes them), or PlotError.

    Without matplotlib, the PlotError names the extra to install. The figure
    is not pyplot's: making it chooses no backend, shows nothing in a
    notebook and needs no closing; ``save_figure`` writes it to a file.

    >>> new_figure(figsize=(2, 1)).get_size_inches().tolist()
    [2.0, 1.0]
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotError(f"plotting needs matplotlib: {EXTRA_HINT}") from None
    return Figure(**options)


class MissingGlyphs(UserWarning):
    """Characters that no font on this machine can draw: a picture shows them as boxes.

    >>> issubclass(MissingGlyphs, UserWarning)
    True
    """


def _charmap(path: str) -> frozenset[int]:
    """The code points a font file has glyphs for."""
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(path).get_charmap())


def undrawable(texts: Iterable[str]) -> str:
    """Return, sorted, the characters of ``texts`` that matplotlib's fonts cannot draw.

    matplotlib draws text in the first font of its sans-serif list
    (``rcParams["font.sans-serif"]``) that is installed, and takes a glyph
    that font lacks from the next installed ones: a character none of them
    has is drawn as a box. Spaces and control characters are not looked for.
    Needs matplotlib.

    >>> undrawable(["abc", "xyz"])
    ''
    >>> undrawable(["a\U00013000"])   # an Egyptian hieroglyph: not in those fonts
    '\U00013000'
    """
    from matplotlib import font_manager, rcParams

    missing = {ord(c) for text in texts for c in text if c.isprintable() and not c.isspace()}
    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in [n for n in rcParams["font.sans-serif"] if n in installed]:
        if not missing:
            break
        try:  # the file matplotlib draws the family's regular text with
            path = font_manager.findfont(font_manager.FontProperties(family=name),
                                         fallback_to_default=False)
            missing -= _charmap(path)
        except (OSError, RuntimeError, ValueError):  # a font that cannot be read
            continue
    return "".join(sorted(map(chr, missing)))


@contextmanager
def text_fonts(texts: Iterable[str]) -> Iterator[None]:
    """Within the block, characters of ``texts`` that the fonts lack are one ``MissingGlyphs``
    warning after it, not one of matplotlib's warnings per glyph; they are drawn as boxes.

    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     with text_fonts(["a\U00013000\U00013001"]):
    ...         pass
    >>> print(caught[0].message)
    the fonts cannot draw 2 characters, drawn as boxes: ... (a font that has them, ...)
    """
    try:
        lacking = undrawable(texts)
    except ImportError:  # no matplotlib: new_figure says what to install
        lacking = ""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Glyph \d+ .*missing from (current )?font",
                                UserWarning)
        yield
    if lacking:
        shown = " ".join(repr(c) for c in lacking[:10])
        more = f" and {len(lacking) - 10} more" if len(lacking) > 10 else ""
        warnings.warn(MissingGlyphs(
            f"the fonts cannot draw {len(lacking)} characters, drawn as boxes: {shown}{more} "
            '(a font that has them, added to matplotlib\'s rcParams["font.sans-serif"], '
            "would draw them)"), stacklevel=3)


def save_figure(fig: Any, path: str | os.PathLike[str]) -> str:
    """Write the matplotlib figure ``fig`` to ``path`` in the format its suffix names; return it.

    Written as a checkpoint is (``shell.write_atomically``): an existing
    picture is replaced whole or, on a full disk, kept as it was. A file that
    cannot be written is a PlotError.

    >>> save_figure(new_figure(), "/no/such/dir/x.png")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: cannot write /no/such/dir/x.png: No such file or directory
    """
    name = os.fspath(path)
    try:
        fmt = output_format(name)
        write_atomically(name, lambda f: fig.savefig(f, format=fmt))
    except OSError as e:
        raise PlotError(f"cannot write {name}: {e.strerror or e}") from None
    return name


def plot_losses(
    curves: Sequence[LossCurve], path: str | os.PathLike[str], window: int | None = None
) -> str:
    """Draw every curve (thin) and its moving average (thick) into ``path`` (.png or .svg).

    The legend names each run by its log's file name; the title gives the
    moving average's window (``default_window`` unless given).

    Returns the path. Needs matplotlib; without it, PlotError names the extra.

    >>> plot_losses([], "loss.png")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: no logs to plot
    """
    output_format(path)
    if not curves:
        raise PlotError("no logs to plot")
    window = default_window(curves) if window is None else window
    with text_fonts(curve.name for curve in curves):  # the legend names the logs
        return _draw_losses(curves, path, window)


def _draw_losses(curves: Sequence[LossCurve], path: str | os.PathLike[str], window: int) -> str:
    """``plot_losses``' drawing."""
    fig = new_figure(figsize=(8, 4.5), dpi=100)
    ax = fig.subplots()
    for k, curve in enumerate(curves):
        color = f"C{k % 10}"
        # One legend entry per run: its mean line, or its only line when there is none.
        ax.plot(curve.steps, curve.losses, color=color, linewidth=0.8, alpha=0.35,
                label=curve.name if window == 1 else "_nolegend_")
        if window > 1:
            ax.plot(curve.steps, moving_average(curve.losses, window), color=color,
                    linewidth=2.0, label=curve.name)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("training loss" if window == 1 else
                 f"training loss: each step (thin) and the mean of the last {window} (thick)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
