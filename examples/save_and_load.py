"""Save a trained model as a checkpoint, load it back and sample from it.

Run from the repository root (with the package installed):

    python examples/save_and_load.py

A checkpoint is versioned JSON (see ``functional_gpt.checkpoint``); floats are
written exactly, so the loaded model samples exactly what the saved one did.
The same file works with ``functional-gpt sample --load PATH``.
"""

import os
import tempfile

from functional_gpt import checkpoint
from functional_gpt.optim import Adam
from functional_gpt.sample import samples
from functional_gpt.train import prepare, training

NAMES = ("emma", "olivia", "ava", "isabella", "sophia", "mia", "amelia", "harper", "evelyn")
STEPS = 30


def main() -> None:
    """Train briefly, save, load, and show that both models sample the same names."""
    run = prepare(NAMES, seed=7, n_embd=8, n_head=2, block_size=10)
    hyper = Adam(lr=0.02)
    *_, last = training(run.state, run.tokens, STEPS, hyper)
    ckpt = checkpoint.Checkpoint(last.state, run.tokenizer, seed=7, rng=run.rng, steps=STEPS,
                                 hyper=hyper)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tiny.json")
        checkpoint.save(path, ckpt)
        print(f"saved {os.path.getsize(path)} bytes to {os.path.basename(path)}")
        loaded = checkpoint.load(path)

    config = loaded.state.config
    print(f"loaded: {config}, vocabulary {loaded.tokenizer.chars!r}, "
          f"after step {loaded.state.adam.step} of {loaded.steps}")
    _, before = samples(ckpt.state.tape, config, ckpt.tokenizer, ckpt.rng, 5)
    _, after = samples(loaded.state.tape, config, loaded.tokenizer, loaded.rng, 5)
    print("saved model: ", ", ".join(before))
    print("loaded model:", ", ".join(after))
    print("identical:", before == after)
    _, em = samples(loaded.state.tape, config, loaded.tokenizer, loaded.rng, 5, prompt="em")
    print("with prompt 'em':", ", ".join(em))


if __name__ == "__main__":
    main()
