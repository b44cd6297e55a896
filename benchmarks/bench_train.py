"""Benchmark: functional_gpt against a mutable microgpt-style baseline, side by side.

Both train from the same seed on the same documents, step for step, in one process; their
timings are interleaved in rounds so that a noisy machine slows both alike. Reports medians of
training ms/step, tape nodes and edges per step, inference ms/sample, peak memory (each in its own
subprocess), the ratio baseline / functional_gpt, and checks on the way that both give the same
losses.

    python benchmarks/bench_train.py                 # default config, a few minutes
    python benchmarks/bench_train.py --scaling       # also ms/step for wider and deeper models
    python benchmarks/bench_train.py --quick         # seconds: shows that the harness works

The baseline is tests/reference_microgpt.py: one mutable Value per scalar op, a recursive
topological sort in backward, as microgpt.py does it.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from floor import Floor  # noqa: E402
from reference_microgpt import Reference  # noqa: E402

import functional_gpt.tape as T  # noqa: E402
from functional_gpt import datasets, model, train  # noqa: E402
from functional_gpt import rng as R  # noqa: E402
from functional_gpt import sample as S  # noqa: E402
from functional_gpt import tokenizer as tk  # noqa: E402
from functional_gpt.cli import fewer_gc_collections  # noqa: E402
from functional_gpt.optim import Adam  # noqa: E402

SHARED_NAMES = ROOT.parent / "shared" / "data" / "names.txt"


def load(source: str | None) -> tuple[str, tuple[str, ...]]:
    """Return (a label, the documents): a given file, else ../shared names, else bundled."""
    if source is None and SHARED_NAMES.exists():
        source = str(SHARED_NAMES)
    return (source or "bundled names"), datasets.load_docs(source)


class Functional:
    """functional_gpt driven step by step, set up as the CLI does it (``train.prepare``)."""

    def __init__(self, docs, config_kw, steps, seed=42):
        run = train.prepare(docs, seed, **config_kw)
        self.tok, self.rng, self.state, self.tokens = run.tokenizer, run.rng, run.state, run.tokens
        self.rng_tape = run.rng
        self.config = self.state.config
        self.events = train.training(self.state, self.tokens, steps, Adam())

    def step(self) -> float:
        event = next(self.events)
        self.state = event.state
        return event.loss

    def graph_size(self, tokens) -> tuple[int, int]:
        tape, _ = model.doc_loss(self.state.tape, model.layout(self.config), self.config, tokens)
        new = tape.nodes[len(self.state.tape):]
        return len(new), sum(len(inputs) for _, inputs, _, _ in new)

    def sample_one(self) -> str:
        """One name from the float-only forward (``infer``): how sampling runs now."""
        self.rng, name = S.sample(self.state.tape, self.config, self.tok, self.rng, 0.5)
        return name

    def sample_one_on_tape(self) -> str:
        """One name with the forward pass on the tape: how sampling ran before ``infer``."""
        config, tok = self.config, self.tok
        params, cache = model.layout(config), model.empty_cache(config)
        tape, token, out = self.state.tape, tok.bos, []
        for pos in range(config.block_size):
            tape, (logits, cache) = model.gpt(tape, params, config, token, pos, cache)
            probs = S.next_token_probs(T.values(tape, logits), 0.5)
            self.rng_tape, token = R.choices_index(self.rng_tape, probs)
            if token == tok.bos:
                break
            out.append(token)
        return tk.decode(tok, out)


def pvector_kind() -> str:
    """Which PVector pyrsistent gives here: its C extension or the pure-Python one."""
    from pyrsistent import pvector

    kind = type(pvector())
    c = kind.__module__ == "pvectorc"
    return f"{'C extension' if c else 'pure Python'} ({kind.__module__}.{kind.__name__})"


def timed(f):
    t0 = time.perf_counter()
    out = f()
    return (time.perf_counter() - t0) * 1000, out


def side_by_side(docs, config_kw, rounds, per_round, samples):
    """Interleave training steps (and then samples) of both; return medians and checks."""
    steps = rounds * per_round
    base = Reference(docs, steps=steps, **config_kw)
    func = Functional(docs, config_kw, steps)
    floor = Floor(docs, steps=steps, **config_kw)
    t_base, t_func, t_floor, worst, worst_floor = [], [], [], 0.0, 0.0
    for _ in range(rounds):
        for impl, times, losses in ((base, t_base, []), (func, t_func, []),
                                    (floor, t_floor, [])):
            for _ in range(per_round):
                ms, loss = timed(impl.step)
                times.append(ms)
                losses.append(loss)
            if impl is base:
                base_losses = losses
            elif impl is func:
                worst = max([worst] + [abs(a - b) for a, b in zip(base_losses, losses)])
            else:
                worst_floor = max([worst_floor] + [abs(a - b) for a, b in zip(base_losses, losses)])
    doc = func.tokens[0]
    nodes_f, edges_f = func.graph_size(doc)
    nodes_b, edges_b = base.graph_size(list(doc))
    s_base, s_func, s_tape, same = [], [], [], 0
    for _ in range(samples):
        ms_b, name_b = timed(lambda: base.sample(1)[0])
        ms_t, name_t = timed(func.sample_one_on_tape)
        ms_f, name_f = timed(func.sample_one)
        s_base.append(ms_b)
        s_tape.append(ms_t)
        s_func.append(ms_f)
        same += name_b == name_f == name_t
    return {
        "steps": steps,
        "ms_step_baseline": statistics.median(t_base),
        "ms_step_functional": statistics.median(t_func),
        "ms_step_floor": statistics.median(t_floor),
        "max_loss_diff_floor": worst_floor,
        "max_loss_diff": worst,
        "graph_doc_len": len(doc),
        "nodes_baseline": nodes_b,
        "edges_baseline": edges_b,
        "nodes_functional": nodes_f,
        "edges_functional": edges_f,
        "ms_sample_baseline": statistics.median(s_base) if s_base else float("nan"),
        "ms_sample_functional": statistics.median(s_func) if s_func else float("nan"),
        "ms_sample_tape": statistics.median(s_tape) if s_tape else float("nan"),
        "samples_equal": f"{same}/{samples}",
    }


def peak_rss_mib(impl: str, source: str, steps: int, config_kw: dict) -> float:
    """Peak resident memory (MiB) of a fresh process that trains ``impl`` for ``steps`` steps."""
    cmd = [sys.executable, __file__, "--child", impl, "--steps", str(steps),
           "--config", json.dumps(config_kw)]
    if source != "bundled names":
        cmd += ["--data", source]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def child(impl: str, source: str | None, steps: int, config_kw: dict) -> None:
    _, docs = load(source)
    runner = Reference(docs, steps=steps, **config_kw) if impl == "baseline" else \
        Functional(docs, config_kw, steps)
    for _ in range(steps):
        runner.step()
    print(peak_mib_of_this_process())


def peak_mib_of_this_process() -> float:
    """Peak resident memory of this process in MiB.

    Linux's VmHWM belongs to this program alone; ru_maxrss (the fallback elsewhere) also
    counts the parent's memory copied at fork, before exec replaced it.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def macs_per_step(config: model.Config, n: int) -> int:
    """Multiply-adds of one training step's forward pass over ``n`` positions.

    Per position and layer: q, k, v, o (4 e^2), the MLP (8 e^2), and attention over the ``t``
    positions so far (t e for the logits, t e for the weighted values); then lm_head (vocab e).
    """
    e, layers = config.n_embd, config.n_layer
    per_layer = sum(12 * e * e + 2 * t * e for t in range(1, n + 1))
    return layers * per_layer + n * config.vocab_size * e


def scaling(docs, steps_each: int) -> list[tuple[str, float, float, float]]:
    """Per config: median ms/step with default GC, the same with the CLI's GC setting, MACs."""

    def median_ms(kw: dict) -> float:
        func = Functional(docs, kw, steps_each)
        return statistics.median(timed(func.step)[0] for _ in range(steps_each))

    rows = []
    for n_embd, n_layer in ((16, 1), (32, 1), (64, 1), (16, 2), (16, 4)):
        kw = {"n_layer": n_layer, "n_embd": n_embd, "n_head": 4, "block_size": 16}
        ms = median_ms(kw)
        with fewer_gc_collections():
            ms_gc = median_ms(kw)
        run = train.prepare(docs, 42, **kw)
        lengths = [min(kw["block_size"], len(t) - 1) for t in run.tokens[:steps_each]]
        macs = statistics.mean(macs_per_step(run.state.config, n) for n in lengths)
        rows.append((f"n_embd {n_embd}, n_layer {n_layer}", ms, ms_gc, macs))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", help="names file (default: ../shared/data/names.txt if present, "
                    "else the bundled names)")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--memory-steps", type=int, default=100)
    ap.add_argument("--long-steps", type=int, default=1000,
                    help="steps of the long functional run that shows memory does not grow")
    ap.add_argument("--scaling", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    config_kw = {"n_layer": 1, "n_embd": 16, "n_head": 4, "block_size": 16}
    if args.child:
        child(args.child, args.data, args.steps, json.loads(args.config))
        return 0
    if args.quick:
        config_kw = {"n_layer": 1, "n_embd": 8, "n_head": 2, "block_size": 8}
        args.rounds, args.per_round, args.samples = 2, 2, 2
        args.memory_steps, args.long_steps = 3, 6
    source, docs = load(args.data)
    print(f"# functional_gpt benchmark: {source}, {len(docs)} docs, config {config_kw}")
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {time.strftime('%Y-%m-%d')}; pyrsistent's PVector: "
          f"{pvector_kind()}")
    r = side_by_side(docs, config_kw, args.rounds, args.per_round, args.samples)
    with fewer_gc_collections():  # the setting `python -m functional_gpt` trains with
        g = side_by_side(docs, config_kw, args.rounds, args.per_round, 0)
    mem_b = peak_rss_mib("baseline", source, args.memory_steps, config_kw)
    mem_f = peak_rss_mib("functional", source, args.memory_steps, config_kw)
    mem_long = peak_rss_mib("functional", source, args.long_steps, config_kw)
    ratio = r["ms_step_baseline"] / r["ms_step_functional"]
    print()
    print("| measure | baseline (mutable) | functional_gpt | baseline / functional |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| training ms/step (median of {r['steps']}) | {r['ms_step_baseline']:.1f} | "
          f"{r['ms_step_functional']:.1f} | **{ratio:.1f}x** |")
    print(f"| the same, both with the CLI's garbage-collector setting | "
          f"{g['ms_step_baseline']:.1f} | {g['ms_step_functional']:.1f} | "
          f"{g['ms_step_baseline'] / g['ms_step_functional']:.1f}x |")
    print(f"| nodes per step (doc of {r['graph_doc_len']} tokens) | {r['nodes_baseline']} | "
          f"{r['nodes_functional']} | {r['nodes_baseline'] / r['nodes_functional']:.1f}x |")
    print(f"| edges per step (same doc) | {r['edges_baseline']} | {r['edges_functional']} | "
          f"{r['edges_baseline'] / r['edges_functional']:.1f}x |")
    print(f"| inference ms/sample on the tape, as before (median of {args.samples}) | "
          f"{r['ms_sample_baseline']:.1f} | {r['ms_sample_tape']:.1f} | "
          f"{r['ms_sample_baseline'] / r['ms_sample_tape']:.1f}x |")
    print(f"| inference ms/sample without a tape, now (median of {args.samples}) | "
          f"{r['ms_sample_baseline']:.1f} | {r['ms_sample_functional']:.1f} | "
          f"{r['ms_sample_baseline'] / r['ms_sample_functional']:.1f}x |")
    print(f"| peak RSS MiB, {args.memory_steps} steps | {mem_b:.1f} | {mem_f:.1f} | "
          f"{mem_b / mem_f:.2f}x |")
    print(f"| peak RSS MiB, {args.long_steps} steps | | {mem_long:.1f} | |")
    print()
    worst = max(r["max_loss_diff"], g["max_loss_diff"])
    print(f"largest loss difference over {r['steps']} steps: {worst:.3g}; "
          f"samples equal: {r['samples_equal']}")
    print()
    print("| the floor of pure CPython (benchmarks/floor.py: no autograd) | ms/step | "
          "functional_gpt / floor |")
    print("| --- | ---: | ---: |")
    print(f"| default garbage collector (median of {r['steps']}) | {r['ms_step_floor']:.2f} | "
          f"{r['ms_step_functional'] / r['ms_step_floor']:.2f}x |")
    print(f"| the CLI's garbage-collector setting | {g['ms_step_floor']:.2f} | "
          f"{g['ms_step_functional'] / g['ms_step_floor']:.2f}x |")
    print()
    print(f"the floor's largest loss difference from the baseline: "
          f"{max(r['max_loss_diff_floor'], g['max_loss_diff_floor']):.3g}")
    if args.scaling:
        print()
        print("| config | forward multiply-adds per step (mean) | ms/step | us per multiply-add "
              "| ms/step, CLI's GC setting | us per multiply-add |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for label, ms, ms_gc, macs in scaling(docs, 3 if args.quick else 20):
            print(f"| {label} | {macs:.0f} | {ms:.1f} | {1000 * ms / macs:.3f} | {ms_gc:.1f} | "
                  f"{1000 * ms_gc / macs:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
