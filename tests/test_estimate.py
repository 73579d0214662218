"""The statistics on synthetic positions with known answers: the analytic curve, its
cliff and bootstrap, attribution, driving draws, the rollout search, calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliffaudit import estimate, theory

LAMBDAS = np.round(np.arange(1.0, 3.0001, 0.01), 10)


def _log_tail(p: float, b: float) -> np.ndarray:
    return np.log1p(-np.array([theory.bernoulli_valid_mass(p, b, lam) for lam in LAMBDAS]))


def _positions(per_sample: list[tuple[str, float, float]], samples: int, records: int,
               student_amplified: float = 0.0, pull: float = 1.0) -> estimate.Positions:
    """``samples`` samples, each visiting the same positions (label, p, b); sample i
    belongs to record i % records."""
    labels, tails, ps, bs = [], [], [], []
    for label, p, b in per_sample:
        labels.append(label)
        tails.append(_log_tail(p, b))
        ps.append(p)
        bs.append(b)
    n = samples * len(per_sample)
    tile = lambda values: np.tile(np.asarray(values, dtype=float), samples)  # noqa: E731
    return estimate.Positions(
        sample=np.repeat(np.arange(samples), len(per_sample)), label=np.tile(np.array(labels, dtype=object), samples),
        teacher_valid=tile(ps), teacher_tail=1 - tile(ps), student_valid=tile(bs), student_tail=1 - tile(bs),
        reference_valid=tile(bs), reference_tail=1 - tile(bs), student_amplified=np.full(n, student_amplified),
        log_tail_curve=np.tile(np.array(tails), (samples, 1)), log_pull_curve=np.full((n, len(LAMBDAS)), pull),
        amplified_tokens=np.zeros((n, 3), int), amplified_log_ratio=np.zeros((n, 3)),
        sample_record=np.arange(samples) % records)


def test_analytic_curve_of_identical_samples_is_the_product_of_the_positions():
    positions = _positions([("fence", 0.95, 0.999), ("value", 0.99, 0.9)], samples=20, records=5)
    curve = estimate.analytic_curve(positions, LAMBDAS, 0.10)
    expected = np.array([theory.bernoulli_valid_mass(0.95, 0.999, lam) * theory.bernoulli_valid_mass(0.99, 0.9, lam)
                         for lam in LAMBDAS])
    np.testing.assert_allclose(curve.rates, expected, rtol=1e-12)
    np.testing.assert_allclose(curve.low, expected, rtol=1e-9)  # no spread between records: a zero-width band
    assert curve.lambda_v == pytest.approx(theory.drop_point(LAMBDAS, expected, 0.10))
    assert curve.interval[0] == pytest.approx(curve.lambda_v) and curve.interval[1] == pytest.approx(curve.lambda_v)


def test_the_bootstrap_interval_widens_with_disagreeing_records():
    fast = _positions([("fence", 0.95, 0.999)], samples=10, records=10)
    slow = _positions([("fence", 0.95, 0.99)], samples=10, records=10)
    mixed = estimate.Positions(**{
        name: np.concatenate([getattr(fast, name), getattr(slow, name) + (10 if name in ("sample", "sample_record")
                                                                           else 0 * (name == "label"))])
        if name != "label" else np.concatenate([fast.label, slow.label])
        for name in fast.__dataclass_fields__})
    curve = estimate.analytic_curve(mixed, LAMBDAS, 0.10)
    lo, hi = curve.interval
    assert lo < curve.lambda_v < hi
    assert theory.bernoulli_lambda_v(0.95, 0.999) - 0.01 <= lo and hi <= theory.bernoulli_lambda_v(0.95, 0.99) + 0.01
    assert (curve.low <= curve.rates + 1e-12).all() and (curve.rates <= curve.high + 1e-12).all()


def test_no_cliff_on_a_sharpening_curve():
    curve = estimate.analytic_curve(_positions([("value", 0.99, 0.9)], 8, 4), LAMBDAS, 0.10)
    assert math.isinf(curve.lambda_v) and math.isinf(curve.interval[0])


def test_the_class_that_thickens_carries_the_fall():
    positions = _positions([("fence", 0.95, 0.999), ("value", 0.99, 0.9)], samples=10, records=5)
    curve = estimate.analytic_curve(positions, LAMBDAS, 0.10)
    shares = estimate.drop_shares(positions, curve, LAMBDAS, curve.lambda_v)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["fence"] > 1.0 and shares["value"] < 0  # the value class sharpens meanwhile
    assert max(shares, key=shares.get) == "fence"


def test_draws_per_rollout_follow_the_pull():
    # Where the fixed point pulls the kept tokens below their mass (pull < 0), every
    # draw of them drives; elsewhere only draws of the amplified breaks do.
    kept = _positions([("fence", 0.95, 0.999), ("fence", 0.95, 0.999)], 4, 2, student_amplified=0.01, pull=-0.1)
    assert estimate.draws_per_rollout(kept, LAMBDAS, 1.3) == {"fence": pytest.approx(2 * 0.99)}
    rare = _positions([("fence", 0.95, 0.999)], 4, 2, student_amplified=0.01, pull=+0.1)
    assert estimate.draws_per_rollout(rare, LAMBDAS, 1.3) == {"fence": pytest.approx(0.01)}


def _curve(p: float, b: float) -> np.ndarray:
    return np.array([theory.bernoulli_valid_mass(p, b, lam) for lam in LAMBDAS])


def _search(analytic: np.ndarray, truth: np.ndarray, samples: int, evaluations: int = 8):
    """Run the rollout search against a fixed point whose rates are ``truth``, measured
    without noise on ``samples`` draws, with ``analytic`` as the audit's curve."""
    def measure(lam):
        return estimate.RolloutRate(lam, int(round(truth[int(np.argmin(np.abs(LAMBDAS - lam)))] * samples)), samples)

    rates, picked = [measure(1.0)], []
    lambda_v = theory.drop_point(LAMBDAS, analytic, 0.10)
    while (lam := estimate.next_rollout_lambda(rates, LAMBDAS, analytic, lambda_v, 0.10, 0.05,
                                               evaluations - len(picked))) is not None:
        picked.append(lam)
        rates.append(measure(lam))
    return picked, rates


def test_a_right_analytic_curve_is_checked_either_side_of_its_cliff_and_kept():
    curve = _curve(0.95, 0.999)
    picked, rates = _search(curve, curve, 256)
    lambda_v = theory.bernoulli_lambda_v(0.95, 0.999)
    assert picked[0] == 3.0 and len(picked) == 3  # the grid's end, then one check point each side
    below, above = sorted(picked[1:])
    assert below < lambda_v < above
    # far enough that 256 draws tell the side: two binomial standard errors from the drop line
    for lam in (below, above):
        j = int(np.argmin(np.abs(LAMBDAS - lam)))
        assert abs(curve[j] - (curve[: j + 1].max() - 0.10)) >= 2 * math.sqrt(curve[j] * (1 - curve[j]) / 256)
    assert estimate.rollouts_agree(rates, LAMBDAS, curve, 0.10)
    assert estimate.rollout_sides(rates, 0.10) == ["above", "above", "below", "below"]
    assert estimate.rollout_interval(rates, 0.10) == (below, above)


def test_a_wrong_analytic_curve_is_overruled_by_the_samples():
    truth, analytic = _curve(0.95, 0.999), _curve(0.95, 0.99)  # true cliff 1.305, analytic 1.53
    picked, rates = _search(analytic, truth, 10000, evaluations=10)
    assert not estimate.rollouts_agree(rates, LAMBDAS, analytic, 0.10)
    lo, hi = estimate.rollout_interval(rates, 0.10)
    assert lo < theory.bernoulli_lambda_v(0.95, 0.999) <= hi and hi - lo <= 0.05 + 1e-9


def test_no_cliff_anywhere_takes_one_sample():
    curve = _curve(0.999, 0.9)
    picked, rates = _search(curve, curve, 256)
    assert picked == [3.0] and estimate.rollout_interval(rates, 0.10) is None


def test_noisy_points_near_the_line_are_unclear_and_do_not_narrow_the_interval():
    rates = [estimate.RolloutRate(1.0, 215, 256), estimate.RolloutRate(1.4, 196, 256),
             estimate.RolloutRate(1.5, 189, 256), estimate.RolloutRate(3.0, 0, 256)]
    assert estimate.rollout_sides(rates, 0.10) == ["above", "unclear", "unclear", "below"]
    assert estimate.rollout_interval(rates, 0.10) == (1.0, 3.0)


def test_the_search_stops_at_its_budget():
    picked, _ = _search(_curve(0.95, 0.99), _curve(0.95, 0.999), 10000, evaluations=3)
    assert len(picked) == 3


def test_wilson_interval():
    low, high = estimate.RolloutRate(2.0, 50, 100).interval()
    assert low < 0.5 < high and high - low == pytest.approx(0.163, abs=0.003)


def test_class_estimates_pool_both_models_visits():
    teacher = _positions([("fence", 0.9, 0.99)], 4, 2)
    student = _positions([("fence", 0.7, 0.99), ("value", 0.99, 0.9)], 4, 2)
    rows = {e.label: e for e in estimate.class_estimates(teacher, student, 0.10, 2.0)}
    assert rows["fence"].teacher_valid_mass == pytest.approx(0.8)
    assert rows["fence"].teacher_positions == 4 and rows["fence"].student_positions == 4
    assert rows["fence"].bernoulli_lambda_v == pytest.approx(theory.bernoulli_lambda_v(0.8, 0.99))
    assert math.isinf(rows["value"].bernoulli_lambda_v) and rows["value"].teacher_positions == 0
    assert rows["value"].clip_band_lambda_star == pytest.approx(theory.clip_band_lambda_star(0.99, 0.9, 2.0))


def test_stable_hash_separates_labels_with_a_common_prefix():
    # The first 8 bytes of "/ranking close" and "/ranking colon" are equal.
    assert estimate._stable_hash("/ranking close") != estimate._stable_hash("/ranking colon")


def test_calibration_measures_the_gap():
    rng = np.random.default_rng(0)
    prob = rng.uniform(0.5, 1.0, 20000)
    one = np.arange(100)  # one-position samples, one per record
    calibrated = estimate.calibration(prob, rng.random(20000) < prob, 1 - prob[:100], rng.random(100) < prob[:100], one)
    overconfident = estimate.calibration(prob, rng.random(20000) < prob - 0.3, 1 - prob[:100], np.zeros(100, bool),
                                         one)
    assert calibrated.ece < 0.02
    assert overconfident.ece > 0.2
    assert len(calibrated.curve_predicted) == len(calibrated.curve_observed) > 1
    assert overconfident.observed_validity == 0.0
    assert calibrated.predicted_validity == pytest.approx(prob[:100].mean())
    low, high = overconfident.gap_interval
    assert low > 0.5 and high < 1.0  # predicted about 0.75, observed 0: the interval says so


def _stopped_samples(valid_mass: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Samples of a calibrated model over len(valid_mass) positions, each stopping at its
    first break: (per-position masses and outcomes of the visited positions, per-sample
    hazard sum, validity, product of visited masses)."""
    masses, outcomes, hazard, valid, product = [], [], [], [], []
    for _ in range(20000):
        total, prod, ok = 0.0, 1.0, True
        for mass in valid_mass:
            kept = rng.random() < mass
            masses.append(mass)
            outcomes.append(kept)
            total, prod = total + 1 - mass, prod * mass
            if not kept:
                ok = False
                break
        hazard.append(total)
        valid.append(ok)
        product.append(prod)
    return np.array(masses), np.array(outcomes), np.array(hazard), np.array(valid), np.array(product)


def test_predicted_validity_is_exact_where_the_product_over_visited_positions_is_not():
    """Two positions that each keep the format half the time: valid 0.25. A sample that
    breaks at the first stops there, so the mean product over visited positions is 0.375;
    the summed invalid masses (the compensator of the one break) give 0.25."""
    rng = np.random.default_rng(3)
    masses, outcomes, hazard, valid, product = _stopped_samples(np.array([0.5, 0.5]), rng)
    result = estimate.calibration(masses, outcomes, hazard, valid, np.arange(len(valid)) // 4)
    assert valid.mean() == pytest.approx(0.25, abs=0.01)
    assert product.mean() == pytest.approx(0.375, abs=0.01)  # what the check used to predict
    assert result.predicted_validity == pytest.approx(valid.mean(), abs=0.01)
    low, high = result.gap_interval
    assert low < 0.0 < high and high - low < 0.03
