"""The limits on sizes: the model, its weights, data files, downloads, checkpoints, temperature.

Each limit keeps a mistake (a typo in ``--block-size``, a URL that serves an
endless body, ``--load /dev/urandom``) from filling the memory or hanging the
run; each is far above what this pure-Python GPT can train in a day.

>>> from functional_gpt.model import Config
>>> check_model_size(Config(vocab_size=27))
4192
>>> check_model_size(Config(vocab_size=27, block_size=10**9))
Traceback (most recent call last):
...
ValueError: the model would have 16000003936 parameters, more than the limit of 1000000
"""

from __future__ import annotations

from .model import Config

__all__ = [
    "MAX_PARAMS",
    "MAX_DATA_BYTES",
    "MAX_CHECKPOINT_BYTES",
    "MAX_WEIGHT",
    "MAX_CHECKPOINT_LISTS",
    "MAX_CHECKPOINT_COMMAS",
    "DOWNLOAD_TIMEOUT",
    "DOWNLOAD_DEADLINE",
    "MIN_TEMPERATURE",
    "MAX_TEMPERATURE",
    "model_size",
    "check_model_size",
]

MAX_PARAMS = 1_000_000  # a step of such a model takes seconds; the default model has 4192
# A data file or download: 16 MiB (the bundled names are 0.2 MiB; 16 MiB of names is two
# million, hours of training an epoch). Reading and preparing one takes about 30 times its size
# in memory (benchmarks/bench_memory.py), so about 500 MB at the limit.
MAX_DATA_BYTES = 16 * 2**20
# A checkpoint of MAX_PARAMS parameters takes 32 MiB in rows of 16 numbers, about 101 MiB at
# most (rows of one number).
MAX_CHECKPOINT_BYTES = 128 * 2**20
# What a checkpoint at the parameter limit holds: three sets of matrices (weights and Adam's two
# moments) of at most MAX_PARAMS numbers each, in as many rows at most, and the random state's
# 624 words; a few hundred more for the other fields and for brackets inside strings. A reader
# counts them in the text before parsing it, so that the objects a JSON parser builds (tens of
# bytes each, far more than their text) stay bounded whatever the file holds.
MAX_CHECKPOINT_LISTS = 3 * MAX_PARAMS + 500  # "[" and "{"
MAX_CHECKPOINT_COMMAS = 6 * MAX_PARAMS + 2000
# The largest size of a weight in a checkpoint or after a training step. A trained model's are
# below 10. Below this bound every computation on a model the size limit allows stays far from
# overflow: the forward pass (its logits grow at most as the cube of the weights: under 1e40),
# the principal components of the embeddings (squares of squares: under 1e30).
MAX_WEIGHT = 1e6
DOWNLOAD_TIMEOUT = 30.0  # seconds without a byte from the server
DOWNLOAD_DEADLINE = 300.0  # seconds for a whole download, however the bytes trickle in
MIN_TEMPERATURE = 1e-6  # below, 1 / T overflows against large logits
MAX_TEMPERATURE = 1e6


def model_size(config: Config) -> int:
    """Return the number of parameters of ``config``, in closed form (no list of shapes is built).

    Embeddings and the output head are ``vocab_size * n_embd`` each and the
    positions ``block_size * n_embd``; each layer has four ``n_embd`` squared
    attention matrices and two MLP matrices of four times that.

    >>> model_size(Config(vocab_size=27))
    4192
    """
    e = config.n_embd
    return (2 * config.vocab_size + config.block_size) * e + config.n_layer * 12 * e * e


def check_model_size(config: Config) -> int:
    """Return ``model_size(config)``, or raise ValueError when it is over ``MAX_PARAMS``.

    >>> check_model_size(Config(vocab_size=27, n_layer=2, n_embd=32))
    26816
    """
    params = model_size(config)
    if params > MAX_PARAMS:
        raise ValueError(
            f"the model would have {params} parameters, more than the limit of {MAX_PARAMS}"
        )
    return params
