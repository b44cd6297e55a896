"""Adam and plain SGD as pure functions of parameters, gradients (and Adam's state).

>>> hyper = Adam()
>>> state = adam_init(2)
>>> params, state = adam_step(hyper, state, (1.0, 2.0), (0.5, -0.5), lr=0.1)
>>> params                      # the first step moves each parameter by about lr
(0.900000002, 2.099999998)
>>> state.step
1
>>> sgd_step((1.0, 2.0), (0.5, -0.5), lr=0.1)   # plain SGD has no state
(0.95, 2.05)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["Adam", "AdamState", "adam_init", "adam_step", "sgd_step", "linear_decay"]


class Adam(NamedTuple):
    """Adam's hyperparameters; microgpt.py's defaults.

    >>> Adam()
    Adam(lr=0.01, beta1=0.85, beta2=0.99, eps=1e-08)
    """

    lr: float = 0.01
    beta1: float = 0.85
    beta2: float = 0.99
    eps: float = 1e-8


class AdamState(NamedTuple):
    """First and second moment estimates per parameter, and the number of steps taken."""

    m: tuple[float, ...]
    v: tuple[float, ...]
    step: int


def adam_init(n: int) -> AdamState:
    """Return the state before the first step: zero moments for ``n`` parameters.

    >>> adam_init(3)
    AdamState(m=(0.0, 0.0, 0.0), v=(0.0, 0.0, 0.0), step=0)
    """
    zeros = (0.0,) * n
    return AdamState(zeros, zeros, 0)


def linear_decay(lr: float, step: int, steps: int) -> float:
    """Return the learning rate at 0-based ``step`` of ``steps``: ``lr * (1 - step / steps)``.

    >>> linear_decay(0.01, 0, 1000), linear_decay(0.01, 500, 1000)
    (0.01, 0.005)
    """
    return lr * (1 - step / steps)


def adam_step(
    hyper: Adam,
    state: AdamState,
    params: Sequence[float],
    grads: Sequence[float],
    lr: float | None = None,
) -> tuple[tuple[float, ...], AdamState]:
    """Return ``(new params, new state)`` after one bias-corrected Adam step.

    The rate is ``hyper.lr``, unless ``lr`` is given: then ``lr`` is this
    step's rate instead (a schedule's value, such as
    ``linear_decay(hyper.lr, step, steps)``, which is how training calls it).
    The float operations are microgpt.py's, in its order, so results match it
    exactly.

    >>> params, state = adam_step(Adam(), adam_init(1), (0.0,), (2.0,))   # at Adam().lr, 0.01
    >>> params, state.m, state.v
    ((-0.009999999950000001,), (0.30000000000000004,), (0.040000000000000036,))
    >>> adam_step(Adam(lr=0.5), adam_init(1), (0.0,), (2.0,))[0]          # Adam.lr is used
    (-0.4999999975,)
    """
    lr = hyper.lr if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr):
        raise ValueError(f"adam_step: lr must be a finite number, got {lr!r}")
    n = len(params)
    if len(grads) != n or len(state.m) != n or len(state.v) != n:
        raise ValueError(f"adam_step: {n} params, {len(grads)} grads, "
                         f"{len(state.m)} and {len(state.v)} moments")
    b1, b2, eps = hyper.beta1, hyper.beta2, hyper.eps
    c1, c2 = 1 - b1, 1 - b2
    t = state.step + 1
    bias1, bias2 = 1 - b1**t, 1 - b2**t
    # microgpt.py's float operations, in its order, one comprehension per formula.
    new_m = tuple([b1 * m + c1 * g for m, g in zip(state.m, grads)])
    new_v = tuple([b2 * v + c2 * g**2 for v, g in zip(state.v, grads)])
    new_p = tuple([
        p - lr * (m / bias1) / ((v / bias2) ** 0.5 + eps) for p, m, v in zip(params, new_m, new_v)
    ])
    return new_p, AdamState(new_m, new_v, t)


def sgd_step(params: Sequence[float], grads: Sequence[float], lr: float) -> tuple[float, ...]:
    """Return the new params after one plain gradient-descent step: ``p - lr * g`` for each.

    No momentum and no state: ``p - lr * g`` is the float operation
    micrograd's loop does (``p.data -= lr * p.grad``), so results match it.
    ``lr`` may be any finite number (a schedule's value, say); the
    sequences given are not changed.

    >>> sgd_step([0.5, -1.0], [2.0, 0.25], lr=0.1)
    (0.3, -1.025)
    >>> sgd_step([0.5, -1.0], [2.0], lr=0.1)
    Traceback (most recent call last):
    ...
    ValueError: sgd_step: 2 params but 1 grads
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(f"sgd_step: lr must be a number, got {type(lr).__name__}")
    if not math.isfinite(lr):
        raise ValueError(f"sgd_step: lr must be finite, got {lr!r}")
    if len(params) != len(grads):
        raise ValueError(f"sgd_step: {len(params)} params but {len(grads)} grads")
    return tuple([p - lr * g for p, g in zip(params, grads)])
