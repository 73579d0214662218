"""``cliffaudit demo build``: data, tokenizer, teacher and warm-start student, in that order.

The student is a warm start "with parse headroom": its training is stopped on
purpose. Its strict parse rate is measured on held-out selection prompts with a fixed
sampling seed (every 25 steps, then every 5 once it parses at all), and the checkpoint
closest to the middle of the band is kept, so the same seed selects the same checkpoint.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

from cliffaudit.demo import catalogue, paths, train
from cliffaudit.demo.evaluate import evaluate_records
from cliffaudit.demo.jsonl import write_jsonl
from cliffaudit.demo.tokenizer import train_tokenizer

BUILD_INFO = "build.json"  # written beside the checkpoints: what was built, how, and how well


@dataclass(frozen=True)
class StudentBand:
    """Where the warm start's parse rate must land, and where selection aims."""

    low: float = 0.25
    high: float = 0.80
    aim: float = 0.5
    margin: float = 0.15  # a selected rate must be within aim +- margin, well inside the band

    def accepts(self, rate: float) -> bool:
        return abs(rate - self.aim) <= self.margin


@dataclass(frozen=True)
class BuildPlan:
    teacher_size: train.ModelSize = train.TEACHER_SIZE
    student_size: train.ModelSize = train.STUDENT_SIZE
    teacher: train.Schedule = train.Schedule(steps=1100, lr=2e-3)
    student: train.Schedule = train.Schedule(steps=1000, lr=1e-3)
    student_eval_every: int = 25  # while the student cannot parse at all yet
    student_fine_every: int = 5  # once it can: the rate crosses the band within ~50 steps
    band: StudentBand = field(default_factory=StudentBand)
    n_sft: int = 12000
    n_selection: int = 256  # held-out prompts that pick the student checkpoint
    n_probes: int = 64  # held-out prompts shipped for the audit
    vocab_size: int = 768
    require_band: bool = True  # a real build must fail rather than ship an off-band student


class StudentOutOfBand(RuntimeError):
    """No student checkpoint landed in the parse-rate band."""


def _chat_texts(records: Iterable[dict[str, Any]]) -> Iterable[str]:
    for record in records:
        yield record["messages"][0]["content"] + "\n" + catalogue.render_answer(record["target"])


def save_checkpoint(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(directory))  # safetensors + config.json + generation_config.json
    tokenizer.save_pretrained(str(directory))


@dataclass
class StudentSelection:
    trace: list[dict[str, Any]] = field(default_factory=list)  # parse rate at each measured step
    step: int | None = None  # the kept step; None when no step landed in the band
    gap: float = float("inf")  # |kept parse rate - aim|
    weights: dict[str, torch.Tensor] | None = None


def select_student(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast,
                   examples: list[tuple[list[int], int]], plan: BuildPlan, selection: list[dict[str, Any]],
                   seed: int, bar: tqdm) -> StudentSelection:
    """Train the student, measuring parse rate as it goes; keep the step closest to the aim."""
    result = StudentSelection()

    def checkpoint_hook(step: int) -> bool:
        rising = bool(result.trace) and result.trace[-1]["parse_rate"] > 0
        if step % plan.student_eval_every and not rising:
            return False
        rate = evaluate_records(model, tokenizer, selection, seed).parse_rate
        result.trace.append({"step": step, "parse_rate": rate})
        bar.set_postfix_str(f"student parse rate {rate:.2f}")
        if plan.band.accepts(rate) and abs(rate - plan.band.aim) < result.gap:  # ties keep the earlier step
            result.step, result.gap = step, abs(rate - plan.band.aim)
            result.weights = copy.deepcopy(model.state_dict())
        return rate > plan.band.high  # past the band: more training only raises it

    train.sft(model, examples, plan.student, seed + 2, tokenizer.pad_token_id,
              on_step=lambda loss: bar.update(1), hook=checkpoint_hook, eval_every=plan.student_fine_every)
    return result


def build(out: Path, seed: int = 0, plan: BuildPlan | None = None, threads: int = 2) -> dict[str, Any]:
    """Regenerate everything under ``out`` (same layout as the package); returns the build info."""
    plan = plan or BuildPlan()
    torch.set_num_threads(threads)
    started = time.perf_counter()
    where = paths.layout(Path(out))

    data = catalogue.generate(seed, n_sft=plan.n_sft, n_selection=plan.n_selection, n_probes=plan.n_probes)
    write_jsonl(where["probes"], data.probes)
    write_jsonl(where["train_probes"], data.train_probes)
    tokenizer = train_tokenizer(_chat_texts(data.sft), vocab_size=plan.vocab_size)
    examples = train.encode_sft(data.sft, tokenizer)

    bar = tqdm(total=plan.teacher.steps + plan.student.steps, desc="demo build", unit="step")
    teacher = train.build_model(plan.teacher_size, tokenizer, seed)
    train.sft(teacher, examples, plan.teacher, seed + 1, tokenizer.pad_token_id,
              on_step=lambda loss: (bar.update(1), bar.set_postfix_str(f"teacher loss {loss:.3f}")))
    save_checkpoint(teacher, tokenizer, where["teacher"])

    student = train.build_model(plan.student_size, tokenizer, seed + 2)
    selected = select_student(student, tokenizer, examples, plan, data.selection, seed, bar)
    bar.update(bar.total - bar.n)  # the student may stop early
    bar.close()
    if selected.weights is not None:
        student.load_state_dict(selected.weights)
    elif plan.require_band:
        raise StudentOutOfBand(
            f"no student checkpoint within {plan.band.aim} +- {plan.band.margin}: {selected.trace}")
    save_checkpoint(student, tokenizer, where["student"])

    results = {
        name: evaluate_records(model, tokenizer, data.probes, seed)
        for name, model in (("teacher", teacher), ("student", student))
    }
    info = {
        "seed": seed,
        "threads": threads,
        "build_seconds": round(time.perf_counter() - started, 1),
        "plan": asdict(plan),
        "parameters": {"teacher": teacher.num_parameters(), "student": student.num_parameters()},
        "student_trace": selected.trace,
        "student_selected_step": selected.step,
        "probe_scores": {name: asdict(scores) for name, scores in results.items()},
    }
    (where["teacher"].parent / BUILD_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
