"""Sample answers at temperature 1 and score them: strict parse rate, exact-match, NDCG@1."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from cliffaudit.contract import strict_validate
from cliffaudit.demo.train import prompt_text, pure_sampling_config
from cliffaudit.probe import left_pad
from cliffaudit.tasks import exact_match, ndcg_at_1


@dataclass(frozen=True)
class Sample:
    record_id: str
    text: str  # the answer up to (not including) EOS
    token_ids: list[int]  # the same answer as sampled token ids
    valid: bool
    reason: str | None  # why it is invalid; None when valid
    ranking: list[str] | None  # the parsed ranking when valid


@dataclass(frozen=True)
class Scores:
    n: int
    parse_rate: float  # fraction strictly valid against each record's own schema
    exact_match: float  # fraction equal to the ground-truth ranking (invalid counts 0)
    ndcg_at_1: float  # mean NDCG@1 (invalid counts 0)


@torch.no_grad()
def sample_answers(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, records: list[dict[str, Any]],
                   seed: int, batch_size: int = 64, max_new_tokens: int = 64) -> list[Sample]:
    """One pure temperature-1 sample per record (no top-k/top-p), reproducible for ``seed``."""
    model.eval()
    config = pure_sampling_config(tokenizer)
    config.max_new_tokens = max_new_tokens
    torch.manual_seed(seed)
    samples: list[Sample] = []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        batch = left_padded([prompt_text(tokenizer, r) for r in chunk], tokenizer)
        output = model.generate(**batch, generation_config=config)
        for record, row in zip(chunk, output[:, batch["input_ids"].shape[1]:].tolist()):
            ids = row[: row.index(tokenizer.eos_token_id)] if tokenizer.eos_token_id in row else row
            # Special tokens are kept: a stray role token inside the JSON must make it invalid.
            text = tokenizer.decode(ids, skip_special_tokens=False)
            verdict = strict_validate(text, record["schema"])
            ranking = verdict.value["ranking"] if verdict.valid else None
            samples.append(Sample(record["id"], text, ids, verdict.valid, verdict.reason, ranking))
    return samples


def left_padded(texts: list[str], tokenizer: PreTrainedTokenizerFast) -> dict[str, torch.Tensor]:
    """A left-padded batch (decoder-only models generate from the right edge).

    Padded by hand because ``tokenizer(..., padding=True)`` switches padding on in the
    tokenizer's backend for good, and a tokenizer saved afterwards would carry it.
    """
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    input_ids, attention_mask = left_pad(encoded, tokenizer.pad_token_id, "cpu")
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def score(samples: list[Sample], records: list[dict[str, Any]]) -> Scores:
    targets = {r["id"]: r["target"] for r in records}
    exact = sum(exact_match(s.ranking, targets[s.record_id]) for s in samples)
    ndcg = sum(ndcg_at_1(s.ranking, targets[s.record_id]) for s in samples)
    n = len(samples)
    return Scores(n=n, parse_rate=sum(s.valid for s in samples) / n, exact_match=exact / n, ndcg_at_1=ndcg / n)


def evaluate(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, records: list[dict[str, Any]],
             seed: int) -> Scores:
    return score(sample_answers(model, tokenizer, records, seed), records)
