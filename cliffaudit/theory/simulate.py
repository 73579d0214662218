"""Tabular G-OPD: the sweep's training loss on softmax policies whose every quantity is exact.

numpy only, no torch. A *case* is a short output of independent positions (one
position, or a format decision followed by continuation tokens), each with a
teacher distribution, a reference distribution (the warm start, where training
starts) and a mask of contract-preserving tokens. Training is what
``cliffaudit/sweep`` does to a language model, term for term (docs/theory.md,
"The training loss"): each step samples ``batch_size`` outputs from the current
policy, computes the token-level G-OPD advantage

    A = lam * (log pi_T(y) - log pi_ref(y)) - (log pi_old(y) - log pi_ref(y))

and takes ``updates_per_rollout`` Adam steps on the PPO-clipped loss
``-min(r A, clip(r, 1 - eps_low, c) A)``, ``r = pi/pi_old``, averaged over the
batch's tokens (rollouts come from the training policy itself, so the truncated
importance weight is 1). After training, the parse rate is exact: the product
over positions of the policy's valid mass. Onsets use the sweep's rule
(``fixed_point.onset_interval``) on the mean over seeds.

``tests/theory/test_simulate.py`` proves ``loss_gradient`` equals the torch
autograd gradient of ``cliffaudit.sweep.loss.gopd_loss``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import log_softmax

from cliffaudit.theory.clip_band import check_clip
from cliffaudit.theory.fixed_point import DEFAULT_DROP, exact_lambda_v, onset_interval, sequence_parse_rate
from cliffaudit.theory.reachability import drive_mass, is_reachable
from cliffaudit.verdicts import CONSISTENT, INCONSISTENT

__all__ = ["Case", "Simulation", "Training", "loss_gradient", "simulate", "simulate_many", "tabular_inputs"]


# Bounds on what a user sizes (the CLI's --teacher-probs, --lambdas, --rollouts, --seeds), so
# that a what-if too large is refused at once instead of running for days.
MAX_TABLE_ENTRIES = 10_000  # positions x tokens of one distribution
MAX_STEP_ENTRIES = 1 << 21  # cases x lambdas x seeds x batch x positions x tokens: one step's arrays
MAX_SIMULATION_WORK = 10**9  # that times the steps: about two minutes on a 2-core CPU


def tabular_inputs(teacher, reference, valid, names: tuple[str, str, str] = ("teacher", "reference", "valid")
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[positions, K] teacher and reference probabilities and a boolean valid mask, checked
    (ValueError naming the input by ``names``, e.g. the CLI's options): probabilities >= 0
    that sum to 1 at every position, one shape of at most ``MAX_TABLE_ENTRIES`` entries, a
    0/1 mask with some valid and some invalid token at every position, and a teacher that
    puts some mass on the valid tokens at every position: one that never keeps the format
    makes the fixed point's parse rate 0 at every lambda > 0, with no cliff to find and
    nothing to audit. Probabilities come back renormalised exactly."""
    shapes, checked = [], []
    for name, probs in zip(names[:2], (teacher, reference)):
        probs = np.atleast_2d(np.asarray(probs, dtype=np.float64))
        if probs.size > MAX_TABLE_ENTRIES:
            raise ValueError(f"{name}: {probs.size:,} probabilities, over the limit of {MAX_TABLE_ENTRIES:,}")
        if (probs < 0).any() or not np.allclose(probs.sum(-1), 1.0, atol=1e-6):
            raise ValueError(f"{name}: probabilities must be >= 0 and sum to 1 at every position")
        checked.append(probs / probs.sum(-1, keepdims=True))
        shapes.append(probs.shape)
    mask = np.atleast_2d(np.asarray(valid))
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{names[2]} takes 1 (keeps the contract) or 0 (breaks it) per token")
    mask = mask.astype(bool)
    shapes.append(mask.shape)
    if len(set(shapes)) != 1:
        raise ValueError(f"{', '.join(names[:2])} and {names[2]} must have the same shape, got "
                         f"{', '.join(map(str, shapes))}")
    if (mask.all(-1) | ~mask.any(-1)).any():
        raise ValueError(f"{names[2]} must mark some tokens valid and some invalid at every position")
    never_valid = np.flatnonzero(np.where(mask, checked[0], 0.0).sum(-1) == 0.0)
    if never_valid.size:
        raise ValueError(f"{names[0]}: teacher validity 0 at position {never_valid[0] + 1} (no mass on the valid "
                         f"tokens): the fixed point never keeps the format at any lambda > 0, so there is nothing to "
                         f"audit")
    return checked[0], checked[1], mask


@dataclass(frozen=True)
class Case:
    """One tabular pair: [positions, K] probabilities and a valid mask."""

    name: str
    teacher: np.ndarray
    reference: np.ndarray
    valid: np.ndarray

    def __post_init__(self):
        teacher, reference, valid = tabular_inputs(self.teacher, self.reference, self.valid)
        for label, value in (("teacher", teacher), ("reference", reference), ("valid", valid)):
            object.__setattr__(self, label, value)

    def parse_rate(self, lambdas) -> np.ndarray:
        """V(lambda) of the G-OPD fixed point."""
        with np.errstate(divide="ignore"):
            return sequence_parse_rate(np.log(self.teacher), np.log(self.reference), self.valid, lambdas)

    def lambda_v(self, drop: float = DEFAULT_DROP) -> float:
        with np.errstate(divide="ignore"):
            return exact_lambda_v(np.log(self.teacher), np.log(self.reference), self.valid, drop)

    def draws_per_rollout(self, lam: float) -> float:
        """Expected driving draws per rollout at the warm start towards the fixed point
        at ``lam`` (theory.reachability); training starts at the reference."""
        return float(drive_mass(self.teacher, self.reference, self.reference, self.valid, lam).sum())


@dataclass(frozen=True)
class Training:
    """A training budget and the sweep's optimiser settings."""

    steps: int = 400
    batch_size: int = 16  # rollouts per step
    lr: float = 0.05
    clip: float = 2.0
    eps_low: float = 0.2
    updates_per_rollout: int = 2
    seeds: int = 3

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.seeds < 1 or self.updates_per_rollout < 1:
            raise ValueError("steps, batch_size, seeds and updates_per_rollout must be >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr!r}")
        check_clip(self.clip)

    @property
    def rollouts(self) -> int:
        return self.steps * self.batch_size


@dataclass
class Simulation:
    case: Case
    training: Training
    lambdas: np.ndarray
    parse_rates: np.ndarray  # [lambdas, seeds]: exact parse rate after training
    drop: float = DEFAULT_DROP
    predicted_rates: np.ndarray = field(init=False)
    lambda_v: float = field(init=False)  # the fixed point's cliff; inf when there is none

    def __post_init__(self):
        self.predicted_rates = self.case.parse_rate(self.lambdas)
        self.lambda_v = self.case.lambda_v(self.drop)

    @property
    def pooled(self) -> np.ndarray:
        return self.parse_rates.mean(axis=1)

    def onset(self) -> tuple[float, float] | None:
        """Observed onset on the mean over seeds (the sweep's pooled onset)."""
        return onset_interval(self.lambdas, self.pooled, self.drop)

    def onset_per_seed(self) -> list[tuple[float, float] | None]:
        return [onset_interval(self.lambdas, self.parse_rates[:, s], self.drop) for s in range(self.parse_rates.shape[1])]

    @property
    def expected_draws(self) -> float:
        """Driving draws over the run towards the predicted cliff (0 when there is none)."""
        if not math.isfinite(self.lambda_v):
            return 0.0
        return self.case.draws_per_rollout(self.lambda_v) * self.training.rollouts

    @property
    def reachable(self) -> bool:
        return math.isfinite(self.lambda_v) and is_reachable(self.case.draws_per_rollout(self.lambda_v),
                                                               self.training.rollouts)

    def verdict(self) -> str:
        """The simulator's test of lambda_v (docs/theory.md section 7): consistent when it meets
        the pooled onset within one grid step, or when no collapse comes where none was
        predicted or reachable. (A sweep on a language model judges the onset's range over
        resampled runs instead, ``cliffaudit.sweep.onset.judge``: its rates are noisy.)"""
        onset = self.onset()
        lam_v, end = self.lambda_v, self.lambdas[-1]
        if math.isfinite(lam_v) and onset is not None:
            if within_a_grid_step(onset, lam_v, self.lambdas):
                return CONSISTENT
            return f"{INCONSISTENT}: onset {'earlier' if onset[1] < lam_v else 'later'} than predicted"
        if onset is None:
            if not math.isfinite(lam_v) or not self.reachable or lam_v > end:
                return f"{CONSISTENT}: no collapse"
            return f"{INCONSISTENT}: predicted collapse did not come"
        if not math.isfinite(lam_v) or lam_v > end:
            return f"{INCONSISTENT}: collapse where none was predicted"
        return f"{INCONSISTENT}: collapse where none was reachable"


def within_a_grid_step(onset: tuple[float, float], lam: float, lambdas) -> bool:
    """Does ``lam`` meet the observed onset interval, widened by one step of the grid on
    each side (the simulator's hit rule: the grid's resolution is what it can tell)?"""
    step = max((b - a for a, b in zip(lambdas, lambdas[1:])), default=0.0)
    return onset[0] - step <= lam <= onset[1] + step


def loss_gradient(logits: np.ndarray, tokens: np.ndarray, old_logp: np.ndarray, advantage: np.ndarray, clip: float,
                  eps_low: float = 0.2) -> np.ndarray:
    """Gradient of the sweep's loss with respect to tabular logits.

    ``logits`` [..., T, K] (one softmax per position), ``tokens`` [..., B, T] the
    sampled ids, ``old_logp`` and ``advantage`` [..., B, T]. The loss is the mean
    over the B*T tokens of ``-min(r A, clip(r, 1 - eps_low, c) A)`` with
    ``r = pi(y)/pi_old(y)``: its gradient on a token is ``-A r (onehot(y) - pi)``
    unless the clipped branch is the smaller one and flat there
    (``A > 0, r > c`` or ``A < 0, r < 1 - eps_low``).
    """
    log_pi = log_softmax(logits, axis=-1)
    k = logits.shape[-1]
    new_logp = np.take_along_axis(np.broadcast_to(log_pi[..., None, :, :], (*tokens.shape, k)),
                                  tokens[..., None], axis=-1)[..., 0]
    ratio = np.exp(new_logp - old_logp)
    flat = ((advantage > 0) & (ratio > clip)) | ((advantage < 0) & (ratio < 1.0 - eps_low))
    weight = np.where(flat, 0.0, -advantage * ratio)  # [..., B, T]
    onehot = tokens[..., None] == np.arange(k)  # [..., B, T, K]
    per_position = (weight[..., None] * onehot).sum(axis=-3) - np.exp(log_pi) * weight.sum(axis=-2)[..., None]
    return per_position / (tokens.shape[-2] * tokens.shape[-1])


def simulate(case: Case, lambdas, training: Training = Training(), seed: int = 0,
             drop: float = DEFAULT_DROP) -> Simulation:
    """Train one tabular policy per (lambda, seed) from the reference; exact parse rates after.

    All lambdas of a seed share its random numbers (common random numbers), so the
    curve over lambda is smooth where the dynamics are."""
    return simulate_many([case], lambdas, training, [seed], drop)[0]


def simulate_many(cases: list[Case], lambdas, training: Training, seeds: list[int],
                  drop: float = DEFAULT_DROP) -> list[Simulation]:
    """``simulate`` of cases of one shape at once, ``cases[i]`` with ``seeds[i]``: each draws
    from its own generator, so every result equals its own ``simulate`` run; one array
    program instead of one per case (a grid of cases costs about one case's Python steps)."""
    if len(cases) != len(seeds) or not cases:
        raise ValueError("one seed per case, and at least one case")
    if len({case.valid.shape for case in cases}) != 1:
        raise ValueError("cases simulated together must share one shape [positions, K]")
    lambdas = np.asarray(lambdas, dtype=np.float64)
    n_lambdas, n_seeds = lambdas.size, training.seeds
    step_entries = len(cases) * n_lambdas * n_seeds * training.batch_size * cases[0].valid.size
    if step_entries > MAX_STEP_ENTRIES or step_entries * training.steps > MAX_SIMULATION_WORK:
        raise ValueError(f"simulation too large: cases x rollouts x lambdas x seeds x positions x tokens = "
                         f"{len(cases)} x {training.rollouts:,} x {n_lambdas} x {n_seeds} x {cases[0].valid.size} = "
                         f"{step_entries * training.steps:,}, over the limit of {MAX_SIMULATION_WORK:,} (and "
                         f"{MAX_STEP_ENTRIES:,} a step of {training.batch_size} rollouts): fewer rollouts, lambdas "
                         f"or seeds")
    with np.errstate(divide="ignore"):
        log_teacher = np.log(np.stack([case.teacher for case in cases]))[:, None, None]  # [cases, 1, 1, P, K]
        log_ref = np.log(np.stack([case.reference for case in cases]))[:, None, None]
    # log 0 stands in as a large negative number: a token neither model emits stays at 0.
    log_teacher, log_ref = np.maximum(log_teacher, -700.0), np.maximum(log_ref, -700.0)
    positions, k = cases[0].valid.shape
    logits = np.broadcast_to(log_ref, (len(cases), n_lambdas, n_seeds, positions, k)).copy()
    first, second = np.zeros_like(logits), np.zeros_like(logits)
    beta1, beta2, eps = 0.9, 0.999, 1e-8  # torch.optim.AdamW's defaults (weight decay 0 in the sweep)
    lam = lambdas[:, None, None, None]
    generators = [np.random.default_rng(seed) for seed in seeds]
    updates = 0
    for _ in range(training.steps):
        uniforms = np.stack([rng.random((n_seeds, training.batch_size, positions)) for rng in generators])
        log_pi = log_softmax(logits, axis=-1)
        cdf = np.cumsum(np.exp(log_pi), axis=-1)
        tokens = np.minimum((uniforms[:, None, :, :, :, None] > cdf[:, :, :, None, :, :]).sum(-1), k - 1)
        def pick(table, tokens=tokens):
            return np.take_along_axis(np.broadcast_to(table[..., None, :, :], (*tokens.shape, k)), tokens[..., None],
                                      axis=-1)[..., 0]

        old_logp = pick(log_pi)
        teacher_logp = pick(np.broadcast_to(log_teacher, log_pi.shape))
        ref_logp = pick(np.broadcast_to(log_ref, log_pi.shape))
        advantage = lam * (teacher_logp - ref_logp) - (old_logp - ref_logp)
        for _ in range(training.updates_per_rollout):
            grad = loss_gradient(logits, tokens, old_logp, advantage, training.clip, training.eps_low)
            updates += 1
            first = beta1 * first + (1 - beta1) * grad
            second = beta2 * second + (1 - beta2) * grad * grad
            step = training.lr * (first / (1 - beta1 ** updates)) / (np.sqrt(second / (1 - beta2 ** updates)) + eps)
            logits = logits - step
    valid = np.stack([case.valid for case in cases])[:, None, None]
    valid_mass = np.where(valid, np.exp(log_softmax(logits, axis=-1)), 0.0).sum(-1)  # [cases, lambdas, seeds, P]
    return [Simulation(case, training, lambdas, rates, drop) for case, rates in zip(cases, valid_mass.prod(-1))]
