"""functional_gpt: a GPT that trains and samples in pure Python on an immutable tape.

The modules, each one concern: ``tape`` (the autodiff engine), ``layers``,
``model``, ``optim``, ``train``, ``sample``, ``rng``, ``tokenizer``,
``trees`` (parameters as nested tuples, lists, NamedTuples and dicts),
``toy_data`` (two moons, for small classifiers), ``inside`` (what a trained
model computes, as numbers), the pictures of ``graph`` (tapes), ``plot``
(training) and ``pictures`` (a trained model), and the shell's
``datasets``, ``checkpoint`` and ``cli``. ``functional_gpt.testing`` (property
tests for your own tape functions) needs hypothesis and is imported on its own.

>>> import functional_gpt as fg
>>> tape, x = fg.tape.var(fg.tape.new(), 2.0)
>>> fg.tape.data(tape, x)
2.0
>>> fg.model.num_params(fg.model.Config(vocab_size=27))
4192
"""

from . import (
    checkpoint,
    datasets,
    graph,
    inside,
    layers,
    model,
    optim,
    pictures,
    plot,
    rng,
    sample,
    tape,
    tokenizer,
    toy_data,
    train,
    trees,
)

__version__ = "0.1.0"

__all__ = [
    "checkpoint",
    "datasets",
    "graph",
    "inside",
    "layers",
    "model",
    "optim",
    "pictures",
    "plot",
    "rng",
    "sample",
    "tape",
    "tokenizer",
    "toy_data",
    "train",
    "trees",
    "__version__",
]
