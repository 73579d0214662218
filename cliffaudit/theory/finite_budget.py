"""Where a run of a given budget falls, beside the fixed point's limit. numpy only.

The fixed point is where training goes; a short run stops on the way. The rule
here (docs/theory.md section 9) measures how far the lambda = 1 runs of that
budget got and assumes every lambda got as far *in log space*:

    log pi_T(run at lam)  =  log pi_ref + f * (log pi_lam - log pi_ref)

and since ``log pi_lam - log pi_ref = lam * (log pi_T - log pi_ref)``, that policy is
the fixed point at ``f * lam``: **a run at lam after the budget parses like the
fixed point at the effective lambda f * lam**. ``f`` is the effective lambda of the
lambda = 1 runs, read off their parse rate between the warm start's (the fixed
point at 0) and the teacher's (at 1), in log-odds.

Why a bound and not a point: under a normalised optimiser (Adam; the sweep, verl
and slime use it) the update at the warm start does not depend on lambda at all
(every advantage is lambda times the lambda = 1 one there), so runs at larger
lambda move at most lambda times as far as the lambda = 1 run, i.e. at most the
same fraction of their longer way: the rule moves every lambda as far as that
allows, so its onset is the earliest a run of that budget reaches, short of
overshoot (section 9 gives the simulator's evidence and the exceptions).

The rule reads ``f`` off the whole output's parse rate, so it needs that rate to
measure the progress of the one class that falls (``is_offered``):

* the warm start parses better than the teacher by ``MEASURABLE_GAP``: where the
  teacher parses as well or better, the lambda = 1 runs move away from the cliff
  and say nothing about how fast the fall goes;
* one class carries ``SINGLE_MOVER_SHARE`` of the change in log validity from the
  warm start to the teacher: where several classes move (one sharpening while
  another thickens, or two at different speeds), the parse rate blends their
  progress and its ``f`` scales none of them. (Added after the first held-out run,
  docs/theory.md section 9, and tested on fresh cases.)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from cliffaudit.theory.fixed_point import DEFAULT_DROP, check_drop, drop_point, log_odds

__all__ = ["MEASURABLE_GAP", "SINGLE_MOVER_SHARE", "effective_lambda", "effective_lambda_interval", "finite_budget_curve",
           "finite_budget_onset", "finite_budget_window", "is_offered", "single_mover_share"]

# The warm start must parse at least this much better than the teacher (absolute) for the
# lambda = 1 runs' progress to be measurable; the sweep's `convergence` uses the same gap.
MEASURABLE_GAP = 0.02
# One class must carry this share of the summed |change in log validity| from the warm
# start to the teacher for the parse rate to measure that class's progress.
SINGLE_MOVER_SHARE = 0.9
FINE_STEP = 1e-3  # the lambda grid the finite-budget onset is read on
INTERVAL_LEVEL = 0.90  # as the audit's and the sweep's intervals
WINDOW_POINTS = 9  # effective lambdas the window reads across f's interval
_EDGE = 1e-9  # rates of exactly 0 or 1 have no log-odds; clipped this far inside


def _log_odds(rate):
    # The fixed point's log_odds (one definition), of observed rates, which can be exactly 0 or 1.
    return np.vectorize(log_odds, otypes=[float])(np.clip(np.asarray(rate, dtype=float), _EDGE, 1.0 - _EDGE))


def single_mover_share(log_validity_changes) -> float:
    """The share of the summed |change in log validity| from the warm start to the teacher
    that the class changing most carries (1 when only one class changes; 0 when none does).
    ``log_validity_changes`` has one entry per class: its positions' summed
    ``log p_teacher - log p_warm`` per output."""
    changes = np.abs(np.asarray(log_validity_changes, dtype=float))
    total = float(changes.sum())
    return float(changes.max() / total) if total > 0 else 0.0


def is_offered(warm: float, teacher: float, log_validity_changes) -> bool:
    """Whether the lambda = 1 runs' parse rate measures the falling class's progress."""
    changes = np.asarray(log_validity_changes, dtype=float)
    falls = changes.size > 0 and changes[np.argmax(np.abs(changes))] < 0
    return bool(warm - teacher >= MEASURABLE_GAP and falls and single_mover_share(changes) >= SINGLE_MOVER_SHARE)


def effective_lambda(warm: float, teacher: float, runs_at_one: float) -> float | None:
    """The effective lambda ``f`` of the lambda = 1 runs, in [0, 1]: 0 where they are still
    at the warm start's parse rate, 1 where they reached the teacher's (or passed it).
    None where the warm start does not parse better than the teacher by MEASURABLE_GAP."""
    if not warm - teacher >= MEASURABLE_GAP:
        return None
    w, t, r = _log_odds(warm), _log_odds(teacher), _log_odds(runs_at_one)
    return float(np.clip((w - r) / (w - t), 0.0, 1.0))


def effective_lambda_interval(warm: tuple[int, int], teacher: tuple[int, int], runs: list[tuple[int, int]],
                              level: float = INTERVAL_LEVEL, resamples: int = 2000,
                              seed: int = 0) -> tuple[float, float, float] | None:
    """``f`` with its interval over resampled measurements: (point, low, high), or None.

    ``warm`` and ``teacher`` are (valid, samples) counts of the warm start's and the
    teacher's answers under the sweep's evaluator; ``runs`` one (valid, samples) per
    lambda = 1 run. Each resample redraws the warm start's and the teacher's rates as
    binomials, draws the runs with replacement (run-to-run noise) and redraws each
    drawn run's rate as a binomial (evaluation noise); the pooled rate is their mean.
    Seeded: the same counts give the same interval."""
    if not runs:
        raise ValueError("effective_lambda_interval needs at least one lambda = 1 run")
    for valid, samples in (warm, teacher, *runs):
        if samples < 1 or not 0 <= valid <= samples:
            raise ValueError("each measurement needs samples >= 1 and 0 <= valid <= samples")
    run_valid = np.array([v for v, _ in runs], dtype=float)
    run_samples = np.array([n for _, n in runs], dtype=np.int64)
    point = effective_lambda(warm[0] / warm[1], teacher[0] / teacher[1], float(np.mean(run_valid / run_samples)))
    if point is None:
        return None
    rng = np.random.default_rng(seed)
    w = rng.binomial(warm[1], warm[0] / warm[1], resamples) / warm[1]
    t = rng.binomial(teacher[1], teacher[0] / teacher[1], resamples) / teacher[1]
    drawn = rng.integers(len(runs), size=(resamples, len(runs)))
    r = (rng.binomial(run_samples[drawn], run_valid[drawn] / run_samples[drawn]) / run_samples[drawn]).mean(axis=1)
    # A resample whose warm start no longer parses better than its teacher cannot place f:
    # it counts as f = 1 (the fixed point's own cliff), the fail-closed end.
    fs = np.array([1.0 if (f := effective_lambda(a, b, c)) is None else f for a, b, c in zip(w, t, r)])
    tail = 50.0 * (1.0 - level)
    return point, float(np.percentile(fs, tail)), float(np.percentile(fs, 100.0 - tail))


def finite_budget_curve(lambdas, fixed_point_lambdas, fixed_point_rates, warm: float, f: float) -> np.ndarray:
    """The parse rate of runs at ``lambdas`` whose effective lambda is ``f * lambda``.

    ``fixed_point_rates`` is V on ``fixed_point_lambdas`` (increasing, starting at 1: the
    audit's curve), interpolated linearly; below 1, where the audit has no curve, V runs
    linearly in log-odds from the warm start's rate at 0 to V(1), as one position's does
    exactly. Effective lambdas past the curve's end are nan."""
    grid = np.asarray(fixed_point_lambdas, dtype=float)
    rates = np.asarray(fixed_point_rates, dtype=float)
    if grid.ndim != 1 or grid.size < 2 or grid.shape != rates.shape or abs(grid[0] - 1.0) > 1e-9 \
            or (np.diff(grid) <= 0).any():
        raise ValueError("the fixed point's curve must be given on an increasing grid that starts at lambda 1")
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"the effective lambda of the lambda = 1 runs must be in [0, 1], got {f!r}")
    y = f * np.asarray(lambdas, dtype=float)
    below = expit(_log_odds(warm) + np.minimum(y, 1.0) * (_log_odds(rates[0]) - _log_odds(warm)))
    above = np.interp(y, grid, rates, right=np.nan)
    return np.where(y < 1.0, below, above)


def finite_budget_onset(fixed_point_lambdas, fixed_point_rates, warm: float, f: float,
                        drop: float = DEFAULT_DROP) -> float:
    """Where runs of the budget whose lambda = 1 runs reached effective lambda ``f`` fall
    ``drop`` below their best: the onset rule (``drop_point``) on the finite-budget curve
    from lambda 1 to where ``f * lambda`` leaves the fixed point's grid. ``math.inf`` when
    they do not fall there (for f = 0, never)."""
    drop = check_drop(drop)
    end = float(np.asarray(fixed_point_lambdas, dtype=float)[-1])
    if f <= 0.0:
        return math.inf
    top = end / f
    lambdas = np.linspace(1.0, top, int(math.ceil((top - 1.0) / FINE_STEP)) + 1)
    return drop_point(lambdas, finite_budget_curve(lambdas, fixed_point_lambdas, fixed_point_rates, warm, f), drop)


def finite_budget_window(fixed_point_lambdas, fixed_point_rates, warm: float, f_low: float, f_high: float,
                         drop: float = DEFAULT_DROP) -> tuple[float, float]:
    """(earliest, latest) finite-budget onset over the effective lambda's interval. Runs
    that got further mostly fall first, but not on every curve (one that rises before it
    falls), so the onset is read at ``WINDOW_POINTS`` effective lambdas across the interval.
    Either end may be ``math.inf``."""
    onsets = [finite_budget_onset(fixed_point_lambdas, fixed_point_rates, warm, float(f), drop)
              for f in np.linspace(f_low, f_high, WINDOW_POINTS)]
    return min(onsets), max(onsets)
