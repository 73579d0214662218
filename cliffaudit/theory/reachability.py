"""Whether training reaches the fixed point's cliff within its budget. numpy only.

On-policy G-OPD learns only from the tokens it samples. At a position, call the
breaking tokens the fixed point amplifies (``pi_T > pi_ref``) ``A`` and every
other token ``F``. As lambda grows the fixed point moves mass to ``A``; training
from the warm start gets it there one of two ways:

* ``F`` loses weight at the fixed point: ``sum_F pi_T^lam pi_ref^(1-lam) <
  sum_F pi_ref``. Then the tokens training samples all the time (those in ``F``)
  have a negative advantage on the whole and are pushed down, and the freed mass
  flows to ``A`` without ``A`` ever being drawn. The driving draws are those of ``F``.
* otherwise the sampled ``F`` tokens are pushed *up*, and ``A`` grows only when
  it is drawn itself. The driving draws are those of ``A``.

The *drive mass* of a position is the warm start's probability of drawing a
driving token there; summed over a rollout's positions it is the expected number
of driving draws per rollout, and times the budget (rollouts per step x steps)
the expected draws over the run. Below ``DRAWS_TO_REACH`` no simulated run at a
stable learning rate reached the fixed point's drop (docs/theory.md, "Reachability").
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

__all__ = ["DRAWS_TO_REACH", "MATERIAL_SHARE", "PULL_TOLERANCE", "drive_mass", "is_reachable", "reachable_carriers",
           "rollouts_needed"]

# Expected driving draws over a run below which simulated runs did not reach the
# fixed point's drop (cliffaudit.theory.simulate; docs/theory.md, "Reachability").
DRAWS_TO_REACH = 3.0

# A pull within this many nats of 0 is no pull: the fixed point moves less than 0.1% of
# F's weight there. Where teacher and reference agree (most positions of a language
# model's output are near-deterministic for both), the pull is 0 up to float error
# (about 1e-6 nats in float32 over a vocabulary), and its sign would be the rounding's,
# not the models': such a position is driven, as at a pull of exactly 0, by A's draws.
PULL_TOLERANCE = 1e-3


def drive_mass(teacher, reference, student, valid, lam: float) -> np.ndarray:
    """The student's mass on the tokens whose draws move each position towards the
    fixed point's breaks at ``lam``; distributions over the last axis."""
    with np.errstate(divide="ignore"):
        log_teacher, log_ref = np.log(np.asarray(teacher, dtype=np.float64)), np.log(np.asarray(reference, dtype=np.float64))
    student, valid = np.asarray(student, dtype=np.float64), np.asarray(valid, dtype=bool)
    amplified = ~valid & (log_teacher > log_ref)
    with np.errstate(invalid="ignore"):
        log_weight = np.nan_to_num(lam * log_teacher + (1.0 - lam) * log_ref, nan=-np.inf)
    kept_weight = logsumexp(np.where(amplified, -np.inf, log_weight), axis=-1)
    kept_mass = logsumexp(np.where(amplified, -np.inf, log_ref), axis=-1)
    through_kept = (kept_weight - kept_mass < -PULL_TOLERANCE)[..., None]
    driving = np.where(through_kept, ~amplified, amplified)
    return np.where(driving, student, 0.0).sum(-1)


# A class carrying less of the fall cannot make the cliff on its own.
MATERIAL_SHARE = 0.10


def reachable_carriers(shares: dict[str, float | None], draws: dict[str, float | None],
                       rollouts: float | None) -> list[str] | None:
    """The one reachability rule the report and the gate share: the classes carrying at
    least MATERIAL_SHARE of the fall that the budget draws often enough, most driving
    draws first; a cliff is reachable when there is one. Fails closed: without a budget,
    or without a class known to carry the fall, None stands for "every cliff counts as
    reachable"; a carrier whose draws are unknown counts as reachable."""
    carriers = [label for label, share in shares.items() if (share or 0.0) >= MATERIAL_SHARE]
    if rollouts is None or not carriers:
        return None
    reached = [label for label in carriers if draws.get(label) is None or is_reachable(draws[label], rollouts)]
    return sorted(reached, key=lambda label: -(draws.get(label) or math.inf))


def is_reachable(draws_per_rollout: float, rollouts: float | None) -> bool:
    """Without a budget a cliff counts as reachable: the verdict fails closed."""
    if rollouts is None:
        return True
    return draws_per_rollout * rollouts >= DRAWS_TO_REACH


def rollouts_needed(draws_per_rollout: float) -> float:
    """About how many rollouts a run needs to reach the cliff (inf when never)."""
    return DRAWS_TO_REACH / draws_per_rollout if draws_per_rollout > 0 else math.inf
