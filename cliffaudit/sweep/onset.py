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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cliffaudit import theory

ONSET_TOLERANCE = theory.DEFAULT_DROP


@dataclass(frozen=True)
class Onset:
    lower: float  # the last lambda still within tolerance of the best rate
    upper: float  # the first lambda that fell below it


def observed_onset(lambdas: list[float], parse_rates: list[float], tolerance: float = ONSET_TOLERANCE) -> Onset | None:
    """The rule of ``theory.onset_interval``, which predictions use too."""
    found = theory.onset_interval(lambdas, parse_rates, tolerance)
    return None if found is None else Onset(*found)


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


def judge(onset: Onset | None, window: tuple[float | None, float | None], grid_end: float,
          predicted_up_to: float) -> Outcome:
    """A locked prediction against the observed onset. ``window`` (None, None) predicts no
    cliff up to ``predicted_up_to``: no onset on the grid agrees with it (a hit), an onset
    at or below ``predicted_up_to`` misses it (earlier)."""
    if window[0] is None:
        if onset is None:
            return Outcome(True, f"agree: no cliff up to {min(grid_end, predicted_up_to):g}", None)
        if onset.upper <= predicted_up_to:
            check = WindowCheck(False, predicted_up_to - onset.upper, "earlier")
            return Outcome(False, f"miss: a cliff in ({onset.lower:g}, {onset.upper:g}] where none was predicted", check)
        return Outcome(None, "no verdict: the onset lies past the audited grid", None)
    check = check_window(onset, window, grid_end)
    if check is None:
        return Outcome(None, "no verdict: the sweep's grid ends inside the window", None)
    if check.inside:
        return Outcome(True, "inside", check)
    at_least = "at least " if check.miss_at_least else ""
    return Outcome(False, f"miss: {check.direction} by {at_least}{check.miss:.3f}", check)
