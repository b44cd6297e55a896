"""functional_gpt: a GPT that trains and samples in pure Python on an immutable tape.

The modules, each one concern: ``tape`` (the autodiff engine), ``layers``,
``model``, ``optim``, ``train``, ``sample``, ``rng``, ``tokenizer``, and the
shell's ``datasets``, ``checkpoint`` and ``cli``.

>>> import functional_gpt as fg
>>> tape, x = fg.tape.var(fg.tape.new(), 2.0)
>>> fg.tape.data(tape, x)
2.0
>>> fg.model.num_params(fg.model.Config(vocab_size=27))
4192
"""

from . import checkpoint, datasets, layers, model, optim, rng, sample, tape, tokenizer, train

__version__ = "0.1.0"

__all__ = [
    "checkpoint",
    "datasets",
    "layers",
    "model",
    "optim",
    "rng",
    "sample",
    "tape",
    "tokenizer",
    "train",
    "__version__",
]
