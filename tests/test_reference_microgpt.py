"""Checks of the oracle itself: its Value gradients against finite differences, its whole-model
gradients against finite differences, and microgpt.py's published numbers on names.txt."""

import math
import random
import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference_microgpt import Reference, Value, load_docs, main

NAMES = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "names.txt"
needs_names = pytest.mark.skipif(not NAMES.is_file(), reason="../shared/data/names.txt is absent")

# ------------------------------------------------------------------ Value vs finite differences

# An expression is a list of instructions over a growing list of nodes; the first ones are the
# leaves. Each instruction names an operation, two earlier nodes and a constant. Operations whose
# domain is restricted get an argument that is positive by construction (a*a + c with c >= 0.5).
_OPS = (
    "add", "mul", "sub", "div", "neg", "pow", "log", "exp", "relu",
    "radd", "rsub", "rmul", "rdiv", "sum",
)  # fmt: skip


def _build(recipe, leaf_values):
    """Return (leaves, output, relu_inputs) of the expression ``recipe`` at ``leaf_values``."""
    leaves = [Value(x) for x in leaf_values]
    nodes = list(leaves)
    relu_inputs = []
    for op, i, j, c in recipe:
        a, b = nodes[i % len(nodes)], nodes[j % len(nodes)]
        if op == "add":
            out = a + b
        elif op == "mul":
            out = a * b
        elif op == "sub":
            out = a - b
        elif op == "div":
            out = a / (b * b + (abs(c) + 0.5))
        elif op == "neg":
            out = -a
        elif op == "pow":
            out = (a * a + (abs(c) + 0.5)) ** round(c, 1)
        elif op == "log":
            out = (a * a + (abs(c) + 0.5)).log()
        elif op == "exp":
            out = (a * 0.5).exp()
        elif op == "relu":
            relu_inputs.append(a)
            out = a.relu()
        elif op == "radd":
            out = c + a
        elif op == "rsub":
            out = c - a
        elif op == "rmul":
            out = c * a
        elif op == "rdiv":
            out = c / (a * a + 0.5)
        else:  # the builtin sum, starting from int 0 as microgpt.py's sums do
            out = sum([a, b, a])
        nodes.append(out)
    return leaves, nodes[-1], relu_inputs


@st.composite
def expressions(draw):
    n_leaves = draw(st.integers(1, 4))
    leaf_values = draw(st.lists(st.floats(-2, 2), min_size=n_leaves, max_size=n_leaves))
    step = st.tuples(
        st.sampled_from(_OPS), st.integers(0, 50), st.integers(0, 50), st.floats(-2, 2)
    )
    recipe = draw(st.lists(step, min_size=1, max_size=8))
    return recipe, leaf_values


@given(expressions())
def test_value_gradients_match_central_differences(expr):
    recipe, xs = expr
    leaves, out, relu_inputs = _build(recipe, xs)
    assume(math.isfinite(out.data) and abs(out.data) < 1e3)
    assume(all(abs(r.data) > 1e-2 for r in relu_inputs))  # away from relu's kink
    out.backward()
    h = 1e-6
    for k in range(len(xs)):
        up = _build(recipe, xs[:k] + [xs[k] + h] + xs[k + 1 :])[1].data
        down = _build(recipe, xs[:k] + [xs[k] - h] + xs[k + 1 :])[1].data
        numeric = (up - down) / (2 * h)
        assert leaves[k].grad == pytest.approx(numeric, rel=1e-4, abs=1e-4)


@given(st.floats(-3, 3), st.floats(-3, 3))
def test_value_ops_compute_what_micrograd_computes(x, y):
    # the derived ops must be spelled like microgpt.py's, not as the plain float operation
    a, b = Value(x), Value(y)
    assert (a - b).data == x + (-y)
    assert (-a).data == x * -1
    assert sum([a, b]).data == (0 + x) + y
    if abs(y) > 1e-3:
        assert (a / b).data == x * y**-1
        assert (2.0 / b).data == 2.0 * y**-1


def test_gradients_accumulate_over_shared_nodes():
    x = Value(1.5)
    y = x * x + x * 3 + x.exp()
    y.backward()
    assert x.grad == pytest.approx(2 * 1.5 + 3 + math.exp(1.5), rel=1e-15)


# ------------------------------------------------------------------ the model's gradients

TINY = dict(n_layer=2, n_embd=4, n_head=2, block_size=6, steps=20)
TINY_DOCS = ["emma", "olivia", "ava", "isabella", "mia", "zoe"]


def test_model_gradients_match_central_differences():
    ref = Reference(TINY_DOCS, seed=3, **TINY)
    for _ in range(3):  # move off the initial point so grads are not all tiny
        ref.step()
    tokens = ref.tokenize("isabella")  # longer than block_size: truncated like in training
    loss, grads = ref.loss_and_grads(tokens)
    base = ref.params_flat()
    h = 1e-6
    for i in random.Random(0).sample(range(ref.num_params), 40):
        ref.set_params(base[:i] + [base[i] + h] + base[i + 1 :])
        up = ref.loss_and_grads(tokens)[0]
        ref.set_params(base[:i] + [base[i] - h] + base[i + 1 :])
        down = ref.loss_and_grads(tokens)[0]
        assert grads[i] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-7)
    ref.set_params(base)
    assert ref.loss_and_grads(tokens)[0] == loss


@given(
    st.integers(1, 3), st.integers(1, 4), st.sampled_from([1, 2, 4]), st.integers(1, 8),
    st.lists(st.text("abcxyz", min_size=1, max_size=5), min_size=1, max_size=5),
)  # fmt: skip
def test_num_params_follows_the_architecture(n_layer, head_dim, n_head, block_size, docs):
    n_embd = head_dim * n_head
    ref = Reference(docs, n_layer=n_layer, n_embd=n_embd, n_head=n_head, block_size=block_size)
    vocab = len(set("".join(docs))) + 1
    per_layer = 4 * n_embd * n_embd + 2 * (4 * n_embd * n_embd)
    assert ref.vocab_size == vocab
    assert ref.num_params == (2 * vocab + block_size) * n_embd + n_layer * per_layer
    assert sorted(ref.docs) == sorted(docs)


def test_training_lowers_the_loss_and_samples_use_the_alphabet():
    ref = Reference(["ab", "abab", "ababab"], n_embd=8, n_head=2, block_size=8, steps=60)
    losses = [ref.step() for _ in range(60)]
    assert sum(losses[-6:]) < 0.5 * sum(losses[:6])
    samples = ref.sample(10)
    assert len(samples) == 10
    assert all(set(s) <= {"a", "b"} and len(s) <= 8 for s in samples)


def test_step_reports_the_loss_and_grads_of_the_document_it_trains_on():
    ref = Reference(TINY_DOCS, **TINY)
    for s in range(4):
        before = ref.params_flat()
        loss, grads = ref.loss_and_grads(ref.tokenize(ref.docs[s]))
        assert ref.params_flat() == before  # loss_and_grads does not train
        assert ref.step() == loss
        assert ref.grads_flat() == grads
        assert ref.params_flat() != before


def test_same_seed_same_run_and_other_seed_other_run():
    a, b, c = (Reference(TINY_DOCS, seed=s, **TINY) for s in (7, 7, 8))
    assert [a.step() for _ in range(3)] == [b.step() for _ in range(3)]
    assert a.sample(5) == b.sample(5)
    assert a.params_flat() != c.params_flat()


# ------------------------------------------------------------------ microgpt.py's numbers


@needs_names
def test_published_numbers_on_names():
    docs = load_docs(NAMES)
    ref = Reference(docs)
    assert len(ref.docs) == 32033
    assert ref.vocab_size == 27
    assert ref.num_params == 4192
    assert abs(ref.step() - 3.3659669475848504) <= 1e-12
    assert abs(ref.step() - 3.4242727838717717) <= 1e-12


@needs_names
def test_main_prints_microgpt_format(capsys):
    assert main([str(NAMES), "--steps", "2", "--samples", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:5] == [
        "num docs: 32033",
        "vocab size: 27",
        "num params: 4192",
        "step    1 /    2 | loss 3.3660",
        "step    2 /    2 | loss 3.4243",
    ]
    assert lines[5] == "--- inference (new, hallucinated names) ---"
    assert [line[:11] for line in lines[6:]] == ["sample  1: ", "sample  2: ", "sample  3: "]
    assert all(re.fullmatch(r"sample  \d: [a-z]{0,16}", line) for line in lines[6:])
