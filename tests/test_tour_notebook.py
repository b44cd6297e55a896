"""examples/tour.ipynb: it runs top to bottom in a real Jupyter kernel and keeps its promises.

The kernel is ipykernel started by nbclient, as Jupyter starts it, on this
very interpreter (a kernel spec written for the test), so it imports this
checkout. The notebook trains a small model for a few hundred steps; the
whole run takes seconds.
"""

import json
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # run once in CI, not in every nox session (see noxfile.py)

ROOT = Path(__file__).resolve().parent.parent
TOUR = ROOT / "examples" / "tour.ipynb"

nbformat = pytest.importorskip("nbformat", reason="nbformat (the test extra) is absent")
nbclient = pytest.importorskip("nbclient", reason="nbclient (the test extra) is absent")
pytest.importorskip("ipykernel", reason="ipykernel (the test extra) is absent")
pytest.importorskip("matplotlib", reason="matplotlib (the plot extra) is absent")

# The steps of the tour, in the order the issue asks for them, as its headings name them.
STEPS = ["a tape and its table", "backward, node by node", "what an immutable tape buys",
         "one neuron and its graph", "check_grads", "gradients of gradients",
         "the tape of one position",
         "training a small model", "what each part of the model buys",
         "attention maps and embeddings", "sampling, with the choice behind each letter",
         "exercises, with checked answers"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The tour, run by a fresh kernel in a temporary folder."""
    home = tmp_path_factory.mktemp("jupyter")
    spec = home / "kernels" / "functional-gpt-tour"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "functional_gpt tour", "language": "python",
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(home))
    mp.setenv("TMPDIR", str(home))  # the kernel's folder of pictures is made here, not in /tmp
    try:
        nb = nbformat.read(TOUR, as_version=4)
        client = nbclient.NotebookClient(
            nb, kernel_name="functional-gpt-tour", timeout=300,
            resources={"metadata": {"path": str(home)}},
        )
        client.execute()  # raises CellExecutionError, naming the cell, if one fails
    finally:
        mp.undo()
    return nb


def outputs(nb):
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def test_the_tour_runs_and_shows_its_pictures(executed) -> None:
    outs = outputs(executed)
    assert not [o for o in outs if o.output_type == "error"]
    pictures = [o for o in outs if "image/png" in o.get("data", {})]
    text = "".join(o.get("text", "") for o in outs)
    # the layer diagram, the loss curve, the attention maps, the embeddings; and the runs of one
    # position, drawn by Graphviz or printed as DOT text where it is not installed
    position_drawn = "digraph runs {" not in text
    assert len(pictures) == 4 + position_drawn
    assert all(len(o["data"]["image/png"]) > 20_000 for o in pictures)  # base64 of real PNGs
    graph = [o for o in outs if "image/svg+xml" in o.get("data", {})]
    assert len(graph) == 1 or "digraph tape {" in text  # the neuron drawn, or its DOT text
    assert "<table" in "".join(o.get("data", {}).get("text/html", "") for o in outs)


def test_the_tours_printed_numbers_say_what_its_text_says(executed) -> None:
    text = "".join(o.get("text", "") for o in outputs(executed))
    assert "dz/dx = 5.0   dz/dy = 3.0" in text
    assert "after node 2 (mul): [5.0, 3.0, 1.0, 1.0]" in text  # the fold, node by node
    assert "tape unchanged: True" in text
    assert "the same logits, bit for bit: True" in text  # the plain GPT and the fused one
    assert "step 11 again from step 10: the same loss True and parameters True" in text
    found = dict(re.findall(r"^(uniform guess|bigram counts|GPT without attention|GPT \(400 "
                            r"steps\)) +([\d.]+)$", text, re.MULTILINE))
    assert len(found) == 4, found
    uniform, bigram = float(found["uniform guess"]), float(found["bigram counts"])
    no_attention, full = float(found["GPT without attention"]), float(found["GPT (400 steps)"])
    assert full < no_attention < uniform and full < bigram < uniform - 0.5
    assert "the same as evaluate.evaluate, to rounding: True" in text
    assert "GradCheck(ok=True" in text and "GradCheck(ok=False" in text and "<- differs" in text
    assert "one position adds 93 nodes" in text
    first, last = map(float, re.search(r"loss: step 1 ([\d.]+), step 400 ([\d.]+)", text).groups())
    assert abs(first - 3.3) < 0.1 and last < first - 0.4  # from ln 27 down
    assert "the same names as sample.samples: True" in text
    assert text.count("(the end)") == 3


def test_the_tour_explains_every_cell_in_the_order_asked() -> None:
    nb = nbformat.read(TOUR, as_version=4)
    kinds = [cell.cell_type for cell in nb.cells]
    assert kinds[0] == "markdown"
    for before, kind in zip(kinds, kinds[1:]):
        assert kind == "markdown" or before == "markdown", "a code cell without text before it"
    headings = [line.lstrip("# ").lower() for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("## ")]
    found = [next(i for i, h in enumerate(headings) if step in h) for step in STEPS]
    assert found == sorted(found) and len(set(found)) == len(STEPS)
    # Every file the text points into exists.
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    files = set(re.findall(r"functional_gpt/\w+\.py", prose))
    assert len(files) >= 10
    assert all((ROOT / f).is_file() for f in files), sorted(files)
