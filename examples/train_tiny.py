"""Train a tiny GPT on a handful of names through the library, then sample from it.

Run from the repository root (with the package installed):

    python examples/train_tiny.py

This is what ``functional-gpt train`` does, spelled out as plain calls: every
value below is immutable, and the random state is passed along explicitly.
"""

from functional_gpt import rng as R
from functional_gpt import tokenizer as tk
from functional_gpt.model import Config, num_params
from functional_gpt.optim import Adam
from functional_gpt.sample import samples
from functional_gpt.train import init_state, training

NAMES = ("emma", "olivia", "ava", "isabella", "sophia", "mia", "charlotte", "amelia",
         "harper", "evelyn", "abigail", "emily", "ella", "elizabeth", "camila", "luna")
STEPS = 60


def main() -> None:
    """Print the set-up, a few losses on the way, and eight sampled names."""
    rng = R.seed(42)
    rng, docs = R.shuffle(rng, NAMES)  # a new tuple; NAMES is untouched
    tok = tk.build(docs)
    config = Config(vocab_size=tok.vocab_size, n_embd=8, n_head=2, block_size=12)
    rng, state = init_state(rng, config)
    tokens = [tk.doc_tokens(tok, d) for d in docs]
    print(f"{len(docs)} names, vocabulary {tok.chars!r} + BOS, {num_params(config)} parameters")

    # training() is a lazy stream of StepEvents; each holds the new state.
    last = None
    for event in training(state, tokens, STEPS, Adam(lr=0.02)):
        if event.step % 10 == 0 or event.step == 1:
            print(f"step {event.step:3d} / {STEPS} | loss {event.loss:.4f} | lr {event.lr:.4f}")
        last = event
    assert last is not None
    print(f"the initial state is still at step {state.adam.step}; the last is at "
          f"{last.state.adam.step}")

    rng, names = samples(last.state.tape, config, tok, rng, count=8, temperature=0.6)
    print("samples:", ", ".join(names))


if __name__ == "__main__":
    main()
