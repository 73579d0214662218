"""One small G-OPD training run from the warm start (cliffaudit.evaluate measures it).

On-policy: every step samples fresh outputs from the current student at
temperature 1 (optionally in a lower rollout precision), scores them with the
frozen teacher and the frozen reference (the warm start), and takes a few
clipped, truncated-IS policy-gradient updates (cliffaudit.sweep.loss).
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass

import torch

from cliffaudit import probe
from cliffaudit.sweep.loss import clipped_tokens, gopd_advantage, gopd_loss


@dataclass(frozen=True)
class RunSettings:
    """One run's settings; the sweep's own come from ``SweepSettings`` (their defaults live there)."""

    lam: float
    seed: int
    steps: int
    clip: float
    lr: float
    batch_size: int
    max_new_tokens: int
    updates_per_rollout: int = 2  # more than one, so the PPO clip can act
    eps_low: float = 0.2
    rollout_dtype: str | None = None  # e.g. "bfloat16": rollouts in lower precision than training


def token_logprobs(model, prompts: list[list[int]], outputs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """log pi(y_t) of each output token, [batch, max_len], and its mask; keeps the graph."""
    logits = probe.teacher_forced_logits(model, prompts, outputs, pad_id, probe.input_device(model))
    # Outputs padded like the logits: sample i's tokens fill its first len(output_i) columns.
    targets, mask = probe.right_pad(outputs, logits.shape[1], pad_id, logits.device)
    logp = torch.log_softmax(logits.float(), dim=-1)
    return logp.gather(-1, targets[..., None])[..., 0], mask.bool()


def _rollout_model(student, dtype: str | None):
    if dtype is None:
        return student
    copy_ = copy.deepcopy(student).to(probe.resolve_dtype(dtype, probe.input_device(student)))
    return copy_.eval()


def train_run(student, teacher, reference, pad_id: int, eos_id: int,
              prompts: list[list[int]] | dict[str, list[list[int]]], settings: RunSettings, on_step=None,
              clip_counts: dict | None = None):
    """Train ``student`` in place for ``settings.steps`` on-policy G-OPD steps.

    ``prompts`` is one rendering for all three models, or each role's own ("student",
    "teacher", "reference"), as a training run renders each model's chat template.
    ``clip_counts``, when given, gains "clipped" (tokens whose PPO ratio the clip held,
    so their gradient was 0) and "tokens" over every update: whether a tight ``c`` acted."""
    by_role = prompts if isinstance(prompts, dict) else dict.fromkeys(("student", "teacher", "reference"), prompts)
    count = len(by_role["student"])
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    for p in [*teacher.parameters(), *reference.parameters()]:
        p.requires_grad_(False)  # frozen: no gradients through the teacher or the reference
    # A PEFT student trains its adapter (PEFT marks those weights); any other student every weight.
    if not hasattr(student, "peft_config"):
        for p in student.parameters():
            p.requires_grad_(True)  # a copy of the frozen reference starts frozen too
    trained = [p for p in student.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=settings.lr, weight_decay=0.0)
    for step in range(settings.steps):
        picked = [rng.randrange(count) for _ in range(settings.batch_size)]
        seeds = [rng.getrandbits(62) for _ in picked]
        student.eval()
        roller = _rollout_model(student, settings.rollout_dtype)
        outputs = probe.sample(roller, [by_role["student"][i] for i in picked], seeds, settings.max_new_tokens, eos_id,
                               pad_id)
        keep = [j for j, o in enumerate(outputs) if o]
        picked, outputs = [picked[j] for j in keep], [outputs[j] for j in keep]
        batch = {role: [rendered[i] for i in picked] for role, rendered in by_role.items()}
        with torch.no_grad():
            old_logp, mask = token_logprobs(student, batch["student"], outputs, pad_id)
            # Rollouts from the training policy itself: their log-probs are old_logp (IS weight 1).
            rollout_logp = old_logp if roller is student else \
                token_logprobs(roller, batch["student"], outputs, pad_id)[0]
            teacher_logp, _ = token_logprobs(teacher, batch["teacher"], outputs, pad_id)
            ref_logp, _ = token_logprobs(reference, batch["reference"], outputs, pad_id)
        advantage = gopd_advantage(settings.lam, teacher_logp, ref_logp, old_logp)
        student.train()
        for _ in range(settings.updates_per_rollout):
            new_logp, _ = token_logprobs(student, batch["student"], outputs, pad_id)
            loss = gopd_loss(new_logp, old_logp, rollout_logp, advantage, mask, settings.clip, settings.eps_low)
            if clip_counts is not None:
                clipped = clipped_tokens(new_logp.detach(), old_logp, advantage, mask, settings.clip, settings.eps_low)
                clip_counts["clipped"] = clip_counts.get("clipped", 0) + clipped
                clip_counts["tokens"] = clip_counts.get("tokens", 0) + int(mask.sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if on_step:
            on_step(step)
    student.eval()
    return student
