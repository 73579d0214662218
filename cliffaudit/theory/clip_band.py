"""The clip-band rule: an alternative rule, kept for comparison, never the recommendation.

It said the cliff is where the fixed point's tail ratio ``(1-p)/t_lam`` leaves
``[1/c, c]`` for an importance-weight cap ``c``. The locked demo sweep and exact
simulations of the sweep's loss refuted it as a predictor (docs/theory.md,
"Evidence"): crossing the over-sharpening edge never collapsed the format, and c
changed the speed of a collapse, not its place. ``cliffaudit threshold --rule
clip-band`` and the sweep's comparison still compute it, so a reader can see
where it and the fixed-point rule part ways.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.optimize import brentq
from scipy.special import logsumexp

from cliffaudit.theory.fixed_point import (
    LAMBDA_SEARCH_GRID,
    ROOT_XTOL,
    check_lambda,
    check_mass,
    log_odds,
    log_tail_kary,
    normalised_kary,
)

__all__ = ["ClipBand", "Regime", "check_clip", "clip_band_threshold", "clip_band_lambda_star", "exact_clip_band_lambda_star",
           "exact_tail_mass", "tail_ratio"]


class Regime(str, Enum):
    """Which way extrapolation moves the contract-breaking tail."""

    SHARPENING = "sharpening"  # b < p: the tail thins
    THICKENING = "thickening"  # b > p: the tail grows
    NEUTRAL = "neutral"  # b == p: the fixed point is the teacher for every lambda
    DEGENERATE = "degenerate"  # p == 1 or b == 1: a mass has no tail; lambda* is a limit


@dataclass(frozen=True)
class ClipBand:
    """The clip-band rule's lambda* (``math.inf`` when unbounded) and the edge it crosses:
    ``"upper"`` (ratio = c), ``"lower"`` (ratio = 1/c) or None."""

    lambda_star: float
    regime: Regime
    edge: str | None
    note: str = ""

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lambda_star)


def check_clip(clip: float) -> float:
    clip = float(clip)
    if not clip > 1.0 or math.isnan(clip) or math.isinf(clip):
        raise ValueError(f"clip must be a finite number > 1 (a PPO upper clip eps maps to clip = 1 + eps), "
                         f"got {clip!r}")
    return clip


def tail_ratio(p: float, b: float, lam: float) -> float:
    """Tail importance ratio ``(1-p)/t_lam`` of the Bernoulli fixed point (p, b < 1)."""
    p, b, lam = check_mass("p", p), check_mass("b", b), check_lambda(lam)
    if p == 1.0 or b == 1.0:
        raise ValueError("tail_ratio needs p < 1 and b < 1 (a mass of 1 has no tail)")
    logit_q = lam * log_odds(p) + (1.0 - lam) * log_odds(b)
    return float(np.exp(math.log1p(-p) + np.logaddexp(0.0, logit_q)))


def clip_band_threshold(p: float, b: float, clip: float) -> ClipBand:
    """The rule's lambda*(p, b, c) in closed form (docs/theory.md, "The clip-band rule")."""
    p, b, clip = check_mass("p", p), check_mass("b", b), check_clip(clip)
    if p == b:
        return ClipBand(math.inf, Regime.NEUTRAL, None, "b == p: the fixed point is the teacher for every lambda")
    if p == 1.0:
        return ClipBand(1.0, Regime.DEGENERATE, "upper", "p == 1 to floating-point precision: lambda* is the limit 1")
    if b == 1.0:
        return ClipBand(1.0, Regime.DEGENERATE, "lower", "b == 1 to floating-point precision: lambda* is the limit 1")
    logit_p, logit_b = log_odds(p), log_odds(b)
    log1m_p, log1m_b = math.log1p(-p), math.log1p(-b)
    if b < p:
        # Edge (1-p)/t = c: lambda* = ln[(1-b)(c-1+p) / (b(1-p))] / ln[p(1-b) / (b(1-p))]
        numerator = log1m_b + math.log(clip - 1.0 + p) - math.log(b) - log1m_p
        return ClipBand(numerator / (logit_p - logit_b), Regime.SHARPENING, "upper")
    tail_at_edge = clip * (1.0 - p)  # 1 - p is exact for p >= 1/2 (Sterbenz)
    if tail_at_edge >= 1.0:
        return ClipBand(math.inf, Regime.THICKENING, None, "c(1-p) >= 1: the tail can never exceed c times the teacher's")
    # Edge (1-p)/t = 1/c: lambda* = ln[b c (1-p) / ((1-b)(1-c(1-p)))] / ln[b(1-p) / ((1-b) p)]
    numerator = math.log(b) + math.log(clip) + log1m_p - log1m_b - math.log1p(-tail_at_edge)
    return ClipBand(numerator / (logit_b - logit_p), Regime.THICKENING, "lower")


def clip_band_lambda_star(p: float, b: float, clip: float) -> float:
    """The rule's lambda*; ``math.inf`` when unbounded."""
    return clip_band_threshold(p, b, clip).lambda_star


def exact_tail_mass(log_teacher, log_ref, valid, lam: float) -> float:
    """Tail mass of the exact K-ary fixed point at one position."""
    log_teacher, log_ref, valid = normalised_kary(log_teacher, log_ref, valid)
    return float(np.exp(log_tail_kary(log_teacher, log_ref, valid, [check_lambda(lam)])[0]))


def exact_clip_band_lambda_star(log_teacher, log_ref, valid, clip: float) -> float:
    """Smallest lam > 1 where the exact fixed point's ``(1-p)/t_lam`` leaves ``[1/c, c]``."""
    log_teacher, log_ref, valid = normalised_kary(log_teacher, log_ref, valid)
    log_clip = math.log(check_clip(clip))
    log_teacher_tail = logsumexp(log_teacher[~valid])

    def excess(lams):
        return np.abs(log_teacher_tail - log_tail_kary(log_teacher, log_ref, valid, lams)) - log_clip

    grid = LAMBDA_SEARCH_GRID[1:]
    values = excess(grid)
    outside = np.flatnonzero(values > 0)
    if outside.size == 0:
        return math.inf
    i = int(outside[0])
    hi, lo = float(grid[i]), 1.0 if i == 0 else float(grid[i - 1])
    if excess(np.array([lo]))[0] > 0:
        return lo
    return float(brentq(lambda x: float(excess(np.array([x]))[0]), lo, hi, xtol=ROOT_XTOL,
                        rtol=4 * np.finfo(float).eps))

