"""toy_data.two_moons: against an independent generator on CPython's random.Random, and geometry."""

from __future__ import annotations

import math
import random as std_random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from functional_gpt import rng as R
from functional_gpt.toy_data import two_moons


def oracle_moons(seed: int, n: int, noise: float):
    """The two moons from their definition, drawn with random.Random (which is mutated)."""
    r = std_random.Random(seed)
    half = (n + 1) // 2
    out = []
    for k in range(n):
        moon, m, i = (0, half, k) if k < half else (1, n - half, k - half)
        t = math.pi * i / (m - 1) if m > 1 else 0.0
        x, y = (math.cos(t), math.sin(t)) if moon == 0 else (1.0 - math.cos(t), 0.5 - math.sin(t))
        x += r.gauss(0.0, noise)
        y += r.gauss(0.0, noise)
        out.append(((x, y), 2 * moon - 1))
    r.shuffle(out)
    return r.getstate(), tuple(p for p, _ in out), tuple(lab for _, lab in out)


@given(st.integers(0, 2**40), st.integers(0, 120), st.floats(0.0, 1.0))
def test_two_moons_equals_the_definition_drawn_with_random_random(seed, n, noise):
    rng, points, labels = two_moons(R.seed(seed), n, noise)
    state, expected_points, expected_labels = oracle_moons(seed, n, noise)
    assert points == expected_points and labels == expected_labels
    assert R.to_cpython(rng) == state


@given(st.integers(0, 2**40), st.integers(0, 80))
def test_without_noise_the_points_lie_on_their_half_circles(seed, n):
    _, points, labels = two_moons(R.seed(seed), n, 0.0)
    assert len(points) == len(labels) == n
    assert labels.count(-1) == (n + 1) // 2 and labels.count(1) == n // 2
    for (x, y), label in zip(points, labels):
        assert type(x) is float and type(y) is float and label in (-1, 1)
        cx, cy = (0.0, 0.0) if label == -1 else (1.0, 0.5)
        assert math.isclose(math.hypot(x - cx, y - cy), 1.0, rel_tol=1e-12)
        assert (y >= -1e-15) if label == -1 else (y <= 0.5 + 1e-15)


def test_the_half_circles_are_sampled_evenly_ends_included():
    _, points, labels = two_moons(R.seed(0), 10, 0.0)
    upper = sorted(p for p, lab in zip(points, labels) if lab == -1)
    angles = sorted(math.atan2(y, x) for x, y in upper)
    assert angles[0] == 0.0 and math.isclose(angles[-1], math.pi)
    gaps = [b - a for a, b in zip(angles, angles[1:])]
    assert all(math.isclose(g, math.pi / 4) for g in gaps)


def test_noise_moves_the_points_by_about_its_size():
    _, clean, labels = two_moons(R.seed(3), 2000, 0.0)
    _, noisy, labels_noisy = two_moons(R.seed(3), 2000, 0.2)
    assert sorted(labels) == sorted(labels_noisy)
    # distances of the noisy points from their curves: half-normal-ish, mean near 0.2 * 0.8
    dist = []
    for (x, y), label in zip(noisy, labels_noisy):
        cx, cy = (0.0, 0.0) if label == -1 else (1.0, 0.5)
        dist.append(abs(math.hypot(x - cx, y - cy) - 1.0))
    assert 0.08 < sum(dist) / len(dist) < 0.25


def test_the_state_given_is_not_changed_and_gives_the_same_moons():
    rng = R.seed(9)
    first = two_moons(rng, 30, 0.1)
    assert two_moons(rng, 30, 0.1) == first
    assert rng == R.seed(9)


def test_zero_points_is_empty():
    assert two_moons(R.seed(0), 0, 0.1)[1:] == ((), ())


@pytest.mark.parametrize("args, error, message", [
    ((R.seed(0), -1, 0.1), ValueError, "two_moons: n must be >= 0, got -1"),
    ((R.seed(0), 10.0, 0.1), TypeError, "two_moons: n must be an int, got float"),
    ((R.seed(0), True, 0.1), TypeError, "two_moons: n must be an int, got bool"),
    ((R.seed(0), 10, -0.1), ValueError, "two_moons: noise must be finite and >= 0, got -0.1"),
    ((R.seed(0), 10, math.nan), ValueError, "two_moons: noise must be finite and >= 0, got nan"),
    ((R.seed(0), 10, math.inf), ValueError, "two_moons: noise must be finite and >= 0, got inf"),
    ((R.seed(0), 10, "0.1"), TypeError, "two_moons: noise must be a number, got str"),
    ((42, 10, 0.1), TypeError, "two_moons: expected an RNG state"),
])
def test_two_moons_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        two_moons(*args)
