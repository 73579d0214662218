"""The fixed point's parse rate and its cliff lambda_v: closed form, exact K-ary, onset rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.special import expit, logit

from cliffaudit import theory
from cliffaudit.theory.fixed_point import onset_interval

# ------------------------------------------------------------------ worked values (issue #15's must-shows)


def test_thickening_cliff_closed_form():
    assert theory.bernoulli_lambda_v(0.95, 0.999, 0.10) == pytest.approx(1.305, abs=1e-3)
    # At lambda_v the fixed point's valid mass is exactly drop below the teacher's.
    lam = theory.bernoulli_lambda_v(0.95, 0.999, 0.10)
    assert theory.bernoulli_valid_mass(0.95, 0.999, lam) == pytest.approx(0.85, abs=1e-12)


def test_sharpening_has_no_cliff():
    assert math.isinf(theory.bernoulli_lambda_v(0.999, 0.9))
    assert math.isinf(theory.bernoulli_lambda_v(0.9, 0.9))  # b == p: the fixed point is the teacher


def test_limits():
    assert theory.bernoulli_lambda_v(0.9, 1.0) == 1.0  # any lambda > 1 empties the valid set
    assert math.isinf(theory.bernoulli_lambda_v(0.05, 0.5))  # q cannot fall 0.10 below 0.05
    assert theory.bernoulli_valid_mass(1.0, 0.5, 3.0) == 1.0
    assert theory.bernoulli_valid_mass(0.9, 1.0, 1.0) == 1.0 and theory.bernoulli_valid_mass(0.9, 1.0, 1.01) == 0.0


@pytest.mark.parametrize(("name", "kwargs"), [("p", {"p": 0.0, "b": 0.5}), ("b", {"p": 0.5, "b": 1.5}),
                                              ("drop", {"p": 0.5, "b": 0.9, "drop": 0.0}),
                                              ("drop", {"p": 0.5, "b": 0.9, "drop": float("nan")})])
def test_bad_arguments_name_themselves(name, kwargs):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        theory.bernoulli_lambda_v(**kwargs)


@settings(max_examples=80, deadline=None)
@given(p=st.floats(0.2, 0.999), b=st.floats(0.2, 0.9999), drop=st.floats(0.02, 0.15))
def test_closed_form_equals_the_exact_two_token_fixed_point(p, b, drop):
    assume(b > p + 1e-3 and p > drop + 1e-3)
    closed = theory.bernoulli_lambda_v(p, b, drop)
    exact = theory.exact_lambda_v(np.log([p, 1 - p]), np.log([b, 1 - b]), [True, False], drop)
    assert exact == pytest.approx(closed, rel=1e-9)
    # and it is where q, linear in log-odds, reaches p - drop
    assert expit(closed * logit(p) + (1 - closed) * logit(b)) == pytest.approx(p - drop, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(p=st.floats(0.3, 0.99), b=st.floats(0.3, 0.999), d1=st.floats(0.02, 0.2), d2=st.floats(0.02, 0.2))
def test_a_larger_drop_comes_later(p, b, d1, d2):
    assume(b > p and p > max(d1, d2) and abs(d1 - d2) > 1e-6)
    small, large = sorted((d1, d2))
    assert theory.bernoulli_lambda_v(p, b, small) < theory.bernoulli_lambda_v(p, b, large)


# ------------------------------------------------------------------ exact K-ary and sequences


def test_amplified_break_gives_a_cliff_the_reduction_cannot_see():
    # Valid mass: teacher 0.999 > reference 0.9 (the reduction sharpens), but the
    # reference suppresses the second breaking token 10x more than the teacher does.
    teacher, ref, valid = np.array([0.999, 0.001, 1e-7]), np.array([0.9, 1e-4, 0.0999]), [True, False, False]
    assert math.isinf(theory.bernoulli_lambda_v(0.999, 0.9))
    lam = theory.exact_lambda_v(np.log(teacher), np.log(ref), valid)
    assert 1.0 < lam < 4.0
    rates = theory.exact_valid_mass(np.log(teacher), np.log(ref), valid, [1.0, lam])
    assert rates[1] == pytest.approx(rates[0] - 0.10, abs=1e-9)


def test_sequence_rates_multiply():
    teacher = np.array([[0.9, 0.1], [0.8, 0.2]])
    ref = np.array([[0.99, 0.01], [0.7, 0.3]])
    valid = np.array([[True, False], [True, False]])
    lams = [1.0, 1.5, 2.0]
    per_position = [theory.exact_valid_mass(np.log(teacher[i]), np.log(ref[i]), valid[i], lams) for i in range(2)]
    assert theory.sequence_parse_rate(np.log(teacher), np.log(ref), valid, lams) == pytest.approx(
        per_position[0] * per_position[1], rel=1e-12)
    assert theory.sequence_parse_rate(np.log(teacher), np.log(ref), valid, [1.0])[0] == pytest.approx(0.72)


def test_valid_mass_at_lambda_one_is_the_teachers():
    rng = np.random.default_rng(0)
    teacher, ref = rng.dirichlet(np.ones(40)), rng.dirichlet(np.ones(40))
    valid = rng.random(40) < 0.4
    assert theory.exact_valid_mass(np.log(teacher), np.log(ref), valid, [1.0])[0] == pytest.approx(teacher[valid].sum())
    assert theory.exact_valid_mass(np.log(teacher), np.log(ref), valid, [0.0])[0] == pytest.approx(ref[valid].sum())


def test_token_the_reference_never_emits():
    # pi_ref = 0 on a breaking token the teacher emits: beyond lambda = 1 it takes all the mass.
    with np.errstate(divide="ignore"):
        rates = theory.exact_valid_mass(np.log([0.9, 0.1]), np.log([1.0, 0.0]), [True, False], [1.0, 1.001])
    assert rates[0] == pytest.approx(0.9) and rates[1] == 0.0


def test_exact_inputs_are_checked():
    with pytest.raises(ValueError, match="valid must mark"):
        theory.exact_lambda_v(np.log([0.5, 0.5]), np.log([0.5, 0.5]), [True, True])
    with pytest.raises(ValueError, match="share one shape"):
        theory.exact_lambda_v(np.log([0.5, 0.5]), np.log([0.2, 0.3, 0.5]), [True, False])


# ------------------------------------------------------------------ the onset rule on curves


def test_onset_is_judged_from_the_best_earlier_rate_and_must_stay_down():
    lambdas = [1.0, 1.1, 1.2, 1.3, 1.4]
    assert onset_interval(lambdas, [0.6, 0.7, 0.65, 0.3, 0.1]) == (1.2, 1.3)
    assert onset_interval(lambdas, [0.67, 0.51, 0.54, 0.63, 0.63]) is None  # a dip that recovers
    assert onset_interval(lambdas[::-1], [0.1, 0.3, 0.65, 0.7, 0.6]) == (1.2, 1.3)  # order does not matter


def test_drop_point_interpolates_inside_the_onset_interval():
    assert theory.drop_point([1.0, 1.1, 1.2], [0.9, 0.85, 0.7]) == pytest.approx(1.1 + 0.1 * (0.05 / 0.15))
    assert math.isinf(theory.drop_point([1.0, 2.0], [0.9, 0.85]))
    # the drop point of a sampled Bernoulli curve is the closed form, to the grid's interpolation error
    grid = np.linspace(1.0, 3.0, 201)
    curve = [theory.bernoulli_valid_mass(0.95, 0.999, lam) for lam in grid]
    assert theory.drop_point(grid, curve) == pytest.approx(theory.bernoulli_lambda_v(0.95, 0.999), abs=1e-3)
