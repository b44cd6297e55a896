"""Pictures of a trained model: attention maps with next-token probabilities, and embeddings.

Each picture draws the numbers of one ``inside`` record, so what is drawn
can be read as numbers too: ``draw_attention`` a ``Reading`` and
``draw_embeddings`` an ``Embeddings``. Both write a .png or .svg file and
return its name; they need matplotlib, the optional extra
(``pip install 'functional_gpt[plot]'``), and say so in one line without it
(``plot.PlotError``).

The colour scales are fixed, so pictures of different models and texts
compare: attention weights and probabilities run from 0 (dark) to 1
(yellow) in viridis, probabilities on a square-root scale so that the
small ones stay visible; cells a query cannot see (later positions) are
light grey, and the token that truly comes next is outlined in red.

>>> from functional_gpt import inside, train
>>> from functional_gpt.evaluate import weights_of
>>> run = train.prepare(["ann", "bob", "eve"], seed=1, n_embd=4, n_head=2, block_size=4)
>>> reading = inside.read(weights_of(run.state), run.state.config, run.tokenizer, "bob")
>>> draw_attention(reading, "maps.gif")
Traceback (most recent call last):
...
functional_gpt.plot.PlotError: maps.gif: the file name must end in .png or .svg
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

from .inside import Embeddings, Projection, Reading
from .model import Config
from .plot import new_figure, output_format, save_figure, text_fonts

__all__ = [
    "COLORMAP",
    "MASKED",
    "TARGET",
    "VOWELS",
    "VOWEL_COLOUR",
    "BOS_COLOUR",
    "OTHER_COLOUR",
    "LABEL_EVERY_POINT",
    "MAX_PROBS_WIDTH",
    "shown_ticks",
    "label_offsets",
    "draw_attention",
    "draw_embeddings",
    "LayerStep",
    "layer_steps",
    "draw_layers",
]

COLORMAP = "viridis"  # 0 dark purple .. 1 yellow
MASKED = "#d9d9d9"  # a query's later positions, which it cannot see
TARGET = "#ff1f1f"  # the outline of the token that truly comes next
VOWELS = "aeiou"  # drawn in their own colour among the token embeddings
VOWEL_COLOUR, BOS_COLOUR, OTHER_COLOUR = "#e66100", "#c00000", "#1f4e9c"  # token embeddings


def _map_cells(rows: tuple[tuple[float, ...], ...]) -> list[list[float]]:
    """One head's weights as a square: row i holds the i + 1 weights of query i, then NaN."""
    n = len(rows)
    return [list(row) + [math.nan] * (n - len(row)) for row in rows]


_SMALLEST_TICK = 5.0  # points: the smallest tick-label font
MAX_PROBS_WIDTH = 40.0  # inches: the widest next-token panel, however large the vocabulary


def _tick_size(n: int, inches: float) -> float:
    """A tick-label font size (points) that lets ``n`` labels share an axis ``inches`` long."""
    return max(_SMALLEST_TICK, min(11.0, 0.8 * 72.0 * inches / max(n, 1)))


def shown_ticks(n: int, inches: float, keep: tuple[int, ...] = ()) -> tuple[int, ...]:
    """The cells of an axis of ``n`` cells, ``inches`` long, that get a tick label.

    All of them when they fit at the smallest font; otherwise every k-th
    (from the first, as many as fit) and the cells in ``keep``: only labels a
    reader can tell apart are drawn, so a vocabulary of thousands draws in
    time that grows with it, and stays readable.

    >>> shown_ticks(5, 2.0)
    (0, 1, 2, 3, 4)
    >>> shown = shown_ticks(1000, 2.0, keep=(7,))   # 23 labels of 5 points fit in 2 inches
    >>> shown[:4], len(shown)
    ((0, 7, 44, 88), 24)
    """
    fit = max(1, int(0.8 * 72.0 * inches / _SMALLEST_TICK))
    if n <= fit:
        return tuple(range(n))
    return tuple(sorted(set(range(0, n, math.ceil(n / fit))) | set(keep)))


def _label_ticks(ax: Any, axis: str, labels: tuple[str, ...], size: float, bos: str,
                 shown: tuple[int, ...] | None = None) -> None:
    """Put ``labels`` (those at ``shown``, default all) on one axis at the cells' centres; BOS
    in bold, as it is easy to miss (a bold ``.`` larger, a bold ``<BOS>`` smaller, to fit
    beside one-character labels)."""
    cells = tuple(range(len(labels))) if shown is None else shown
    ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    ticks(cells, [labels[i] for i in cells], fontsize=size)
    texts = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    for text, i in zip(texts, cells):
        if labels[i] == bos:
            text.set_fontweight("bold")
            text.set_fontsize(size + 3 if len(bos) == 1 else max(4.0, 0.55 * size))


def draw_attention(reading: Reading, path: str | os.PathLike[str]) -> str:
    """Draw every layer's and head's attention map, and the next-token probabilities, into ``path``.

    One map per layer (a row of the figure) and head (a column): row ``i``
    is the query of position ``i``, column ``j`` the key of position ``j``,
    and the colour the weight the query gives that key (each row sums to
    1). Both axes are labelled with the tokens read (BOS first). Under the
    maps, one row per position gives the probability of every token coming
    next; the token that does come next is outlined.

    Returns the path. Needs matplotlib; without it, or for a path not ending
    in .png or .svg, PlotError.

    >>> import os, tempfile
    >>> from functional_gpt.inside import Reading
    >>> r = Reading("a", (".", "a"), ((((1.0,), (0.5, 0.5)),),), ((0.9, 0.1), (0.2, 0.8)),
    ...             (0, 1), ("a", "."))
    >>> path = os.path.join(tempfile.mkdtemp(), "attention.png")
    >>> draw_attention(r, path) == path, open(path, "rb").read(4)
    (True, b'\x89PNG')
    >>> draw_attention(r, "attention.txt")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: attention.txt: the file name must end in .png or .svg
    """
    output_format(path)
    with text_fonts([reading.text, *reading.labels, *reading.vocabulary]):
        return _draw_attention(reading, path)


def _draw_attention(reading: Reading, path: str | os.PathLike[str]) -> str:
    """``draw_attention``'s drawing."""
    n_layer, n_head = len(reading.attention), len(reading.attention[0])
    n, vocab = len(reading.labels), len(reading.vocabulary)
    cell = 0.17 if n > 8 else 0.26  # inches per position in a map
    map_in = max(1.6, cell * n + 0.6)
    width = max(n_head * (map_in + 0.45) + 1.4, min(0.2 * vocab + 2.2, MAX_PROBS_WIDTH), 6.0)
    probs_in = max(1.2, 0.2 * n + 0.9)
    height = n_layer * (map_in + 0.75) + probs_in + 1.6
    fig = new_figure(figsize=(width, height), dpi=100, layout="constrained")
    from matplotlib import colormaps  # matplotlib is there: new_figure made a figure
    from matplotlib.colors import Normalize, PowerNorm
    from matplotlib.patches import Rectangle

    cmap = colormaps[COLORMAP].with_extremes(bad=MASKED)
    bos = reading.vocabulary[-1]
    grid = fig.add_gridspec(n_layer + 1, n_head,
                            height_ratios=[map_in] * n_layer + [probs_in])
    tick = _tick_size(n, map_in - 0.6)
    image = None
    for layer in range(n_layer):
        for head in range(n_head):
            ax = fig.add_subplot(grid[layer, head])
            image = ax.imshow(_map_cells(reading.attention[layer][head]), cmap=cmap,
                              norm=Normalize(0.0, 1.0), interpolation="nearest")
            ax.set_title(f"layer {layer}, head {head}", fontsize=10)
            _label_ticks(ax, "x", reading.labels, tick, bos, shown_ticks(n, map_in - 0.6))
            _label_ticks(ax, "y", reading.labels, tick, bos, shown_ticks(n, map_in - 0.6))
            ax.tick_params(length=0, pad=1.5)
            if head == 0:
                ax.set_ylabel("query: the token read", fontsize=9)
            if layer == n_layer - 1:
                ax.set_xlabel("key: up to the query itself", fontsize=9)
    fig.colorbar(image, ax=fig.axes, fraction=0.025, pad=0.01, shrink=0.9,
                 label="attention weight")
    ax = fig.add_subplot(grid[n_layer, :])
    probs = ax.imshow(reading.probs, cmap=COLORMAP, norm=PowerNorm(0.5, 0.0, 1.0),
                      aspect="auto", interpolation="nearest")
    for pos, target in enumerate(reading.targets):
        ax.add_patch(Rectangle((target - 0.5, pos - 0.5), 1.0, 1.0, fill=False,
                               edgecolor=TARGET, linewidth=2.0))
        p = reading.probs[pos][target]  # the number behind the box, as its two digits
        ax.text(target, pos, f"{p:.2f}".lstrip("0") if p < 1.0 else "1", ha="center",
                va="center", fontsize=_tick_size(vocab, width - 2.5) - 1.5,
                color="black" if p > 0.3 else "white")
    _label_ticks(ax, "x", reading.vocabulary, _tick_size(vocab, width - 2.5), bos,
                 shown_ticks(vocab, width - 2.5, keep=reading.targets))  # the outlined ones
    _label_ticks(ax, "y", reading.labels, _tick_size(n, probs_in - 0.9), bos,
                 shown_ticks(n, probs_in - 0.9))
    ax.tick_params(length=0, pad=1.5)
    ax.set_xlabel("the next token (outlined: the one that comes next in the text)",
                  fontsize=9)
    ax.set_ylabel("after reading", fontsize=9)
    ax.set_title("next-token probabilities (square-root colour scale)", fontsize=10)
    fig.colorbar(probs, ax=ax, fraction=0.025, pad=0.01, label="probability")
    fig.suptitle(f"attention while reading {reading.text!r} (BOS shown as "
                 f"{reading.labels[0]!r})", fontsize=12)
    return save_figure(fig, path)


_CORNERS = ((3.0, 2.0), (-3.0, 2.0), (3.0, -2.0), (-3.0, -2.0))  # label offsets, in points
LABEL_EVERY_POINT = 64  # a panel of at most this many points labels each one, even crowded
_CELL = 12.0  # the side of a square of the panel's grid, in points: about a label's height

# A label's box: its centre and half its width and height, in points.
_Box = tuple[float, float, float, float]


def _label_box(x: float, y: float, corner: tuple[float, float], size: tuple[float, float],
               ) -> _Box:
    """The box of a label of half-size ``size`` put at ``corner`` of the point (x, y)."""
    return (x + corner[0] + math.copysign(size[0], corner[0]),
            y + corner[1] + math.copysign(size[1], corner[1]), size[0], size[1])


def _cells(box: _Box) -> list[tuple[int, int]]:
    """The squares of the grid that ``box`` covers."""
    x, y, half_w, half_h = box
    return [(i, j)
            for i in range(math.floor((x - half_w) / _CELL), math.floor((x + half_w) / _CELL) + 1)
            for j in range(math.floor((y - half_h) / _CELL), math.floor((y + half_h) / _CELL) + 1)]


def _overlap(a: _Box, b: _Box) -> bool:
    """Whether two label boxes overlap."""
    return abs(a[0] - b[0]) < a[2] + b[2] and abs(a[1] - b[1]) < a[3] + b[3]


def label_offsets(
    xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]
) -> tuple[tuple[float, float] | None, ...]:
    """Where to label each point: a corner offset (in points), or None for no label.

    The panel is measured as drawn, about 400 points across. Points are
    labelled in order, each at the corner of it whose label covers no label
    placed before and the fewest points; where every corner would cover a
    label, the point is left unlabelled, since a label on a label cannot be
    read (a panel of at most ``LABEL_EVERY_POINT`` points labels every point,
    at its least crowded corner). Points and labels are counted in squares of
    a grid, so the time grows with the number of points, not its square.

    >>> label_offsets([0.0, 1.0], [0.0, 0.0], ["a", "b"])
    ((3.0, 2.0), (3.0, 2.0))
    >>> spots = label_offsets([i / 1000 for i in range(1000)], [0.0] * 1000,
    ...                       [str(i) for i in range(1000)])
    >>> shown = [i for i, spot in enumerate(spots) if spot]
    >>> shown[:5], 10 < len(shown) < 100       # four round the first spot, then every 20th
    ([0, 1, 2, 3, 24], True)
    """
    scale = 400.0 / max(max(xs) - min(xs), max(ys) - min(ys), 1e-12)  # points per data unit
    px, py = [x * scale for x in xs], [y * scale for y in ys]
    crowd: dict[tuple[int, int], int] = {}  # local transient: points per square
    for x, y in zip(px, py):
        square = (math.floor(x / _CELL), math.floor(y / _CELL))
        crowd[square] = crowd.get(square, 0) + 1
    placed: dict[tuple[int, int], list[_Box]] = {}  # local transient: labels per square
    every = len(labels) <= LABEL_EVERY_POINT
    out: list[tuple[float, float] | None] = []  # local transient
    for x, y, label in zip(px, py, labels):
        size = (3.5 * len(label) + 1.0, 6.0)  # half the label's width and height, in points
        own = (math.floor(x / _CELL), math.floor(y / _CELL))
        best: tuple[tuple[int, int], tuple[float, float], _Box, list[tuple[int, int]]] | None
        best = None
        for corner in _CORNERS:
            box = _label_box(x, y, corner, size)
            squares = _cells(box)
            others = (other for sq in squares for other in placed.get(sq, ()))
            if not every and any(_overlap(box, other) for other in others):
                continue
            covered = sum(_overlap(box, other) for other in others) if every else 0
            points = sum(crowd.get(sq, 0) for sq in squares) - (own in squares)  # but its own
            cost = (covered, points)
            if best is None or cost < best[0]:
                best = (cost, corner, box, squares)
        if best is None:
            out.append(None)
            continue
        _, corner, box, squares = best
        for sq in squares:
            placed.setdefault(sq, []).append(box)
        out.append(corner)
    return tuple(out)


def _scatter(ax: Any, projection: Projection, labels: tuple[str, ...], colours: list[Any],
             text_colours: list[Any], title: str, joined: bool) -> None:
    """One panel: the points on their first two components, each labelled."""
    xs = [c[0] for c in projection.coords]
    ys = [c[1] if len(c) > 1 else 0.0 for c in projection.coords]
    if joined:
        ax.plot(xs, ys, color="#9a9a9a", linewidth=0.8, zorder=1)
    ax.scatter(xs, ys, c=colours, s=14, zorder=2)
    for x, y, label, colour, spot in zip(xs, ys, labels, text_colours,
                                         label_offsets(xs, ys, labels)):
        if spot is None:
            continue  # it would cover another label: unreadable
        dx, dy = spot
        ax.annotate(label, (x, y), xytext=(dx, dy), textcoords="offset points", fontsize=11,
                    color=colour, fontweight="bold", zorder=3,
                    ha="left" if dx > 0 else "right", va="bottom" if dy > 0 else "top")
    ax.margins(0.12)
    ax.set_title(title, fontsize=11)
    share = [v / projection.total_variance if projection.total_variance > 0 else 0.0
             for v in projection.variances]
    ax.set_xlabel(f"component 1 ({share[0]:.0%} of the variance)")
    ax.set_ylabel(f"component 2 ({share[1]:.0%} of the variance)" if len(share) > 1
                  else "(one dimension only)")
    ax.grid(True, alpha=0.25)
    ax.set_aspect("equal", adjustable="datalim")


def draw_embeddings(embeddings: Embeddings, path: str | os.PathLike[str]) -> str:
    """Draw the token embeddings and the position embeddings on their first two components.

    Left, one point per token, labelled with its character or BOS (vowels
    and BOS in their own colours); right, one point per position, labelled with its
    number and joined in order. The axes say how much of the variance each
    component holds. Returns the path; PlotError without matplotlib or for a
    path not ending in .png or .svg.

    >>> import os, tempfile
    >>> from functional_gpt.inside import Embeddings, principal_components
    >>> e = Embeddings(principal_components([(0.0, 1.0), (1.0, 0.0)]), ("a", "."),
    ...                principal_components([(1.0, 1.0), (0.0, 2.0)]), ("0", "1"))
    >>> path = os.path.join(tempfile.mkdtemp(), "embeddings.svg")
    >>> draw_embeddings(e, path) == path, "<svg" in open(path).read()
    (True, True)
    >>> draw_embeddings(e, "embeddings.pdf")
    Traceback (most recent call last):
    ...
    functional_gpt.plot.PlotError: embeddings.pdf: the file name must end in .png or .svg
    """
    output_format(path)
    with text_fonts([*embeddings.token_labels, *embeddings.position_labels]):
        return _draw_embeddings(embeddings, path)


def _draw_embeddings(embeddings: Embeddings, path: str | os.PathLike[str]) -> str:
    """``draw_embeddings``' drawing."""
    fig = new_figure(figsize=(13, 6.2), dpi=100)
    from matplotlib import colormaps  # matplotlib is there: new_figure made a figure
    from matplotlib.lines import Line2D

    bos = embeddings.token_labels[-1]
    token_colours: list[Any] = [BOS_COLOUR if label == bos else VOWEL_COLOUR if label in VOWELS
                     else OTHER_COLOUR for label in embeddings.token_labels]
    positions = len(embeddings.position_labels)
    ramp = colormaps[COLORMAP]
    position_colours = list(ramp([0.85 * i / max(positions - 1, 1) for i in range(positions)]))
    left, right = fig.subplots(1, 2)
    shown = tuple("BOS" if label == bos else label for label in embeddings.token_labels)
    _scatter(left, embeddings.tokens, shown, token_colours, token_colours,
             "token embeddings (wte)", joined=False)
    left.legend(handles=[
        Line2D([], [], marker="o", linestyle="", color=c, label=name)
        for c, name in ((VOWEL_COLOUR, "vowel"), (OTHER_COLOUR, "other character"),
                        (BOS_COLOUR, "BOS: the start and end of a name"))
    ], loc="best", fontsize=9)
    _scatter(right, embeddings.positions, embeddings.position_labels, position_colours,
             ["#333333"] * positions, "position embeddings (wpe), joined in order",
             joined=True)
    fig.suptitle("embeddings projected on their first two principal components", fontsize=12)
    fig.tight_layout()
    return save_figure(fig, path)


class LayerStep(NamedTuple):
    """One box of the layer diagram: what the model does at that step, for ``draw_layers``.

    ``kind`` picks the colour (``io``, ``norm``, ``linear``, ``attention``,
    ``cache``, ``add``, ``relu``); an ``add`` step also reads the output of
    step ``residual`` (the input it adds back).

    >>> LayerStep("+ residual", "add the block's input back", "add", 2).residual
    2
    """

    name: str
    detail: str
    kind: str
    residual: int | None = None


def layer_steps(config: Config) -> tuple[LayerStep, ...]:
    """Return the steps of ``model.forward`` at one position, in order: the layer diagram as data.

    >>> from functional_gpt.model import Config
    >>> steps = layer_steps(Config(vocab_size=27))
    >>> [s.name for s in steps[:4]]
    ['token t at position p', 'embed', 'rmsnorm', 'rmsnorm']
    >>> [(s.name, s.residual) for s in steps if s.kind == "add"]
    [('+ residual', 2), ('+ residual', 8)]
    >>> steps[-1].detail
    'softmax: 27 probabilities of the next token (training: -log p of the true one)'
    """
    e, h, d, v = config.n_embd, config.n_head, config.head_dim, config.vocab_size
    steps = [  # local transient, frozen into a tuple below
        LayerStep("token t at position p", f"t in 0..{v - 1}, p in 0..{config.block_size - 1}",
                  "io"),
        LayerStep("embed", f"wte[t] + wpe[p]: {e} numbers", "linear"),
        LayerStep("rmsnorm", "x / rms(x): every vector at about the same size", "norm"),
    ]
    for layer in range(config.n_layer):
        block_input = len(steps) - 1
        steps += [
            LayerStep("rmsnorm", f"layer {layer}: attention", "norm"),
            LayerStep("q, k, v", f"attn_wq, attn_wk, attn_wv: three linears {e} -> {e}",
                      "linear"),
            LayerStep("KV cache", "append k and v: keys and values of positions 0..p", "cache"),
            LayerStep("attention", f"{h} heads of {d}: softmax(q . k / sqrt({d})) over "
                      "positions 0..p (p itself too) weighs their values", "attention"),
            LayerStep("attn_wo", f"mix the heads: linear {e} -> {e}", "linear"),
            LayerStep("+ residual", "add the block's input back", "add", block_input),
        ]
        mlp_input = len(steps) - 1
        steps += [
            LayerStep("rmsnorm", f"layer {layer}: MLP", "norm"),
            LayerStep("mlp_fc1", f"linear {e} -> {4 * e}", "linear"),
            LayerStep("relu", "max(0, x)", "relu"),
            LayerStep("mlp_fc2", f"linear {4 * e} -> {e}", "linear"),
            LayerStep("+ residual", "add the MLP's input back", "add", mlp_input),
        ]
    steps += [
        LayerStep("lm_head", f"linear {e} -> {v}: one logit per token", "linear"),
        LayerStep("next token", f"softmax: {v} probabilities of the next token "
                  "(training: -log p of the true one)", "io"),
    ]
    return tuple(steps)


_KIND_COLOURS = {"io": "#eeeeee", "norm": "#dbe9f6", "linear": "#fde9c9", "attention": "#f7c6c6",
                 "cache": "#e2f0d9", "add": "#ffffff", "relu": "#e8e0f3"}


def draw_layers(config: Config, path: str | os.PathLike[str]) -> str:
    """Draw the layer diagram of ``config``'s model at one position (``layer_steps``) into ``path``.

    One box per step, read from top to bottom; the curved arrows on the left
    are the residual connections (a block's input added back to its output),
    the green box on the right the KV cache, the keys and values of the
    earlier positions, which attention reads. Returns the path; PlotError
    without matplotlib or for a path not ending in .png or .svg.

    >>> import os, tempfile
    >>> from functional_gpt.model import Config
    >>> path = os.path.join(tempfile.mkdtemp(), "layers.png")
    >>> draw_layers(Config(vocab_size=27), path) == path, open(path, "rb").read(4)
    (True, b'\\x89PNG')
    """
    output_format(path)
    steps = layer_steps(config)
    main = [s for s in steps if s.kind != "cache"]
    row = {id(s): i for i, s in enumerate(main)}  # a step's row in the column of boxes
    fig = new_figure(figsize=(9.0, 0.46 * len(main) + 0.8), dpi=100)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_xlim(0.0, 14.0)
    ax.set_ylim(len(main) - 0.4, -1.2)
    ax.axis("off")
    centre, detail_x = 4.4, 6.0
    box = {"boxstyle": "round,pad=0.3", "linewidth": 0.8, "edgecolor": "#555555"}
    arrow = {"arrowstyle": "-|>", "color": "#555555", "lw": 0.8}
    for i, step in enumerate(main):
        ax.text(centre, i, step.name, ha="center", va="center", fontsize=10, fontweight="bold",
                bbox={**box, "facecolor": _KIND_COLOURS[step.kind]})
        ax.text(detail_x, i, step.detail, ha="left", va="center", fontsize=8, color="#333333")
        if i:
            ax.annotate("", (centre, i - 0.3), (centre, i - 0.7), arrowprops=arrow)
        if step.residual is not None:  # from the arrow below the step it reads, round the left
            start, x = row[id(steps[step.residual])] + 0.5, 3.0 - 0.3 * (i % 2)
            ax.plot([centre, x, x], [start, start, i], color="#1f4e9c", lw=1.2)
            ax.annotate("", (centre - 0.75, i), (x, i),
                        arrowprops={**arrow, "color": "#1f4e9c", "lw": 1.2})
    for step in (s for s in steps if s.kind == "cache"):
        attention = row[id(steps[steps.index(step) + 1])]
        ax.text(1.0, attention - 0.5, "KV cache:\nkeys, values\nof positions\n0..p",
                ha="center", va="center", fontsize=8,
                bbox={**box, "facecolor": _KIND_COLOURS["cache"]})
        green = {**arrow, "color": "#2e7d32", "lw": 1.0}
        ax.annotate("", (1.9, attention - 0.85), (centre - 0.6, attention - 1),
                    arrowprops={**green, "linestyle": "dashed"})
        ax.annotate("", (centre - 0.8, attention), (1.9, attention - 0.2), arrowprops=green)
    ax.text(7.0, -0.85, f"the GPT at one position: vocabulary {config.vocab_size}, "
            f"{config.n_embd} numbers per vector, {config.n_head} heads, {config.n_layer} "
            f"layer{'s' if config.n_layer > 1 else ''}   (blue: residual connections)",
            ha="center", va="center", fontsize=10)
    return save_figure(fig, path)
