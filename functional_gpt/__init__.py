"""functional_gpt: a GPT that trains and samples in pure Python on an immutable tape.

The modules, each one concern: ``tape`` (the autodiff engine), ``repl`` (tools
for composing and checking tape functions: ``value_and_grad``, ``check_grads``,
``table``), ``layers``,
``model``, ``optim``, ``train``, ``sample``, ``rng``, ``tokenizer``,
``trees`` (parameters as nested tuples, lists, NamedTuples and dicts),
``toy_data`` (two moons, for small classifiers), ``inside`` (what a trained
model computes, as numbers), the pictures of ``graph`` (tapes), ``plot``
(training) and ``pictures`` (a trained model), and the shell's
``datasets``, ``checkpoint`` and ``cli``. ``functional_gpt.testing`` (property
tests for your own tape functions) needs hypothesis and is imported on its own.
Each module is imported when first used (``fg.model`` below), not all at once:
so the command line (``__main__``) installs its signal handlers before the
tenth of a second its imports take, and a Ctrl-C then is one line, not a
traceback.

>>> import functional_gpt as fg
>>> tape, x = fg.tape.var(fg.tape.new(), 2.0)
>>> fg.tape.data(tape, x)
2.0
>>> fg.model.num_params(fg.model.Config(vocab_size=27))
4192
"""

import importlib
from typing import Any

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
    "repl",
    "rng",
    "sample",
    "tape",
    "tokenizer",
    "toy_data",
    "train",
    "trees",
    "__version__",
]

_SUBMODULES = frozenset(__all__) - {"__version__"}


def __getattr__(name: str) -> Any:
    """A submodule on first use (PEP 562): ``import functional_gpt`` itself loads none of them,
    so ``import functional_gpt.tape`` loads only the tape's own modules.

    >>> import functional_gpt as fg
    >>> fg.optim.linear_decay(0.01, 0, 10)
    0.01
    """
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SUBMODULES)
