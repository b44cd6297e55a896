"""optim.sgd_step against a naive loop of micrograd-style updates (the oracle)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_gpt.optim import sgd_step

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
pairs = st.lists(st.tuples(finite, finite), max_size=40)


class Param:
    """A mutable parameter, as micrograd keeps one: its data and its gradient."""

    def __init__(self, data: float, grad: float) -> None:
        self.data, self.grad = data, grad


def naive_sgd(params: list[float], grads: list[float], lr: float) -> list[float]:
    """One SGD step the mutable way: an object per parameter, updated in place in a loop."""
    objects = [Param(p, g) for p, g in zip(params, grads)]
    for p in objects:
        p.data -= lr * p.grad
    return [p.data for p in objects]


@given(pairs, st.one_of(finite, st.integers(min_value=-5, max_value=5)))
def test_sgd_step_equals_the_naive_loop_bit_for_bit(pg: list[tuple[float, float]], lr: float):
    params, grads = [p for p, _ in pg], [g for _, g in pg]
    before = (list(params), list(grads))
    new = sgd_step(params, grads, lr)
    assert type(new) is tuple
    assert list(new) == naive_sgd(params, grads, lr)
    assert (params, grads) == before  # inputs unchanged


@given(pairs)
def test_sgd_step_with_zero_rate_or_zero_grads_keeps_the_params(pg: list[tuple[float, float]]):
    params, grads = tuple(p for p, _ in pg), tuple(g for _, g in pg)
    assert sgd_step(params, grads, 0.0) == params
    assert sgd_step(params, (0.0,) * len(params), 0.7) == params


@given(st.lists(finite, min_size=1, max_size=10), st.floats(min_value=0.01, max_value=1.0))
def test_sgd_steps_descend_a_quadratic(start: list[float], lr: float):
    # f(p) = sum(p_i**2) / 2 has gradient p: each step scales p by (1 - lr), so f never grows
    params = tuple(start)
    for _ in range(5):
        new = sgd_step(params, params, lr)
        assert math.fsum(p * p for p in new) <= math.fsum(p * p for p in params)
        params = new


def test_sgd_step_rejects_grads_of_another_length():
    with pytest.raises(ValueError, match="sgd_step: 3 params but 2 grads"):
        sgd_step([1.0, 2.0, 3.0], [0.1, 0.2], 0.1)


def test_sgd_step_rejects_a_nan_rate():
    with pytest.raises(ValueError, match="sgd_step: lr must be finite, got nan"):
        sgd_step([1.0], [0.1], math.nan)


def test_sgd_step_rejects_an_infinite_rate():
    with pytest.raises(ValueError, match="sgd_step: lr must be finite, got inf"):
        sgd_step([1.0], [0.1], math.inf)


def test_sgd_step_rejects_a_rate_that_is_not_a_number():
    with pytest.raises(TypeError, match="sgd_step: lr must be a number, got str"):
        sgd_step([1.0], [0.1], "0.1")


def test_sgd_step_rejects_a_boolean_rate():
    with pytest.raises(TypeError, match="sgd_step: lr must be a number, got bool"):
        sgd_step([1.0], [0.1], True)


@given(st.floats(1e-4, 1.0), st.lists(st.floats(-3.0, 3.0), min_size=1, max_size=4))
def test_adam_step_runs_at_the_rate_its_hyperparameters_name(lr: float, grads: list) -> None:
    """Without an lr argument adam_step uses Adam.lr; with one, that rate instead."""
    from functional_gpt.optim import Adam, adam_init, adam_step

    params, state = tuple([0.5] * len(grads)), adam_init(len(grads))
    assert adam_step(Adam(lr=lr), state, params, grads) == adam_step(Adam(), state, params,
                                                                     grads, lr)
    with pytest.raises(ValueError, match="adam_step: lr must be a finite number"):
        adam_step(Adam(lr=float("nan")), state, params, grads)
