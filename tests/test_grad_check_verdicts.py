"""check_grads's own verdicts: never ok to a wrong, NaN or infinite gradient; never a false alarm.

Three properties, each at every scale of |f| (a final factor from 1e-150 to 1e150): a correct
gradient is never flagged away from kinks and poles; a gradient off by more than a step can
resolve is always flagged; and a NaN or an infinity never agrees with anything. Then the cases
that once passed: a NaN gradient from an overflowing adjoint, an infinite numeric difference,
and a wrong gradient hidden under a large |f|.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import finite, program_function, programs

import functional_gpt.tape as T
from functional_gpt import repl

scales = st.integers(-150, 150).map(lambda k: 10.0**k)


def scaled(f, c: float):
    """``c * f``, as a tape function: the same function at another scale of |f|."""

    def g(tape, ids):
        tape, out = f(tape, ids)
        return T.scale(tape, out, c)

    return g


def smooth_closed_forms():
    def product_plus(tape, ids):  # x * y + x
        x, y = ids
        tape, xy = T.mul(tape, x, y)
        return T.add(tape, xy, x)

    def exp_times(tape, ids):  # e**x * y
        x, y = ids
        tape, e = T.exp(tape, x)
        return T.mul(tape, e, y)

    def tanh_quotient(tape, ids):  # tanh(x) / (y*y + 1)
        x, y = ids
        tape, t = T.tanh(tape, x)
        tape, yy = T.mul(tape, y, y)
        tape, d = T.add_constant(tape, yy, 1.0)
        return T.div(tape, t, d)

    def cube(tape, ids):  # x**3 * y: slope 0 at x = 0, where the difference is h**2
        x, y = ids
        tape, x3 = T.pow(tape, x, 3.0)
        return T.mul(tape, x3, y)

    return [product_plus, exp_times, tanh_quotient, cube]


@given(st.sampled_from(smooth_closed_forms()), finite(-3.0, 3.0), finite(-3.0, 3.0), scales)
@settings(max_examples=300)
def test_a_correct_gradient_is_never_flagged(f, x: float, y: float, c: float) -> None:
    assert repl.check_grads(scaled(f, c), [x, y]).ok


@given(programs(max_inputs=3, max_steps=8), scales)
@settings(max_examples=150)
def test_a_correct_gradient_of_a_random_program_is_never_flagged(program, c: float) -> None:
    """Random programs over every primitive, kept away from poles; kinks are left unchecked."""
    f = scaled(program_function(program), c)
    assert repl.check_grads(f, list(program.inputs)).ok


def linear_with_a_wrong_slope(a: float, b: float, wrong_b: float):
    """``a*x + b*y`` whose node claims d/dy = ``wrong_b``."""

    def f(tape, ids):
        x, y = ids
        vx, vy = T.values(tape, ids)
        return T.push(tape, "lin", a * vx + b * vy, (x, y), (a, wrong_b))

    return f


@given(finite(1.0, 1e6), finite(-2.0, 2.0), finite(-2.0, 2.0), finite(-1e6, 1e6),
       st.sampled_from([0.0, 1e-3, -0.5, 2.0]), scales)
@settings(max_examples=300)
def test_a_wrong_gradient_is_always_flagged(a, x, y, b, rel, c) -> None:
    """d/dy reported as 0 or off by a factor: flagged whenever the error is more than a step
    of 1e-6 can resolve (rounding of about 2**-53 * |a x| / 1e-6, with room) and more than
    the relative tolerance."""
    wrong = 0.0 if rel == 0.0 else b * (1 + rel)
    check = repl.check_grads(scaled(linear_with_a_wrong_slope(a, b, wrong), c), [x, y])
    error = abs(c * (wrong - b))
    resolvable = 1e-7 * abs(c) * (a * max(1.0, abs(x)) + abs(b) * max(1.0, abs(y)))
    if error > resolvable + 2 * repl.GRAD_RTOL * abs(c) * max(abs(b), abs(wrong)):
        assert check.bad[1] and not check.ok, check
    assert not check.bad[0], check  # d/dx is right


@given(st.floats(), st.floats(), st.floats(min_value=0.0))
def test_nan_and_infinity_never_agree(analytic: float, numeric: float, tolerance: float) -> None:
    agree = repl.within_tolerance(analytic, numeric, tolerance)
    finite_pair = math.isfinite(analytic) and math.isfinite(numeric) and math.isfinite(tolerance)
    assert agree == (finite_pair and abs(analytic - numeric) <= tolerance)


def test_the_large_f_that_hid_a_wrong_gradient() -> None:
    """1e6 * x + 0.5 * y with d/dy = 0 passed a tolerance of 1e-6 * |f|; so did a 1e-3 slope
    reported as 0 at |f| = 1e3."""
    for a, b in [(1e6, 0.5), (1e3, 1e-3)]:
        check = repl.check_grads(linear_with_a_wrong_slope(a, b, 0.0), [1.0, 1.0])
        assert check.bad == (False, True) and not check.ok


def test_an_overflowing_gradient_is_an_error_not_an_ok() -> None:
    """relu of -1, then two scales by 1e200: d/dx is 0 * 1e400, once nan and 'ok'."""

    def f(tape, ids):
        tape, r = T.relu(tape, ids[0])
        tape, y = T.scale(tape, r, 1e200)
        return T.scale(tape, y, 1e200)

    with pytest.raises(T.NonFiniteError, match=r"gradient of node 1 \(relu\) overflows"):
        repl.check_grads(f, [-1.0])


def test_an_infinite_difference_is_flagged() -> None:
    """A step that crosses from -1.7e308 to 1.7e308 has an infinite difference: never ok."""

    def jump(tape, ids):
        (x,) = ids
        v = T.data(tape, x)
        return T.push(tape, "jump", math.copysign(1.7e308, v), (x,), (1.0,))

    check = repl.check_grads(jump, [0.0])
    assert math.isinf(check.numeric[0]) and check.bad == (True,) and not check.ok
