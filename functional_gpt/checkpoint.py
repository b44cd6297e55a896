"""Checkpoints: a trained model and its training state as one versioned, exact JSON document.

A checkpoint is a ``Checkpoint`` record. ``to_json_obj`` / ``from_json_obj``
turn it into plain JSON data and back, ``dumps`` / ``loads`` into text and
back; all four are pure and check what they read. ``save`` and ``load`` are
the shell: they write a file atomically and read one.

>>> from functional_gpt import rng as R, tokenizer as tk
>>> from functional_gpt.model import Config
>>> from functional_gpt.train import init_state
>>> tok = tk.build(["ab", "ba"])
>>> rng, state = init_state(R.seed(7), Config(tok.vocab_size, n_embd=4, n_head=2, block_size=4))
>>> ckpt = Checkpoint(state, tok, seed=7, rng=rng, steps=10)
>>> loads(dumps(ckpt)) == ckpt
True

The format (version 2) is one JSON object; floats are written with
``repr``, so they read back bit for bit::

    {
      "format": "functional-gpt-checkpoint",
      "version": 2,
      "config": {"vocab_size": 3, "n_layer": 1, "n_embd": 4, "n_head": 2, "block_size": 4},
      "vocab": ["a", "b"],               token i is vocab[i]; BOS is token len(vocab)
      "seed": 7,                         the --seed of the run
      "steps": 10,                       its planned number of steps (sets the lr decay)
      "params": {"wte": [[...], ...], "wpe": ..., "lm_head": ..., "layer0.attn_wq": ..., ...},
      "optimizer": {
        "name": "adam", "lr": 0.01, "beta1": 0.85, "beta2": 0.99, "eps": 1e-08,
        "step": 0,                       steps taken so far
        "m": {...}, "v": {...}           moments, named and shaped like "params"
      },
      "rng": {"mt": [624 words], "pos": 624, "gauss_next": null},
      "data": {"kind": "path", "location": "/abs/names.txt", "sha256": "...", "docs": 32033},
      "holdout": 0                       documents held out of training (the last, shuffled)
    }

``data`` says where the run's documents came from (``kind`` "bundled",
"path" or "url"; ``location`` null for the bundled names) and their SHA-256
fingerprint (``datasets.fingerprint``), so that a resumed run can reload
them and refuse different ones. It is null when unknown. Version 1 is
version 2 without ``data`` and ``holdout``; it still loads (with no data
record and no holdout).

``params`` holds every matrix of ``model.matrix_shapes(config)``, in that
order, as a list of rows, each weight at most ``limits.MAX_WEIGHT`` in size;
``vocab`` holds printable characters only (``tokenizer.unprintable_chars``).
``rng`` is the random state right after the parameters were drawn (a
Mersenne Twister state, as ``random.getstate``): sampling continues from it,
and so could resumed training.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from . import limits, model
from . import rng as R
from . import tape as T
from . import tokenizer as tk
from .datasets import DataSource
from .model import Config
from .optim import Adam, AdamState
from .shell import write_atomically
from .train import TrainState

__all__ = [
    "FORMAT",
    "VERSION",
    "READABLE_VERSIONS",
    "CheckpointError",
    "Checkpoint",
    "to_json_obj",
    "from_json_obj",
    "dumps",
    "loads",
    "save",
    "load",
    "remove_stray_temps",
]

FORMAT = "functional-gpt-checkpoint"
VERSION = 2
READABLE_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: missing, not JSON, another format or inconsistent.

    >>> issubclass(CheckpointError, ValueError)
    True
    """


class Checkpoint(NamedTuple):
    """Everything a checkpoint holds: training state, vocabulary and how the run was set up.

    ``state.config`` is the model's shape, ``state.tape`` its parameters and
    ``state.adam`` the optimizer state; ``seed`` and ``steps`` are the run's
    ``--seed`` and planned number of steps, ``rng`` the random state right
    after initialisation and ``hyper`` Adam's hyperparameters. ``data`` says
    where the documents came from (None if unknown) and ``holdout`` how many
    of the shuffled documents were kept out of training.
    """

    state: TrainState
    tokenizer: tk.Tokenizer
    seed: int
    rng: R.RNG
    steps: int
    hyper: Adam = Adam()
    data: DataSource | None = None
    holdout: int = 0


# ------------------------------------------------------------------ writing


def _frozen(d: dict[str, Any]) -> Mapping[str, Any]:
    """A read-only view of a fresh dict (keeps key order, unlike a pmap); the dict never escapes."""
    return MappingProxyType(d)


def _matrices(config: Config, flat: Sequence[float]) -> Mapping[str, Any]:
    """``{name: rows}`` for every weight matrix, cutting ``flat`` in layout order."""
    out = {}  # local transient, frozen below
    start = 0
    for name, rows, cols in model.matrix_shapes(config):
        out[name] = tuple(
            tuple(flat[start + r * cols : start + (r + 1) * cols]) for r in range(rows)
        )
        start += rows * cols
    return _frozen(out)


def _check_finite(what: str, xs: Sequence[float]) -> None:
    bad = next((x for x in xs if not math.isfinite(x)), None)
    if bad is not None:
        raise CheckpointError(f"checkpoint: {what} holds the non-finite number {bad!r}")


def to_json_obj(ckpt: Checkpoint) -> Mapping[str, Any]:
    """Return the checkpoint as JSON data: read-only mappings, tuples, str, int, float, None.

    ``json.dumps(obj, default=dict)`` writes it; ``dumps`` does so legibly.

    Raises CheckpointError if it is inconsistent (wrong sizes, non-finite numbers)
    or holds what ``from_json_obj`` refuses (a weight over ``limits.MAX_WEIGHT``,
    an unprintable character in the vocabulary).

    >>> from functional_gpt import rng as R, tokenizer as tk
    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> rng, state = init_state(R.seed(0), Config(tok.vocab_size, n_embd=2, n_head=1, block_size=2))
    >>> obj = to_json_obj(Checkpoint(state, tok, seed=0, rng=rng, steps=5))
    >>> obj["format"], obj["version"], obj["vocab"], obj["config"]["n_embd"]
    ('functional-gpt-checkpoint', 2, ('a', 'b'), 2)
    >>> [(name, len(rows), len(rows[0])) for name, rows in obj["params"].items()][:2]
    [('wte', 3, 2), ('wpe', 2, 2)]
    """
    state = ckpt.state
    config = model.check_config(state.config)
    n = model.num_params(config)
    values = T.values(state.tape, range(len(state.tape)))
    adam = state.adam
    if len(values) != n or len(adam.m) != n or len(adam.v) != n:
        raise CheckpointError(
            f"checkpoint: the model has {n} parameters but the state holds {len(values)} "
            f"values and {len(adam.m)}/{len(adam.v)} moments"
        )
    if ckpt.tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(
            f"checkpoint: vocabulary of {ckpt.tokenizer.vocab_size} tokens for a model of "
            f"{config.vocab_size}"
        )
    for what, xs in (("params", values), ("optimizer.m", adam.m), ("optimizer.v", adam.v)):
        _check_finite(what, xs)
    _weights(values, "params")  # what the reader refuses is never written
    _vocabulary(ckpt.tokenizer.chars)
    _check_finite("optimizer", tuple(ckpt.hyper))
    cp = R.to_cpython(ckpt.rng)
    return _frozen(
        {
            "format": FORMAT,
            "version": VERSION,
            "config": _frozen(config._asdict()),
            "vocab": tuple(ckpt.tokenizer.chars),
            "seed": ckpt.seed,
            "steps": ckpt.steps,
            "params": _matrices(config, values),
            "optimizer": _frozen(
                {
                    "name": "adam",
                    **ckpt.hyper._asdict(),
                    "step": adam.step,
                    "m": _matrices(config, adam.m),
                    "v": _matrices(config, adam.v),
                }
            ),
            "rng": _frozen({"mt": cp[1][:-1], "pos": cp[1][-1], "gauss_next": cp[2]}),
            "data": None if ckpt.data is None else _frozen(ckpt.data._asdict()),
            "holdout": ckpt.holdout,
        }
    )


def _dump(obj: Any, indent: str) -> str:
    """JSON text for ``obj``: one key a line, but lists and objects of scalars on one line."""
    if isinstance(obj, Mapping):
        if obj and all(not isinstance(v, (Mapping, list, tuple)) for v in obj.values()):
            return json.dumps(dict(obj), allow_nan=False)
        inner = indent + "  "
        items = [f"{inner}{json.dumps(k)}: {_dump(v, inner)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}" if items else "{}"
    if isinstance(obj, (list, tuple)):
        if all(not isinstance(x, (Mapping, list, tuple)) for x in obj):
            return json.dumps(list(obj), allow_nan=False)
        inner = indent + "  "
        items = [inner + _dump(x, inner) for x in obj]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(obj, allow_nan=False)


def dumps(ckpt: Checkpoint) -> str:
    """Return the checkpoint as JSON text (one matrix row a line; floats exact).

    >>> from functional_gpt import rng as R, tokenizer as tk
    >>> from functional_gpt.train import init_state
    >>> tok = tk.build(["ab"])
    >>> rng, state = init_state(R.seed(0), Config(tok.vocab_size, n_embd=2, n_head=1, block_size=2))
    >>> print(dumps(Checkpoint(state, tok, seed=0, rng=rng, steps=5))[:60])
    {
      "format": "functional-gpt-checkpoint",
      "version": 2,
    """
    return _dump(to_json_obj(ckpt), "") + "\n"


# ------------------------------------------------------------------ reading


def _fail(msg: str) -> CheckpointError:
    return CheckpointError(f"checkpoint: {msg}")


def _get(obj: Mapping, key: str, kind: type | tuple[type, ...], where: str = "") -> Any:
    """``obj[key]`` if present and of type ``kind`` (bools are never numbers)."""
    path = f"{where}.{key}" if where else key
    if key not in obj:
        raise _fail(f"missing field '{path}'")
    value = obj[key]
    number = kind in (int, float) or kind == (int, float)
    if not isinstance(value, kind) or (number and isinstance(value, bool)):
        raise _fail(f"field '{path}' has the wrong type ({type(value).__name__})")
    return value


def _number(x: object, what: str) -> float:
    """``x`` as a finite float, or CheckpointError (an int too large for a float too)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise _fail(f"{what} holds {_short(x)}, not a number")
    try:
        value = float(x)
    except OverflowError:  # an int of hundreds of digits
        raise _fail(f"{what} holds an integer of {len(str(abs(x)))} digits, too large "
                    "for a float") from None
    if not math.isfinite(value):
        raise _fail(f"{what} holds the non-finite number {value!r}")
    return value


def _short(x: object) -> str:
    """``repr(x)``, cut to 40 characters: a message names a value, it does not print a file."""
    text = repr(x)
    return text if len(text) <= 40 else text[:37] + "..."


def _weights(xs: tuple[float, ...], what: str) -> tuple[float, ...]:
    """``xs``, or CheckpointError when one is larger than ``limits.MAX_WEIGHT`` in size."""
    bound = limits.MAX_WEIGHT
    if xs and (max(xs) > bound or min(xs) < -bound):
        big = max(xs, key=abs)
        raise _fail(f"{what} holds the weight {big!r}, larger than the limit of {bound:g}, "
                    "beyond which the model's computations may overflow (a diverged or "
                    "hand-edited model)")
    return xs


def _flat(obj: Mapping, key: str, config: Config, where: str = "") -> tuple[float, ...]:
    """The matrices of ``obj[key]``, checked against ``config``, flattened in layout order."""
    path = f"{where}.{key}" if where else key
    mats = _get(obj, key, Mapping, where)
    shapes = model.matrix_shapes(config)
    names = [name for name, _, _ in shapes]
    extra = sorted(set(mats) - set(names))
    if extra:
        raise _fail(f"'{path}' has unknown matrices {extra} for this config")
    out: list[float] = []  # local transient, frozen into a tuple below
    for name, rows, cols in shapes:
        m = mats.get(name)
        if m is None:
            raise _fail(f"'{path}' is missing the matrix '{name}'")
        if (
            not isinstance(m, Sequence)
            or isinstance(m, str)
            or len(m) != rows
            or any(isinstance(r, str) or not isinstance(r, Sequence) or len(r) != cols for r in m)
        ):
            raise _fail(f"'{path}.{name}' must be {rows} rows of {cols} numbers for this config")
        for r in m:
            out.extend(_number(x, f"'{path}.{name}'") for x in r)
    return tuple(out)


def _config(obj: Mapping) -> Config:
    cfg = _get(obj, "config", Mapping)
    fields = {name: _get(cfg, name, int, "config") for name in Config._fields}
    extra = sorted(set(cfg) - set(Config._fields))
    if extra:
        raise _fail(f"'config' has unknown fields {extra}")
    try:
        config = model.check_config(Config(**fields))
        limits.check_model_size(config)
        return config
    except ValueError as e:
        raise _fail(f"bad config: {e}") from None


def _vocabulary(chars: str) -> None:
    """CheckpointError unless every character of the vocabulary is printable."""
    bad = tk.unprintable_chars(chars)
    if bad:
        raise _fail(f"'vocab' holds {', '.join(map(repr, bad))}: a vocabulary holds printable "
                    "characters only, so that every name prints as one line")


def _tokenizer(obj: Mapping, config: Config) -> tk.Tokenizer:
    chars = _get(obj, "vocab", Sequence)
    if isinstance(chars, str) or not all(isinstance(c, str) and len(c) == 1 for c in chars):
        raise _fail("'vocab' must be a list of single characters")
    _vocabulary("".join(chars))
    if len(set(chars)) != len(chars):
        raise _fail("'vocab' repeats a character")
    if list(chars) != sorted(chars):
        raise _fail("'vocab' is not in sorted order")
    if len(chars) + 1 != config.vocab_size:
        raise _fail(
            f"'vocab' has {len(chars)} characters, but config.vocab_size {config.vocab_size} "
            f"needs {config.vocab_size - 1} (plus BOS)"
        )
    return tk.Tokenizer("".join(chars))


def _rng(obj: Mapping) -> R.RNG:
    st = _get(obj, "rng", Mapping)
    mt = _get(st, "mt", Sequence, "rng")
    pos = _get(st, "pos", int, "rng")
    gauss_next = st.get("gauss_next")
    if gauss_next is not None:
        gauss_next = _number(gauss_next, "'rng.gauss_next'")
    if isinstance(mt, str) or any(isinstance(w, bool) for w in mt):
        raise _fail("'rng.mt' must be a list of 624 ints")
    try:
        return R.from_cpython((3, (*mt, pos), gauss_next))
    except ValueError as e:
        raise _fail(f"bad 'rng': {str(e).removeprefix('from_cpython: ')}") from None


def _data(obj: Mapping) -> DataSource | None:
    data = obj.get("data")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise _fail("field 'data' has the wrong type")
    kind = _get(data, "kind", str, "data")
    if kind not in ("bundled", "path", "url"):
        raise _fail(f"'data.kind' is {kind!r}, not one of 'bundled', 'path', 'url'")
    location = data.get("location")
    if (location is None) != (kind == "bundled") or not isinstance(location, (str, type(None))):
        raise _fail("'data.location' must be a string, or null for the bundled names")
    sha = _get(data, "sha256", str, "data")
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise _fail("'data.sha256' is not a SHA-256 in hex")
    docs = _get(data, "docs", int, "data")
    if docs < 1:
        raise _fail(f"'data.docs' is {docs}, not 1 or more")
    return DataSource(kind, location, sha, docs)


def _hyper(opt: Mapping) -> Adam:
    """Adam's hyperparameters from ``optimizer``, each finite and in its range."""
    hyper = Adam(
        *(_number(_get(opt, f, (int, float), "optimizer"), f"'optimizer.{f}'")
          for f in Adam._fields)
    )
    if not hyper.lr > 0:
        raise _fail(f"'optimizer.lr' is {hyper.lr!r}, not a positive number")
    for name in ("beta1", "beta2"):
        beta = getattr(hyper, name)
        if not 0 <= beta < 1:
            raise _fail(f"'optimizer.{name}' is {beta!r}, not from 0 up to (not including) 1")
    if not hyper.eps > 0:
        raise _fail(f"'optimizer.eps' is {hyper.eps!r}, not a positive number")
    return hyper


def from_json_obj(obj: object) -> Checkpoint:
    """Return the ``Checkpoint`` held in JSON data, or raise CheckpointError saying what is wrong.

    Checks the format name and version, that every field is there with the
    right type, matrix shapes against the config, the vocabulary against
    ``vocab_size`` (printable characters, sorted, distinct), that every number
    is finite and every weight at most ``limits.MAX_WEIGHT`` in size: what
    passes, every command can compute with.

    >>> from_json_obj({"format": "functional-gpt-checkpoint", "version": 99})
    Traceback (most recent call last):
    ...
    functional_gpt.checkpoint.CheckpointError: checkpoint: version 99 is not supported (only 1, 2)
    >>> from_json_obj([1, 2])
    Traceback (most recent call last):
    ...
    functional_gpt.checkpoint.CheckpointError: checkpoint: not a functional-gpt checkpoint ...
    """
    if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
        raise _fail(f"not a functional-gpt checkpoint (no \"format\": \"{FORMAT}\")")
    version = obj.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:  # not 2.0, not True
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise _fail(f"version {version!r} is not supported (only {readable})")
    config = _config(obj)
    tok = _tokenizer(obj, config)
    seed = _get(obj, "seed", int)
    steps = _get(obj, "steps", int)
    opt = _get(obj, "optimizer", Mapping)
    if opt.get("name") != "adam":
        raise _fail(f"optimizer {opt.get('name')!r} is not supported (only 'adam')")
    hyper = _hyper(opt)
    step = _get(opt, "step", int, "optimizer")
    if steps < 1 or not 0 <= step <= steps:
        raise _fail(f"optimizer.step {step} is not within the planned {steps} steps")
    values = _weights(_flat(obj, "params", config), "'params'")
    m = _flat(opt, "m", config, "optimizer")
    v = _flat(opt, "v", config, "optimizer")
    if any(x < 0.0 for x in v):
        raise _fail("'optimizer.v' holds a negative second moment")
    tape = T.leaves(values)
    state = TrainState(config, tape, AdamState(m, v, step))
    data, holdout = (None, 0) if version == 1 else (_data(obj), _get(obj, "holdout", int))
    if holdout < 0:
        raise _fail(f"'holdout' is {holdout}, not 0 or more")
    if data is not None and holdout >= data.docs:
        raise _fail(f"'holdout' is {holdout}, which leaves none of its {data.docs} documents "
                    "to train on")
    return Checkpoint(state, tok, seed, _rng(obj), steps, hyper, data, holdout)


def _no_constants(name: str) -> float:
    raise _fail(f"holds {name}, which is not a finite number")


def _check_counts(text: str) -> None:
    """CheckpointError when ``text`` holds more lists or values than any checkpoint can.

    Counted before the JSON is parsed, so that the objects the parser makes
    are bounded (each costs tens of bytes, far more than its text): a
    hand-made file of ``[[],[],...`` cannot fill the memory.
    """
    lists = text.count("[") + text.count("{")
    commas = text.count(",")
    if lists > limits.MAX_CHECKPOINT_LISTS or commas > limits.MAX_CHECKPOINT_COMMAS:
        raise _fail(f"holds {lists} lists and {commas} commas, more than a checkpoint of at "
                    f"most {limits.MAX_PARAMS} parameters can")


def loads(text: str) -> Checkpoint:
    """Return the checkpoint in JSON ``text``, or raise CheckpointError (see ``from_json_obj``).

    >>> loads('{"format": "functional-gpt-checkpoint", "vers')
    Traceback (most recent call last):
    ...
    functional_gpt.checkpoint.CheckpointError: checkpoint: not valid JSON, truncated ... (line 1 ...
    """
    return _checked(_parsed(text))


def _parsed(text: str) -> object:
    """The JSON data in ``text`` (its lists and values counted first), or CheckpointError."""
    _check_counts(text)
    try:
        return json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as e:
        raise _fail(
            f"not valid JSON, truncated or corrupted (line {e.lineno} column {e.colno}: {e.msg})"
        ) from None
    except RecursionError:
        raise _fail("not valid JSON (nested too deeply)") from None
    except ValueError as e:  # an int of more digits than Python converts (3.11+)
        raise _fail(f"holds a number it cannot read ({str(e).split(';')[0]})") from None


def _checked(obj: object) -> Checkpoint:
    """``from_json_obj(obj)``, with any error a check lacks turned into a CheckpointError."""
    try:
        return from_json_obj(obj)
    except CheckpointError:
        raise
    except (TypeError, ValueError, ArithmeticError, LookupError) as e:  # a check this lacks
        raise _fail(f"cannot be read ({type(e).__name__}: {e})") from None


# -------------------------------------------------------------------- shell


_TEMP = re.compile(r"^\.checkpoint-(?:(\d+)-)?[^/]*\.tmp$")  # our temp files, with the writer's pid


def _writer_is_gone(pid: str | None) -> bool:
    """Whether the process that made a temp file has ended (no pid: an older version's file)."""
    if pid is None:
        return True
    if int(pid) == os.getpid():
        return True  # this process saves one file at a time: anything older of ours is stray
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, OSError):
        return False
    return False


def remove_stray_temps(directory: str | os.PathLike[str]) -> tuple[str, ...]:
    """Delete the temp files that killed saves left in ``directory``; return their names.

    Only files named like ours (``.checkpoint-PID-*.tmp``) whose writing
    process has ended are removed; anything else is left alone.

    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".checkpoint-abc.tmp").write_text("half a file")
    >>> _ = (folder / "notes.tmp").write_text("not ours")
    >>> remove_stray_temps(folder), sorted(p.name for p in folder.iterdir())
    (('.checkpoint-abc.tmp',), ['notes.tmp'])
    """
    removed = []  # local transient, frozen into a tuple below
    try:
        names = os.listdir(directory)
    except OSError:
        return ()
    for name in names:
        match = _TEMP.match(name)
        if match and _writer_is_gone(match.group(1)):
            try:
                os.unlink(os.path.join(directory, name))
                removed.append(name)
            except OSError:
                pass
    return tuple(removed)


def save(path: str | os.PathLike[str], ckpt: Checkpoint) -> None:
    """Write ``ckpt`` to ``path`` atomically: a temp file in the same directory, fsync, rename.

    Either the old file or the complete new one is there, never half a file.
    A symlink is written through: its target gets the new file, the link
    stays. Temp files that earlier, killed saves left in that directory are
    removed first (``remove_stray_temps``).
    """
    text = dumps(ckpt)
    remove_stray_temps(os.path.dirname(os.path.realpath(path)))
    write_atomically(path, lambda f: f.write(text.encode("utf-8")),
                     prefix=f".checkpoint-{os.getpid()}-")


def _read_bounded(path: str | os.PathLike[str]) -> str:
    """The text of a regular file of at most ``limits.MAX_CHECKPOINT_BYTES``."""
    st = os.stat(path)  # never opens a FIFO (it would block) or a device (it may not end)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(path)
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"{os.fspath(path)}: not a checkpoint (not a regular file but a "
                              "FIFO, device or socket)")
    cap = limits.MAX_CHECKPOINT_BYTES
    with open(path, encoding="utf-8") as f:
        text = f.read(cap + 1)
    if len(text) > cap or st.st_size > cap:
        raise CheckpointError(f"{os.fspath(path)}: larger than the limit of {cap >> 20} MiB "
                              "for a checkpoint")
    return text


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Return the checkpoint in the file ``path``; CheckpointError names the file and the fault.

    Only a regular file up to ``limits.MAX_CHECKPOINT_BYTES`` is read: a FIFO
    or a device (``/dev/urandom``) is refused without reading it.

    >>> load("/dev/null")
    Traceback (most recent call last):
    ...
    functional_gpt.checkpoint.CheckpointError: /dev/null: not a checkpoint (not a regular file ...
    """
    try:
        text = _read_bounded(path)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint file not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint path is a directory: {path}") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a checkpoint (not UTF-8 text)") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    if not text.strip():
        raise CheckpointError(f"{path}: checkpoint file is empty")
    try:
        return loads(text)
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {str(e).removeprefix('checkpoint: ')}") from None
