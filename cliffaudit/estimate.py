"""Statistics: per-position masses -> per-class p, b and thresholds, with intervals.

numpy only. Positions come from the warm start's own samples (the states OPD
visits), up to and including each sample's first violation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cliffaudit import theory

BOOTSTRAP_SAMPLES = 400
INTERVAL = 0.90
PERCENTILES = (10, 50, 90)
# The reduction and the exact fixed point "disagree" when they cross different
# edges or their thresholds differ by more than this fraction of (lambda* - 1).
DISAGREEMENT_TOLERANCE = 0.25


@dataclass
class ClassPositions:
    """The positions of one equivalence class, as arrays aligned by position."""

    label: str
    prompt: np.ndarray  # prompt index of each position (the bootstrap unit)
    teacher_valid: np.ndarray  # p_t
    teacher_tail: np.ndarray  # 1 - p_t, computed directly
    student_valid: np.ndarray  # b_t
    student_tail: np.ndarray
    tail_curve: np.ndarray  # [n, lambdas]: exact fixed-point tail t_lambda
    amplified_tokens: np.ndarray  # [n, k]
    amplified_log_ratio: np.ndarray  # [n, k]


@dataclass
class ClassEstimate:
    label: str
    positions: int
    prompts: int
    teacher_valid_mass: float  # p
    student_valid_mass: float  # b
    reduced: theory.Threshold
    base_neutral_lambda_star: float
    exact_lambda_star: float  # inf when the class never leaves the region on the grid
    exact_edge: str | None
    reduced_interval: tuple[float, float]
    exact_interval: tuple[float, float]
    reduced_percentiles: dict[int, float]
    exact_percentiles: dict[int, float]
    disagreement: bool
    amplified_tokens: list[tuple[int, float]]  # (token id, largest log pi_T/pi_ref) driving the exact tail

    @property
    def lambda_star(self) -> float:
        """The class's binding threshold: the smaller of its two."""
        return min(self.reduced.lambda_star, self.exact_lambda_star)

    @property
    def interval(self) -> tuple[float, float]:
        return self.reduced_interval if self.reduced.lambda_star <= self.exact_lambda_star else self.exact_interval


def exact_threshold_from_curve(teacher_tail: float, tail_curve: np.ndarray, lambdas: np.ndarray,
                               clip: float) -> tuple[float, str | None]:
    """First lambda > 1 on the grid where (1-p)/t_lambda leaves [1/c, c], interpolated
    linearly in log-ratio between grid points; (inf, None) if it never leaves."""
    found, edges = exact_thresholds_from_curves(np.array([teacher_tail], dtype=float),
                                                np.asarray(tail_curve, dtype=float)[None, :], lambdas, clip)
    return float(found[0]), edges[0]


def exact_thresholds_from_curves(teacher_tails: np.ndarray, tail_curves: np.ndarray, lambdas: np.ndarray,
                                 clip: float) -> tuple[np.ndarray, list[str | None]]:
    """``exact_threshold_from_curve`` for many rows at once: [n] tails, [n, lambdas] curves."""
    rows = np.arange(len(teacher_tails))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ratio = np.where(teacher_tails[:, None] > 0,
                             np.log(np.where(teacher_tails > 0, teacher_tails, 1.0))[:, None] - np.log(tail_curves),
                             np.inf)
        excess = np.abs(log_ratio) - math.log(clip)
        outside = (excess > 0) & (lambdas > 1.0)[None, :]
        leaves = outside.any(axis=1)
        j = outside.argmax(axis=1)  # the first grid point outside, where there is one
        before = np.maximum(j - 1, 0)
        lo, hi = excess[rows, before], excess[rows, j]
        fraction = np.where(hi != lo, -lo / (hi - lo), 1.0)
        between = lambdas[before] + fraction * (lambdas[j] - lambdas[before])
    interpolated = (j > 0) & np.isfinite(hi) & (lambdas[before] >= 1.0)
    found = np.where(leaves, np.where(interpolated, between, lambdas[j]), math.inf)
    edges = [("upper" if log_ratio[i, j[i]] > 0 else "lower") if leaves[i] else None for i in rows]
    return found, edges


def _reduced(p: float, b: float, clip: float) -> theory.Threshold:
    # A mean mass of exactly 0 cannot occur for a class that was visited; clamp to
    # the smallest positive float so the theory's domain check holds.
    return theory.threshold(min(max(p, 1e-300), 1.0), min(max(b, 1e-300), 1.0), clip)


def _per_position_reduced(cls: ClassPositions, clip: float) -> np.ndarray:
    return np.array([_reduced(1.0 - t, bv, clip).lambda_star for t, bv in zip(cls.teacher_tail, cls.student_valid)])


def _per_position_exact(cls: ClassPositions, lambdas: np.ndarray, clip: float) -> np.ndarray:
    return exact_thresholds_from_curves(cls.teacher_tail, cls.tail_curve, lambdas, clip)[0]


def _percentiles(values: np.ndarray) -> dict[int, float]:
    # Unbounded thresholds count as +inf, so a percentile can be unbounded too.
    return {q: float(np.percentile(values, q, method="lower")) for q in PERCENTILES}


def _bootstrap(cls: ClassPositions, lambdas: np.ndarray, clip: float, rng: np.random.Generator):
    """90% intervals over prompts for the reduced and exact thresholds."""
    prompts, inverse = np.unique(cls.prompt, return_inverse=True)
    n_prompts = len(prompts)
    counts = np.bincount(inverse, minlength=n_prompts).astype(float)
    tail_t = np.bincount(inverse, weights=cls.teacher_tail, minlength=n_prompts)
    valid_s = np.bincount(inverse, weights=cls.student_valid, minlength=n_prompts)
    curves = np.stack([np.bincount(inverse, weights=cls.tail_curve[:, j], minlength=n_prompts)
                       for j in range(cls.tail_curve.shape[1])], axis=1)
    weights = rng.multinomial(n_prompts, np.full(n_prompts, 1.0 / n_prompts), size=BOOTSTRAP_SAMPLES).astype(float)
    n = weights @ counts
    keep = n > 0
    weights, n = weights[keep], n[keep]
    p_tail = (weights @ tail_t) / n
    b = (weights @ valid_s) / n
    mean_curves = (weights @ curves) / n[:, None]
    reduced = np.array([_reduced(1.0 - t, bb, clip).lambda_star for t, bb in zip(p_tail, b)])
    exact = exact_thresholds_from_curves(p_tail, mean_curves, lambdas, clip)[0]
    lo_q, hi_q = 50 * (1 - INTERVAL), 50 * (1 + INTERVAL)

    def interval(values):
        return float(np.percentile(values, lo_q, method="lower")), float(np.percentile(values, hi_q, method="higher"))

    return interval(reduced), interval(exact)


def estimate_class(cls: ClassPositions, lambdas: np.ndarray, clip: float, seed: int = 0) -> ClassEstimate:
    teacher_tail = float(cls.teacher_tail.mean())
    p = 1.0 - teacher_tail
    b = float(cls.student_valid.mean())
    reduced = _reduced(p, b, clip)
    exact, exact_edge = exact_threshold_from_curve(teacher_tail, cls.tail_curve.mean(axis=0), lambdas, clip)
    rng = np.random.default_rng([seed, _stable_hash(cls.label)])
    reduced_interval, exact_interval = _bootstrap(cls, lambdas, clip, rng)
    disagreement = _disagree(reduced, exact, exact_edge, float(lambdas[-1]))
    return ClassEstimate(
        label=cls.label, positions=len(cls.prompt), prompts=len(np.unique(cls.prompt)),
        teacher_valid_mass=p, student_valid_mass=b, reduced=reduced,
        base_neutral_lambda_star=_reduced(p, 0.5, clip).lambda_star,
        exact_lambda_star=exact, exact_edge=exact_edge,
        reduced_interval=reduced_interval, exact_interval=exact_interval,
        reduced_percentiles=_percentiles(_per_position_reduced(cls, clip)),
        exact_percentiles=_percentiles(_per_position_exact(cls, lambdas, clip)),
        disagreement=disagreement,
        amplified_tokens=_top_amplified(cls) if disagreement else [],
    )


def _disagree(reduced: theory.Threshold, exact: float, exact_edge: str | None, lambda_max: float) -> bool:
    """Do the two thresholds tell different stories on the grid? The exact one is
    only known up to the grid's end, so both are censored there."""
    reduced_value, exact_value = min(reduced.lambda_star, lambda_max), min(exact, lambda_max)
    if reduced_value >= lambda_max and exact_value >= lambda_max:
        return False
    if reduced_value < lambda_max and exact_value < lambda_max and reduced.edge != exact_edge:
        return True
    scale = max(min(reduced_value, exact_value) - 1.0, 1e-9)
    return abs(reduced_value - exact_value) / scale > DISAGREEMENT_TOLERANCE


def _top_amplified(cls: ClassPositions, top: int = 5) -> list[tuple[int, float]]:
    best: dict[int, float] = {}
    for token, log_ratio in zip(cls.amplified_tokens.ravel().tolist(), cls.amplified_log_ratio.ravel().tolist()):
        if math.isfinite(log_ratio) and log_ratio > best.get(token, -math.inf):
            best[token] = log_ratio
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; a report must not depend on it.
    return int.from_bytes(text.encode()[:8].ljust(8, b"\0"), "little") ^ len(text)


def binding_class(estimates: list[ClassEstimate]) -> ClassEstimate | None:
    """The class with the smallest threshold (the smaller of its two)."""
    bounded = [e for e in estimates if math.isfinite(e.lambda_star)]
    return min(bounded, key=lambda e: (e.lambda_star, e.label)) if bounded else None


# ----------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """Precondition (a): per-position masses calibrated at the sequence level."""

    predicted_validity: float  # mean over samples of prod_t (valid mass of the sampling model)
    observed_validity: float  # strict parse rate of those samples
    ece: float  # expected calibration error over positions, quantile bins
    curve_predicted: list[float]  # reliability diagram: mean predicted per bin
    curve_observed: list[float]  # and observed frequency per bin


def calibration(position_valid_mass: np.ndarray, position_outcome: np.ndarray, sample_log_validity: np.ndarray,
                sample_valid: np.ndarray, bins: int = 10) -> Calibration:
    """Calibration of one model on its own samples.

    ``position_valid_mass``: the model's valid mass at each visited position;
    ``position_outcome``: whether the token it sampled there kept the contract;
    ``sample_log_validity``: per sample, the sum of log valid masses over its
    positions (its predicted probability of a strictly valid output, if complete);
    ``sample_valid``: whether the sample is strictly valid.
    """
    from sklearn.calibration import calibration_curve

    outcome = position_outcome.astype(int)
    prob = np.clip(position_valid_mass, 0.0, 1.0)
    if len(np.unique(outcome)) < 2:
        # calibration_curve needs both outcomes; with one, each bin's frequency is that outcome.
        observed, predicted = np.array([outcome.mean()]), np.array([prob.mean()])
        ece = abs(float(prob.mean() - outcome.mean()))
    else:
        observed, predicted = calibration_curve(outcome, prob, n_bins=bins, strategy="quantile")
        edges = np.unique(np.quantile(prob, np.linspace(0, 1, bins + 1)))
        which = np.clip(np.searchsorted(edges[1:-1], prob, side="right"), 0, len(edges) - 2)
        ece = float(sum(abs(prob[which == k].mean() - outcome[which == k].mean()) * (which == k).mean()
                        for k in range(len(edges) - 1) if (which == k).any()))
    return Calibration(float(np.exp(sample_log_validity).mean()), float(sample_valid.mean()), ece,
                       predicted.tolist(), observed.tolist())
