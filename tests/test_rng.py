"""Differential tests of functional_gpt.rng against CPython's random.Random (the oracle)."""

from __future__ import annotations

import math
import random as std_random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_gpt import rng as R

# ------------------------------------------------------------------ strategies

seeds = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    # keys of up to 700 words: longer than the 624-word state, the other branch of init_by_array
    st.integers(min_value=0, max_value=700).flatmap(
        lambda words: st.integers(min_value=-(2 ** (32 * words)), max_value=2 ** (32 * words))
    ),
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
weight = st.one_of(
    st.integers(min_value=-3, max_value=50),
    st.floats(min_value=-1.0, max_value=1e3, allow_nan=False, allow_infinity=False),
)

# bounds of uniform: floats of any finite size whose distance is finite, and ints
bound = st.one_of(
    st.floats(min_value=-1e300, max_value=1e300, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**70), max_value=2**70),
)

ops = st.one_of(
    st.tuples(st.just("random")),
    st.tuples(st.just("uniform"), bound, bound),
    st.tuples(st.just("bits"), st.integers(min_value=0, max_value=200)),
    st.tuples(st.just("below"), st.integers(min_value=1, max_value=2**80)),
    st.tuples(st.just("gauss"), finite, st.floats(min_value=0.0, max_value=100.0)),
    st.tuples(st.just("gauss_many"), st.integers(min_value=0, max_value=7), finite),
    st.tuples(st.just("shuffle"), st.lists(st.integers(), max_size=40)),
    st.tuples(st.just("choices"), st.lists(weight, min_size=1, max_size=30)),
    # many raw words at once, so sequences cross the 624-word regeneration point
    st.tuples(st.just("skip"), st.integers(min_value=0, max_value=1300)),
)


def run_ours(state: R.RNG, op: tuple[Any, ...]) -> tuple[R.RNG, Any]:
    """Apply one operation to a functional state; errors become a value to compare."""
    name, *args = op
    try:
        if name == "random":
            return R.random(state)
        if name == "uniform":
            return R.uniform(state, args[0], args[1])
        if name == "bits":
            return R.getrandbits(state, args[0])
        if name == "below":
            return R.randbelow(state, args[0])
        if name == "gauss":
            return R.gauss(state, args[0], args[1])
        if name == "gauss_many":
            return R.gauss_many(state, args[0], args[1], 2.0)
        if name == "shuffle":
            return R.shuffle(state, args[0])
        if name == "choices":
            return R.choices_index(state, args[0])
        if name == "skip":
            for _ in range(args[0]):
                state, _ = R.getrandbits(state, 32)
            return state, None
    except ValueError:
        return state, ValueError
    raise AssertionError(name)


def run_oracle(oracle: std_random.Random, op: tuple[Any, ...]) -> Any:
    """Apply the same operation to a random.Random, mutating it as CPython does."""
    name, *args = op
    try:
        if name == "random":
            return oracle.random()
        if name == "uniform":
            return oracle.uniform(args[0], args[1])
        if name == "bits":
            return oracle.getrandbits(args[0])
        if name == "below":
            return oracle.randrange(args[0])
        if name == "gauss":
            return oracle.gauss(args[0], args[1])
        if name == "gauss_many":
            return tuple(oracle.gauss(args[1], 2.0) for _ in range(args[0]))
        if name == "shuffle":
            items = list(args[0])
            oracle.shuffle(items)
            return tuple(items)
        if name == "choices":
            return oracle.choices(range(len(args[0])), weights=args[0])[0]
        if name == "skip":
            for _ in range(args[0]):
                oracle.getrandbits(32)
            return None
    except ValueError:
        return ValueError
    raise AssertionError(name)


# ------------------------------------------------------------ differential


@given(seeds)
def test_seed_matches_cpython_state(n: int) -> None:
    state = R.seed(n)
    assert R.to_cpython(state) == std_random.Random(n).getstate()
    assert R.from_cpython(std_random.Random(n).getstate()) == state


@given(seeds, st.lists(ops, max_size=12))
def test_any_sequence_of_draws_matches_cpython(n: int, program: list[tuple[Any, ...]]) -> None:
    state = R.seed(n)
    oracle = std_random.Random(n)
    for op in program:
        state, got = run_ours(state, op)
        assert got == run_oracle(oracle, op), op
        assert R.to_cpython(state) == oracle.getstate(), op


@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=1, max_value=2**70))
def test_randbelow_stays_in_range_and_matches(n: int, bound: int) -> None:
    state, oracle = R.seed(n), std_random.Random(n)
    for _ in range(20):
        state, r = R.randbelow(state, bound)
        assert 0 <= r < bound
        assert r == oracle.randrange(bound)


def test_crossing_the_624_word_boundary_many_times() -> None:
    # 1500 random() calls use 3000 words: the state is regenerated 5 times
    state, oracle = R.seed(42), std_random.Random(42)
    for _ in range(1500):
        state, x = R.random(state)
        assert x == oracle.random()
    assert R.to_cpython(state) == oracle.getstate()


def test_gauss_many_across_boundaries_equals_cpython() -> None:
    state, oracle = R.seed(2024), std_random.Random(2024)
    state, _ = R.gauss(state)  # start with a cached second value
    oracle.gauss(0.0, 1.0)  # Python 3.10 has no defaults for mu and sigma
    state, xs = R.gauss_many(state, 2001, 0.0, 0.08)
    assert xs == tuple(oracle.gauss(0.0, 0.08) for _ in range(2001))
    assert R.to_cpython(state) == oracle.getstate()


def test_long_shuffle_equals_cpython() -> None:
    items = [f"name{i}" for i in range(5000)]
    oracle = std_random.Random(42)
    expected = list(items)
    oracle.shuffle(expected)
    state, got = R.shuffle(R.seed(42), items)
    assert got == tuple(expected)
    assert R.to_cpython(state) == oracle.getstate()
    assert items == [f"name{i}" for i in range(5000)]  # input untouched


@given(
    seeds,
    st.integers(min_value=0, max_value=623),
    st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
    st.lists(ops, max_size=6),
)
def test_matches_cpython_from_any_position_and_cache(
    n: int, pos: int, cached: float | None, program: list[tuple[Any, ...]]
) -> None:
    # build a mid-stream state by hand: any word position, with or without a cached gaussian
    words = R.seed(n).mt
    state = R.RNG(words, pos, cached)
    oracle = std_random.Random()
    oracle.setstate((3, (*words, pos), cached))
    for op in program:
        state, got = run_ours(state, op)
        assert got == run_oracle(oracle, op), op


# ---------------------------------------------------------------- persistence


@given(seeds, st.lists(ops, max_size=4), ops)
def test_a_state_used_twice_gives_the_same_draw(
    n: int, prefix: list[tuple[Any, ...]], op: tuple[Any, ...]
) -> None:
    state = R.seed(n)
    for p in prefix:
        state, _ = run_ours(state, p)
    snapshot = R.to_cpython(state)
    first_state, first = run_ours(state, op)
    second_state, second = run_ours(state, op)
    assert first == second
    assert first_state == second_state
    assert R.to_cpython(state) == snapshot


@given(seeds, st.lists(st.tuples(bound, bound), min_size=1, max_size=30))
def test_uniform_is_bit_for_bit_random_uniform(n: int, pairs: list[tuple[float, float]]) -> None:
    state, oracle = R.seed(n), std_random.Random(n)
    for a, b in pairs:
        state, x = R.uniform(state, a, b)
        expected = oracle.uniform(a, b)
        assert x == expected and type(x) is type(expected), (a, b)
        if float(a) == a and float(b) == b:  # an int past 2**53 is rounded on the way, as
            assert min(a, b) <= x <= max(a, b)  # in CPython: it may land outside by a unit
    assert R.to_cpython(state) == oracle.getstate()


def test_uniform_across_the_624_word_boundary() -> None:
    # 700 draws use 1400 words: the state is regenerated twice on the way
    state, oracle = R.seed(3), std_random.Random(3)
    xs = []
    for _ in range(700):
        state, x = R.uniform(state, -1.0, 1.0)
        xs.append(x)
    assert xs == [oracle.uniform(-1.0, 1.0) for _ in range(700)]


def test_uniform_keeps_a_cached_gaussian() -> None:
    state, oracle = R.seed(11), std_random.Random(11)
    state, _ = R.gauss(state)  # leaves the pair's second value cached
    oracle.gauss(0.0, 1.0)
    state, x = R.uniform(state, 2.0, 5.0)
    assert x == oracle.uniform(2.0, 5.0)
    assert R.gauss(state)[1] == oracle.gauss(0.0, 1.0)  # the cached value, not new words


def test_getrandbits_zero_returns_the_same_state() -> None:
    state = R.seed(1)
    assert R.getrandbits(state, 0) == (state, 0)


# ----------------------------------------------------------------- statistics


def test_gauss_moments_are_plausible() -> None:
    # loose sanity check on 20000 draws, independent of the oracle
    _, xs = R.gauss_many(R.seed(7), 20000, 3.0, 2.0)
    mean = math.fsum(xs) / len(xs)
    var = math.fsum((x - mean) ** 2 for x in xs) / len(xs)
    assert abs(mean - 3.0) < 0.1
    assert abs(var - 4.0) < 0.2


# ----------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: R.seed(1.5), TypeError, "seed: n must be an int"),
        (lambda: R.seed("42"), TypeError, "seed: n must be an int"),
        (lambda: R.random((1, 2, 3)), TypeError, "expected an RNG state"),
        (lambda: R.uniform((1, 2, 3), 0.0, 1.0), TypeError, "uniform: expected an RNG state"),
        (lambda: R.uniform(R.seed(0), "0", 1.0), TypeError, "uniform: a must be a number"),
        (lambda: R.uniform(R.seed(0), 0.0, None), TypeError, "uniform: b must be a number"),
        (lambda: R.uniform(R.seed(0), True, 1.0), TypeError, "uniform: a must be a number"),
        (lambda: R.uniform(R.seed(0), math.nan, 1.0), ValueError, "uniform: a must be finite"),
        (lambda: R.uniform(R.seed(0), 0.0, -math.inf), ValueError, "uniform: b must be finite"),
        (lambda: R.uniform(R.seed(0), 0, 10**400), ValueError, "uniform: b must be finite"),
        (lambda: R.uniform(R.seed(0), -1e308, 1e308), ValueError, "uniform: b - a overflows"),
        (lambda: R.getrandbits(R.seed(0), -1), ValueError, "k must be >= 0"),
        (lambda: R.getrandbits(R.seed(0), 2.0), TypeError, "k must be an int"),
        (lambda: R.randbelow(R.seed(0), 0), ValueError, "n must be >= 1"),
        (lambda: R.gauss_many(R.seed(0), -2), ValueError, "n must be >= 0"),
        (lambda: R.shuffle(R.seed(0), {1, 2, 3}), TypeError, "must be a sequence"),
        (lambda: R.choices_index(R.seed(0), []), ValueError, "weights is empty"),
        (lambda: R.choices_index(R.seed(0), "abc"), TypeError, "sequence of numbers"),
        (lambda: R.choices_index(R.seed(0), [1.0, None]), TypeError, "must all be numbers"),
        (lambda: R.choices_index(R.seed(0), [0, 0]), ValueError, "must be > 0"),
        (lambda: R.choices_index(R.seed(0), [1.0, -1.0]), ValueError, "must be > 0"),
        (lambda: R.choices_index(R.seed(0), [1.0, math.inf]), ValueError, "finite"),
        (lambda: R.choices_index(R.seed(0), [1.0, math.nan]), ValueError, "finite"),
        (lambda: R.from_cpython((2, (0,) * 625, None)), ValueError, "version 3"),
        (lambda: R.from_cpython((3, (0,) * 624, None)), ValueError, "got 624"),
        (lambda: R.from_cpython((3, (2**32,) + (0,) * 624, None)), ValueError, "every word"),
        (lambda: R.from_cpython((3, (0,) * 624 + (625,), None)), ValueError, "index must be"),
        (lambda: R.from_cpython((3, (0,) * 625, "x")), ValueError, "gauss_next"),
        (lambda: R.from_cpython("nope"), ValueError, "expected (3,"),
    ],
)
def test_bad_inputs_raise_clear_errors(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(")):
        call()


def test_oracle_rejects_what_we_reject_for_weights() -> None:
    # CPython agrees that a non-positive or non-finite total is an error
    for bad in ([0, 0], [1.0, -1.0], [1.0, math.inf], [1.0, math.nan]):
        with pytest.raises(ValueError):
            std_random.Random(0).choices(range(len(bad)), weights=bad)
