"""A purely functional Mersenne Twister, draw for draw the same as CPython's ``random.Random``.

The generator state is an immutable ``RNG`` value. Every function takes a
state and returns ``(new_state, draw)``; the state passed in is never
changed, so drawing twice from one state gives the same draw twice. Seeded
with the same integer, the draws equal those of ``random.Random``, so seed 42
here means exactly what ``random.seed(42)`` means in microgpt.py.

>>> from random import Random
>>> rng = seed(42)
>>> rng2, x = random(rng)
>>> x == Random(42).random()
True
>>> random(rng)[1] == x              # rng itself is unchanged
True
>>> rng2, xs = shuffle(rng2, "abcde")
>>> oracle = Random(42); _ = oracle.random(); letters = list("abcde")
>>> oracle.shuffle(letters); xs == tuple(letters)
True

Algorithms (MT19937, ``init_by_array`` seeding, 53-bit floats, rejection
sampling for ``randbelow``, the paired Box-Muller ``gauss``) follow the
published MT19937 reference and CPython's documented behaviour.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple, TypeVar

__all__ = [
    "RNG",
    "seed",
    "random",
    "uniform",
    "getrandbits",
    "randbelow",
    "shuffle",
    "gauss",
    "gauss_many",
    "choices_index",
    "to_cpython",
    "from_cpython",
]

T = TypeVar("T")

_N = 624  # words of state
_M = 397  # twist offset
_MATRIX_A = 0x9908B0DF
_UPPER = 0x80000000
_LOWER = 0x7FFFFFFF
_MASK32 = 0xFFFFFFFF
_TWO_PI = 2.0 * math.pi
_INV_2_53 = 1.0 / 9007199254740992.0


class RNG(NamedTuple):
    """A Mersenne Twister state: 624 words, the index of the next word, a cached gaussian.

    ``pos``, the index of the next word, runs from 0 to 624; at 624 the words
    are twisted before the next draw. ``gauss_next`` is the second value of
    the last Box-Muller pair (or ``None``), as in ``random.Random.getstate()``.

    >>> rng = seed(1)
    >>> len(rng.mt), rng.pos, rng.gauss_next
    (624, 624, None)
    """

    mt: tuple[int, ...]
    pos: int
    gauss_next: float | None


# ------------------------------------------------------------------ the core


def _twist(mt: tuple[int, ...]) -> tuple[int, ...]:
    """The next 624 words of MT19937 after ``mt`` (the regeneration step)."""
    m = list(mt)  # local transient: updated in place, frozen on return
    for k in range(_N - _M):
        y = (m[k] & _UPPER) | (m[k + 1] & _LOWER)
        m[k] = m[k + _M] ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
    for k in range(_N - _M, _N - 1):
        y = (m[k] & _UPPER) | (m[k + 1] & _LOWER)
        m[k] = m[k + _M - _N] ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
    y = (m[_N - 1] & _UPPER) | (m[0] & _LOWER)
    m[_N - 1] = m[_M - 1] ^ (y >> 1) ^ (_MATRIX_A if y & 1 else 0)
    return tuple(m)


def _word(mt: tuple[int, ...], i: int) -> tuple[tuple[int, ...], int, int]:
    """``(mt, i, w)``: the next tempered 32-bit output ``w``, twisting when ``i`` hits 624."""
    if i >= _N:
        mt, i = _twist(mt), 0
    y = mt[i]
    y ^= y >> 11
    y ^= (y << 7) & 0x9D2C5680
    y ^= (y << 15) & 0xEFC60000
    y ^= y >> 18
    return mt, i + 1, y


def _bits(mt: tuple[int, ...], i: int, k: int) -> tuple[tuple[int, ...], int, int]:
    """``(mt, i, r)`` with ``r`` a ``k``-bit draw, built as CPython's ``getrandbits`` does."""
    if k == 0:
        return mt, i, 0
    if k <= 32:
        mt, i, w = _word(mt, i)
        return mt, i, w >> (32 - k)
    r = 0
    shift = 0
    while k > 0:  # least significant word first; the top word keeps its high bits
        mt, i, w = _word(mt, i)
        if k < 32:
            w >>= 32 - k
        r |= w << shift
        shift += 32
        k -= 32
    return mt, i, r


def _below(mt: tuple[int, ...], i: int, n: int) -> tuple[tuple[int, ...], int, int]:
    """``(mt, i, r)`` with ``0 <= r < n`` by rejection on ``n.bit_length()`` bits."""
    k = n.bit_length()
    mt, i, r = _bits(mt, i, k)
    while r >= n:
        mt, i, r = _bits(mt, i, k)
    return mt, i, r


def _unit(mt: tuple[int, ...], i: int) -> tuple[tuple[int, ...], int, float]:
    """``(mt, i, x)`` with ``x`` a 53-bit float in [0, 1) made from two words."""
    mt, i, a = _word(mt, i)
    mt, i, b = _word(mt, i)
    return mt, i, ((a >> 5) * 67108864.0 + (b >> 6)) * _INV_2_53


def _init_genrand(s: int) -> list[int]:
    """The 624 words of the reference ``init_genrand(s)`` as a fresh list."""
    m = [s & _MASK32]
    for i in range(1, _N):
        prev = m[i - 1]
        m.append((1812433253 * (prev ^ (prev >> 30)) + i) & _MASK32)
    return m


def _init_by_array(key: Sequence[int]) -> tuple[int, ...]:
    """The 624 words of the reference ``init_by_array(key)``."""
    m = _init_genrand(19650218)  # local transient: mixed in place, frozen on return
    i, j = 1, 0
    for _ in range(max(_N, len(key))):
        prev = m[i - 1]
        m[i] = ((m[i] ^ ((prev ^ (prev >> 30)) * 1664525)) + key[j] + j) & _MASK32
        i, j = i + 1, j + 1
        if i >= _N:
            m[0], i = m[_N - 1], 1
        if j >= len(key):
            j = 0
    for _ in range(_N - 1):
        prev = m[i - 1]
        m[i] = ((m[i] ^ ((prev ^ (prev >> 30)) * 1566083941)) - i) & _MASK32
        i += 1
        if i >= _N:
            m[0], i = m[_N - 1], 1
    m[0] = 0x80000000  # guarantees a non-zero state
    return tuple(m)


def _check(state: object, fn: str) -> RNG:
    if not isinstance(state, RNG):
        raise TypeError(f"{fn}: expected an RNG state (from rng.seed), got {type(state).__name__}")
    return state


def _check_bound(x: object, fn: str, name: str) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise TypeError(f"{fn}: {name} must be a number (int or float), got {type(x).__name__}")
    if not _fits_a_float(x):
        raise ValueError(f"{fn}: {name} must be finite, got {x!r}")
    return x


def _fits_a_float(x: float) -> bool:
    """True when ``x`` (an int or a float) is a finite float once converted."""
    try:
        return math.isfinite(x)
    except OverflowError:  # an int beyond the largest float
        return False


def _check_int(x: object, fn: str, name: str) -> int:
    if not isinstance(x, int):
        raise TypeError(f"{fn}: {name} must be an int, got {type(x).__name__}")
    return x


# ---------------------------------------------------------------- public API


def seed(n: int) -> RNG:
    """Return the state ``random.Random(n)`` starts in, for any int ``n`` (big or negative).

    As in CPython, ``abs(n)`` is split into 32-bit words (least significant
    first) and fed to ``init_by_array``; so ``seed(-5) == seed(5)``.

    >>> from random import Random
    >>> seed(42) == from_cpython(Random(42).getstate())
    True
    >>> seed(-(2**100)) == seed(2**100)
    True
    >>> seed(1.5)
    Traceback (most recent call last):
    ...
    TypeError: seed: n must be an int, got float
    """
    n = abs(_check_int(n, "seed", "n"))
    key = [(n >> s) & _MASK32 for s in range(0, max(n.bit_length(), 1), 32)]
    return RNG(_init_by_array(key), _N, None)


def random(state: RNG) -> tuple[RNG, float]:
    """Return ``(state, x)`` with ``x`` uniform in [0.0, 1.0), as ``random.Random.random``.

    >>> rng, x = random(seed(42))
    >>> x
    0.6394267984578837
    >>> random(rng)[1]
    0.025010755222666936
    """
    s = _check(state, "random")
    mt, i, x = _unit(s.mt, s.pos)
    return RNG(mt, i, s.gauss_next), x


def uniform(state: RNG, a: float, b: float) -> tuple[RNG, float]:
    """Return ``(state, x)`` with ``x`` uniform between ``a`` and ``b``, as ``Random.uniform``.

    ``x`` is ``a + (b - a) * u`` for the next ``random`` draw ``u``: the same
    float operations as CPython, so the draws are bit for bit its draws (and
    ``a > b`` is allowed, as there). ``b`` itself may come out, by rounding.
    The bounds must be finite numbers, and so must their distance ``b - a``.

    >>> from random import Random
    >>> rng, x = uniform(seed(42), -1.0, 1.0)
    >>> x == Random(42).uniform(-1.0, 1.0)
    True
    >>> x == -1.0 + 2.0 * random(seed(42))[1]
    True
    >>> uniform(seed(42), 0.0, float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: uniform: b must be finite, got inf
    """
    s = _check(state, "uniform")
    lo, hi = _check_bound(a, "uniform", "a"), _check_bound(b, "uniform", "b")
    width = hi - lo
    if not _fits_a_float(width):
        raise ValueError(f"uniform: b - a overflows ({b!r} - {a!r})")
    mt, i, u = _unit(s.mt, s.pos)
    return RNG(mt, i, s.gauss_next), lo + width * u


def getrandbits(state: RNG, k: int) -> tuple[RNG, int]:
    """Return ``(state, r)`` with ``r`` a uniform ``k``-bit int, as ``random.Random.getrandbits``.

    ``k == 0`` gives 0 and leaves the state as it was.

    >>> from random import Random
    >>> getrandbits(seed(7), 100)[1] == Random(7).getrandbits(100)
    True
    >>> getrandbits(seed(7), -1)
    Traceback (most recent call last):
    ...
    ValueError: getrandbits: k must be >= 0, got -1
    """
    s = _check(state, "getrandbits")
    if _check_int(k, "getrandbits", "k") < 0:
        raise ValueError(f"getrandbits: k must be >= 0, got {k}")
    if k == 0:
        return s, 0
    mt, i, r = _bits(s.mt, s.pos, k)
    return RNG(mt, i, s.gauss_next), r


def randbelow(state: RNG, n: int) -> tuple[RNG, int]:
    """Return ``(state, r)`` with ``r`` uniform in ``range(n)``, as CPython's ``_randbelow``.

    >>> from random import Random
    >>> randbelow(seed(3), 10)[1] == Random(3).randrange(10)
    True
    >>> randbelow(seed(3), 0)
    Traceback (most recent call last):
    ...
    ValueError: randbelow: n must be >= 1, got 0
    """
    s = _check(state, "randbelow")
    if _check_int(n, "randbelow", "n") < 1:
        raise ValueError(f"randbelow: n must be >= 1, got {n}")
    mt, i, r = _below(s.mt, s.pos, n)
    return RNG(mt, i, s.gauss_next), r


def shuffle(state: RNG, seq: Sequence[T]) -> tuple[RNG, tuple[T, ...]]:
    """Return ``(state, shuffled)``: ``seq``'s items in the order ``random.shuffle`` gives.

    ``seq`` itself is not touched; the permutation equals that of
    ``random.Random.shuffle`` applied to ``list(seq)`` from the same state.

    >>> shuffle(seed(0), range(5))[1]
    (2, 1, 0, 4, 3)
    >>> shuffle(seed(0), {1, 2})
    Traceback (most recent call last):
    ...
    TypeError: shuffle: seq must be a sequence (list, tuple, str, range...), got set
    """
    s = _check(state, "shuffle")
    if not isinstance(seq, Sequence):
        raise TypeError(
            "shuffle: seq must be a sequence (list, tuple, str, range...), "
            f"got {type(seq).__name__}"
        )
    items = list(seq)  # local transient: permuted in place, frozen on return
    mt, idx = s.mt, s.pos
    for i in range(len(items) - 1, 0, -1):  # Fisher-Yates from the end, as CPython
        mt, idx, j = _below(mt, idx, i + 1)
        items[i], items[j] = items[j], items[i]
    return RNG(mt, idx, s.gauss_next), tuple(items)


def _gauss_step(
    mt: tuple[int, ...], i: int, cached: float | None
) -> tuple[tuple[int, ...], int, float | None, float]:
    """``(mt, i, cached, z)``: one standard normal ``z``, using and refilling the cached pair."""
    if cached is not None:
        return mt, i, None, cached
    mt, i, u1 = _unit(mt, i)
    mt, i, u2 = _unit(mt, i)
    angle = u1 * _TWO_PI
    radius = math.sqrt(-2.0 * math.log(1.0 - u2))
    return mt, i, math.sin(angle) * radius, math.cos(angle) * radius


def gauss(state: RNG, mu: float = 0.0, sigma: float = 1.0) -> tuple[RNG, float]:
    """Return ``(state, x)`` with ``x`` normal(mu, sigma), as ``random.Random.gauss``.

    Draws come in Box-Muller pairs: the second of a pair is kept in
    ``state.gauss_next`` and handed out by the next call without using words.

    >>> from random import Random
    >>> rng, a = gauss(seed(42), 0.0, 0.08)
    >>> rng, b = gauss(rng, 0.0, 0.08)
    >>> oracle = Random(42)
    >>> (a, b) == (oracle.gauss(0.0, 0.08), oracle.gauss(0.0, 0.08))
    True
    """
    s = _check(state, "gauss")
    mt, i, cached, z = _gauss_step(s.mt, s.pos, s.gauss_next)
    return RNG(mt, i, cached), mu + z * sigma


def gauss_many(
    state: RNG, n: int, mu: float = 0.0, sigma: float = 1.0
) -> tuple[RNG, tuple[float, ...]]:
    """Return ``(state, xs)``: ``n`` draws equal to ``n`` successive ``gauss`` calls, faster.

    >>> rng = seed(5)
    >>> r1, xs = gauss_many(rng, 3, 1.0, 2.0)
    >>> r2, a = gauss(rng, 1.0, 2.0); r2, b = gauss(r2, 1.0, 2.0); r2, c = gauss(r2, 1.0, 2.0)
    >>> xs == (a, b, c) and r1 == r2
    True
    >>> gauss_many(rng, -1)
    Traceback (most recent call last):
    ...
    ValueError: gauss_many: n must be >= 0, got -1
    """
    s = _check(state, "gauss_many")
    if _check_int(n, "gauss_many", "n") < 0:
        raise ValueError(f"gauss_many: n must be >= 0, got {n}")
    mt, i, cached = s.mt, s.pos, s.gauss_next
    out = []  # local transient: filled here, frozen on return
    for _ in range(n):
        mt, i, cached, z = _gauss_step(mt, i, cached)
        out.append(mu + z * sigma)
    return RNG(mt, i, cached), tuple(out)


def choices_index(state: RNG, weights: Sequence[float]) -> tuple[RNG, int]:
    """Return ``(state, i)``: ``i`` drawn with probability ``weights[i] / sum(weights)``.

    Equals ``random.Random.choices(range(len(weights)), weights=weights)[0]``
    from the same state (cumulative sums, one ``random()``, a bisection).

    >>> from random import Random
    >>> w = [0.1, 0.6, 0.3]
    >>> choices_index(seed(9), w)[1] == Random(9).choices(range(3), weights=w)[0]
    True
    >>> choices_index(seed(9), [0.0, 0.0])
    Traceback (most recent call last):
    ...
    ValueError: choices_index: total of weights must be > 0, got 0.0
    """
    s = _check(state, "choices_index")
    if not isinstance(weights, Sequence) or isinstance(weights, (str, bytes)):
        kind = type(weights).__name__
        raise TypeError(f"choices_index: weights must be a sequence of numbers, got {kind}")
    if len(weights) == 0:
        raise ValueError("choices_index: weights is empty")
    try:
        cum = list(accumulate(weights))  # local transient: read only below
        total = cum[-1] + 0.0
    except TypeError:
        raise TypeError("choices_index: weights must all be numbers") from None
    if not math.isfinite(total):
        raise ValueError(f"choices_index: total of weights must be finite, got {total}")
    if total <= 0.0:
        raise ValueError(f"choices_index: total of weights must be > 0, got {total}")
    mt, i, u = _unit(s.mt, s.pos)
    return RNG(mt, i, s.gauss_next), bisect_right(cum, u * total, 0, len(cum) - 1)


def to_cpython(state: RNG) -> tuple[int, tuple[int, ...], float | None]:
    """Return ``state`` in the form of ``random.Random.getstate()`` (for ``setstate``).

    >>> from random import Random
    >>> oracle = Random(); oracle.setstate(to_cpython(random(seed(4))[0]))
    >>> oracle.random() == random(random(seed(4))[0])[1]
    True
    """
    s = _check(state, "to_cpython")
    return (3, (*s.mt, s.pos), s.gauss_next)


def from_cpython(cpython_state: tuple[object, ...]) -> RNG:
    """Return the ``RNG`` equal to a ``random.Random.getstate()`` value, after checking it.

    >>> from random import Random
    >>> oracle = Random(8); _ = oracle.random()
    >>> random(from_cpython(oracle.getstate()))[1] == oracle.random()
    True
    >>> from_cpython((3, (0,) * 10, None))
    Traceback (most recent call last):
    ...
    ValueError: from_cpython: expected 625 ints (624 words and an index), got 10
    """
    try:
        version, internal, gauss_next = cpython_state
    except (TypeError, ValueError):
        raise ValueError("from_cpython: expected (3, words_and_index, gauss_next)") from None
    if version != 3:
        raise ValueError(f"from_cpython: only version 3 states are supported, got {version!r}")
    if not isinstance(internal, tuple) or len(internal) != _N + 1:
        size = len(internal) if isinstance(internal, tuple) else type(internal).__name__
        raise ValueError(f"from_cpython: expected 625 ints (624 words and an index), got {size}")
    if not all(isinstance(w, int) and 0 <= w <= _MASK32 for w in internal[:_N]):
        raise ValueError("from_cpython: every word must be an int in [0, 2**32)")
    index = internal[_N]
    if not isinstance(index, int) or not 0 <= index <= _N:
        raise ValueError(f"from_cpython: index must be an int in [0, 624], got {index!r}")
    if gauss_next is not None and not isinstance(gauss_next, float):
        raise ValueError(f"from_cpython: gauss_next must be a float or None, got {gauss_next!r}")
    words: tuple[int, ...] = internal[:_N]
    return RNG(words, index, gauss_next)
