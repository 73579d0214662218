"""The clip-band rule (the refuted alternative) against its closed forms, root-finding and limits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

import cliffaudit.theory.clip_band as theory
from cliffaudit.theory import bernoulli_valid_mass

# ------------------------------------------------------------------ worked values


@pytest.mark.parametrize(
    ("p", "b", "clip", "expected"),
    [(0.99, 0.9, 2.0, 1.2912), (0.99, 0.995, 2.0, 2.0073)],
)
def test_worked_values(p, b, clip, expected):
    assert theory.clip_band_lambda_star(p, b, clip) == pytest.approx(expected, abs=5e-5)


# ------------------------------------------------------------------ closed forms vs root-finding


def _numeric_lambda_star(p: float, b: float, clip: float) -> float:
    """Root of |log((1-p)/t_lam)| = log c found by bracketing, independent of the closed forms."""

    def excess(lam: float) -> float:
        logit_q = lam * math.log(p / (1 - p)) + (1 - lam) * math.log(b / (1 - b))
        log_t = -np.logaddexp(0.0, logit_q)
        return abs(math.log1p(-p) - log_t) - math.log(clip)

    hi = 2.0
    while excess(hi) < 0:
        hi *= 2.0
    return brentq(excess, 1.0, hi, xtol=1e-15, rtol=1e-15)


@settings(max_examples=250, deadline=None)
@given(p=st.floats(0.5, 0.9999), b=st.floats(0.01, 0.99999), clip=st.floats(1.05, 12.0))
@example(p=0.962, b=0.995, clip=2.0)  # thickening, bounded
@example(p=0.9, b=0.3, clip=1.2)  # sharpening
@example(p=0.6, b=0.9999, clip=5.0)  # thickening with c(1-p) >= 1: unbounded
def test_closed_forms_match_root_finding(p, b, clip):
    assume(abs(b - p) > 1e-4 and abs(clip * (1 - p) - 1) > 1e-3)  # c(1-p) = 1 is the unbounded boundary itself
    result = theory.clip_band_threshold(p, b, clip)
    if not result.bounded:
        # Only the thickening branch with c(1-p) >= 1 is unbounded.
        assert b > p and clip * (1 - p) >= 1
        return
    assert result.regime is (theory.Regime.SHARPENING if b < p else theory.Regime.THICKENING)
    numeric = _numeric_lambda_star(p, b, clip)
    assert result.lambda_star == pytest.approx(numeric, rel=1e-7)


# ------------------------------------------------------------------ properties

masses = st.floats(min_value=1e-6, max_value=1 - 1e-6, allow_nan=False)
clips = st.floats(min_value=1.01, max_value=20.0, allow_nan=False)


@given(p=masses, b=masses, clip=clips)
def test_lambda_star_exceeds_one_when_b_differs(p, b, clip):
    assume(abs(p - b) > 1e-9)
    assert theory.clip_band_lambda_star(p, b, clip) > 1.0


@given(p=masses, b=masses, c1=clips, c2=clips)
def test_lambda_star_increases_with_clip(p, b, c1, c2):
    assume(abs(p - b) > 1e-6 and abs(c1 - c2) > 1e-6)
    lo, hi = sorted((c1, c2))
    tight, loose = theory.clip_band_lambda_star(p, b, lo), theory.clip_band_lambda_star(p, b, hi)
    assert tight < loose or math.isinf(tight)


@given(p=masses, b=masses, clip=clips)
def test_tail_ratio_at_lambda_star_sits_on_the_edge(p, b, clip):
    assume(abs(p - b) > 1e-6)
    result = theory.clip_band_threshold(p, b, clip)
    assume(result.bounded and result.lambda_star < 1e6)
    ratio = theory.tail_ratio(p, b, result.lambda_star)
    edge = clip if result.edge == "upper" else 1.0 / clip
    assert ratio == pytest.approx(edge, rel=1e-6)


@pytest.mark.parametrize("b", [0.1, 0.5, 0.9])
def test_lambda_star_tends_to_one_as_teacher_sharpens(b):
    values = [theory.clip_band_lambda_star(1 - 10.0**-k, b, 2.0) for k in range(2, 13)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    assert values[-1] - 1.0 < 0.1
    assert values[-1] > 1.0


@settings(max_examples=60, deadline=None)
@given(p=st.floats(0.01, 0.999), b=st.floats(0.01, 0.999), clip=st.floats(1.05, 10.0))
def test_exact_threshold_equals_closed_form_on_two_tokens(p, b, clip):
    assume(abs(p - b) > 1e-3)
    closed = theory.clip_band_lambda_star(p, b, clip)
    assume(closed < 1e5)
    exact = theory.exact_clip_band_lambda_star(np.log([p, 1 - p]), np.log([b, 1 - b]), [True, False], clip)
    if math.isinf(closed):
        assert math.isinf(exact)
    else:
        assert exact == pytest.approx(closed, rel=1e-9)


# ------------------------------------------------------------------ exact K-ary fixed point


def test_exact_tail_differs_from_reduction():
    teacher = np.array([0.999, 0.001, 1e-7])
    ref = np.array([0.9, 1e-4, 0.0999])
    valid = np.array([True, False, False])
    exact = theory.exact_tail_mass(np.log(teacher), np.log(ref), valid, 1.5)
    p = teacher[valid].sum() / teacher.sum()
    b = ref[valid].sum() / ref.sum()
    reduced = 1.0 - bernoulli_valid_mass(p, b, 1.5)
    assert exact == pytest.approx(0.0030, rel=0.05)
    assert reduced == pytest.approx(9.5e-5, rel=0.05)
    # The reduction sees only sharpening (b < p) and crosses the upper edge; the exact
    # fixed point amplifies the suppressed breaking token and crosses the lower edge.
    assert theory.clip_band_threshold(p, b, 2.0).edge == "upper"
    exact_star = theory.exact_clip_band_lambda_star(np.log(teacher), np.log(ref), valid, 2.0)
    assert 1.0 < exact_star < 2.0
    tail_at_star = theory.exact_tail_mass(np.log(teacher), np.log(ref), valid, exact_star)
    assert teacher[~valid].sum() / teacher.sum() / tail_at_star == pytest.approx(0.5, rel=1e-9)
    assert theory.tail_ratio(p, b, exact_star) > 1.0


def test_exact_tail_at_lambda_one_is_teacher_tail():
    rng = np.random.default_rng(0)
    teacher, ref = rng.dirichlet(np.ones(50)), rng.dirichlet(np.ones(50))
    valid = rng.random(50) < 0.3
    tail = theory.exact_tail_mass(np.log(teacher), np.log(ref), valid, 1.0)
    assert tail == pytest.approx(teacher[~valid].sum(), rel=1e-12)


def test_exact_inputs_are_checked():
    with pytest.raises(ValueError, match="valid must mark"):
        theory.exact_clip_band_lambda_star(np.log([0.5, 0.5]), np.log([0.5, 0.5]), [True, True], 2.0)
    with pytest.raises(ValueError, match="share one shape"):
        theory.exact_clip_band_lambda_star(np.log([0.5, 0.5]), np.log([0.2, 0.3, 0.5]), [True, False], 2.0)
    with pytest.raises(ValueError, match="clip"):
        theory.exact_clip_band_lambda_star(np.log([0.5, 0.5]), np.log([0.2, 0.8]), [True, False], 1.0)


# ------------------------------------------------------------------ edge cases


def test_teacher_mass_one_returns_flagged_limit():
    result = theory.clip_band_threshold(1.0, 0.9, 2.0)
    assert result.lambda_star == 1.0
    assert result.regime is theory.Regime.DEGENERATE
    assert "p == 1" in result.note


def test_student_mass_one_returns_flagged_limit():
    result = theory.clip_band_threshold(0.9, 1.0, 2.0)
    assert result.lambda_star == 1.0 and result.regime is theory.Regime.DEGENERATE


def test_equal_masses_are_unbounded():
    result = theory.clip_band_threshold(0.9, 0.9, 2.0)
    assert math.isinf(result.lambda_star) and result.regime is theory.Regime.NEUTRAL and not result.bounded


def test_thickening_without_reachable_edge_is_unbounded():
    # c(1-p) = 2 * 0.6 >= 1: the tail can never reach c times the teacher's.
    assert math.isinf(theory.clip_band_lambda_star(0.4, 0.9, 2.0))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"p": 0.0, "b": 0.5, "clip": 2.0}, "p"),
        ({"p": 1.2, "b": 0.5, "clip": 2.0}, "p"),
        ({"p": float("nan"), "b": 0.5, "clip": 2.0}, "p"),
        ({"p": 0.9, "b": -0.1, "clip": 2.0}, "b"),
        ({"p": 0.9, "b": 0.5, "clip": 1.0}, "clip"),
        ({"p": 0.9, "b": 0.5, "clip": 0.5}, "clip"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name} must"):
        theory.clip_band_threshold(**kwargs)


@pytest.mark.parametrize(
    ("p", "b"),
    [(1 - 1e-12, 0.5), (1 - 1e-12, 1 - 1e-10), (0.5, 1e-12), (1e-3, 1e-12), (1 - 1e-10, 1 - 1e-12), (0.999, 1e-12)],
)
def test_stable_near_zero_and_one(p, b):
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 60
    P, B, C = mpmath.mpf(p), mpmath.mpf(b), mpmath.mpf(2)
    if b < p:
        expected = mpmath.log((1 - B) * (C - 1 + P) / (B * (1 - P))) / mpmath.log(P * (1 - B) / (B * (1 - P)))
    else:
        expected = mpmath.log(B * C * (1 - P) / ((1 - B) * (1 - C * (1 - P)))) / mpmath.log(B * (1 - P) / ((1 - B) * P))
    got = theory.clip_band_lambda_star(p, b, 2.0)
    assert math.isfinite(got)
    assert got == pytest.approx(float(expected), rel=1e-9)
    assert math.isfinite(theory.tail_ratio(p, b, got))
