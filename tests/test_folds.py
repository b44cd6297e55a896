"""The left folds every value goes through are the naive loops of microgpt.py, bit for bit.

``tape.fold_sum``, ``fold_dot`` and ``fold_dots`` take the fastest exact form each interpreter
offers (builtin ``sum`` in C on 3.10, straight-line code compiled per width from 3.11 on, loops
beyond that width). Whatever the form, the result must be the float a plain Python loop adding
from 0.0 gives: the oracle below, at widths on both sides of the compiled limit, for tuples,
lists and iterators, and for rows shorter or longer than the vector (paired as ``zip`` does),
compared by their bits (``tests/bits.py``).
"""

from bits import bits
from hypothesis import given
from hypothesis import strategies as st
from strategies import finite

import functional_gpt.tape as T

# Magnitudes far apart, so that any other order or any compensation would round differently.
values = st.one_of(finite(-1e6, 1e6), finite(-1e-6, 1e-6), st.sampled_from([1e16, -1e16, 1.0]))
widths = st.one_of(st.integers(0, 8), st.integers(60, 70))  # around the compiled limit (64)


def naive_sum(xs):
    total = 0.0
    for x in xs:
        total = total + x
    return total


def naive_dot(xs, ys):
    total = 0.0
    for x, y in zip(xs, ys):
        total = total + x * y
    return total


@given(widths, st.data())
def test_fold_sum_is_the_naive_left_fold(n, data):
    xs = data.draw(st.lists(values, min_size=n, max_size=n))
    expected = naive_sum(xs)
    for form in (xs, tuple(xs), iter(xs)):
        assert bits(T.fold_sum(form)) == bits(expected)


@given(widths, st.integers(-2, 2), st.data())
def test_fold_dot_is_the_naive_left_fold(n, extra, data):
    xs = data.draw(st.lists(values, min_size=n, max_size=n))
    ys = data.draw(st.lists(values, min_size=max(0, n + extra), max_size=max(0, n + extra)))
    expected = naive_dot(xs, ys)
    assert bits(T.fold_dot(xs, ys)) == bits(expected)
    assert bits(T.fold_dot(tuple(ys), tuple(xs))) == bits(naive_dot(ys, xs))
    assert bits(T.fold_dot(iter(xs), iter(ys))) == bits(expected)


@given(widths, st.lists(st.integers(-2, 2), max_size=4), st.data())
def test_fold_dots_is_a_naive_left_fold_per_row(n, extras, data):
    xs = tuple(data.draw(st.lists(values, min_size=n, max_size=n)))
    rows = [tuple(data.draw(st.lists(values, min_size=max(0, n + e), max_size=max(0, n + e))))
            for e in extras]
    expected = tuple(naive_dot(row, xs) for row in rows)
    assert bits(T.fold_dots(xs, rows)) == bits(expected)
    assert bits(T.fold_dots(xs, iter(rows))) == bits(expected)
