"""The G-OPD policy-gradient loss the sweep trains with (docs/theory.md, section 7).

Per generated token y_t of a rollout sampled from pi_rollout:

    A_t   = lam * (log pi_T(y_t) - log pi_ref(y_t)) - (log pi_old(y_t) - log pi_ref(y_t))
    r_t   = pi_theta(y_t) / pi_old(y_t)                        (PPO ratio)
    rho_t = min(pi_old(y_t) / pi_rollout(y_t), c)              (truncated IS, detached)
    L_t   = -rho_t * min(r_t * A_t, clip(r_t, 1 - eps_low, c) * A_t)

c is the threshold's clip: the PPO upper clip is c = 1 + eps_high and the
rollout-mismatch weights are truncated at the same c. The loss is averaged over
the tokens of the batch.
"""

from __future__ import annotations

import torch


def gopd_advantage(lam: float, teacher_logp: torch.Tensor, ref_logp: torch.Tensor,
                   old_logp: torch.Tensor) -> torch.Tensor:
    """Token-level G-OPD advantage with the warm start as reference (no gradient)."""
    return (lam * (teacher_logp - ref_logp) - (old_logp - ref_logp)).detach()


def gopd_loss(new_logp: torch.Tensor, old_logp: torch.Tensor, rollout_logp: torch.Tensor, advantage: torch.Tensor,
              mask: torch.Tensor, clip: float, eps_low: float = 0.2) -> torch.Tensor:
    """Mean over unmasked tokens of the clipped, truncated-IS policy-gradient loss."""
    ratio = torch.exp(new_logp - old_logp.detach())
    rho = torch.exp(old_logp - rollout_logp).detach().clamp(max=clip)
    unclipped = ratio * advantage
    clipped = ratio.clamp(1.0 - eps_low, clip) * advantage
    per_token = -rho * torch.minimum(unclipped, clipped)
    mask = mask.to(per_token.dtype)
    return (per_token * mask).sum() / mask.sum().clamp(min=1.0)


def clipped_tokens(new_logp: torch.Tensor, old_logp: torch.Tensor, advantage: torch.Tensor, mask: torch.Tensor,
                   clip: float, eps_low: float = 0.2) -> int:
    """Unmasked tokens where the clipped branch is the smaller and flat, so the loss gives
    them no gradient: ``A > 0, r > c`` or ``A < 0, r < 1 - eps_low``."""
    ratio = torch.exp(new_logp - old_logp)
    held = ((advantage > 0) & (ratio > clip)) | ((advantage < 0) & (ratio < 1.0 - eps_low))
    return int((held & mask.bool()).sum())
