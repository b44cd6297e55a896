"""Pictures of a trained model, and the commands that draw them or explain samples.

Pictures are checked as files, as test_plot.py checks loss curves: a real
PNG read back with matplotlib, whose pixels must show the numbers drawn
(records made here with chosen numbers, so where each colour must land is
known), or an SVG holding its titles. The commands run in-process on a
small checkpoint trained here.
"""

import re
import sys

import pytest

from functional_gpt import checkpoint, datasets, pictures, train
from functional_gpt.cli import main
from functional_gpt.inside import Embeddings, Projection, Reading

matplotlib = pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is absent")
np = pytest.importorskip("numpy")


def near(png_path, rgb, tolerance=0.08):
    """Boolean mask of the picture's pixels within ``tolerance`` of ``rgb`` (0-1 floats)."""
    from matplotlib import image

    pixels = image.imread(png_path)[..., :3]
    return np.abs(pixels - np.array(rgb[:3])).max(axis=-1) < tolerance


def centre(mask):
    """The mean (row, column) of the pixels set in ``mask``."""
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


def viridis(x):
    return matplotlib.colormaps["viridis"](x)


def uniform_reading(weight, prob, n=6, heads=2, vocab="abcd."):
    """A Reading of ``n`` positions whose attention weights and probabilities are constants."""
    rows = tuple((weight,) * (i + 1) for i in range(n))
    return Reading("abcde"[: n - 1], (".", *"abcde"[: n - 1]), ((rows,) * heads,),
                   ((prob,) * len(vocab),) * n, (0,) * n, tuple(vocab))


# ------------------------------------------------------------------ attention


def test_attention_maps_are_lower_triangles_over_the_probabilities(tmp_path) -> None:
    from matplotlib.colors import to_rgb

    maps_bright = tmp_path / "maps.png"  # every weight 1 (yellow), every probability 0
    pictures.draw_attention(uniform_reading(1.0, 0.0), maps_bright)
    data = maps_bright.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    yellow, dark = near(maps_bright, viridis(1.0)), near(maps_bright, viridis(0.0))
    masked, red = near(maps_bright, to_rgb(pictures.MASKED)), near(maps_bright,
                                                                   to_rgb(pictures.TARGET))
    assert yellow.mean() > 0.04 and masked.mean() > 0.02 and red.mean() > 0.001
    # Each map's seen cells (yellow) lie below and left of the masked later positions ...
    (yellow_row, yellow_col), (masked_row, masked_col) = centre(yellow), centre(masked)
    assert yellow_row > masked_row and yellow_col < masked_col
    # ... the probabilities (dark) and their red outlines under the maps.
    assert centre(dark)[0] > yellow_row and centre(red)[0] > yellow_row
    assert yellow.sum() > 1.2 * masked.sum()  # 21 seen cells a map against 15 masked

    probs_bright = tmp_path / "probs.png"  # the other way round
    pictures.draw_attention(uniform_reading(0.0, 1.0), probs_bright)
    yellow2 = near(probs_bright, viridis(1.0))
    assert centre(yellow2)[0] > centre(near(probs_bright, to_rgb(pictures.MASKED)))[0]
    assert near(probs_bright, viridis(0.0)).sum() > 0.5 * yellow.sum()  # the maps, now dark


def test_the_probability_scale_is_the_square_root(tmp_path) -> None:
    out = tmp_path / "quarter.png"
    pictures.draw_attention(uniform_reading(1.0, 0.25), out)
    assert near(out, viridis(0.5), 0.03).mean() > 0.03  # sqrt(0.25) = 0.5: the middle colour
    assert near(out, viridis(0.25), 0.03).mean() < 0.005  # not the linear scale's colour


def test_attention_svg_names_every_layer_and_head(tmp_path) -> None:
    rows = ((1.0,), (0.5, 0.5))
    reading = Reading("a", (".", "a"), ((rows, rows), (rows, rows)), ((0.5, 0.5),) * 2,
                      (0, 1), ("a", "."))
    out = tmp_path / "maps.svg"
    assert pictures.draw_attention(reading, out) == str(out)
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for layer in (0, 1):
        for head in (0, 1):
            assert f"layer {layer}, head {head}" in text
    assert "attention while reading 'a'" in text and "next-token probabilities" in text


# ----------------------------------------------------------------- embeddings


def projection(points):
    return Projection((0.0, 0.0), ((1.0, 0.0), (0.0, 1.0)), (1.0, 0.5), 2.0, tuple(points))


def test_embedding_points_land_where_their_coordinates_say(tmp_path) -> None:
    from matplotlib.colors import to_rgb

    # Tokens: the vowel bottom right, BOS bottom left, the consonants at the top.
    tokens = projection([(1.0, -1.0), (-1.0, 1.0), (1.0, 1.0), (-1.0, -1.0)])
    positions = projection([(0.0, 0.0), (1.0, 1.0), (2.0, 0.0)])
    out = tmp_path / "embeddings.png"
    pictures.draw_embeddings(Embeddings(tokens, ("a", "b", "c", "."), positions,
                                        ("0", "1", "2")), out)
    height, width = near(out, (1, 1, 1)).shape
    vowel = near(out, to_rgb(pictures.VOWEL_COLOUR), 0.05)
    bos = near(out, to_rgb(pictures.BOS_COLOUR), 0.05)
    left = np.zeros_like(vowel)
    left[:, : width // 2] = True
    # The vowel's point and label: in the left panel's lower right quarter (the legend aside).
    quarter = left.copy()
    quarter[: height // 2, :] = False
    quarter[:, : width // 4] = False
    assert (vowel & quarter).sum() > 30
    assert (vowel & ~left).sum() == 0  # nothing orange in the position panel
    assert (bos & left & ~quarter).sum() > 30 and (bos & ~left).sum() == 0
    # Position 0 is the ramp's first colour, in the right panel only.
    first = near(out, viridis(0.0), 0.05)
    assert (first & ~left).sum() > 10 and (first & left).sum() == 0


def test_embeddings_svg_gives_the_share_of_the_variance(tmp_path) -> None:
    tokens = projection([(1.0, 0.0), (-1.0, 0.0)])
    out = tmp_path / "embeddings.svg"
    pictures.draw_embeddings(Embeddings(tokens, ("a", "."), tokens, ("0", "1")), out)
    text = out.read_text()
    assert "component 1 (50% of the variance)" in text
    assert "component 2 (25% of the variance)" in text
    assert "token embeddings (wte)" in text and "position embeddings (wpe)" in text


# ------------------------------------------------------------------- commands


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory):
    """A checkpoint of a small model trained for a few steps on the bundled names."""
    run = train.prepare(datasets.load_docs()[:300], seed=3, n_embd=8, n_head=2, block_size=8)
    *_, last = train.training(run.state, run.tokens, 20)
    path = tmp_path_factory.mktemp("model") / "m.json"
    checkpoint.save(path, checkpoint.Checkpoint(last.state, run.tokenizer, 3, run.rng, 20))
    return path


def test_cli_attention_draws_the_maps(ckpt_path, tmp_path, capsys) -> None:
    from matplotlib.colors import to_rgb

    out = tmp_path / "emma.png"
    assert main(["attention", "--load", str(ckpt_path), "emma", "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert out.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert near(out, to_rgb(pictures.MASKED)).mean() > 0.01  # the later positions
    assert near(out, to_rgb(pictures.TARGET)).mean() > 0.001  # 5 outlined next tokens
    assert near(out, viridis(1.0)).sum() > 500  # position 0 sees only itself: weight 1
    svg = tmp_path / "emma.svg"
    assert main(["attention", "--load", str(ckpt_path), "emma", "-o", str(svg)]) == 0
    assert "layer 0, head 1" in svg.read_text() and "layer 0, head 2" not in svg.read_text()


def test_cli_embeddings_draws_both_panels(ckpt_path, tmp_path, capsys) -> None:
    from matplotlib.colors import to_rgb

    out = tmp_path / "embeddings.png"
    assert main(["embeddings", "--load", str(ckpt_path), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert near(out, to_rgb(pictures.VOWEL_COLOUR), 0.05).sum() > 100
    assert near(out, to_rgb(pictures.OTHER_COLOUR), 0.05).sum() > 300


def names_in(text):
    return re.findall(r"^sample +\d+: (.*)$", text, re.MULTILINE)


@pytest.mark.parametrize("extra", [[], ["--seed", "7", "--temperature", "0.8"],
                                   ["--prompt", "ja"], ["--seed", "1", "--temperature", "2"]])
def test_cli_sample_explain_keeps_the_samples(ckpt_path, capsys, extra) -> None:
    base = ["sample", "--load", str(ckpt_path), "--samples", "6", *extra]
    assert main(base) == 0
    plain = capsys.readouterr().out
    assert main([*base, "--explain"]) == 0
    explained = capsys.readouterr().out
    assert names_in(explained) == names_in(plain) and len(names_in(plain)) == 6
    lines = explained.splitlines()
    assert lines[0].startswith("p: each token's probability at temperature")
    blocks = re.split(r"^sample +\d+: .*\n", explained, flags=re.MULTILINE)[1:]
    for name, block in zip(names_in(plain), blocks):
        rows = block.splitlines()
        assert len(rows) == min(len(name) + 1, 8)  # each character, then the end
        labels = [row.split()[0] for row in rows]
        assert "".join(labels[: len(name)]) == name
        logps = [float(re.search(r"ln p +(-?[\d.]+|-inf)", row).group(1)) for row in rows]
        assert logps == sorted(logps, reverse=True)  # a running sum of logs of p <= 1
        if len(name) < 8:
            assert labels[-1] == "." and rows[-1].endswith("(the end)")


def test_inside_commands_are_in_the_help(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "attention" in top and "embeddings" in top
    with pytest.raises(SystemExit):
        main(["sample", "--help"])
    assert "--explain" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["attention", "--load", "{ckpt}", "emma!", "-o", "{d}/x.png"],
     "'emma!': characters not in the vocabulary: '!'"),
    (["attention", "--load", "{ckpt}", "abcdefgh", "-o", "{d}/x.png"],
     "'abcdefgh' does not fit in the block size 8: 8 characters and its end need 9 positions"),
    (["attention", "--load", "{ckpt}", "emma", "-o", "{d}/x.jpg"],
     "-o {d}/x.jpg: the file name must end in .png or .svg"),
    (["embeddings", "--load", "{ckpt}", "-o", "{d}/x.pdf"],
     "-o {d}/x.pdf: the file name must end in .png or .svg"),
    (["attention", "--load", "{ckpt}", "emma"], "required: -o/--output"),
    (["sample", "--load", "{ckpt}", "--explain", "--quiet"],
     "--explain cannot be given with --quiet"),
])
def test_bad_arguments_exit_2_with_one_line(ckpt_path, tmp_path, capsys, args, message):
    argv = [a.format(ckpt=ckpt_path, d=tmp_path) for a in args]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    command = argv[0]
    assert err.startswith("functional-gpt: error: ") and err.count("\n") == 1  # one line
    assert err.rstrip().endswith(f"(see functional-gpt {command} --help)")
    assert message.format(d=tmp_path) in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", [["attention", "emma"], ["embeddings"]])
def test_a_missing_checkpoint_exits_1(tmp_path, capsys, command) -> None:
    argv = [command[0], "--load", str(tmp_path / "none.json"), *command[1:],
            "-o", str(tmp_path / "x.png")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("functional-gpt: error: ") and "\n" not in err


@pytest.mark.parametrize("command", [["attention", "emma"], ["embeddings"]])
def test_an_unwritable_picture_exits_1(ckpt_path, tmp_path, capsys, command) -> None:
    out = tmp_path / "no" / "such" / "x.svg"
    assert main([command[0], "--load", str(ckpt_path), *command[1:], "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    # refused before any work, by the check every command's outputs go through
    assert err.startswith(f"functional-gpt: error: cannot write -o {out}: no such directory")
    assert "\n" not in err


@pytest.mark.parametrize("command", [["attention", "emma"], ["embeddings"]])
def test_without_matplotlib_the_pictures_name_the_extra(ckpt_path, tmp_path, capsys,
                                                         monkeypatch, command) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    out = tmp_path / "x.png"
    assert main([command[0], "--load", str(ckpt_path), *command[1:], "-o", str(out)]) == 1
    assert capsys.readouterr().err.strip() == (
        "functional-gpt: error: plotting needs matplotlib: pip install 'functional_gpt[plot]'")
    assert not out.exists()

