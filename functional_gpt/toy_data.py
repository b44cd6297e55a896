"""Toy data sets for small classifiers, generated in pure Python from an explicit random state.

>>> from functional_gpt import rng as R
>>> rng, points, labels = two_moons(R.seed(0), 100, 0.1)
>>> len(points), labels.count(-1), labels.count(1)
(100, 50, 50)
>>> points[0], labels[0]
((0.4254729497760098, -0.23354384287093488), 1)
"""

from __future__ import annotations

import math

from . import rng as R

__all__ = ["two_moons"]


def two_moons(
    rng: R.RNG, n: int, noise: float
) -> tuple[R.RNG, tuple[tuple[float, float], ...], tuple[int, ...]]:
    """Return ``(rng, points, labels)``: ``n`` points on two interleaving half circles.

    The classic two moons: ``(n + 1) // 2`` points on the upper half of the
    unit circle, ``(cos t, sin t)``, labelled -1, and ``n // 2`` on a lower
    half circle shifted right and down, ``(1 - cos t, 0.5 - sin t)``,
    labelled +1; on each, ``t`` runs evenly from 0 to pi, ends included.
    Each coordinate then gets ``rng.gauss(rng, 0, noise)`` added (upper
    moon first, point by point, x before y), and the labelled points are put
    in the order of ``rng.shuffle``. No two classes are linearly separable,
    which is the point: a straight line cannot split them, a small MLP can.

    >>> from functional_gpt import rng as R
    >>> rng, points, labels = two_moons(R.seed(1), 4, 0.0)
    >>> sorted((label, (round(x, 12), round(y, 12))) for (x, y), label in zip(points, labels))
    [(-1, (-1.0, 0.0)), (-1, (1.0, 0.0)), (1, (0.0, 0.5)), (1, (2.0, 0.5))]
    >>> two_moons(R.seed(1), -1, 0.1)
    Traceback (most recent call last):
    ...
    ValueError: two_moons: n must be >= 0, got -1
    """
    if not isinstance(rng, R.RNG):
        raise TypeError(f"two_moons: expected an RNG state (from rng.seed), got "
                        f"{type(rng).__name__}")
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"two_moons: n must be an int, got {type(n).__name__}")
    if n < 0:
        raise ValueError(f"two_moons: n must be >= 0, got {n}")
    if isinstance(noise, bool) or not isinstance(noise, (int, float)):
        raise TypeError(f"two_moons: noise must be a number, got {type(noise).__name__}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"two_moons: noise must be finite and >= 0, got {noise!r}")
    upper, lower = (n + 1) // 2, n // 2
    clean = ([(math.cos(t), math.sin(t)) for t in _angles(upper)]
             + [(1.0 - math.cos(t), 0.5 - math.sin(t)) for t in _angles(lower)])
    labelled = []  # local transient: frozen by shuffle into a tuple
    for k, (x, y) in enumerate(clean):
        rng, dx = R.gauss(rng, 0.0, noise)
        rng, dy = R.gauss(rng, 0.0, noise)
        labelled.append(((x + dx, y + dy), -1 if k < upper else 1))
    rng, shuffled = R.shuffle(rng, labelled)
    return rng, tuple(p for p, _ in shuffled), tuple(label for _, label in shuffled)


def _angles(m: int) -> list[float]:
    """``m`` angles evenly from 0 to pi, both ends included (just 0 for one)."""
    if m == 1:
        return [0.0]
    return [math.pi * i / (m - 1) for i in range(m)]
