"""``cliffaudit sweep``: lock the audit's prediction, train one short G-OPD run per
(lambda, seed), measure where strict validity collapses, and compare.

Resumable: each finished run is saved under ``runs/``; rerunning with the same
output folder skips it. The prediction is written and hashed before the first
training step and re-hashed at the end.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cliffaudit import __version__, audit, inputs, probe
from cliffaudit.contract import vocabulary_from_tokenizer
from cliffaudit.evaluate import evaluate
from cliffaudit.report import AuditSettings, sha256_file, write_json_atomically
from cliffaudit.report.load import load_report
from cliffaudit.sweep import onset as onsets
from cliffaudit.sweep.model import (LOCKED_REPORT, Convergence, OnsetInterval, OnsetRange, Prediction, RuleVerdict,
                                    RunResult, SweepReport, SweepSettings, locked_report)
from cliffaudit.sweep.train import RunSettings, train_run
from cliffaudit.tasks import TASKS


def _prediction(settings: SweepSettings, out: Path, echo) -> tuple[Prediction, Path]:
    if settings.from_report:
        report_path = Path(settings.from_report)
        report = load_report(report_path)
    else:
        echo("no --from-report: auditing the training probes first")
        report = audit.run_audit(AuditSettings(teacher=settings.teacher, student=settings.student,
                                               reference=settings.reference, probes=settings.probes,
                                               schema_path=settings.schema_path, clip=settings.clip,
                                               device=settings.device, dtype=settings.dtype,
                                               use_chat_template=settings.use_chat_template,
                                               chat_template_kwargs=settings.chat_template_kwargs))
        report_path = out / "audit" / "report.json"
        write_json_atomically(report.model_dump_json(indent=2) + "\n", report_path)
    band = [r.clip_band_lambda_star for r in report.classes if r.clip_band_lambda_star is not None]
    return Prediction(
        binding_class=report.binding_class, drop=report.cliff.drop, lambda_max=report.cliff.lambda_max,
        lambda_v=report.cliff.lambda_v, interval=report.cliff.interval, recommended_lambda=report.recommended_lambda,
        clip=report.settings.clip, clip_band_lambda_star=min(band) if band else None,
        report_path=str(report_path), report_sha256=sha256_file(report_path), sweep_settings=settings), report_path


def _same_report_elsewhere(stored: Prediction, prediction: Prediction) -> Prediction:
    """``stored`` with the new prediction's report path: which file held the report does not matter."""
    settings = stored.sweep_settings.model_copy(update={"from_report": prediction.sweep_settings.from_report})
    return stored.model_copy(update={"report_path": prediction.report_path, "sweep_settings": settings})


def _lock(prediction: Prediction, out: Path, echo) -> str:
    """Write prediction.json once; a resumed sweep must find the same prediction."""
    path = out / "prediction.json"
    text = prediction.model_dump_json(indent=2) + "\n"
    # Compared as models: a field added since the lock, at its default, is the same prediction,
    # and so is the same report (by its sha256) read from another path (its copy beside the lock).
    if path.exists() and _same_report_elsewhere(Prediction.model_validate_json(path.read_text()), prediction) \
            != prediction:
        raise ValueError(f"{path} holds another prediction: use a new --out for new settings")
    if not path.exists():
        write_json_atomically(text, path)
    digest = sha256_file(path)
    echo(f"prediction locked: {path} sha256 {digest}")
    return digest


def _keep_locked_report(report_path: Path, digest: str, out: Path) -> None:
    """A copy of the report the prediction came from, beside the lock: a later re-audit
    may overwrite the original, and the lock's report_sha256 must stay checkable."""
    kept = out / LOCKED_REPORT
    if not kept.exists() and report_path.exists() and sha256_file(report_path) == digest:
        write_json_atomically(report_path.read_text(encoding="utf-8"), kept)


def run_sweep(settings: SweepSettings, out_dir: Path, echo=print) -> SweepReport:
    """Lock, train what is not trained yet, and summarise; the caller writes sweep.json
    (and sweep.html, which ``cliffaudit.render`` draws)."""
    out = Path(out_dir)
    # Everything checkable from settings and files, before the lock is written: bad input leaves no prediction.json.
    inputs.check_sweep_settings(settings)
    schema = inputs.read_schema(settings.schema_path) if settings.schema_path else None
    train_records = inputs.read_probes(settings.probes, schema)
    eval_records = inputs.read_probes(settings.eval_probes, schema)
    inputs.check_checkpoints(settings.teacher, settings.student, settings.reference)
    inputs.check_writable_folder("--out", out)
    prediction, _ = _prediction(settings, out, echo)
    lock_hash = _lock(prediction, out, echo)
    _keep_locked_report(Path(prediction.report_path), prediction.report_sha256, out)

    pair = probe.load_pair(settings.teacher, settings.student, settings.device, settings.dtype,
                           reference_path=settings.reference)
    tokenizer, vocab = pair.tokenizer, vocabulary_from_tokenizer(pair.tokenizer)
    pad = probe.pad_id(tokenizer)
    warm_start = trainable_student(settings, pair)

    def prompts_of(records, role: str):
        return [probe.render_prompt(pair.tokenizer_of(role), r.prompt, r.messages, settings.use_chat_template,
                                    settings.chat_template_kwargs)
                for r, _ in records]

    # Each model's own chat template, as training renders it; evaluation samples the student.
    train_prompts = {role: prompts_of(train_records, role) for role in ("student", "teacher", "reference")}
    eval_prompts = prompts_of(eval_records, "student")
    eval_schemas = [schema for _, schema in eval_records]
    eval_targets = [(r.model_extra or {}).get("target") for r, _ in eval_records]

    runs: list[RunResult] = []
    jobs = [(lam, seed) for seed in _seeds(settings) for lam in settings.lambdas]
    with tqdm(total=len(jobs) * settings.steps, desc="sweep", unit="step") as bar:
        for lam, seed in jobs:
            path = out / "runs" / f"lambda{lam:.4f}_seed{seed}.json"
            if path.exists():
                runs.append(RunResult.model_validate_json(path.read_text()))
                bar.update(settings.steps)
                continue
            started = time.perf_counter()
            student = copy.deepcopy(warm_start)
            run = RunSettings(lam=lam, seed=seed, steps=settings.steps, clip=settings.clip, lr=settings.lr,
                              batch_size=settings.batch_size, max_new_tokens=settings.max_new_tokens,
                              rollout_dtype=settings.rollout_dtype)
            train_run(student, pair.teacher, pair.reference, pad, tokenizer.eos_token_id, train_prompts, run,
                      on_step=lambda _: bar.update(1))
            scores = evaluate(student, vocab, eval_prompts, eval_schemas, eval_targets, TASKS[settings.task], seed,
                              pad_id=pad, samples_per_prompt=settings.eval_samples_per_prompt,
                              max_new_tokens=settings.max_new_tokens)
            result = RunResult(lam=lam, seed=seed, parse_rate=scores.parse_rate, metrics=scores.metrics,
                               eval_samples=scores.samples,
                               seconds=round(time.perf_counter() - started, 2))
            write_json_atomically(result.model_dump_json(indent=2) + "\n", path)
            runs.append(result)

    return _summarise(settings, prediction, lock_hash, out, runs)


LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]  # the attention projections (Llama, Qwen, Mistral names)


def trainable_student(settings: SweepSettings, pair):
    """The warm start as every run trains it (each run trains a copy): a student that is a
    PEFT adapter trains its own adapter on its frozen base; with ``lora_rank`` a new LoRA
    adapter on the attention projections trains; otherwise every weight trains, in float32
    (the frozen models keep their precision: only what trains needs an optimizer's digits)."""
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
    return get_peft_model(student, config).eval()


def _seeds(settings: SweepSettings) -> range:
    return range(settings.first_seed, settings.first_seed + settings.seeds)


def _interval(onset: onsets.Onset | None) -> OnsetInterval | None:
    return None if onset is None else OnsetInterval(lower=onset.lower, upper=onset.upper)


def _summarise(settings, prediction, lock_hash, out: Path, runs: list[RunResult]) -> SweepReport:
    per_seed = {}
    for seed in _seeds(settings):
        mine = [r for r in runs if r.seed == seed]
        per_seed[str(seed)] = _interval(onsets.observed_onset([r.lam for r in mine], [r.parse_rate for r in mine],
                                                              settings.onset_tolerance))
    pooled_rates = [float(np.mean([r.parse_rate for r in runs if r.lam == lam])) for lam in settings.lambdas]
    pooled = onsets.observed_onset(settings.lambdas, pooled_rates, settings.onset_tolerance)
    observed = onsets.onset_range([r.lam for r in runs], [r.parse_rate for r in runs], [r.eval_samples for r in runs],
                                  settings.onset_tolerance)
    verdicts = []
    star = prediction.clip_band_lambda_star
    for rule, window in (("fixed point", prediction.interval),
                         ("clip band", (star, star) if star is not None else (None, None))):
        outcome = onsets.judge(observed, window, max(settings.lambdas), prediction.lambda_max)
        check = outcome.check
        verdicts.append(RuleVerdict(rule=rule, window=window, hit=outcome.hit, outcome=outcome.text,
                                    miss=check.miss if check else None, direction=check.direction if check else None,
                                    miss_at_least=check.miss_at_least if check else False))
    audited = locked_report(prediction, out)
    report = SweepReport(tool_version=__version__, settings=settings, prediction=prediction,
                         prediction_sha256=lock_hash, lock_verified=sha256_file(out / "prediction.json") == lock_hash,
                         runs=sorted(runs, key=lambda r: (r.seed, r.lam)), onset_per_seed=per_seed,
                         onset_pooled=_interval(pooled),
                         onset_range=OnsetRange(lower=observed.lower, upper=observed.upper,
                                                no_onset_share=observed.no_onset_share, level=observed.level,
                                                resamples=onsets.RANGE_RESAMPLES),
                         verdicts=verdicts,
                         convergence=convergence(audited.student_parse_rate, audited.teacher_parse_rate, runs))
    return report


REACHED = 0.9  # share of the way to the fixed point at lambda = 1 that counts as reaching it


def convergence(warm_start: float, teacher: float, runs: list[RunResult]) -> Convergence:
    at_one = [r.parse_rate for r in runs if r.lam == 1.0]
    pooled = float(np.mean(at_one)) if at_one else None
    progress = None
    if pooled is not None and abs(warm_start - teacher) >= 0.02:  # closer than that, noise decides
        progress = (warm_start - pooled) / (warm_start - teacher)
    return Convergence(warm_start=warm_start, fixed_point_at_one=teacher, runs_at_one=pooled, progress=progress,
                       reached=None if progress is None else progress >= REACHED)




def summary(report: SweepReport) -> str:
    seeds = sorted({r.seed for r in report.runs})
    lines = ["lambda  " + "  ".join(f"seed{s}" for s in seeds) + "   pooled"]
    for lam in report.settings.lambdas:
        rates = [r.parse_rate for r in sorted(report.runs, key=lambda r: r.seed) if r.lam == lam]
        lines.append(f"{lam:<7.3f} " + "  ".join(f"{x:5.2f}" for x in rates) + f"   {np.mean(rates):5.2f}")
    pooled = report.onset_pooled
    lines.append("observed onset (pooled): " + ("none on the grid" if pooled is None
                                                 else f"({pooled.lower:g}, {pooled.upper:g}]"))
    observed = report.onset_range
    if observed is not None:
        lines.append(f"its range over resampled runs ({observed.level:.0%}): "
                     + onsets.OnsetRange(observed.lower, observed.upper, observed.no_onset_share).text())
    for v in report.verdicts:
        window = "no cliff" if v.window[0] is None else f"[{v.window[0]:.4g}, {v.window[1]:.4g}]"
        lines.append(f"{v.rule} rule, locked {window}: {v.outcome}")
    if len(report.verdicts) > 1 and all(v.hit for v in report.verdicts):
        lines.append("every rule is consistent with this sweep: it cannot tell them apart")
    c = report.convergence
    if c is not None and c.progress is not None:
        lines.append(f"lambda = 1 runs: parse rate {c.runs_at_one:.2f}, {c.progress:.0%} of the way from the warm start "
                     f"({c.warm_start:.2f}) to the fixed point ({c.fixed_point_at_one:.2f})"
                     + ("" if c.reached else ": not reached, so the onset tests a finite budget and comes later"))
    lines.append(f"prediction sha256 {report.prediction_sha256} ({'verified' if report.lock_verified else 'CHANGED'})")
    return "\n".join(lines)
