"""The cliff threshold lambda* of generalized on-policy distillation (G-OPD).

Pure math on numpy/scipy: no torch, no I/O. ``docs/theory.md`` derives every
formula here; the names follow it.

Notation at one contract position:

* ``p``  -- teacher mass on the contract-preserving outcome (``teacher_valid_mass``)
* ``b``  -- warm-start (reference) mass on it (``student_valid_mass``)
* ``c``  -- importance-weight cap of the OPD estimator (``clip``), ``c > 1``
* ``lam`` -- the G-OPD reward scale lambda

The G-OPD fixed point with the warm start as reference is
``pi_lam ∝ pi_teacher^lam * pi_ref^(1-lam)``. Its contract-breaking tail mass
``t_lam`` must stay inside the clip-safe region ``1/c <= (1-p)/t_lam <= c``;
lambda* is the smallest ``lam > 1`` where it leaves.

Everything is computed in log-odds / log-space so that masses within 1e-12 of
0 or 1 keep their precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logsumexp

__all__ = [
    "Regime",
    "Threshold",
    "base_neutral_lambda_star",
    "exact_tail_mass",
    "exact_tail_ratio",
    "exact_lambda_star",
    "finite_budget_lambda_star",
    "finite_budget_tail_ratio",
    "fixed_point_tail_mass",
    "lambda_star",
    "tail_ratio",
    "threshold",
]

# Search grid for thresholds without a closed form: fine where cliffs live
# (lambda in (1, 4]), geometric beyond. Crossings are then refined by brentq.
_FINE_GRID = np.linspace(1.0, 4.0, 3001)[1:]
_COARSE_GRID = np.geomspace(4.0, 1.0e6, 1201)[1:]
LAMBDA_SEARCH_GRID = np.concatenate([_FINE_GRID, _COARSE_GRID])
_ROOT_XTOL = 1e-13


class Regime(str, Enum):
    """Which way extrapolation moves the contract-breaking tail."""

    SHARPENING = "sharpening"  # b < p: the tail thins; the cliff is over-sharpening (ratio > c)
    THICKENING = "thickening"  # b > p: the tail grows; the cliff is tail amplification (ratio < 1/c)
    NEUTRAL = "neutral"  # b == p: the fixed point is the teacher for every lambda
    DEGENERATE = "degenerate"  # p == 1 or b == 1: a mass has no tail; lambda* is a limit


@dataclass(frozen=True)
class Threshold:
    """lambda* with the facts a reader needs to trust it.

    ``lambda_star`` is ``math.inf`` when no finite lambda leaves the region.
    ``edge`` names the region edge crossed: ``"upper"`` (ratio = c) or
    ``"lower"`` (ratio = 1/c), ``None`` when unbounded.
    """

    lambda_star: float
    regime: Regime
    edge: str | None
    note: str = ""

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.lambda_star)


# --------------------------------------------------------------------------- checks


def _check_mass(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise ValueError(f"{name} must be a probability in (0, 1], got {value!r}")
    return value


def _check_clip(clip: float) -> float:
    clip = float(clip)
    if not clip > 1.0 or math.isnan(clip):
        raise ValueError(f"clip must be > 1 (a PPO upper clip eps maps to clip = 1 + eps), got {clip!r}")
    return clip


def _check_lambda(lam: float) -> float:
    lam = float(lam)
    if not math.isfinite(lam) or lam < 0.0:
        raise ValueError(f"lambda must be a finite number >= 0, got {lam!r}")
    return lam


def _logit(mass: float) -> float:
    # log(m) - log1p(-m): exact near 0 and as exact near 1 as the float allows.
    return math.log(mass) - math.log1p(-mass)


def _log_tail(mass: float) -> float:
    return math.log1p(-mass)


# --------------------------------------------------------------------------- Bernoulli reduction


def fixed_point_tail_mass(p: float, b: float, lam: float) -> float:
    """Tail mass ``t_lam = 1 - q_lam`` of the Bernoulli fixed point,
    ``logit q_lam = lam*logit(p) + (1-lam)*logit(b)``, for ``0 < p, b < 1``."""
    p, b, lam = _check_mass("p", p), _check_mass("b", b), _check_lambda(lam)
    if p == 1.0 or b == 1.0:
        raise ValueError("fixed_point_tail_mass needs p < 1 and b < 1 (a mass of 1 has no tail)")
    logit_q = lam * _logit(p) + (1.0 - lam) * _logit(b)
    return float(expit(-logit_q))


def _log_ratio_bernoulli(p: float, b: float, lam: np.ndarray | float) -> np.ndarray | float:
    """``log((1-p)/t_lam)``; ``log t = -softplus(logit q)`` stays finite for any lam."""
    logit_q = lam * _logit(p) + (1.0 - lam) * _logit(b)
    log_t = -np.logaddexp(0.0, logit_q)
    return _log_tail(p) - log_t


def tail_ratio(p: float, b: float, lam: float) -> float:
    """Tail importance ratio ``(1-p)/t_lam`` of the Bernoulli fixed point."""
    p, b, lam = _check_mass("p", p), _check_mass("b", b), _check_lambda(lam)
    if p == 1.0 or b == 1.0:
        raise ValueError("tail_ratio needs p < 1 and b < 1 (a mass of 1 has no tail)")
    return float(np.exp(_log_ratio_bernoulli(p, b, lam)))


def threshold(p: float, b: float, clip: float) -> Threshold:
    """lambda*(p, b, c) in closed form, with its regime and crossed edge."""
    p, b, clip = _check_mass("p", p), _check_mass("b", b), _check_clip(clip)

    if p == b:
        return Threshold(math.inf, Regime.NEUTRAL, None, "b == p: the fixed point is the teacher for every lambda")
    if p == 1.0:
        # The teacher has no tail: any lambda > 1 drives the fixed point's tail below
        # (1-p)/c = 0 in the limit, so lambda* -> 1 (the limit p -> 1 of the b < p form).
        return Threshold(1.0, Regime.DEGENERATE, "upper", "p == 1 to floating-point precision: lambda* is the limit 1")
    if b == 1.0:
        # The warm start has no tail: pi_ref^(1-lam) is infinite on tokens it never
        # emits, so for any lambda > 1 the fixed point's tail is 1 (limit b -> 1).
        return Threshold(1.0, Regime.DEGENERATE, "lower", "b == 1 to floating-point precision: lambda* is the limit 1")

    logit_p, logit_b = _logit(p), _logit(b)
    log1m_p, log1m_b = _log_tail(p), _log_tail(b)

    if b < p:
        # Edge (1-p)/t = c, i.e. t = (1-p)/c, q = (c-1+p)/c:
        # lambda* = ln[(1-b)(c-1+p) / (b(1-p))] / ln[p(1-b) / (b(1-p))]
        numerator = log1m_b + math.log(clip - 1.0 + p) - math.log(b) - log1m_p
        return Threshold(numerator / (logit_p - logit_b), Regime.SHARPENING, "upper")

    # b > p. Edge (1-p)/t = 1/c, i.e. t = c(1-p); reachable only if c(1-p) < 1.
    tail_at_edge = clip * (1.0 - p)  # 1 - p is exact for p >= 1/2 (Sterbenz)
    if tail_at_edge >= 1.0:
        return Threshold(
            math.inf, Regime.THICKENING, None, "c(1-p) >= 1: the tail can never exceed c times the teacher's"
        )
    # lambda* = ln[b c (1-p) / ((1-b)(1-c(1-p)))] / ln[b(1-p) / ((1-b) p)]
    numerator = math.log(b) + math.log(clip) + log1m_p - log1m_b - math.log1p(-tail_at_edge)
    return Threshold(numerator / (logit_b - logit_p), Regime.THICKENING, "lower")


def lambda_star(p: float, b: float, clip: float) -> float:
    """Base-relative lambda*(p, b, c); ``math.inf`` when unbounded."""
    return threshold(p, b, clip).lambda_star


def base_neutral_lambda_star(p: float, clip: float) -> float:
    """Base-neutral marker lambda*(p, c) = lambda*(p, 1/2, c)."""
    return lambda_star(p, 0.5, clip)


# --------------------------------------------------------------------------- exact K-ary fixed point


def _normalised_logs(log_probs: np.ndarray, name: str) -> np.ndarray:
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 1 or log_probs.size < 2:
        raise ValueError(f"{name} must be a 1-D array over a vocabulary of at least 2 tokens")
    if np.isnan(log_probs).any() or np.isposinf(log_probs).any():
        raise ValueError(f"{name} holds nan or +inf log-probabilities")
    return log_probs - logsumexp(log_probs)


def _check_kary(log_teacher, log_ref, valid):
    log_teacher = _normalised_logs(log_teacher, "log_teacher")
    log_ref = _normalised_logs(log_ref, "log_ref")
    valid = np.asarray(valid, dtype=bool)
    if not (log_teacher.shape == log_ref.shape == valid.shape):
        raise ValueError(
            f"log_teacher, log_ref and valid must share one shape, got "
            f"{log_teacher.shape}, {log_ref.shape}, {valid.shape}"
        )
    if valid.all() or not valid.any():
        raise ValueError("valid must mark some tokens valid and some invalid")
    return log_teacher, log_ref, valid


def _log_tail_kary(log_teacher, log_ref, valid, lams: np.ndarray) -> np.ndarray:
    """log t_lam for each lam in ``lams``, chunked so memory stays bounded."""
    lams = np.atleast_1d(np.asarray(lams, dtype=np.float64))
    # -inf * 0 would be nan: a token one model never emits contributes nothing
    # where its exponent is 0, and everything/nothing elsewhere, as the limit says.
    out = np.empty_like(lams)
    chunk = max(1, int(4_000_000 // log_teacher.size))
    for start in range(0, lams.size, chunk):
        lam = lams[start : start + chunk, None]
        with np.errstate(invalid="ignore"):
            log_w = np.where(lam == 0, 0.0, lam * log_teacher) + np.where(lam == 1, 0.0, (1.0 - lam) * log_ref)
        log_w = np.nan_to_num(log_w, nan=-np.inf)
        out[start : start + chunk] = logsumexp(np.where(valid, -np.inf, log_w), axis=1) - logsumexp(log_w, axis=1)
    return out


def exact_tail_mass(log_teacher, log_ref, valid, lam: float) -> float:
    """Exact tail mass of the K-ary fixed point ``pi_T^lam * pi_ref^(1-lam)``
    over the invalid tokens (``valid`` is the contract-preserving mask)."""
    log_teacher, log_ref, valid = _check_kary(log_teacher, log_ref, valid)
    return float(np.exp(_log_tail_kary(log_teacher, log_ref, valid, np.array([_check_lambda(lam)]))[0]))


def exact_tail_ratio(log_teacher, log_ref, valid, lam: float) -> float:
    """``(1-p)/t_lam`` of the exact K-ary fixed point."""
    log_teacher, log_ref, valid = _check_kary(log_teacher, log_ref, valid)
    log_teacher_tail = logsumexp(log_teacher[~valid])
    log_t = _log_tail_kary(log_teacher, log_ref, valid, np.array([_check_lambda(lam)]))[0]
    return float(np.exp(log_teacher_tail - log_t))


def _first_exit(excess, grid: np.ndarray = LAMBDA_SEARCH_GRID) -> float:
    """Smallest lam > 1 with ``excess(lam) > 0``, on ``grid`` refined by brentq.

    ``excess`` is vectorised and positive outside the region. Excursions narrower
    than the grid step (1e-3 below lambda = 4) can be missed; docs/theory.md.
    """
    values = excess(grid)
    outside = np.flatnonzero(values > 0)
    if outside.size == 0:
        return math.inf
    i = int(outside[0])
    hi = float(grid[i])
    lo = 1.0 if i == 0 else float(grid[i - 1])
    if excess(np.array([lo]))[0] > 0:  # already outside at the bracket's start
        return lo
    return float(brentq(lambda x: float(excess(np.array([x]))[0]), lo, hi, xtol=_ROOT_XTOL, rtol=4 * np.finfo(float).eps))


def exact_lambda_star(log_teacher, log_ref, valid, clip: float) -> float:
    """Smallest lam > 1 where the exact fixed point's ``(1-p)/t_lam`` leaves ``[1/c, c]``.

    Unlike the Bernoulli reduction this can be far lower: a breaking token the
    warm start suppresses more than the teacher grows like ``(pi_T/pi_ref)^(lam-1)``.
    """
    log_teacher, log_ref, valid = _check_kary(log_teacher, log_ref, valid)
    log_clip = math.log(_check_clip(clip))
    log_teacher_tail = logsumexp(log_teacher[~valid])

    def excess(lams):
        return np.abs(log_teacher_tail - _log_tail_kary(log_teacher, log_ref, valid, lams)) - log_clip

    return _first_exit(excess)


# --------------------------------------------------------------------------- finite budget


def _check_budget(steps: int, eta: float) -> tuple[int, float]:
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, got {steps!r}")
    eta = float(eta)
    # eta * q(1-q) <= eta/4 <= 1 keeps every step from overshooting the fixed point,
    # so the logit approaches z_lam monotonically (docs/theory.md, section 6).
    if not 0.0 < eta <= 4.0:
        raise ValueError(f"eta must be in (0, 4], got {eta!r}")
    return int(steps), eta


def _logit_after(p: float, b: float, lams: np.ndarray, steps: int, eta: float) -> np.ndarray:
    """Logit after ``steps`` of ``z += eta*q(1-q)*(z_lam - z)`` from ``z_0 = logit(b)``."""
    z_target = lams * _logit(p) + (1.0 - lams) * _logit(b)
    z = np.full_like(z_target, _logit(b))
    for _ in range(steps):
        q = expit(z)
        z = z + eta * q * (1.0 - q) * (z_target - z)
    return z


def finite_budget_tail_ratio(p: float, b: float, lam: float, steps: int, eta: float) -> float:
    """``(1-p)/t`` after ``steps`` of the logit dynamics towards the fixed point."""
    p, b, lam = _check_mass("p", p), _check_mass("b", b), _check_lambda(lam)
    steps, eta = _check_budget(steps, eta)
    if p == 1.0 or b == 1.0:
        raise ValueError("finite_budget_tail_ratio needs p < 1 and b < 1")
    z = _logit_after(p, b, np.array([lam]), steps, eta)[0]
    return float(np.exp(_log_tail(p) + np.logaddexp(0.0, z)))


def finite_budget_lambda_star(p: float, b: float, clip: float, steps: int, eta: float) -> float:
    """lambda*_T: smallest lam whose tail ratio after ``steps`` crosses the edge the
    fixed point crosses (upper when b < p, lower when b > p).

    Only that edge counts: the warm start itself may sit outside the region on the
    other side (e.g. p=0.99, b=0.9 gives (1-p)/(1-b) = 0.1), and training moves it
    *towards* the teacher there. lambda*_T >= lambda* and falls to it as T grows.
    """
    limit = threshold(p, b, clip)
    steps, eta = _check_budget(steps, eta)
    if not limit.bounded or limit.regime is Regime.DEGENERATE:
        return limit.lambda_star
    log_clip = math.log(clip)
    sign = 1.0 if limit.edge == "upper" else -1.0

    def excess(lams):
        z = _logit_after(p, b, lams, steps, eta)
        log_ratio = _log_tail(p) + np.logaddexp(0.0, z)
        return sign * log_ratio - log_clip

    return _first_exit(excess)
