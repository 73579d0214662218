"""Where the cliff is observed, and whether a locked prediction saw it coming. No torch.

Onset rule: walk lambda upwards; the onset is the first lambda whose strict parse
rate falls more than ``tolerance`` (absolute) below the best rate seen at the
smaller lambdas *and stays there*: every larger lambda on the grid is also more
than ``tolerance`` below that best rate. The observed onset interval is
(previous lambda, that lambda]. No such fall on the grid: no onset observed.

Why "stays there": a cliff is a collapse that more extrapolation does not undo.
A short run evaluated on ~100 samples has a binomial standard error near 0.05,
so a single dip of 0.10 between neighbouring lambdas happens by chance; a dip
that later lambdas recover from is noise, not a cliff.

Verdicts judge the onset's *range*, not its point. Where the parse rate falls
slowly, the noise on each pooled rate moves the point onset by grid steps (the
habit pair's first two sweeps: SE 0.03 on a curve falling 0.27 per unit of
lambda). ``onset_range`` resamples the runs (seeds with replacement at each
lambda, then each run's evaluation as a binomial) and keeps the onsets of the
middle ``level`` of resamples; a prediction hits when its window meets that
range. ``tests/sweep/test_onset.py`` checks the rule on the simulator: a correct
prediction hits in most sweeps, one half a unit off misses in most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, Field

from cliffaudit import theory
from cliffaudit.theory import finite_or_none
from cliffaudit.verdicts import CONSISTENT, INCONSISTENT, UNDECIDED

ONSET_TOLERANCE = theory.DEFAULT_DROP


@dataclass(frozen=True)
class Onset:
    lower: float  # the last lambda still within tolerance of the best rate
    upper: float  # the first lambda that fell below it


def observed_onset(lambdas: list[float], parse_rates: list[float], tolerance: float = ONSET_TOLERANCE) -> Onset | None:
    """The rule of ``theory.onset_interval``, which predictions use too."""
    found = theory.onset_interval(lambdas, parse_rates, tolerance)
    return None if found is None else Onset(*found)


RANGE_LEVEL = 0.90  # the share of resampled onsets the range keeps, as the audit's own intervals
RANGE_RESAMPLES = 2000


class OnsetRange(BaseModel, frozen=True):
    """Where the pooled onset lies, given the runs' own noise (``onset_range``; stored as is
    in sweep.json)."""

    lower: float | None = Field(description="earliest plausible onset's lower end; None when fewer than "
                                            "(1 - level)/2 of the resamples fall at all: no cliff, within noise")
    upper: float | None = Field(description="latest plausible onset's upper end; None: no onset on the grid is "
                                            "plausible")
    no_onset_share: float = Field(description="share of resampled sweeps with no onset on the grid")
    level: float = Field(RANGE_LEVEL, description="share of resampled onsets the range keeps")
    resamples: int = RANGE_RESAMPLES

    def text(self) -> str:
        if self.lower is None:
            return "no onset on the grid, within noise"
        return f"({self.lower:g}, {'past the grid)' if self.upper is None else f'{self.upper:g}]'}"


def onset_range(lambdas: Sequence[float], parse_rates: Sequence[float], samples: Sequence[int],
                tolerance: float = ONSET_TOLERANCE, level: float = RANGE_LEVEL, resamples: int = RANGE_RESAMPLES,
                seed: int = 0) -> OnsetRange:
    """The onset's range over resampled sweeps. One entry per run: its lambda, its strict
    parse rate and the evaluation samples behind it.

    Each resample draws, at every lambda, as many runs as it has with replacement
    (run-to-run noise: a seed that collapsed alone counts as chance), redraws each
    drawn run's rate as binomial(samples, rate) / samples (evaluation noise), pools by
    the mean, and applies the onset rule. Seeded: the same runs give the same range.
    """
    lambdas = np.asarray(lambdas, dtype=float)
    parse_rates, samples = np.asarray(parse_rates, dtype=float), np.asarray(samples, dtype=np.int64)
    if not (lambdas.size == parse_rates.size == samples.size) or lambdas.size == 0:
        raise ValueError("onset_range needs one lambda, parse rate and sample count per run")
    if (samples < 1).any() or ((parse_rates < 0) | (parse_rates > 1)).any():
        raise ValueError("each run needs at least one evaluation sample and a parse rate in [0, 1]")
    rng = np.random.default_rng(seed)
    grid = np.unique(lambdas)
    pooled = np.empty((resamples, grid.size))
    for j, lam in enumerate(grid):
        mine = np.flatnonzero(lambdas == lam)
        drawn = mine[rng.integers(mine.size, size=(resamples, mine.size))]
        pooled[:, j] = (rng.binomial(samples[drawn], parse_rates[drawn]) / samples[drawn]).mean(axis=1)
    lowers, uppers = np.full(resamples, math.inf), np.full(resamples, math.inf)
    for b in range(resamples):
        found = theory.onset_interval(grid, pooled[b], tolerance)
        if found is not None:
            lowers[b], uppers[b] = found
    tail = (1.0 - level) / 2.0
    lower = float(np.quantile(lowers, tail, method="inverted_cdf"))
    upper = float(np.quantile(uppers, 1.0 - tail, method="inverted_cdf"))
    return OnsetRange(lower=finite_or_none(lower), upper=finite_or_none(upper),
                      no_onset_share=float(np.isinf(lowers).mean()), level=level, resamples=resamples)


@dataclass(frozen=True)
class WindowCheck:
    inside: bool  # the onset interval meets the predicted window
    miss: float  # 0 when inside; else the gap between the two intervals (in lambda)
    direction: str  # "inside", "earlier" (the cliff came before the window) or "later"
    miss_at_least: bool = False  # the miss is a lower bound: no onset up to the grid's end


def check_window(onset: Onset | None, window: tuple[float | None, float | None],
                 grid_end: float | None = None) -> WindowCheck | None:
    """Does the observed onset interval meet the locked window [lo, hi]?

    No onset observed on a grid that runs past the window is a miss too: the
    predicted cliff did not come by ``grid_end``, so the onset (if any) lies at
    least ``grid_end - hi`` later. None when there is nothing to compare: an
    unbounded prediction, or no onset on a grid that ends inside the window.
    """
    lo, hi = window
    if lo is None:
        return None
    hi = math.inf if hi is None else hi
    if onset is None:
        if grid_end is not None and grid_end > hi:
            return WindowCheck(False, grid_end - hi, "later", miss_at_least=True)
        return None
    if onset.upper < lo:
        return WindowCheck(False, lo - onset.upper, "earlier")
    if onset.lower > hi:
        return WindowCheck(False, onset.lower - hi, "later")
    return WindowCheck(True, 0.0, "inside")


@dataclass(frozen=True)
class Outcome:
    hit: bool | None
    text: str
    check: WindowCheck | None


def judge(observed: OnsetRange, window: tuple[float | None, float | None], grid_end: float,
          predicted_up_to: float) -> Outcome:
    """A locked prediction against the observed onset's range (``onset_range``).

    A window [lo, hi] hits when it meets the range; a range entirely before or after
    it misses by the gap. No plausible onset on a grid that runs past the window
    misses by at least ``grid_end - hi``. ``window`` (None, None) predicts no cliff up
    to ``predicted_up_to``: it agrees while "no onset" is plausible, and misses when
    every plausible onset lies at or below ``predicted_up_to``.
    """
    if window[0] is None:
        if observed.upper is None:
            return Outcome(True, f"{CONSISTENT}: no cliff up to {min(grid_end, predicted_up_to):g}", None)
        if observed.upper <= predicted_up_to:
            check = WindowCheck(False, predicted_up_to - observed.upper, "earlier")
            return Outcome(False, f"{INCONSISTENT}: a cliff in {observed.text()} where none was predicted", check)
        return Outcome(None, f"{UNDECIDED}: the onset may lie past the audited grid", None)
    if observed.lower is None:
        check = check_window(None, window, grid_end)
    else:
        upper = math.inf if observed.upper is None else observed.upper
        check = check_window(Onset(observed.lower, upper), window, grid_end)
    if check is None:
        return Outcome(None, f"{UNDECIDED}: the sweep's grid ends inside the window", None)
    if check.inside:
        return Outcome(True, f"{CONSISTENT}: the window meets the onset's range {observed.text()}", check)
    at_least = "at least " if check.miss_at_least else ""
    return Outcome(False, f"{INCONSISTENT}: {check.direction} by {at_least}{check.miss:.3f} (onset's range {observed.text()})",
                   check)
