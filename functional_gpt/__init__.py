"""functional_gpt: a GPT that trains and samples in pure Python on an immutable tape.

The modules, each one concern: ``tape`` (the autodiff engine), ``layers``,
``model``, ``optim``, ``train``, ``sample``, ``rng``, ``tokenizer``,
``trees`` (parameters as nested tuples, lists, NamedTuples and dicts),
``toy_data`` (two moons, for small classifiers), ``inside`` (what a trained
model computes, as numbers), the pictures of ``graph`` (tapes), ``plot``
(training) and ``pictures`` (a trained model), and the shell's
``datasets``, ``checkpoint`` and ``cli``. ``functional_gpt.testing`` (property
tests for your own tape functions) needs hypothesis and is imported on its own.

Each module is imported when it is first used (``fg.tape`` below, or
``from functional_gpt import tape``), not with the package: so the command
line (``__main__``) can catch Ctrl-C, SIGTERM and SIGHUP before the tenth of
a second its imports take, and a signal then is one line, not a traceback.

>>> import functional_gpt as fg
>>> tape, x = fg.tape.var(fg.tape.new(), 2.0)
>>> fg.tape.data(tape, x)
2.0
>>> fg.model.num_params(fg.model.Config(vocab_size=27))
4192
"""

from importlib import import_module
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:  # for type checkers, which do not run __getattr__
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


def __getattr__(name: str) -> object:
    """Import the module ``name`` of the package on first use (PEP 562).

    >>> import functional_gpt
    >>> functional_gpt.tokenizer.Tokenizer("ab").vocab_size
    3
    >>> functional_gpt.no_such_module
    Traceback (most recent call last):
    ...
    AttributeError: module 'functional_gpt' has no attribute 'no_such_module'
    """
    if name in __all__ and name != "__version__":
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
