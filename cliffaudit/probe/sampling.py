"""Sampling: seeded temperature-1 outputs from one model, or from the fixed point of two
in lockstep; each distinct prompt of a batch runs once and its KV cache is shared."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch

from cliffaudit.fixed_point_sums import (
    LOG_ZERO,
)
from cliffaudit.probe.loading import input_device


def cache_keyword(model) -> str:
    # transformers 5 names the KV cache argument `cache`; 4.x `past_key_values`. A PEFT
    # model's forward takes **kwargs and hands them to the model it wraps: ask that one.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    params = inspect.signature(inner.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, [rows, longest], each row flush right (decoder-only models continue at the right edge)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample(model, prompts: list[list[int]], seeds: list[int], max_new_tokens: int, eos_id: int, pad_id: int,
           temperature: float = 1.0) -> list[list[int]]:
    """Pure temperature sampling (no top-k/top-p), one seeded generator per row, with
    the KV cache. Each output ends with its end-of-sequence or at ``max_new_tokens``.

    Per-row generators make a sample depend on its own seed, not on its batch
    neighbours' (up to float differences from padding).
    """
    return _sample([model], lambda logits: logits[0].float() / temperature, [prompts], seeds, max_new_tokens,
                   eos_id, pad_id)


@torch.no_grad()
def sample_fixed_point(teacher, reference, lam: float, prompts: list[list[int]], seeds: list[int],
                       max_new_tokens: int, eos_id: int, pad_id: int,
                       reference_prompts: list[list[int]] | None = None) -> list[list[int]]:
    """Outputs drawn token by token from the G-OPD fixed point ``pi_T^lam * pi_ref^(1-lam)``
    (normalised at every prefix), the teacher and the reference run in lockstep, each
    with its own KV cache and its own rendering of the prompt (``prompts`` the teacher's,
    ``reference_prompts`` the reference's, the same when None); seeded per row as ``sample``."""

    def fixed_point(logits):
        teacher_logits, reference_logits = logits
        width = min(teacher_logits.shape[-1], reference_logits.shape[-1])
        # log 0 stands in as -1e30: a token only the teacher emits takes all the mass
        # beyond lambda = 1 (theory's limit), one neither emits weighs nothing; never nan.
        log_teacher = torch.log_softmax(teacher_logits[:, :width].float(), -1).clamp(min=LOG_ZERO)
        log_ref = torch.log_softmax(reference_logits[:, :width].float().to(log_teacher.device), -1).clamp(min=LOG_ZERO)
        return lam * log_teacher + (1.0 - lam) * log_ref

    return _sample([teacher, reference], fixed_point, [prompts, reference_prompts or prompts], seeds, max_new_tokens,
                   eos_id, pad_id)


def _sample(models, next_logits, prompts, seeds, max_new_tokens: int, eos_id: int, pad_id: int) -> list[list[int]]:
    """Token-by-token sampling from ``softmax(next_logits([each model's last logits]))``;
    ``prompts`` holds each model's rendering of the batch's prompts (they may differ in
    length: each model has its own padding, mask and positions)."""
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    states = []  # per model: device, mask, next position, cache keyword, cache
    last = []
    for model, model_prompts in zip(models, prompts):
        device = input_device(model)
        prefill = prefill_prompts(model, model_prompts, pad_id, device)
        states.append([device, prefill.mask, prefill.next_position, prefill.cache_keyword, prefill.cache])
        last.append(prefill.last_logits)
    outputs: list[list[int]] = [[] for _ in seeds]
    finished = [False] * len(seeds)
    for _ in range(max_new_tokens):
        probs = torch.softmax(next_logits(last), dim=-1).cpu()
        chosen = [int(torch.multinomial(probs[i], 1, generator=generators[i])) if not finished[i] else pad_id
                  for i in range(len(seeds))]
        for i, token in enumerate(chosen):
            if not finished[i]:
                outputs[i].append(token)
                finished[i] = token == eos_id
        if all(finished):
            break
        last = []
        for model, state in zip(models, states):
            device, mask, position, cache_kw, cache = state
            step_ids = torch.tensor(chosen, dtype=torch.long, device=device)[:, None]
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
            out = model(input_ids=step_ids, attention_mask=mask, position_ids=position, use_cache=True,
                        **{cache_kw: cache})
            state[1], state[2] = mask, position + 1
            state[4] = out[cache_kw] if cache_kw in out else out.get("past_key_values")
            last.append(out.logits[:, -1, :])
    return outputs


@dataclass
class Prefill:
    """A batch's prompts run through a model: the logits after each row's prompt (which
    predict its first output token), the KV cache, the prompts' attention mask and the
    position each row continues at."""

    last_logits: torch.Tensor  # [rows, V]
    cache: object
    cache_keyword: str
    mask: torch.Tensor  # [rows, prompt width], left-padded
    next_position: torch.Tensor  # [rows, 1]


def prefill_prompts(model, prompts: list[list[int]], pad_id: int, device) -> Prefill:
    """Each distinct prompt of the batch runs once and its KV cache is copied to every row
    that has it: an audit draws several samples per record, and at a real model's prompt
    length (200 tokens against answers of 50) the prompts were most of the work of
    sampling and of scoring. Only the last prompt column's logits are computed."""
    distinct: dict[tuple[int, ...], int] = {}
    rows = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
    ids, mask = left_pad([list(p) for p in distinct], pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache_kw = cache_keyword(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = out[cache_kw] if cache_kw in out else out.get("past_key_values")
    if rows != list(range(len(distinct))):
        index = torch.tensor(rows, dtype=torch.long, device=device)
        cache.reorder_cache(index)  # beam search's reordering: any rows, repeats included
        return Prefill(out.logits[index, -1, :], cache, cache_kw, mask[index], positions[index, -1:] + 1)
    return Prefill(out.logits[:, -1, :], cache, cache_kw, mask, positions[:, -1:] + 1)

