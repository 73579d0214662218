"""Where the cliff is observed, and whether a locked prediction saw it coming. numpy only.

Onset rule: walk lambda upwards; the onset is the first lambda whose strict parse
rate falls more than ``tolerance`` (absolute) below the best rate seen at the
smaller lambdas. The observed onset interval is (previous lambda, that lambda].
No fall on the grid: no onset observed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ONSET_TOLERANCE = 0.10


@dataclass(frozen=True)
class Onset:
    lower: float  # the last lambda still within tolerance of the best rate
    upper: float  # the first lambda that fell below it


def observed_onset(lambdas: list[float], parse_rates: list[float], tolerance: float = ONSET_TOLERANCE) -> Onset | None:
    pairs = sorted(zip(lambdas, parse_rates))
    best = -math.inf
    for j, (lam, rate) in enumerate(pairs):
        if j > 0 and rate < best - tolerance:
            return Onset(pairs[j - 1][0], lam)
        best = max(best, rate)
    return None


@dataclass(frozen=True)
class WindowCheck:
    inside: bool  # the onset interval meets the predicted window
    miss: float  # 0 when inside; else the gap between the two intervals (in lambda)
    direction: str  # "inside", "earlier" (the cliff came before the window) or "later"


def check_window(onset: Onset | None, window: tuple[float | None, float | None]) -> WindowCheck | None:
    """Does the observed onset interval meet the locked window [lo, hi]? None when
    either is missing (no onset observed, or an unbounded prediction)."""
    lo, hi = window
    if onset is None or lo is None:
        return None
    hi = math.inf if hi is None else hi
    if onset.upper < lo:
        return WindowCheck(False, lo - onset.upper, "earlier")
    if onset.lower > hi:
        return WindowCheck(False, onset.lower - hi, "later")
    return WindowCheck(True, 0.0, "inside")
