"""The onset rule and the window check."""

from __future__ import annotations

import numpy as np
import pytest

from cliffaudit.sweep.onset import Onset, OnsetRange, check_window, judge, observed_onset, onset_range
from cliffaudit.theory import onset_interval
from cliffaudit.theory.simulate import Case, Training, simulate


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
    no_onset = OnsetRange(lower=None, upper=None, no_onset_share=1.0)
    # no cliff predicted up to 3, none seen up to 1.6: consistent
    assert judge(no_onset, (None, None), 1.6, 3.0).text == "consistent: no cliff up to 1.6"
    assert judge(no_onset, (None, None), 1.6, 3.0).hit is True
    # a pooled onset that noise alone could give still agrees with "no cliff"
    assert judge(OnsetRange(lower=1.2, upper=None, no_onset_share=0.3), (None, None), 1.6, 3.0).hit is True
    # no cliff predicted, a collapse seen in every resample inside the audited grid: a miss
    missed = judge(OnsetRange(lower=1.1, upper=1.3, no_onset_share=0.0), (None, None), 1.6, 3.0)
    assert missed.hit is False and "where none was predicted" in missed.text
    # a collapse that may lie past the audited grid cannot judge a prediction that stops there
    past = judge(OnsetRange(lower=3.2, upper=3.4, no_onset_share=0.0), (None, None), 4.0, 3.0)
    assert past.hit is None and past.text.startswith("undecided: ")
    # a predicted window meets the range, or misses it by the gap
    assert judge(OnsetRange(lower=1.2, upper=1.3, no_onset_share=0.0), (1.25, 1.35), 1.6, 3.0).hit is True
    wide = judge(OnsetRange(lower=1.375, upper=1.75, no_onset_share=0.0), (1.368, 1.382), 1.875, 3.0)
    assert wide.hit is True and wide.text.startswith("consistent: the window meets")
    late = judge(OnsetRange(lower=1.5, upper=1.75, no_onset_share=0.0), (1.368, 1.382), 1.875, 3.0)
    assert late.hit is False and late.text.startswith("inconsistent: later by 0.118")
    early = judge(OnsetRange(lower=1.0, upper=1.1, no_onset_share=0.0), (1.25, 1.35), 1.6, 3.0)
    assert early.hit is False and early.check.direction == "earlier"
    # "no onset" plausible keeps a window that meets the earliest plausible onset
    assert judge(OnsetRange(lower=1.3, upper=None, no_onset_share=0.2), (1.35, 1.4), 1.6, 3.0).hit is True
    later = judge(no_onset, (1.08, 1.12), 1.6, 3.0)
    assert later.hit is False
    assert later.text == "inconsistent: later by at least 0.480 (onset's range no onset on the grid, within noise)"


def _runs(lambdas, rates_by_seed, samples):
    """Flatten [lambdas, seeds] rates into one entry per run."""
    rates = np.asarray(rates_by_seed, dtype=float)
    lams = np.repeat(np.asarray(lambdas, dtype=float), rates.shape[1])
    return lams, rates.ravel(), np.full(rates.size, samples)


def test_the_onset_range_holds_the_point_onset_and_shrinks_with_samples():
    lambdas = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5]
    curve = [0.85, 0.83, 0.80, 0.76, 0.70, 0.62]  # falls slowly: noise moves the onset
    runs = _runs(lambdas, [[r] * 3 for r in curve], 64)
    few = onset_range(*runs)
    point = onset_interval(lambdas, curve)
    assert few.lower <= point[0] and (few.upper is None or few.upper >= point[1])
    assert few == onset_range(*runs)  # seeded
    many = onset_range(*_runs(lambdas, [[r] * 3 for r in curve], 100_000))
    assert (many.lower, many.upper) == point  # noise gone: the range is the point onset
    # a steep cliff is placed exactly even with few samples
    steep = onset_range(*_runs(lambdas, [[r] * 3 for r in [0.9, 0.9, 0.9, 0.2, 0.1, 0.1]], 64))
    assert (steep.lower, steep.upper) == (1.2, 1.3) and steep.no_onset_share == 0.0
    # a flat curve: no cliff, within noise
    flat = onset_range(*_runs(lambdas, [[0.9] * 3] * 6, 64))
    assert flat.lower is None and flat.upper is None and flat.no_onset_share > 0.95


def test_one_seed_that_collapsed_alone_widens_the_range():
    lambdas = [1.0, 1.1, 1.2, 1.3]
    alone = onset_range(*_runs(lambdas, [[0.9, 0.9, 0.9], [0.9, 0.1, 0.9], [0.9, 0.9, 0.9], [0.9, 0.9, 0.9]], 64))
    assert alone.lower is None or alone.upper is None  # "no cliff" stays plausible
    assert 0.05 < alone.no_onset_share < 1.0


def test_onset_range_refuses_mismatched_runs():
    with pytest.raises(ValueError, match="one lambda"):
        onset_range([1.0, 1.1], [0.9], [64, 64])
    with pytest.raises(ValueError, match="at least one evaluation sample"):
        onset_range([1.0], [0.9], [0])


# The habit pair's shape in the simulator: a format decision the teacher breaks at 12.5%
# and the warm start at 3.5%, followed by tokens both keep. The fixed point's parse rate
# falls slowly, so where a sweep sees the onset is set by noise as much as by lambda_v.
GENTLE = Case("habit-shaped decision", [[0.875, 0.125], [0.99, 0.01]], [[0.965, 0.035], [0.99, 0.01]],
              [[True, False], [True, False]])
SWEEP_GRID = np.round(np.arange(1.0, 1.8751, 0.125), 4)  # the habit sweep's grid: 8 points to lambda_v + 0.5
EVAL_SAMPLES = 64  # as many evaluation samples per run as the habit sweeps drew


@pytest.fixture(scope="module")
def gentle_simulation():
    simulation = simulate(GENTLE, SWEEP_GRID, Training(steps=800, lr=0.05, seeds=3), seed=11)
    assert 1.2 < simulation.lambda_v < 1.75  # a cliff inside the grid, away from its ends
    return simulation


def _hit_rates(simulation, eval_samples: int, offsets, sweeps: int = 60) -> tuple[dict[float, float], float]:
    """Share of simulated sweeps in which a window locked at lambda_v + offset hits, under
    the range rule, and the share in which the point onset holds lambda_v itself."""
    rng = np.random.default_rng(5)
    hits, point_hits = dict.fromkeys(offsets, 0), 0
    for _ in range(sweeps):
        observed_rates = rng.binomial(eval_samples, simulation.parse_rates) / eval_samples  # [lambdas, seeds]
        observed = onset_range(*_runs(SWEEP_GRID, observed_rates, eval_samples), resamples=400,
                               seed=int(rng.integers(1 << 30)))
        for offset in offsets:
            window = (simulation.lambda_v + offset, simulation.lambda_v + offset)
            hits[offset] += bool(judge(observed, window, SWEEP_GRID[-1], 3.0).hit)
        point = onset_interval(SWEEP_GRID, observed_rates.mean(axis=1))
        point_hits += point is not None and point[0] <= simulation.lambda_v <= point[1]
    return {offset: n / sweeps for offset, n in hits.items()}, point_hits / sweeps


def test_the_range_rule_on_the_simulator(gentle_simulation):
    """Sweeps of tabular G-OPD trained with the sweep's loss, each run evaluated on 64
    samples as the habit sweeps were, judged against windows locked at the exact
    lambda_v or off it. The correct window hits in nearly every sweep under the range
    rule, where the point rule hits in a minority; a window 0.4 early misses in most.
    The rule is tested on its errors over many sweeps, not fitted to one."""
    hits, point_hits = _hit_rates(gentle_simulation, 64, (-0.4, 0.0))
    assert hits[0.0] >= 0.9
    assert point_hits <= 0.6 < hits[0.0]
    assert hits[-0.4] <= 0.15


def test_more_evaluation_samples_sharpen_the_range(gentle_simulation):
    hits, _ = _hit_rates(gentle_simulation, 256, (-0.3, 0.0, 0.4))
    assert hits[0.0] >= 0.9
    assert hits[-0.3] <= 0.1 and hits[0.4] <= 0.1


def test_convergence_of_the_lambda_one_runs():
    from cliffaudit.sweep.model import RunResult
    from cliffaudit.sweep.run import convergence

    def run(lam, rate):
        return RunResult(lam=lam, seed=0, parse_rate=rate, eval_samples=64,
                         seconds=1.0)

    half = convergence(0.94, 0.84, [run(1.0, 0.90), run(1.0, 0.88), run(1.5, 0.5)])
    assert half.runs_at_one == 0.89 and half.progress == pytest.approx(0.5) and half.reached is False
    assert convergence(0.94, 0.84, [run(1.0, 0.845)]).reached is True
    assert convergence(0.90, 0.90, [run(1.0, 0.85)]).reached is None  # warm start and teacher parse alike
    assert convergence(0.94, 0.84, [run(1.5, 0.85)]).runs_at_one is None


def test_an_onset_range_reads_as_an_interval():
    assert OnsetRange(lower=1.0, upper=1.25, no_onset_share=0.0).text() == "(1, 1.25]"
    assert OnsetRange(lower=1.0, upper=None, no_onset_share=0.2).text() == "(1, past the grid)"
    assert OnsetRange(lower=None, upper=None, no_onset_share=1.0).text() == "no onset on the grid, within noise"
