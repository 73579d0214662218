"""Where the G-OPD fixed point stops producing valid outputs: its parse rate and lambda_v.

Pure math on numpy/scipy. ``docs/theory.md`` derives each formula; names follow it.

At one contract position, with ``p`` the teacher's mass on the contract-preserving
(valid) tokens and ``b`` the reference's, G-OPD with per-token advantages settles at

    pi_lam(v) ∝ pi_T(v)^lam * pi_ref(v)^(1-lam)

Its valid mass ``q_lam`` is the position's contribution to the fixed point's parse
rate ``V(lam)``; over a sequence of positions the contributions multiply. The cliff
``lambda_v`` is where ``V`` falls more than ``drop`` below the best rate at smaller
lambdas, by the same rule the sweep uses to call an observed onset
(``onset_interval``), so a prediction and an observation mean the same thing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, logsumexp

__all__ = [
    "DEFAULT_DROP",
    "LAMBDA_SEARCH_GRID",
    "bernoulli_lambda_v",
    "bernoulli_valid_mass",
    "check_drop",
    "check_lambda",
    "check_mass",
    "drop_point",
    "exact_lambda_v",
    "exact_valid_mass",
    "log_odds",
    "log_tail_kary",
    "normalised_kary",
    "onset_interval",
    "sequence_parse_rate",
]

DEFAULT_DROP = 0.10  # absolute fall in parse rate that counts as a cliff (the sweep's onset tolerance)

# Search grid for thresholds without a closed form: fine where cliffs live
# (lambda in (1, 4]), geometric beyond. Crossings are then refined by brentq.
LAMBDA_SEARCH_GRID = np.concatenate([np.linspace(1.0, 4.0, 3001), np.geomspace(4.0, 1.0e6, 1201)[1:]])
ROOT_XTOL = 1e-13


# --------------------------------------------------------------------------- checks


def check_mass(name: str, value: float) -> float:
    value = float(value)
    if not (0.0 < value <= 1.0) or math.isnan(value):
        raise ValueError(f"{name} must be a probability in (0, 1], got {value!r}")
    return value


def check_lambda(lam: float) -> float:
    lam = float(lam)
    if not math.isfinite(lam) or lam < 0.0:
        raise ValueError(f"lambda must be a finite number >= 0, got {lam!r}")
    return lam


def check_drop(drop: float) -> float:
    drop = float(drop)
    if not (0.0 < drop < 1.0) or math.isnan(drop):
        raise ValueError(f"drop must be in (0, 1), an absolute fall in parse rate; got {drop!r}")
    return drop


def log_odds(mass: float) -> float:
    # log(m) - log1p(-m): exact near 0 and as exact near 1 as the float allows.
    return math.log(mass) - math.log1p(-mass)


# --------------------------------------------------------------------------- the onset rule


def onset_interval(lambdas, rates, drop: float = DEFAULT_DROP) -> tuple[float, float] | None:
    """(previous lambda, first lambda] of a cliff on a curve, or None.

    Walk lambda upwards: the onset is the first lambda whose rate is more than
    ``drop`` below the best rate at the smaller lambdas *and stays there* at every
    larger lambda. For a curve that only falls, the best earlier rate is the rate
    at the first lambda; a rise followed by a fall is judged from its top. The
    sweep calls observed onsets by this rule; predictions use it on V(lambda).
    """
    lambdas, rates = np.asarray(lambdas, dtype=float), np.asarray(rates, dtype=float)
    order = np.argsort(lambdas, kind="stable")
    lambdas, rates = lambdas[order], rates[order]
    if lambdas.size < 2:
        return None
    best_before = np.maximum.accumulate(rates)[:-1]  # best rate at lambdas[:j], for j = 1..n-1
    highest_from = np.maximum.accumulate(rates[::-1])[::-1][1:]  # highest rate at lambdas[j:]
    fallen = np.flatnonzero(highest_from < best_before - drop)
    if fallen.size == 0:
        return None
    j = int(fallen[0]) + 1
    return float(lambdas[j - 1]), float(lambdas[j])


def drop_point(lambdas, rates, drop: float = DEFAULT_DROP) -> float:
    """lambda_v on a sampled curve: the onset interval's crossing of (best earlier
    rate - drop), interpolated linearly; ``math.inf`` when the curve has no cliff."""
    lambdas, rates = np.asarray(lambdas, dtype=float), np.asarray(rates, dtype=float)
    order = np.argsort(lambdas, kind="stable")
    lambdas, rates = lambdas[order], rates[order]
    found = onset_interval(lambdas, rates, drop)
    if found is None:
        return math.inf
    lo, hi = found
    j = int(np.searchsorted(lambdas, hi))
    i = j - 1
    target = rates[: i + 1].max() - drop
    if rates[i] <= target or rates[i] == rates[j]:
        return hi
    return float(lo + (hi - lo) * (rates[i] - target) / (rates[i] - rates[j]))


# --------------------------------------------------------------------------- Bernoulli reduction


def bernoulli_valid_mass(p: float, b: float, lam: float) -> float:
    """``q_lam = sigmoid(lam*logit p + (1-lam)*logit b)``, with the limits of a mass of 1."""
    p, b, lam = check_mass("p", p), check_mass("b", b), check_lambda(lam)
    if p == 1.0 and (b < 1.0 or lam > 0):
        return 1.0  # the teacher has no tail, so pi_T^lam leaves none for lam > 0
    if b == 1.0:
        # The reference has no tail: pi_ref^(1-lam) is 0 there below lam = 1 and
        # unbounded above it, where all mass goes to the teacher's tail.
        return 1.0 if lam <= 1.0 else 0.0
    return float(expit(lam * log_odds(p) + (1.0 - lam) * log_odds(b)))


def bernoulli_lambda_v(p: float, b: float, drop: float = DEFAULT_DROP) -> float:
    """Closed-form cliff of one Bernoulli position: q falls ``drop`` below ``q_1 = p`` at

        lambda_v = [logit(p - drop) - logit b] / [logit p - logit b]

    only when the reference keeps the format better than the teacher (b > p); for
    b <= p extrapolation sharpens the format and there is no cliff (``math.inf``).
    Limits: b == 1 > p gives 1 (any lam > 1 empties the valid set); p <= drop gives
    inf (q cannot fall by ``drop``).
    """
    p, b, drop = check_mass("p", p), check_mass("b", b), check_drop(drop)
    if b <= p or p <= drop:
        return math.inf
    if b == 1.0:
        return 1.0
    logit_b = log_odds(b)
    return (log_odds(p - drop) - logit_b) / (log_odds(p) - logit_b)


# --------------------------------------------------------------------------- exact K-ary fixed point


def normalised_kary(log_teacher, log_ref, valid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checked, normalised log-distributions over the last axis and a boolean valid mask of their shape."""
    out = []
    for name, logs in (("log_teacher", log_teacher), ("log_ref", log_ref)):
        logs = np.asarray(logs, dtype=np.float64)
        if logs.ndim < 1 or logs.shape[-1] < 2:
            raise ValueError(f"{name} must hold distributions over a vocabulary of at least 2 tokens")
        if np.isnan(logs).any() or np.isposinf(logs).any():
            raise ValueError(f"{name} holds nan or +inf log-probabilities")
        out.append(logs - logsumexp(logs, axis=-1, keepdims=True))
    valid = np.asarray(valid, dtype=bool)
    if not (out[0].shape == out[1].shape == valid.shape):
        raise ValueError(f"log_teacher, log_ref and valid must share one shape, got "
                         f"{out[0].shape}, {out[1].shape}, {valid.shape}")
    if (valid.all(axis=-1) | ~valid.any(axis=-1)).any():
        raise ValueError("valid must mark some tokens valid and some invalid at every position")
    return out[0], out[1], valid


def log_tail_kary(log_teacher: np.ndarray, log_ref: np.ndarray, valid: np.ndarray, lams) -> np.ndarray:
    """log t_lam of ``pi_T^lam pi_ref^(1-lam)`` over the invalid tokens, [..., lambdas],
    for normalised inputs of shape [..., K] (``normalised_kary``)."""
    lams = np.atleast_1d(np.asarray(lams, dtype=np.float64))
    positions = int(np.prod(log_teacher.shape[:-1], dtype=np.int64))
    lt = log_teacher.reshape(positions, -1)
    lr = log_ref.reshape(positions, -1)
    ok = valid.reshape(positions, -1)
    out = np.empty((positions, lams.size))
    chunk = max(1, int(4_000_000 // lt.size))
    for start in range(0, lams.size, chunk):
        lam = lams[start:start + chunk, None, None]
        # -inf * 0 would be nan: a token one model never emits contributes nothing
        # where its exponent is 0, and everything/nothing elsewhere, as the limit says.
        with np.errstate(invalid="ignore"):
            log_w = np.where(lam == 0, 0.0, lam * lt) + np.where(lam == 1, 0.0, (1.0 - lam) * lr)
        log_w = np.nan_to_num(log_w, nan=-np.inf)
        tail = logsumexp(np.where(ok, -np.inf, log_w), axis=-1) - logsumexp(log_w, axis=-1)
        out[:, start:start + chunk] = tail.T
    return out.reshape(*log_teacher.shape[:-1], lams.size)


def exact_valid_mass(log_teacher, log_ref, valid, lams) -> np.ndarray:
    """Valid mass of the exact K-ary fixed point at each lambda in ``lams``."""
    log_teacher, log_ref, valid = normalised_kary(log_teacher, log_ref, valid)
    for lam in np.atleast_1d(lams):
        check_lambda(lam)
    return -np.expm1(log_tail_kary(log_teacher, log_ref, valid, lams))


def sequence_parse_rate(log_teacher, log_ref, valid, lams) -> np.ndarray:
    """Parse rate of a fixed-length output whose positions are decided independently
    ([positions, K] inputs): the product of the positions' valid masses."""
    log_teacher, log_ref, valid = normalised_kary(log_teacher, log_ref, valid)
    return _product_of_valid_masses(log_tail_kary(log_teacher, log_ref, valid, lams), np.atleast_1d(lams).size)


def _product_of_valid_masses(log_tail: np.ndarray, n_lambdas: int) -> np.ndarray:
    with np.errstate(divide="ignore"):  # a valid mass of 0 makes the product 0
        return np.exp(np.log(-np.expm1(log_tail)).reshape(-1, n_lambdas).sum(axis=0))


def exact_lambda_v(log_teacher, log_ref, valid, drop: float = DEFAULT_DROP) -> float:
    """The cliff of the exact fixed point: one position ([K] inputs) or a sequence of
    independent positions ([positions, K]); ``math.inf`` when there is none.

    ``V`` need not be monotone (a breaking token the reference suppresses more than
    the teacher grows like ``(pi_T/pi_ref)^(lam-1)`` only after the valid set has
    sharpened), so the onset rule runs on a grid (step 1e-3 on [1, 4], geometric to
    1e6) and the crossing is refined by Brent's method.
    """
    drop = check_drop(drop)
    log_teacher, log_ref, valid = normalised_kary(log_teacher, log_ref, valid)

    def rate(lams):
        return _product_of_valid_masses(log_tail_kary(log_teacher, log_ref, valid, lams), np.atleast_1d(lams).size)

    grid = LAMBDA_SEARCH_GRID
    rates = rate(grid)
    found = onset_interval(grid, rates, drop)
    if found is None:
        return math.inf
    lo, hi = found
    i = int(np.searchsorted(grid, lo))
    target = rates[: i + 1].max() - drop
    return float(brentq(lambda x: float(rate(np.array([x]))[0]) - target, lo, hi, xtol=ROOT_XTOL,
                        rtol=4 * np.finfo(float).eps))
