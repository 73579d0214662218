"""A sweep's units of work: one training run at (lambda, seed), or one untrained model
measured under the runs' evaluator (a baseline). Each writes its own file under
``runs/`` and is skipped when that file exists, so a sweep resumes where it stopped.

With ``processes > 1`` the jobs run at once in a pool of processes, each loading its
own copy of the models once (on one GPU, as many as its memory holds: a 135M-parameter
pair takes about 2 GB per process). A job's result depends only on its seed, never on
the process or the order it ran in (``train_run`` and ``evaluate`` seed every draw), so
a pooled sweep writes the runs a single process would. Results are always read back
from the files: one path for fresh, pooled and resumed jobs.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import NamedTuple

from cliffaudit import probe
from cliffaudit.contract import vocabulary_from_tokenizer
from cliffaudit.evaluate import evaluate
from cliffaudit.report import write_json_atomically
from cliffaudit.sweep.model import Baseline, RunResult, SweepSettings
from cliffaudit.sweep.train import RunSettings, train_run
from cliffaudit.tasks import TASKS

BASELINE_ROLES = ("warm start", "teacher")
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # the attention projections (Llama, Qwen, Mistral names)
# A new LoRA adapter's A matrices are drawn at random: every process must draw the same
# warm start, so the draw is seeded (B starts at zero, so the warm start's outputs do not
# depend on it; its training does).
LORA_INIT_SEED = 0


class Job(NamedTuple):
    kind: str  # "run" or "baseline"
    what: float | str  # the run's lambda, or the baseline's role
    seed: int

    def path(self, out: Path) -> Path:
        if self.kind == "run":
            return out / "runs" / f"lambda{self.what:.4f}_seed{self.seed}.json"
        return out / "runs" / f"baseline_{str(self.what).replace(' ', '-')}_seed{self.seed}.json"

    def read(self, out: Path) -> RunResult | Baseline:
        model = RunResult if self.kind == "run" else Baseline
        return model.model_validate_json(self.path(out).read_text())


def trainable_student(settings: SweepSettings, pair):
    """The warm start as every run trains it (each run trains a copy): a student that is a
    PEFT adapter trains its own adapter on its frozen base; with ``lora_rank`` a new LoRA
    adapter on the attention projections trains; otherwise every weight trains, in float32
    (the frozen models keep their precision: only what trains needs an optimizer's digits)."""
    import torch

    from cliffaudit.checkpoints import is_adapter

    if is_adapter(settings.student):
        model = probe.load_model("student", settings.student, probe.resolve_dtype(settings.dtype, pair.device),
                                 trainable=True)
        return model.to(pair.device).eval()
    student = copy.deepcopy(pair.student)
    if settings.lora_rank is None:
        return student.float()
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=settings.lora_rank, lora_alpha=2 * settings.lora_rank, lora_dropout=0.0,
                        target_modules=LORA_TARGETS)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(LORA_INIT_SEED)
        return get_peft_model(student, config).eval()


class Trainer:
    """What every job of a sweep shares, built once per process: the models, the warm start
    every run copies, and the prompts rendered as training and evaluation see them."""

    def __init__(self, settings: SweepSettings, train_records: list, eval_records: list):
        self.settings = settings
        self.pair = probe.load_pair(settings.teacher, settings.student, settings.device, settings.dtype,
                                    reference_path=settings.reference)
        self.vocab = vocabulary_from_tokenizer(self.pair.tokenizer)
        self.pad = probe.pad_id(self.pair.tokenizer)
        self.warm_start = trainable_student(settings, self.pair)
        # Each model's own chat template, as training renders it; evaluation samples the student.
        self.train_prompts = {role: self._prompts(train_records, role) for role in ("student", "teacher", "reference")}
        self.eval_prompts = {role: self._prompts(eval_records, role) for role in ("student", "teacher")}
        self.eval_schemas = [schema for _, schema in eval_records]
        self.eval_targets = [(r.model_extra or {}).get("target") for r, _ in eval_records]

    def _prompts(self, records, role: str) -> list:
        s = self.settings
        return [probe.render_prompt(self.pair.tokenizer_of(role), r.prompt, r.messages, s.use_chat_template,
                                    s.chat_template_kwargs) for r, _ in records]

    def evaluate(self, model, prompts, seed: int):
        s = self.settings
        return evaluate(model, self.vocab, prompts, self.eval_schemas, self.eval_targets, TASKS[s.task], seed,
                        pad_id=self.pad, samples_per_prompt=s.eval_samples_per_prompt, max_new_tokens=s.max_new_tokens)

    def do(self, job: Job, out: Path, on_step=lambda _: None) -> None:
        """Run ``job`` and write its file."""
        s = self.settings
        if job.kind == "baseline":  # the untrained model under the runs' own evaluator and draws
            model, prompts = ((self.warm_start, self.eval_prompts["student"]) if job.what == "warm start"
                              else (self.pair.teacher, self.eval_prompts["teacher"]))
            scores = self.evaluate(model, prompts, job.seed)
            result = Baseline(role=job.what, seed=job.seed, parse_rate=scores.parse_rate, eval_samples=scores.samples)
        else:
            started = time.perf_counter()
            student = copy.deepcopy(self.warm_start)
            run = RunSettings(lam=job.what, seed=job.seed, steps=s.steps, clip=s.clip, lr=s.lr,
                              batch_size=s.batch_size, max_new_tokens=s.max_new_tokens, rollout_dtype=s.rollout_dtype)
            clip_counts: dict = {}
            train_run(student, self.pair.teacher, self.pair.reference, self.pad, self.pair.tokenizer.eos_token_id,
                      self.train_prompts, run, on_step=on_step, clip_counts=clip_counts)
            scores = self.evaluate(student, self.eval_prompts["student"], job.seed)
            result = RunResult(lam=job.what, seed=job.seed, parse_rate=scores.parse_rate, metrics=scores.metrics,
                               eval_samples=scores.samples, seconds=round(time.perf_counter() - started, 2),
                               clipped_share=clip_counts.get("clipped", 0) / max(clip_counts.get("tokens", 0), 1))
        write_json_atomically(result.model_dump_json(indent=2) + "\n", job.path(out))


class Jobs:
    """Runs a sweep's jobs, in this process or in a pool; the models load only where a job
    is left to do."""

    def __init__(self, settings: SweepSettings, train_records: list, eval_records: list, out: Path,
                 processes: int = 1):
        if processes < 1:
            raise ValueError(f"--num-processes must be at least 1, got {processes}")
        self.settings, self.records, self.out, self.processes = settings, (train_records, eval_records), out, processes
        self._trainer: Trainer | None = None

    def do(self, jobs: list[Job], bar) -> list:
        """Run what is not done yet; every job's result, read from its file, in ``jobs``' order."""
        steps = self.settings.steps
        todo = [job for job in jobs if not job.path(self.out).exists()]
        bar.update(steps * sum(job.kind == "run" and job not in todo for job in jobs))
        if self.processes > 1 and len(todo) > 1:
            self._in_pool(todo, bar)
        elif todo:
            self._trainer = self._trainer or Trainer(self.settings, *self.records)
            for job in todo:
                self._trainer.do(job, self.out, on_step=lambda _: bar.update(1))
        return [job.read(self.out) for job in jobs]

    def _in_pool(self, todo: list[Job], bar) -> None:
        processes = min(self.processes, len(todo))
        # spawn: CUDA cannot be used in a forked child, and a fresh interpreter inherits no
        # thread pools; on a CPU the cores are shared out rather than oversubscribed.
        with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                                 initargs=(self.settings, *self.records, _threads_per_process(processes))) as pool:
            futures = {pool.submit(_work, job, self.out): job for job in todo}
            try:
                for future in as_completed(futures):
                    future.result()  # a failed job fails the sweep; the finished ones stay on disk
                    bar.update(self.settings.steps if futures[future].kind == "run" else 0)
            except BaseException:
                pool.shutdown(cancel_futures=True)  # not the queued jobs' hours before saying so
                raise


def _threads_per_process(processes: int) -> int:
    """OMP_NUM_THREADS where the user set it (as every torch process honours it), else the
    cores shared out."""
    stated = os.environ.get("OMP_NUM_THREADS", "")
    return int(stated) if stated.isdigit() and int(stated) > 0 else max(1, (os.cpu_count() or 1) // processes)


_WORKER: Trainer | None = None  # one per pool process


def _start_worker(settings: SweepSettings, train_records: list, eval_records: list, threads: int) -> None:
    import torch

    global _WORKER
    torch.set_num_threads(threads)
    _WORKER = Trainer(settings, train_records, eval_records)


def _work(job: Job, out: Path) -> None:
    assert _WORKER is not None, "a pool job ran in a process the pool did not start"
    _WORKER.do(job, out)
