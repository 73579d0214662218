"""Sample a model at temperature 1 and score what it writes: the one evaluator.

The sweep measures every trained run with it; the demo build selects its warm
start with it and records both models' scores; ``cliffaudit demo eval`` prints it.
An answer counts as valid under :func:`cliffaudit.contract.strict_validate_output`,
the audit's own definition, and a task's metrics are means over the answers that
parse: the cliff shows in validity while quality on parsed answers stays flat.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cliffaudit import probe
from cliffaudit.contract import TokenVocabulary, strict_validate_output
from cliffaudit.tasks import Task

BATCH_SIZE = 32  # rows sampled together; a row's sample depends on its seed, not its batch


@dataclass(frozen=True)
class Answer:
    prompt_index: int
    token_ids: list[int]  # as sampled, the end-of-sequence token included when it came
    text: str  # the bytes before end-of-sequence, decoded (undecodable bytes replaced)
    valid: bool
    reason: str | None  # why not valid; None when valid
    parsed: Any  # the parsed document when it parsed


@dataclass(frozen=True)
class Evaluation:
    parse_rate: float
    metrics: dict[str, float]  # the task's metrics, means over answers that parse; empty without targets
    samples: int


def answer_seed(seed: int, job: int) -> int:
    """The sampling seed of the ``job``-th answer (prompt-major, then sample) of an evaluation."""
    return seed * 1_000_003 + job


def sample_answers(model, vocab: TokenVocabulary, prompts: list[list[int]], schemas: list[dict], seed: int, *,
                   pad_id: int, samples_per_prompt: int = 1, max_new_tokens: int = 64) -> list[Answer]:
    """``samples_per_prompt`` pure temperature-1 answers to each prompt (token ids, as the
    model renders it), each judged against its prompt's schema; reproducible for ``seed``."""
    jobs = [(i, k) for i in range(len(prompts)) for k in range(samples_per_prompt)]
    answers: list[Answer] = []
    was_training = model.training
    model.eval()  # a build evaluates its student between training steps
    try:
        for start in range(0, len(jobs), BATCH_SIZE):
            chunk = jobs[start:start + BATCH_SIZE]
            seeds = [answer_seed(seed, j) for j in range(start, start + len(chunk))]
            outputs = probe.sample(model, [prompts[i] for i, _ in chunk], seeds, max_new_tokens, vocab.eos_token_id,
                                   pad_id)
            for (i, _), output in zip(chunk, outputs):
                verdict = strict_validate_output(output, vocab, schemas[i])
                ended = bool(output) and output[-1] == vocab.eos_token_id
                text = vocab.output_bytes(output[:-1] if ended else output).decode("utf-8", "replace")
                answers.append(Answer(i, output, text, verdict.valid, verdict.reason, verdict.value))
    finally:
        model.train(was_training)
    return answers


def summarise(answers: list[Answer], targets: list[Any] | None, task: Task) -> Evaluation:
    """Parse rate over all answers; ``task``'s metrics over the valid ones whose prompt has a target."""
    scored = [task.score(a.parsed, targets[a.prompt_index]) for a in answers
              if a.valid and targets is not None and targets[a.prompt_index] is not None]
    metrics = {name: sum(s[name] for s in scored) / len(scored) for name in task.metrics} if scored else {}
    return Evaluation(sum(a.valid for a in answers) / max(len(answers), 1), metrics, len(answers))


def evaluate(model, vocab: TokenVocabulary, prompts: list[list[int]], schemas: list[dict], targets: list[Any] | None,
             task: Task, seed: int, *, pad_id: int, samples_per_prompt: int = 1,
             max_new_tokens: int = 64) -> Evaluation:
    answers = sample_answers(model, vocab, prompts, schemas, seed, pad_id=pad_id,
                             samples_per_prompt=samples_per_prompt, max_new_tokens=max_new_tokens)
    return summarise(answers, targets, task)
