"""The finite-budget rule: its identity, its measurements, and what the simulator says of it.

The rule (``theory.finite_budget``) failed its acceptance criterion on held-out random
cases (bench/finite_budget_sim.py, docs/theory.md section 9), so it is not offered; these
tests pin what it computes and the simulator's findings the docs report, so that a change
to either shows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliffaudit.theory import bernoulli_lambda_v, bernoulli_valid_mass
from cliffaudit.theory.finite_budget import (
    effective_lambda,
    effective_lambda_interval,
    finite_budget_curve,
    finite_budget_onset,
    finite_budget_window,
    is_offered,
    single_mover_share,
)
from cliffaudit.theory.fixed_point import exact_valid_mass
from cliffaudit.theory.simulate import Case, Training, simulate_many

CURVE = np.round(np.arange(1.0, 3.0001, 0.01), 4)


def test_a_fraction_of_the_way_in_log_space_is_the_fixed_point_at_f_lambda():
    """log pi_ref + f (log pi_lam - log pi_ref), normalised, is the fixed point at f * lam."""
    teacher, reference = np.log([0.6, 0.3, 0.07, 0.03]), np.log([0.2, 0.1, 0.3, 0.4])
    valid = np.array([True, True, False, False])
    lam, f = 1.7, 0.45
    at_lam = lam * teacher + (1 - lam) * reference
    partway = reference + f * (at_lam - reference)
    partway_valid = np.exp(partway)[valid].sum() / np.exp(partway).sum()
    assert partway_valid == pytest.approx(exact_valid_mass(teacher, reference, valid, [f * lam])[0], rel=1e-12)


def test_effective_lambda_of_one_position():
    p, b = 0.85, 0.97
    for f in (0.0, 0.3, 1.0):
        assert effective_lambda(b, p, bernoulli_valid_mass(p, b, f)) == pytest.approx(f, abs=1e-9)
    assert effective_lambda(b, p, 0.5) == 1.0  # past the teacher: reached
    assert effective_lambda(b, p, 0.99) == 0.0  # above the warm start: not moved
    assert effective_lambda(0.90, 0.89, 0.895) is None  # the gap is too small to measure progress
    assert effective_lambda(0.80, 0.90, 0.85) is None  # the teacher parses better: runs move away from the cliff


def test_the_finite_budget_curve_of_one_position_is_the_fixed_point_at_f_lambda():
    p, b, f = 0.85, 0.97, 0.6
    rates = [bernoulli_valid_mass(p, b, lam) for lam in CURVE]
    lambdas = np.array([1.0, 1.5, 2.0, 3.0, 4.0])
    curve = finite_budget_curve(lambdas, CURVE, rates, b, f)
    expected = [bernoulli_valid_mass(p, b, f * lam) for lam in lambdas]
    assert np.allclose(curve, expected, atol=2e-4)  # below 1 exact; above, the curve's interpolation
    # the runs' best rate is their own at lambda 1 (f), so they fall 0.1 below that, not below p
    onset = finite_budget_onset(CURVE, rates, b, f)
    target = bernoulli_valid_mass(p, b, f) - 0.1
    assert bernoulli_valid_mass(p, b, f * onset) == pytest.approx(target, abs=1e-3)
    assert onset > bernoulli_lambda_v(p, b) + 0.3
    assert finite_budget_onset(CURVE, rates, b, 1.0) == pytest.approx(bernoulli_lambda_v(p, b), abs=2e-3)
    assert finite_budget_onset(CURVE, rates, b, 0.0) == math.inf
    early, late = finite_budget_window(CURVE, rates, b, 0.5, 0.7)
    assert early < onset < late
    with pytest.raises(ValueError, match="starts at lambda 1"):
        finite_budget_curve([1.0], CURVE[1:], rates[1:], b, f)


def test_the_effective_lambda_interval_is_seeded_and_holds_its_point():
    warm, teacher, runs = (249, 256), (220, 256), [(236, 256), (231, 256), (238, 256)]
    point, low, high = effective_lambda_interval(warm, teacher, runs)
    assert low < point < high
    assert effective_lambda_interval(warm, teacher, runs) == (point, low, high)
    assert effective_lambda_interval((200, 256), (220, 256), runs) is None
    with pytest.raises(ValueError, match="0 <= valid <= samples"):
        effective_lambda_interval(warm, teacher, [(300, 256)])


def test_offered_only_where_one_class_falls_and_carries_the_change():
    assert single_mover_share([-0.13, 2e-4, 0.0]) == pytest.approx(0.13 / (0.13 + 2e-4))
    assert is_offered(0.97, 0.86, [-0.13, 2e-4, 0.0])  # the habit pair's shape: the first token falls alone
    assert not is_offered(0.97, 0.86, [-0.13, 0.08])  # another class moves too: the parse rate blends them
    assert not is_offered(0.97, 0.96, [-0.13])  # too small a gap to measure
    assert not is_offered(0.97, 0.86, [0.13])  # the class that changes most sharpens


THICKENING = [Case(f"p={p} b={b}", [[p, 1 - p]], [[b, 1 - b]], [[True, False]]) for p, b in
              [(0.95, 0.999), (0.9, 0.99), (0.8, 0.95), (0.97, 0.9999), (0.6, 0.9), (0.9, 0.97), (0.85, 0.99),
               (0.7, 0.95), (0.9, 0.999), (0.75, 0.9)]]
GRID = np.round(np.arange(1.0, 3.0001, 0.1), 4)
STEP = 0.1


def _judge(window, onset):
    if onset is None:
        return "hit" if window[0] > GRID[-1] else "conservative"
    if window[0] > onset[1] + STEP:
        return "fail-open"
    return "conservative" if window[1] < onset[0] - STEP else "hit"


@pytest.fixture(scope="module")
def short_runs():
    """The grid's thickening positions at budgets from barely moved (5 steps) to converged at
    lambda = 1 (40 steps), lr 0.05, 3 seeds: (rule verdict, lambda_v verdict) per case."""
    verdicts = {}
    for steps in (5, 10, 20, 40):
        sims = simulate_many(THICKENING, GRID, Training(steps=steps, lr=0.05, seeds=3), list(range(100, 110)))
        for case, sim in zip(THICKENING, sims):
            warm, teacher = case.reference[0, 0], case.teacher[0, 0]
            exact = 10**6
            f = effective_lambda_interval((round(warm * exact), exact), (round(teacher * exact), exact),
                                          [(round(r * exact), exact) for r in sim.parse_rates[0]])
            window = finite_budget_window(CURVE, case.parse_rate(CURVE), warm, f[1], f[2])
            verdicts[steps, case.name] = (_judge(window, sim.onset()), _judge((sim.lambda_v,) * 2, sim.onset()))
    return verdicts


@pytest.mark.slow  # the simulator's thickening grid at four budgets (about 3 s)
def test_converged_runs_fall_where_the_rule_and_lambda_v_say(short_runs):
    assert all(short_runs[40, case.name] == ("hit", "hit") for case in THICKENING)


@pytest.mark.slow
def test_short_runs_fall_later_than_the_rule_says_or_not_at_all(short_runs):
    """Tabular Adam moves every lambda by about the same distance until it nears its target,
    so short runs fall later than 'the same fraction of the way' predicts (conservative),
    except near convergence, where Adam overshoots: there the fall comes before the rule's
    window and before lambda_v too (p = 0.9, b = 0.97 at 20 steps)."""
    short = {key: v for key, v in short_runs.items() if key[0] < 40}
    assert sum(rule == "conservative" for rule, _ in short.values()) >= 15
    fail_open = [key for key, (rule, _) in short.items() if rule == "fail-open"]
    assert fail_open == [(20, "p=0.9 b=0.97")]
    assert short[20, "p=0.9 b=0.97"][1] == "fail-open"
