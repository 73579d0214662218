"""Scoring: the models teacher-forced on the sampled outputs, reduced on the device to
per-position masses (log valid masses, amplified breaks, fixed-point sums on the lambda
grid); a full-vocabulary distribution never leaves the device."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cliffaudit.contract import ContractBatch
from cliffaudit.fixed_point_sums import (
    ACCELERATOR_SLICE_SCALE,
    LOG_ZERO,
    SLICE_SCALE,
    fixed_point_log_tail,
    kept_pull,
    masked_lse,
)
from cliffaudit.probe.loading import ModelPair, input_device, pad_id
from cliffaudit.probe.sampling import prefill_prompts

AMPLIFIED_TOP = 3  # contract-breaking tokens kept per position, by how much extrapolation amplifies them


@dataclass
class PositionMasses:
    """Per-position results of one batch, flattened over (sample, position).

    "Amplified breaks" are the contract-breaking tokens with pi_T > pi_ref: the
    fixed point reweights a token by (pi_T/pi_ref)^(lambda-1) relative to the teacher.
    """

    sample: np.ndarray  # int: sample index within the batch
    position: np.ndarray  # int: position within the sample's output
    teacher_log_valid: np.ndarray  # log p_t, teacher mass on the valid set
    teacher_log_tail: np.ndarray  # log(1 - p_t), computed directly, exact near p_t = 1
    student_log_valid: np.ndarray  # log b_t, the warm start's
    student_log_tail: np.ndarray  # log(1 - b_t)
    reference_log_valid: np.ndarray  # the reference's (the student's own unless a reference is given)
    reference_log_tail: np.ndarray
    student_log_amplified: np.ndarray  # log of the warm start's mass on amplified breaks
    log_tail_curve: np.ndarray  # [n, lambdas] or [n, 0]: log t_lambda of the exact K-ary fixed point
    log_pull_curve: np.ndarray  # [n, lambdas] or [n, 0]: log of the fixed point's weight on all but the
    #                             amplified breaks over the reference's mass there (theory.reachability)
    amplified_tokens: np.ndarray  # [n, AMPLIFIED_TOP] invalid tokens with the largest pi_T / pi_ref
    amplified_log_ratio: np.ndarray  # [n, AMPLIFIED_TOP] their log(pi_T / pi_ref); ~1e30 where pi_ref = 0


def unpack_rows(packed: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """uint8 [..., n_bytes] little-endian bit rows -> bool [..., vocab_size], on the device."""
    shifts = torch.arange(8, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.reshape(*packed.shape[:-1], -1)[..., :vocab_size].bool()


def right_pad(rows: list[list[int]], width: int, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask, [rows, width], each row from the left edge."""
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, :len(row)] = torch.tensor(row[:width], dtype=torch.long)
        mask[i, :len(row)] = 1
    return ids.to(device), mask.to(device)


def teacher_forced_logits(model, prompts, outputs, pad_id, device) -> torch.Tensor:
    """Teacher-forced logits [batch, width, V], ``width`` the longest output: column j of
    row i predicts output i's token j (columns past an output's end are padding).

    Keeps the autograd graph when called with gradients on (the sweep trains through
    it, the prompts' KV cache included); the audit calls it under ``no_grad``.

    The prompts run first (``prefill_prompts``: each distinct one once, which gives the
    logits of every output's first token), then the outputs, right-padded, on their KV
    cache: no logits are computed for the prompts, so a long prompt costs no
    vocabulary-sized memory, and a record's samples share one pass over its prompt.
    """
    prefill = prefill_prompts(model, prompts, pad_id, device)
    width = max(len(o) for o in outputs)
    if width <= 1:
        return prefill.last_logits[:, None, :]
    # Every output token but the last predicts the next one; the prompt's end predicts the first.
    ids, mask = right_pad([o[:-1] for o in outputs], width - 1, pad_id, device)
    positions = prefill.next_position + torch.arange(width - 1, device=device)
    out = model(input_ids=ids, attention_mask=torch.cat([prefill.mask, mask], dim=1), position_ids=positions,
                use_cache=True, **{prefill.cache_keyword: prefill.cache})
    return torch.cat([prefill.last_logits[:, None, :], out.logits], dim=1)


CURVES = ("tail", "pull")  # what ``score`` computes over the lambda grid, besides the masses


def _no_positions(lambdas: int, curve: str | None) -> PositionMasses:
    """A batch without contract positions, shaped like one with them (curves [0, lambdas] or [0, 0])."""
    empty = np.zeros(0)
    width = {name: lambdas if curve == name else 0 for name in CURVES}
    return PositionMasses(empty.astype(int), empty.astype(int), *[empty] * 7, np.zeros((0, width["tail"])),
                          np.zeros((0, width["pull"])), np.zeros((0, AMPLIFIED_TOP), int), np.zeros((0, AMPLIFIED_TOP)))


@torch.no_grad()
def score(pair: ModelPair, prompts: list[list[int]] | dict[str, list[list[int]]], outputs: list[list[int]],
          contract: ContractBatch, lambdas: np.ndarray, curve: str | None = None,
          chunk_elements: int = 1 << 24) -> PositionMasses:
    """Per-position masses of the models on each sample's contract positions, and one
    curve over ``lambdas``: ``"tail"``, the fixed point's tail (for the predicted parse
    rate), or ``"pull"``, the weight the fixed point keeps off the amplified breaks
    (for reachability); None computes neither (the curves are [n, 0]).

    ``prompts`` is one rendering for every model, or each role's own ("teacher",
    "student", "reference"): a model scores the outputs after the prompt as it sees it.
    Outputs end at the last column whatever the prompt's length, so the columns agree.

    The contract positions of all samples in the batch are processed together in
    chunks of at most ``chunk_elements // V`` positions, so each [positions, V]
    buffer (log-softmax, masks, masses) holds at most ``chunk_elements`` floats. The
    fixed-point sums slice a chunk again by the width of each token set they keep
    (``_set_log_sum``): their [positions, planes, width] work tensors hold a fixed
    multiple of ``chunk_elements`` (``SLICE_SCALE``), never [positions, lambdas, V].
    """
    if curve is not None and curve not in CURVES:
        raise ValueError(f"curve must be one of {CURVES} or None, got {curve!r}")
    lengths = [len(seq.mask_index) for seq in contract.sequences]
    if sum(lengths) == 0:
        return _no_positions(len(lambdas), curve)
    device = pair.device
    pad = pad_id(pair.tokenizer)
    prompt_of = prompts if isinstance(prompts, dict) else dict.fromkeys(("teacher", "student", "reference"), prompts)
    teacher_logits = teacher_forced_logits(pair.teacher, prompt_of["teacher"], outputs, pad,
                                           input_device(pair.teacher))
    # The models may sit on different devices; the masses are computed on the teacher's.
    student_logits = teacher_forced_logits(pair.student, prompt_of["student"], outputs, pad,
                                           input_device(pair.student)).to(device)
    # The warm start as reference is the student, with the student's tokenizer: same prompt, same logits.
    reference_logits = student_logits if not pair.separate_reference else teacher_forced_logits(
        pair.reference, prompt_of["reference"], outputs, pad, input_device(pair.reference)).to(device)

    # One row per contract position of every sample: which sample, which output position (its logits column).
    sample_of = np.repeat(np.arange(len(lengths)), lengths)
    position_of = np.concatenate([np.arange(n) for n in lengths])
    column_of = position_of
    mask_rows = np.concatenate([seq.mask_index.astype(np.int64) for seq in contract.sequences])
    # The contract's masks may be read-only (shared from the contract worker): torch gets its own copy.
    packed = torch.tensor(contract.packed_masks, device=device)
    lam = torch.tensor(lambdas if curve else [], dtype=torch.float32, device=device)

    # Heads may be wider than the tokenizer and differ in width between models (Qwen2.5's 7B
    # and 0.5B): the masses are over the ids every head has, which hold the whole tokenizer
    # (inputs.check_vocabulary_sizes), as the fixed point's sampling takes them.
    vocab_width = min(logits.shape[-1] for logits in (teacher_logits, student_logits, reference_logits))
    n = len(sample_of)
    chunk_positions = max(1, chunk_elements // vocab_width)
    slice_elements = max(1, int(chunk_elements * SLICE_SCALE.get(device.type, ACCELERATOR_SLICE_SCALE)))
    columns: dict[str, list] = {k: [] for k in PositionMasses.__dataclass_fields__}
    for start in range(0, n, chunk_positions):
        stop = min(n, start + chunk_positions)
        rows = torch.from_numpy(sample_of[start:stop]).to(device)
        cols = torch.from_numpy(column_of[start:stop]).to(device)
        lt = torch.log_softmax(teacher_logits[rows, cols, :vocab_width].float(), dim=-1)
        ls = torch.log_softmax(student_logits[rows, cols, :vocab_width].float(), dim=-1)
        lr = ls if not pair.separate_reference else torch.log_softmax(
            reference_logits[rows, cols, :vocab_width].float(), dim=-1)
        vocab = min(lt.shape[-1], contract.vocab_size)
        # Model heads may be wider than the tokenizer; extra ids never keep the contract.
        valid = torch.zeros_like(lt, dtype=torch.bool)
        mask_idx = torch.from_numpy(mask_rows[start:stop]).to(device)
        valid[:, :vocab] = unpack_rows(packed[mask_idx], contract.vocab_size)[:, :vocab]
        # log 0 stands in as -1e30: a token only the teacher emits gets a ratio of about
        # 1e30 (unbounded, and JSON can carry it), one neither emits gets 0, not nan.
        ratio = (lt.clamp(min=LOG_ZERO) - lr.clamp(min=LOG_ZERO)).masked_fill(valid, float("-inf"))
        none = lt.new_zeros((len(lt), 0))
        columns["sample"].append(sample_of[start:stop])
        columns["position"].append(position_of[start:stop])
        for name, log_probs in (("teacher", lt), ("student", ls)):
            columns[f"{name}_log_valid"].append(masked_lse(log_probs, valid).cpu().numpy())
            columns[f"{name}_log_tail"].append(masked_lse(log_probs, ~valid).cpu().numpy())
        if pair.separate_reference:
            columns["reference_log_valid"].append(masked_lse(lr, valid).cpu().numpy())
            columns["reference_log_tail"].append(masked_lse(lr, ~valid).cpu().numpy())
        else:  # the warm start is the reference: its masses, not a second pass over [positions, V]
            columns["reference_log_valid"].append(columns["student_log_valid"][-1])
            columns["reference_log_tail"].append(columns["student_log_tail"][-1])
        columns["student_log_amplified"].append(masked_lse(ls, ratio > 0).cpu().numpy())
        columns["log_tail_curve"].append(
            (fixed_point_log_tail(lt, lr, valid, lam, slice_elements) if curve == "tail" else none).cpu().numpy())
        columns["log_pull_curve"].append(
            (kept_pull(lt, lr, valid, lam, slice_elements) if curve == "pull" else none).cpu().numpy())
        # The fixed point reweights token v by (pi_T/pi_ref)^(lambda-1): the invalid
        # tokens with the largest ratio are the ones extrapolation amplifies.
        top = torch.topk(ratio, k=min(AMPLIFIED_TOP, ratio.shape[-1]), dim=-1)
        columns["amplified_tokens"].append(top.indices.cpu().numpy())
        columns["amplified_log_ratio"].append(top.values.cpu().numpy())
    return PositionMasses(**{k: np.concatenate(v) for k, v in columns.items()})

