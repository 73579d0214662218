"""Per-class statistics on synthetic positions with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliffaudit import estimate, theory

LAMBDAS = np.round(np.arange(1.0, 3.0001, 0.01), 10)


def _bernoulli_curve(p: float, b: float) -> np.ndarray:
    return np.array([theory.fixed_point_tail_mass(p, b, lam) for lam in LAMBDAS])


@pytest.mark.parametrize(("p", "b"), [(0.99, 0.9), (0.99, 0.995), (0.962, 0.5), (0.9, 0.6)])
def test_exact_threshold_from_a_two_token_curve_matches_the_closed_form(p, b):
    found, edge = estimate.exact_threshold_from_curve(1 - p, _bernoulli_curve(p, b), LAMBDAS, 2.0)
    closed = theory.threshold(p, b, 2.0)
    assert edge == closed.edge
    # Linear interpolation in log-ratio between grid points 0.01 apart.
    assert found == pytest.approx(closed.lambda_star, abs=1e-4)


def test_curve_that_never_leaves_is_unbounded():
    found, edge = estimate.exact_threshold_from_curve(0.1, np.full(len(LAMBDAS), 0.1), LAMBDAS, 2.0)
    assert math.isinf(found) and edge is None


def _first_exit_by_loop(teacher_tail, curve, lambdas, clip):
    """The threshold rule written as a plain loop over the grid."""
    previous = None
    for j, lam in enumerate(lambdas):
        ratio = teacher_tail / curve[j] if curve[j] > 0 else math.inf
        if teacher_tail == 0:
            ratio = math.inf
        excess = abs(math.log(ratio)) - math.log(clip) if ratio > 0 else math.inf
        if lam > 1.0 and excess > 0:
            edge = "upper" if ratio > 1 else "lower"
            if previous is None or not math.isfinite(excess) or lambdas[j - 1] < 1.0:
                return float(lam), edge
            fraction = -previous / (excess - previous) if excess != previous else 1.0
            return float(lambdas[j - 1] + fraction * (lam - lambdas[j - 1])), edge
        previous = excess
    return math.inf, None


def test_many_curves_at_once_equal_the_rule_curve_by_curve():
    rng = np.random.default_rng(0)
    tails = rng.choice([0.0, 1e-9, 0.01, 0.3], size=200)
    drift = 0.02 * np.arange(len(LAMBDAS)) * rng.random((200, 1))
    curves = np.exp(np.log(np.maximum(tails, 1e-12))[:, None] + drift * rng.standard_normal((200, len(LAMBDAS))))
    curves[::7, 50] = 0.0  # a tail that vanishes at one grid point
    found, edges = estimate.exact_thresholds_from_curves(tails, curves, LAMBDAS, 2.0)
    expected = [_first_exit_by_loop(t, c, LAMBDAS, 2.0) for t, c in zip(tails, curves)]
    assert edges == [e for _, e in expected]
    np.testing.assert_allclose(found, [f for f, _ in expected], rtol=1e-12)
    assert np.isinf(found).any() and np.isfinite(found).any()


def _positions(label, p, b, prompts=20, per_prompt=5, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    n = prompts * per_prompt
    teacher_valid = np.clip(p + noise * rng.standard_normal(n), 0.5, 1 - 1e-9)
    student_valid = np.clip(b + noise * rng.standard_normal(n), 0.05, 1 - 1e-9)
    curves = np.stack([_bernoulli_curve(tp, sb) for tp, sb in zip(teacher_valid, student_valid)])
    return estimate.ClassPositions(
        label=label, prompt=np.repeat(np.arange(prompts), per_prompt), teacher_valid=teacher_valid,
        teacher_tail=1 - teacher_valid, student_valid=student_valid, student_tail=1 - student_valid,
        tail_curve=curves, amplified_tokens=np.zeros((n, 3), int), amplified_log_ratio=np.zeros((n, 3)))


def test_class_estimate_uses_mean_masses():
    cls = _positions("/ranking/* value", 0.99, 0.9)
    est = estimate.estimate_class(cls, LAMBDAS, 2.0)
    assert est.teacher_valid_mass == pytest.approx(0.99) and est.student_valid_mass == pytest.approx(0.9)
    assert est.reduced.lambda_star == pytest.approx(theory.lambda_star(0.99, 0.9, 2.0))
    assert est.base_neutral_lambda_star == pytest.approx(theory.base_neutral_lambda_star(0.99, 2.0))
    assert est.exact_lambda_star == pytest.approx(est.reduced.lambda_star, abs=1e-4)
    assert not est.disagreement
    assert est.positions == 100 and est.prompts == 20


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded():
    cls = _positions("c", 0.98, 0.8, noise=0.01)
    est = estimate.estimate_class(cls, LAMBDAS, 2.0, seed=3)
    lo, hi = est.reduced_interval
    assert lo <= est.reduced.lambda_star <= hi and lo < hi
    assert estimate.estimate_class(cls, LAMBDAS, 2.0, seed=3).reduced_interval == est.reduced_interval
    assert est.reduced_percentiles[10] <= est.reduced_percentiles[50] <= est.reduced_percentiles[90]


def test_disagreement_names_amplified_tokens():
    # Exact tail grows while the reduction sharpens: the theory's amplification example.
    teacher, ref = np.array([0.999, 0.001, 1e-7]), np.array([0.9, 1e-4, 0.0999])
    valid = np.array([True, False, False])
    curve = np.array([theory.exact_tail_mass(np.log(teacher), np.log(ref), valid, lam) for lam in LAMBDAS])
    n = 10
    cls = estimate.ClassPositions(
        label="amp", prompt=np.arange(n), teacher_valid=np.full(n, 0.999), teacher_tail=np.full(n, 0.0010001),
        student_valid=np.full(n, 0.9), student_tail=np.full(n, 0.1), tail_curve=np.tile(curve, (n, 1)),
        amplified_tokens=np.tile([1, 2, 0], (n, 1)),
        amplified_log_ratio=np.tile([math.log(10.0), math.log(1e-6), -math.inf], (n, 1)))
    est = estimate.estimate_class(cls, LAMBDAS, 2.0)
    assert est.disagreement and est.exact_edge == "lower" and est.reduced.edge == "upper"
    assert est.amplified_tokens[0] == (1, pytest.approx(math.log(10.0)))


def test_binding_class_is_the_argmin():
    ests = [estimate.estimate_class(_positions(name, p, b), LAMBDAS, 2.0)
            for name, p, b in [("a", 0.99, 0.9), ("b", 0.999, 0.9), ("c", 0.5, 0.9)]]
    binding = estimate.binding_class(ests)
    assert binding.label == min((e for e in ests if math.isfinite(e.lambda_star)), key=lambda e: e.lambda_star).label
    assert binding.label == "b"
    assert estimate.binding_class([ests[2]]) is None  # c(1-p) >= 1: the tail can never reach the edge


def test_calibration_measures_the_gap():
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.5, 1.0, 20000)
    calibrated = estimate.calibration(prob, rng.random(20000) < prob, np.log(prob[:100]), rng.random(100) < prob[:100])
    overconfident = estimate.calibration(prob, rng.random(20000) < prob - 0.3, np.log(prob[:100]),
                                         np.zeros(100, bool))
    assert calibrated.ece < 0.02
    assert overconfident.ece > 0.2
    assert len(calibrated.curve_predicted) == len(calibrated.curve_observed) > 1
    assert overconfident.observed_validity == 0.0
    assert calibrated.predicted_validity == pytest.approx(prob[:100].mean())
