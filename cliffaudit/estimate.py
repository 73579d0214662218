"""Statistics: per-position masses -> the predicted parse rate V(lambda), its cliff,
the class that drives it, whether training reaches it, and per-class masses.

numpy (and scipy's binomial interval) only. The estimates run on two sets of samples:

* the **teacher's** samples carry the analytic V(lambda). At lambda = 1 the G-OPD
  fixed point is the teacher, so its samples are exact draws of it; for lambda > 1
  the fixed point moves further from the reference along the same line, and the
  teacher is the closest of the models the audit can sample. Each sample's
  predicted validity is the product over its positions of the fixed point's valid
  mass, ``prod_t (1 - t_lambda)``; V is their mean (docs/theory.md, "The analytic curve").
* the **warm start's** samples are the states on-policy training visits: they give
  the driving draws per rollout (``theory.reachability``).

Fixed-point rollouts (sampled from ``pi_lambda`` itself, ``probe.sample_fixed_point``)
are the ground truth of V at the lambdas ``next_rollout_lambda`` picks.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np

from cliffaudit import theory

BOOTSTRAP_SAMPLES = 400
INTERVAL = 0.90
NORMAL_90 = 1.6448536269514722  # two-sided 90% quantile of the standard normal


@dataclass
class Positions:
    """One model's samples, one entry per scored position (float64 masses)."""

    sample: np.ndarray  # index of the position's sample
    label: np.ndarray  # class label (str)
    teacher_valid: np.ndarray
    teacher_tail: np.ndarray
    student_valid: np.ndarray
    student_tail: np.ndarray
    reference_valid: np.ndarray
    reference_tail: np.ndarray
    student_amplified: np.ndarray  # warm start's mass on amplified breaks
    log_tail_curve: np.ndarray  # [n, lambdas] or [n, 0]
    log_pull_curve: np.ndarray  # [n, lambdas] or [n, 0]
    amplified_tokens: np.ndarray  # [n, k]
    amplified_log_ratio: np.ndarray  # [n, k]
    sample_record: np.ndarray  # record index of each sample (the bootstrap unit)

    @property
    def n_samples(self) -> int:
        return len(self.sample_record)


# ----------------------------------------------------------------------------- the analytic curve


@dataclass
class AnalyticCurve:
    rates: np.ndarray  # V(lambda) on the grid
    low: np.ndarray  # 90% bootstrap band over records
    high: np.ndarray
    lambda_v: float  # inf: no cliff on the grid
    interval: tuple[float, float]  # 90% bootstrap interval of lambda_v (inf ends: none on the grid)
    sample_log_valid: np.ndarray  # [samples, lambdas]: each sample's log predicted validity


def _sum_by(index: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, *values.shape[1:]))
    np.add.at(out, index, values)
    return out


def position_log_valid(log_tail_curve: np.ndarray) -> np.ndarray:
    """log(1 - t_lambda) per position, exact for tails near 0 and near 1."""
    with np.errstate(divide="ignore"):
        return np.log(-np.expm1(np.minimum(log_tail_curve.astype(np.float64), 0.0)))


def analytic_curve(teacher: Positions, lambdas: np.ndarray, drop: float, seed: int = 0) -> AnalyticCurve:
    """V(lambda) from the teacher's samples, with a bootstrap over records."""
    log_valid = _sum_by(teacher.sample, position_log_valid(teacher.log_tail_curve), teacher.n_samples)
    per_sample = np.exp(log_valid)
    rates = per_sample.mean(axis=0)
    records, inverse = np.unique(teacher.sample_record, return_inverse=True)
    counts = np.bincount(inverse, minlength=len(records)).astype(float)
    per_record = _sum_by(inverse, per_sample, len(records))
    rng = np.random.default_rng([seed, _stable_hash("analytic parse rate")])
    weights = rng.multinomial(len(records), np.full(len(records), 1.0 / len(records)), size=BOOTSTRAP_SAMPLES)
    boot = (weights @ per_record) / (weights @ counts)[:, None]
    lo_q, hi_q = 50 * (1 - INTERVAL), 50 * (1 + INTERVAL)
    boot_lambda_v = np.array([theory.drop_point(lambdas, row, drop) for row in boot])
    lambda_v = theory.drop_point(lambdas, rates, drop)
    # A skewed bootstrap can leave the point estimate outside its percentile interval: widen to hold it.
    interval = (min(float(np.percentile(boot_lambda_v, lo_q, method="lower")), lambda_v),
                max(float(np.percentile(boot_lambda_v, hi_q, method="higher")), lambda_v))
    return AnalyticCurve(rates=rates, low=np.percentile(boot, lo_q, axis=0), high=np.percentile(boot, hi_q, axis=0),
                         lambda_v=lambda_v, interval=interval, sample_log_valid=log_valid)


def drop_shares(teacher: Positions, curve: AnalyticCurve, lambdas: np.ndarray, lam: float) -> dict[str, float]:
    """Each class's share of the analytic fall in V from its best earlier value to ``lam``.

    A sample's fall ``V_s(top) - V_s(lam)`` is split over classes in proportion to how
    much each class's positions lowered its log validity; shares sum to 1 and a class
    that gained validity meanwhile gets a negative share."""
    j = int(np.argmin(np.abs(lambdas - lam)))
    top = int(np.argmax(curve.rates[: j + 1]))
    # a valid mass of 0 (log -inf) counts as a fall of 700 nats: finite, and all of that sample's fall
    log_valid = np.maximum(position_log_valid(teacher.log_tail_curve[:, [top, j]]), -700.0)
    falls = log_valid[:, 0] - log_valid[:, 1]  # per position, positive where validity fell
    labels = sorted(set(teacher.label.tolist()))
    by_label = {label: _sum_by(teacher.sample[teacher.label == label], falls[teacher.label == label],
                               teacher.n_samples) for label in labels}
    total = sum(by_label.values())
    sample_fall = np.exp(curve.sample_log_valid[:, top]) - np.exp(curve.sample_log_valid[:, j])
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(total != 0, sample_fall / total, 0.0)
    fall = float(np.sum(np.where(total != 0, sample_fall, 0.0)))
    if fall <= 0:
        return {}
    return {label: float(np.sum(weight * by_label[label]) / fall) for label in labels}


# ----------------------------------------------------------------------------- reachability


def draws_per_rollout(student: Positions, lambdas: np.ndarray, lam: float) -> dict[str, float]:
    """Per class, the expected driving draws per warm-start rollout towards the fixed
    point at ``lam`` (theory.reachability): the warm start's mass on every token but
    the amplified breaks where the fixed point pulls those below their reference mass,
    else its mass on the amplified breaks; summed over a rollout's positions."""
    if student.n_samples == 0:
        return {}
    pull = _at(student.log_pull_curve, lambdas, lam) if student.log_pull_curve.shape[1] \
        else np.full(len(student.sample), np.inf)
    drive = np.where(pull < -theory.PULL_TOLERANCE, 1.0 - student.student_amplified, student.student_amplified)
    return {label: float(drive[student.label == label].sum() / student.n_samples)
            for label in sorted(set(student.label.tolist()))}


def _at(curves: np.ndarray, lambdas: np.ndarray, lam: float) -> np.ndarray:
    """Each row of ``curves`` read at ``lam``, linear between grid points."""
    j = int(np.clip(np.searchsorted(lambdas, lam), 1, len(lambdas) - 1))
    fraction = (lam - lambdas[j - 1]) / (lambdas[j] - lambdas[j - 1])
    with np.errstate(invalid="ignore"):  # inf - inf where both ends are unbounded: take the end
        value = curves[:, j - 1] + fraction * (curves[:, j] - curves[:, j - 1])
    return np.where(np.isnan(value), curves[:, j], value)


# ----------------------------------------------------------------------------- rollouts


@dataclass
class RolloutRate:
    """Strict parse rate of samples drawn from the fixed point at one lambda."""

    lam: float
    valid: int
    samples: int
    violations: dict[str, int] = field(default_factory=dict)  # first violations by class

    @property
    def rate(self) -> float:
        return self.valid / self.samples if self.samples else math.nan

    def interval(self, confidence: float = INTERVAL) -> tuple[float, float]:
        """Wilson score interval (scipy)."""
        from scipy.stats import binomtest

        if not self.samples:
            return (0.0, 1.0)
        ci = binomtest(self.valid, self.samples).proportion_ci(confidence_level=confidence, method="wilson")
        return float(ci.low), float(ci.high)


def rollout_onset(rates: list[RolloutRate], drop: float) -> tuple[float, float] | None:
    """The onset rule on the sampled rates' point estimates."""
    return theory.onset_interval([r.lam for r in rates], [r.rate for r in rates], drop)


ABOVE, BELOW, UNCLEAR = "above", "below", "unclear"


def rollout_sides(rates: list[RolloutRate], drop: float) -> list[str]:
    """Per sampled lambda (ascending), where its rate lies against the drop line (the best
    earlier rate minus ``drop``): above or below with its whole 90% Wilson interval, or unclear."""
    rates = sorted(rates, key=lambda r: r.lam)
    sides, best = [], -math.inf
    for r in rates:
        best = max(best, r.rate)
        low, high = r.interval()
        sides.append(ABOVE if low > best - drop else BELOW if high < best - drop else UNCLEAR)
    return sides


def rollout_interval(rates: list[RolloutRate], drop: float) -> tuple[float, float] | None:
    """Where the sampled rates put the cliff, no narrower than their intervals allow:
    (the last lambda surely above the drop line, the first surely below it and never
    surely above after); None when no sampled lambda is surely below."""
    rates = sorted(rates, key=lambda r: r.lam)
    sides = rollout_sides(rates, drop)
    below = [i for i, side in enumerate(sides) if side == BELOW and ABOVE not in sides[i + 1:]]
    if not below:
        return None
    first = below[0]
    above = [i for i in range(first) if sides[i] == ABOVE]
    return (rates[above[-1]].lam if above else rates[0].lam), rates[first].lam


def _drop_line(curve: np.ndarray, j: int, drop: float) -> float:
    """The curve's best value up to grid point ``j``, less ``drop``: the onset rule's line."""
    return float(curve[: j + 1].max()) - drop


def analytic_side(lambdas: np.ndarray, curve: np.ndarray, lam: float, drop: float) -> str:
    """Where the analytic curve lies at ``lam`` against its own drop line."""
    j = int(np.argmin(np.abs(lambdas - lam)))
    return BELOW if curve[j] < _drop_line(curve, j, drop) else ABOVE


def rollouts_agree(rates: list[RolloutRate], lambdas: np.ndarray, curve: np.ndarray, drop: float) -> bool:
    """Every sampled lambda whose side is clear lies on the same side as the analytic curve."""
    ordered = sorted(rates, key=lambda r: r.lam)
    return all(side == UNCLEAR or side == analytic_side(lambdas, curve, r.lam, drop)
               for r, side in zip(ordered, rollout_sides(ordered, drop)))


def check_points(lambdas: np.ndarray, curve: np.ndarray, lambda_v: float, drop: float,
                 samples: int) -> list[float]:
    """Grid lambdas either side of the analytic cliff where sampled rates can tell the sides
    apart: the nearest ones whose analytic rate is two binomial standard errors (of
    ``samples`` draws) clear of the drop line. They test the analytic cliff where it says
    something a sample of this size can confirm or refute."""
    j = int(np.argmin(np.abs(lambdas - lambda_v)))
    points = []
    for step in (-1, 1):
        k = j
        while 0 < k < len(lambdas) - 1:
            k += step
            line = _drop_line(curve, k, drop)
            error = 2 * math.sqrt(max(curve[k] * (1 - curve[k]), 1.0 / samples) / samples)
            if abs(curve[k] - line) >= error:
                break
        if lambdas[k] > lambdas[0]:
            points.append(float(lambdas[k]))
    return points


def next_rollout_lambda(rates: list[RolloutRate], lambdas: np.ndarray, curve: np.ndarray, analytic_lambda_v: float,
                        drop: float, resolution: float, evaluations_left: int) -> float | None:
    """The next lambda to sample the fixed point at, or None when done.

    First the grid's end (is there a cliff at all?), then the check points either side of
    the analytic cliff. While the sampled sides agree with the analytic curve, that is
    all. Where they disagree the sampled rates take over: a galloping search from the
    analytic cliff into their onset interval (steps of ``resolution``, doubling with the
    distance covered), then bisection, until the interval is no wider than ``resolution``.
    ``rates`` holds lambda = 1 (the teacher's own samples)."""
    if evaluations_left <= 0:
        return None
    done = {round(r.lam, 10) for r in rates}

    def on_grid(lam: float) -> float:
        return float(lambdas[int(np.argmin(np.abs(lambdas - lam)))])

    end = float(lambdas[-1])
    if round(end, 10) not in done:
        return end
    samples = max(r.samples for r in rates)
    if math.isfinite(analytic_lambda_v):
        for point in check_points(lambdas, curve, analytic_lambda_v, drop, samples):
            if round(point, 10) not in done:
                return point
    if rollouts_agree(rates, lambdas, curve, drop):
        return None
    onset = rollout_onset(rates, drop)
    if onset is None or onset[1] - onset[0] <= resolution + 1e-9:
        return None
    lo, hi = onset
    if math.isfinite(analytic_lambda_v):
        near = lo if abs(lo - analytic_lambda_v) <= abs(hi - analytic_lambda_v) else hi
        step = max(resolution, 2 * abs(near - analytic_lambda_v))
        gallop = on_grid(near + step if near == lo else near - step)
        if lo < gallop < hi and round(gallop, 10) not in done:
            return gallop
    middle = on_grid((lo + hi) / 2)
    return None if round(middle, 10) in done else middle


# ----------------------------------------------------------------------------- classes


@dataclass
class ClassEstimate:
    label: str
    teacher_positions: int
    student_positions: int
    prompts: int
    teacher_valid_mass: float  # p
    student_valid_mass: float  # b, the warm start's
    reference_valid_mass: float  # the reference's (b when the reference is the warm start)
    bernoulli_lambda_v: float  # inf when none
    clip_band_lambda_star: float  # the refuted alternative rule, for comparison
    amplified_tokens: list[tuple[int, float]]  # (token id, log pi_T/pi_ref), largest first


def _mean_mass(valid: np.ndarray, tail: np.ndarray) -> float:
    """Mean valid mass, from the tails where that keeps more digits (p = 1 - 6e-7)."""
    mean_valid, mean_tail = float(valid.mean()), float(tail.mean())
    return 1.0 - mean_tail if mean_tail < 0.5 else mean_valid


def class_estimates(teacher: Positions, student: Positions, drop: float, clip: float) -> list[ClassEstimate]:
    """Per class, masses pooled over the visits of both models' samples."""
    labels = sorted(set(teacher.label.tolist()) | set(student.label.tolist()))
    out = []
    for label in labels:
        parts = [(positions, positions.label == label) for positions in (teacher, student)]

        def pooled(name, parts=parts):
            return np.concatenate([getattr(pos, name)[sel] for pos, sel in parts])

        p = _mean_mass(pooled("teacher_valid"), pooled("teacher_tail"))
        b = _mean_mass(pooled("student_valid"), pooled("student_tail"))
        r = _mean_mass(pooled("reference_valid"), pooled("reference_tail"))
        p_, r_ = min(max(p, 1e-300), 1.0), min(max(r, 1e-300), 1.0)
        records = {int(pos.sample_record[s]) for pos, sel in parts for s in pos.sample[sel]}
        out.append(ClassEstimate(
            label=label, teacher_positions=int(parts[0][1].sum()), student_positions=int(parts[1][1].sum()),
            prompts=len(records), teacher_valid_mass=p, student_valid_mass=b, reference_valid_mass=r,
            bernoulli_lambda_v=theory.bernoulli_lambda_v(p_, r_, drop),
            clip_band_lambda_star=theory.clip_band_lambda_star(p_, r_, clip),
            amplified_tokens=_top_amplified(pooled("amplified_tokens"), pooled("amplified_log_ratio"))))
    return out


def _top_amplified(tokens: np.ndarray, log_ratio: np.ndarray, top: int = 5) -> list[tuple[int, float]]:
    best: dict[int, float] = {}
    for token, ratio in zip(tokens.ravel().tolist(), log_ratio.ravel().tolist()):
        if math.isfinite(ratio) and ratio > 0 and ratio > best.get(token, -math.inf):
            best[token] = ratio
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; a report must not depend on it.
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


# ----------------------------------------------------------------------------- calibration


@dataclass
class Calibration:
    """Per-position masses calibrated at the sequence level (a precondition)."""

    predicted_validity: float  # 1 - mean over samples of sum_t (invalid mass of the sampling model)
    observed_validity: float  # strict parse rate of those samples
    ece: float  # expected calibration error over positions, quantile bins
    curve_predicted: list[float]  # reliability diagram: mean predicted per bin
    curve_observed: list[float]  # and observed frequency per bin
    gap_interval: list[float]  # 90% interval of predicted - observed, paired by sample, clustered by record


def calibration(position_valid_mass: np.ndarray, position_outcome: np.ndarray, sample_hazard: np.ndarray,
                sample_valid: np.ndarray, sample_record: np.ndarray, bins: int = 10) -> Calibration:
    """Calibration of one model on its own samples.

    ``position_valid_mass``: the model's valid mass at each visited position;
    ``position_outcome``: whether the token it sampled there kept the contract;
    ``sample_hazard``: per sample, the sum of its invalid masses ``1 - valid mass`` over
    the positions it visited (up to and including its first violation);
    ``sample_valid``: whether the sample is strictly valid;
    ``sample_record``: each sample's record (samples of one prompt are not independent).

    The predicted validity is ``1 - mean(sample_hazard)``. A sample breaks the contract
    at most once, and its chances of breaking at the positions it visits, summed up to
    where it stops, have the expectation of its number of breaks (the compensator of a
    stopped counting process): exact for calibrated masses. The mean of
    ``prod_t valid mass`` over the same samples is not: a sample that breaks early ends
    its product early, which biases that mean upwards once samples can break at more
    than one position (docs/theory.md, section 2.3).
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
    gap = (1.0 - sample_hazard) - sample_valid  # per sample: mean 0 when the masses are calibrated
    return Calibration(float(1.0 - np.mean(sample_hazard)), float(sample_valid.mean()), ece,
                       predicted.tolist(), observed.tolist(), _clustered_interval(gap, sample_record))


def _clustered_interval(values: np.ndarray, cluster: np.ndarray) -> list[float]:
    """Normal 90% interval of the mean of ``values`` with a cluster-robust standard error
    (records are the independent units, as in the bootstrap of the curve)."""
    mean = float(np.mean(values))
    _, which = np.unique(cluster, return_inverse=True)
    residual = np.bincount(which, weights=values - mean)
    half = NORMAL_90 * math.sqrt(float(np.sum(residual ** 2))) / len(values)
    return [mean - half, mean + half]
