"""The onset rule and the window check."""

from __future__ import annotations

import pytest

from cliffaudit.sweep.onset import Onset, check_window, judge, observed_onset


def test_onset_is_the_first_fall_below_the_best_rate():
    lambdas = [1.0, 1.1, 1.2, 1.3, 1.4]
    assert observed_onset(lambdas, [0.6, 0.7, 0.65, 0.3, 0.1]) == Onset(1.2, 1.3)
    assert observed_onset(lambdas, [0.6, 0.62, 0.61, 0.58, 0.55]) is None  # within tolerance throughout
    assert observed_onset(lambdas[::-1], [0.1, 0.3, 0.65, 0.7, 0.6]) == Onset(1.2, 1.3)  # order does not matter


def test_a_dip_that_recovers_is_not_a_cliff():
    lambdas = [1.0, 1.1, 1.2, 1.3, 1.4]
    # 1.1 dips 0.16 below the best, but 1.3 and 1.4 come back within tolerance: noise.
    assert observed_onset(lambdas, [0.67, 0.51, 0.54, 0.63, 0.63]) is None
    # A collapse that stays down from 1.3 on is the onset, even after an earlier dip.
    assert observed_onset(lambdas, [0.67, 0.51, 0.64, 0.2, 0.1]) == Onset(1.2, 1.3)


def test_window_check():
    onset = Onset(1.2, 1.3)
    assert check_window(onset, (1.25, 1.4)).inside
    assert check_window(onset, (1.4, 1.6)).direction == "earlier"
    assert abs(check_window(onset, (1.4, 1.6)).miss - 0.1) < 1e-12
    assert check_window(onset, (1.0, 1.1)).direction == "later"
    assert check_window(None, (1.0, 1.1)) is None and check_window(onset, (None, None)) is None


def test_no_onset_on_a_grid_past_the_window_is_a_miss():
    # A cliff predicted at [1.08, 1.12] that has not come by lambda 1.6 missed by at least 0.48.
    check = check_window(None, (1.08, 1.12), grid_end=1.6)
    assert not check.inside and check.direction == "later" and check.miss_at_least
    assert abs(check.miss - 0.48) < 1e-12
    # A grid that ends inside the window cannot tell.
    assert check_window(None, (1.08, 1.12), grid_end=1.1) is None
    # An unbounded prediction and no onset: nothing to compare.
    assert check_window(None, (None, None), grid_end=1.6) is None


def test_judging_a_locked_prediction():
    # no cliff predicted up to 3, none seen up to 1.6: a hit
    assert judge(None, (None, None), 1.6, 3.0).text == "agree: no cliff up to 1.6"
    assert judge(None, (None, None), 1.6, 3.0).hit is True
    # no cliff predicted, a collapse seen inside the audited grid: a miss
    missed = judge(Onset(1.2, 1.3), (None, None), 1.6, 3.0)
    assert missed.hit is False and "where none was predicted" in missed.text
    # a collapse past the audited grid cannot judge a prediction that stops there
    assert judge(Onset(3.2, 3.4), (None, None), 4.0, 3.0).hit is None
    # a predicted window
    assert judge(Onset(1.2, 1.3), (1.25, 1.35), 1.6, 3.0).text == "inside"
    later = judge(None, (1.08, 1.12), 1.6, 3.0)
    assert later.hit is False and later.text == "miss: later by at least 0.480"


def test_convergence_of_the_lambda_one_runs():
    from cliffaudit.sweep.model import RunResult
    from cliffaudit.sweep.run import convergence

    def run(lam, rate):
        return RunResult(lam=lam, seed=0, parse_rate=rate, exact_match=None, ndcg_at_1=None, eval_samples=64,
                         seconds=1.0)

    half = convergence(0.94, 0.84, [run(1.0, 0.90), run(1.0, 0.88), run(1.5, 0.5)])
    assert half.runs_at_one == 0.89 and half.progress == pytest.approx(0.5) and half.reached is False
    assert convergence(0.94, 0.84, [run(1.0, 0.845)]).reached is True
    assert convergence(0.90, 0.90, [run(1.0, 0.85)]).reached is None  # warm start and teacher parse alike
    assert convergence(0.94, 0.84, [run(1.5, 0.85)]).runs_at_one is None
