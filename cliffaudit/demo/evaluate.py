"""The demo's records (``id``, ``messages``, ``schema``, ``target``) through the one
evaluator, :mod:`cliffaudit.evaluate`: each model renders its own chat template."""

from __future__ import annotations

from typing import Any

from cliffaudit import evaluate, probe
from cliffaudit.contract import vocabulary_from_tokenizer
from cliffaudit.tasks import RANKING


def sample_records(model, tokenizer, records: list[dict[str, Any]], seed: int,
                   samples_per_record: int = 1) -> list[evaluate.Answer]:
    """Pure temperature-1 answers to each record, judged against its own schema."""
    prompts = [probe.render_prompt(tokenizer, None, r["messages"], True) for r in records]
    return evaluate.sample_answers(model, vocabulary_from_tokenizer(tokenizer), prompts, [r["schema"] for r in records],
                                   seed, pad_id=probe.pad_id(tokenizer), samples_per_prompt=samples_per_record)


def evaluate_records(model, tokenizer, records: list[dict[str, Any]], seed: int,
                     samples_per_record: int = 1) -> evaluate.Evaluation:
    """Parse rate, and the ranking metrics on the answers that parse."""
    answers = sample_records(model, tokenizer, records, seed, samples_per_record)
    return evaluate.summarise(answers, [r["target"] for r in records], RANKING)
