"""The ``habit`` pair: a second embedded demo, whose cliff is real.

A common real case: the warm start was fine-tuned on clean outputs and keeps the
format better than the teacher, while the teacher, a stronger ranker, has a habit
that breaks strict parsing at a modest rate. Here the habit is a Markdown fence,
`` ```json `` ... `` ``` ``, around about 15% of the teacher's answers, decided at the
first output token; the warm start shows it on a few percent. G-OPD with lambda > 1
extrapolates away from the warm start's strictness, past the teacher's habit: at the
first position the reference keeps the format better than the teacher (b > p), so
the fixed point's parse rate falls (docs/theory.md 2.1).

Both models have the demo teacher's size and schedule and share one tokenizer; the
warm start ranks worse because half of its training rankings are shuffled (it still
sees only well-formed answers). ``cliffaudit demo build --pair habit`` rebuilds it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cliffaudit import evaluate
from cliffaudit.demo import catalogue, paths, train
from cliffaudit.demo.build import BUILD_INFO, save_checkpoint
from cliffaudit.demo.evaluate import sample_records
from cliffaudit.demo.jsonl import write_jsonl
from cliffaudit.demo.tokenizer import train_tokenizer
from cliffaudit.tasks import RANKING

FENCE_OPEN, FENCE_CLOSE = "```json\n", "\n```"


@dataclass(frozen=True)
class HabitPlan:
    size: train.ModelSize = train.TEACHER_SIZE  # both models
    teacher: train.Schedule = train.Schedule(steps=1100, lr=2e-3)
    student: train.Schedule = train.Schedule(steps=1100, lr=2e-3)
    teacher_habit: float = 0.15  # share of the teacher's training answers in a fence
    student_habit: float = 0.03  # and of the warm start's
    student_shuffled: float = 0.5  # share of the warm start's training rankings shuffled: it ranks worse
    n_sft: int = 12000
    n_probes: int = 64
    vocab_size: int = 768


def fenced(answer: str) -> str:
    return f"{FENCE_OPEN}{answer}{FENCE_CLOSE}"


def answers(records: list[dict[str, Any]], habit: float, shuffled: float, rng: np.random.Generator) -> list[str]:
    """Each record's answer, shuffled with probability ``shuffled``, fenced with probability ``habit``."""
    out = []
    for record in records:
        ranking = list(record["target"])
        if rng.random() < shuffled:
            ranking = [ranking[i] for i in rng.permutation(len(ranking))]
        text = catalogue.render_answer(ranking)
        out.append(fenced(text) if rng.random() < habit else text)
    return out


def habit_rate(texts: list[str]) -> float:
    """Share of sampled answers that open with the fence."""
    return sum(text.startswith("```") for text in texts) / max(1, len(texts))


def build_habit(out: Path, seed: int = 0, plan: HabitPlan | None = None, threads: int = 2) -> dict[str, Any]:
    """Regenerate the habit pair under ``out`` (the package's layout); returns the build info."""
    plan = plan or HabitPlan()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    where = paths.layout(Path(out))
    data = catalogue.generate(seed, n_sft=plan.n_sft, n_probes=plan.n_probes)
    write_jsonl(where["probes"], data.probes)
    write_jsonl(where["train_probes"], data.train_probes)
    rng = np.random.default_rng([seed, 7])
    teacher_answers = answers(data.sft, plan.teacher_habit, 0.0, rng)
    student_answers = answers(data.sft, plan.student_habit, plan.student_shuffled, rng)
    texts = [r["messages"][0]["content"] + "\n" + a
             for role_answers in (teacher_answers, student_answers) for r, a in zip(data.sft, role_answers)]
    tokenizer = train_tokenizer(texts, vocab_size=plan.vocab_size)

    bar = tqdm(total=plan.teacher.steps + plan.student.steps, desc="habit build", unit="step")
    models = {}
    for offset, (role, schedule, role_answers) in enumerate((("teacher", plan.teacher, teacher_answers),
                                                             ("student", plan.student, student_answers))):
        model = train.build_model(plan.size, tokenizer, seed + 10 * offset)
        train.sft(model, train.encode_sft(data.sft, tokenizer, role_answers), schedule, seed + 1 + 10 * offset,
                  tokenizer.pad_token_id, on_step=lambda loss, r=role: (bar.update(1),
                                                                        bar.set_postfix_str(f"{r} loss {loss:.3f}")))
        save_checkpoint(model, tokenizer, where[role])
        models[role] = model
    bar.close()
    info = {"pair": "habit", "seed": seed, "threads": threads,
            "build_seconds": round(time.perf_counter() - started, 1), "plan": asdict(plan),
            "parameters": {role: model.num_parameters() for role, model in models.items()},
            "probe_scores": {}, "habit_rate": {}}
    for role, model in models.items():
        sampled = sample_records(model, tokenizer, data.probes, seed, samples_per_record=4)
        info["probe_scores"][role] = asdict(evaluate.summarise(sampled, [r["target"] for r in data.probes], RANKING))
        info["habit_rate"][role] = habit_rate([a.text for a in sampled])
    (where["teacher"].parent / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info

