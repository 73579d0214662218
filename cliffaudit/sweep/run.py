"""``cliffaudit sweep``: lock the audit's prediction, train one short G-OPD run per
(lambda, seed), measure where strict validity collapses, and compare.

Resumable: each finished run is saved under ``runs/``; rerunning with the same
output folder skips it. The prediction is written and hashed before the first
training step and re-hashed at the end.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cliffaudit import __version__, audit, inputs, theory
from cliffaudit.report import AuditSettings, sha256_file, write_json_atomically
from cliffaudit.report.load import load_report
from cliffaudit.sweep import onset as onsets
from cliffaudit.sweep.jobs import BASELINE_ROLES, Job, Jobs
from cliffaudit.sweep.model import (
    LOCKED_REPORT,
    Baseline,
    Convergence,
    FiniteBudgetLock,
    OnsetInterval,
    Prediction,
    RuleVerdict,
    RunResult,
    SweepReport,
    SweepSettings,
    locked_report,
)
from cliffaudit.theory import finite_budget


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
    # The clip band at the c this sweep trains with (the report's rows carry it at the audit's c):
    # its claim is that c moves the cliff, so a sweep at another c must be judged at that c.
    band = [theory.clip_band_lambda_star(r.teacher_valid_mass, r.reference_valid_mass, settings.clip)
            for r in report.classes]
    band = [b for b in band if math.isfinite(b)]
    return Prediction(
        binding_class=report.binding_class, drop=report.cliff.drop, lambda_max=report.cliff.lambda_max,
        lambda_v=report.cliff.lambda_v, interval=report.cliff.interval, recommended_lambda=report.recommended_lambda,
        clip=settings.clip, clip_band_lambda_star=min(band) if band else None,
        report_path=str(report_path), report_sha256=sha256_file(report_path), sweep_settings=settings), report_path


def _same_report_elsewhere(stored: Prediction, prediction: Prediction) -> Prediction:
    """``stored`` with the new prediction's report path: which file held the report does not matter."""
    settings = stored.sweep_settings.model_copy(update={"from_report": prediction.sweep_settings.from_report})
    return stored.model_copy(update={"report_path": prediction.report_path, "sweep_settings": settings})


def _lock(prediction: Prediction, out: Path, echo) -> str:
    """Write prediction.json once; a resumed sweep must find the same prediction. Compared as
    models: a field added since the lock, at its default, is the same prediction, and so is
    the same report (by its sha256) read from another path (its copy beside the lock)."""
    return _lock_file(prediction.model_dump_json(indent=2) + "\n", out / "prediction.json", "prediction", echo,
                      lambda stored: _same_report_elsewhere(Prediction.model_validate_json(stored),
                                                            prediction) == prediction)


def _lock_file(text: str, path: Path, what: str, echo, same) -> str:
    """Write a lock once, atomically; a resumed sweep must recompute one that ``same`` (given
    the stored text) accepts."""
    if path.exists() and not same(path.read_text()):
        raise ValueError(f"{path} holds another {what}: use a new --out for new settings")
    if not path.exists():
        write_json_atomically(text, path)
    digest = sha256_file(path)
    echo(f"{what} locked: {path} sha256 {digest}")
    return digest


def _keep_locked_report(report_path: Path, digest: str, out: Path) -> None:
    """A copy of the report the prediction came from, beside the lock: a later re-audit
    may overwrite the original, and the lock's report_sha256 must stay checkable."""
    kept = out / LOCKED_REPORT
    if not kept.exists() and report_path.exists() and sha256_file(report_path) == digest:
        write_json_atomically(report_path.read_text(encoding="utf-8"), kept)


def run_sweep(settings: SweepSettings, out_dir: Path, echo=print, processes: int = 1) -> SweepReport:
    """Lock, train what is not trained yet (``processes`` jobs at once), and summarise; the
    caller writes sweep.json (and sweep.html, which ``cliffaudit.render`` draws)."""
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

    # The warm start's and the teacher's rates under the runs' own evaluator: what the lambda = 1
    # runs' progress is measured between. A two-phase sweep measures them at every seed (its
    # finite-budget lock rests on them); a sweep at its first seed only, to keep within its budget.
    baseline_seeds = list(_seeds(settings)) if settings.finite_budget else [settings.first_seed]
    baseline_jobs = [Job("baseline", role, seed) for role in BASELINE_ROLES for seed in baseline_seeds]
    run_jobs = [Job("run", lam, seed) for seed in _seeds(settings) for lam in settings.lambdas]
    first = [job for job in run_jobs if job.what == 1.0] if settings.finite_budget else run_jobs
    later = [job for job in run_jobs if job not in first]
    jobs = Jobs(settings, train_records, eval_records, out, processes)
    budget_lock = budget_hash = None
    with tqdm(total=len(run_jobs) * settings.steps, desc="sweep", unit="step") as bar:
        done = jobs.do(baseline_jobs + first, bar)
        baselines, runs = done[:len(baseline_jobs)], done[len(baseline_jobs):]
        if settings.finite_budget:
            budget_lock = finite_budget_lock(settings, prediction, lock_hash, locked_report(prediction, out),
                                             baselines, runs)
            text = budget_lock.model_dump_json(indent=2) + "\n"
            budget_hash = _lock_file(text, out / FINITE_BUDGET_LOCK, "finite-budget onset", echo,
                                     lambda stored: FiniteBudgetLock.model_validate_json(stored)
                                     == FiniteBudgetLock.model_validate_json(text))
            echo(finite_budget_text(budget_lock))
        runs += jobs.do(later, bar)

    return _summarise(settings, prediction, lock_hash, out, runs, baselines, budget_lock, budget_hash)


FINITE_BUDGET_LOCK = "finite-budget.json"
FINITE_BUDGET_STATUS = ("under test: the rule failed its acceptance criterion on held-out simulator cases "
                        "(docs/theory.md section 9), so it is locked here as evidence and offered by neither the "
                        "audit nor the gate")


def _counts(rates: list[tuple[float, int]]) -> tuple[int, int]:
    return sum(round(rate * n) for rate, n in rates), sum(n for _, n in rates)


def class_log_validity_changes(report) -> list[float]:
    """Each class's change in log validity per output from the warm start to the teacher:
    its positions per teacher sample times ``log p - log b``."""
    samples = max(report.records * report.settings.samples_per_prompt, 1)
    return [row.teacher_positions / samples * (math.log(row.teacher_valid_mass) - math.log(row.reference_valid_mass))
            for row in report.classes if row.teacher_valid_mass > 0 and row.reference_valid_mass > 0]


def finite_budget_lock(settings: SweepSettings, prediction: Prediction, lock_hash: str, report,
                       baselines: list[Baseline], runs: list[RunResult]) -> FiniteBudgetLock:
    """theory.finite_budget on the lambda = 1 runs and the baselines: the onset window at this budget."""
    warm = _counts([(b.parse_rate, b.eval_samples) for b in baselines if b.role == "warm start"])
    teacher = _counts([(b.parse_rate, b.eval_samples) for b in baselines if b.role == "teacher"])
    at_one = [(round(r.parse_rate * r.eval_samples), r.eval_samples) for r in runs if r.lam == 1.0]
    common = dict(status=FINITE_BUDGET_STATUS, prediction_sha256=lock_hash, steps=settings.steps, warm_start=warm,
                  teacher=teacher, runs_at_one=at_one, lambda_v=prediction.lambda_v)
    none = dict(effective_lambda=None, effective_lambda_interval=None, window=(None, None), predicted_up_to=None)
    if settings.reference is not None and settings.reference != settings.student:
        return FiniteBudgetLock(offered=False, reason="the reference is not the warm start: the fixed point at 0 is "
                                                      "not where the runs start", **common, **none)
    w, t = warm[0] / warm[1], teacher[0] / teacher[1]
    if not finite_budget.is_offered(w, t, class_log_validity_changes(report)):
        return FiniteBudgetLock(offered=False, reason=(
            f"not measurable: the warm start parses {w:.3f}, the teacher {t:.3f} (a gap of at least "
            f"{finite_budget.MEASURABLE_GAP} is needed), or no single class carries "
            f"{finite_budget.SINGLE_MOVER_SHARE:.0%} of the change between them"), **common, **none)
    point, low, high = finite_budget.effective_lambda_interval(warm, teacher, at_one)
    curve = report.parse_rate.analytic
    earliest, latest = finite_budget.finite_budget_window(report.lambdas, curve, report.student_parse_rate, low, high,
                                                          prediction.drop)
    up_to = report.lambdas[-1] / high if high > 0 else math.inf
    window = (None, None) if math.isinf(earliest) else (earliest, None if math.isinf(latest) else latest)
    return FiniteBudgetLock(offered=True, reason=f"the lambda = 1 runs parse like the fixed point at f = {point:.3f}",
                            effective_lambda=point, effective_lambda_interval=(low, high), window=window,
                            predicted_up_to=None if math.isinf(up_to) else up_to, **common)


def finite_budget_text(lock: FiniteBudgetLock) -> str:
    if not lock.offered:
        return f"finite-budget onset: not predicted ({lock.reason})"
    low, high = lock.effective_lambda_interval
    lo, hi = lock.window
    where = (f"none up to lambda {lock.predicted_up_to:.3g}" if lo is None
             else f"[{lo:.3f}, {'past the curve' if hi is None else f'{hi:.3f}'}]")
    limit = "no cliff" if lock.lambda_v is None else f"lambda_v = {lock.lambda_v:.3f}"
    return (f"finite-budget onset at {lock.steps} steps: {where} (lambda = 1 runs at effective lambda "
            f"{lock.effective_lambda:.3f}, 90% {low:.3f} to {high:.3f}); the limit is {limit}")


def _seeds(settings: SweepSettings) -> range:
    return range(settings.first_seed, settings.first_seed + settings.seeds)


def _interval(onset: onsets.Onset | None) -> OnsetInterval | None:
    return None if onset is None else OnsetInterval(lower=onset.lower, upper=onset.upper)


def _summarise(settings, prediction, lock_hash, out: Path, runs: list[RunResult], baselines: list[Baseline] = (),
               budget_lock: FiniteBudgetLock | None = None, budget_hash: str | None = None) -> SweepReport:
    per_seed = {}
    for seed in _seeds(settings):
        mine = [r for r in runs if r.seed == seed]
        per_seed[str(seed)] = _interval(onsets.observed_onset([r.lam for r in mine], [r.parse_rate for r in mine],
                                                              settings.onset_tolerance))
    pooled_rates = [float(np.mean([r.parse_rate for r in runs if r.lam == lam])) for lam in settings.lambdas]
    pooled = onsets.observed_onset(settings.lambdas, pooled_rates, settings.onset_tolerance)
    observed = onsets.onset_range([r.lam for r in runs], [r.parse_rate for r in runs], [r.eval_samples for r in runs],
                                  settings.onset_tolerance)

    def verdict(rule: str, window, predicted_up_to: float) -> RuleVerdict:
        outcome = onsets.judge(observed, window, max(settings.lambdas), predicted_up_to)
        check = outcome.check
        return RuleVerdict(rule=rule, window=window, hit=outcome.hit, outcome=outcome.text,
                           miss=check.miss if check else None, direction=check.direction if check else None,
                           miss_at_least=check.miss_at_least if check else False)

    star = prediction.clip_band_lambda_star
    verdicts = [verdict("fixed point", prediction.interval, prediction.lambda_max),
                verdict("clip band", (star, star) if star is not None else (None, None), prediction.lambda_max)]
    if budget_lock is not None and budget_lock.offered:
        up_to = math.inf if budget_lock.predicted_up_to is None else budget_lock.predicted_up_to
        verdicts.append(verdict("finite budget", budget_lock.window, up_to))
    audited = locked_report(prediction, out)
    if baselines:
        warm = float(np.mean([b.parse_rate for b in baselines if b.role == "warm start"]))
        teacher = float(np.mean([b.parse_rate for b in baselines if b.role == "teacher"]))
        progress = convergence(warm, teacher, runs, "the sweep's evaluator")
    else:
        progress = convergence(audited.student_parse_rate, audited.teacher_parse_rate, runs)
    report = SweepReport(tool_version=__version__, settings=settings, prediction=prediction,
                         prediction_sha256=lock_hash, lock_verified=sha256_file(out / "prediction.json") == lock_hash,
                         runs=sorted(runs, key=lambda r: (r.seed, r.lam)), onset_per_seed=per_seed,
                         onset_pooled=_interval(pooled),
                         onset_range=observed,
                         verdicts=verdicts, convergence=progress, baselines=list(baselines),
                         finite_budget=budget_lock,
                         finite_budget_sha256=None if budget_hash is None else (
                             budget_hash if sha256_file(out / FINITE_BUDGET_LOCK) == budget_hash else "CHANGED"))
    return report


REACHED = 0.9  # share of the way to the fixed point at lambda = 1 that counts as reaching it


def convergence(warm_start: float, teacher: float, runs: list[RunResult], measured_by: str = "the audit") -> Convergence:
    at_one = [r.parse_rate for r in runs if r.lam == 1.0]
    pooled = float(np.mean(at_one)) if at_one else None
    progress = None
    if pooled is not None and abs(warm_start - teacher) >= 0.02:  # closer than that, noise decides
        progress = (warm_start - pooled) / (warm_start - teacher)
    return Convergence(warm_start=warm_start, fixed_point_at_one=teacher, measured_by=measured_by, runs_at_one=pooled,
                       progress=progress, reached=None if progress is None else progress >= REACHED)


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
                     + observed.text())
    for v in report.verdicts:
        window = "no cliff" if v.window[0] is None else f"[{v.window[0]:.4g}, {v.window[1]:.4g}]"
        lines.append(f"{v.rule} rule, locked {window}: {v.outcome}")
    limit_rules = [v for v in report.verdicts if v.rule in ("fixed point", "clip band")]
    if len(limit_rules) > 1 and all(v.hit for v in limit_rules):
        lines.append("the fixed-point and clip-band rules are both consistent with this sweep: it cannot tell them "
                     "apart")
    if report.finite_budget is not None:
        lines.append(finite_budget_text(report.finite_budget) + f" [{report.finite_budget.status.split(':')[0]}]")
    held = [r.clipped_share for r in report.runs if r.clipped_share is not None]
    if held:
        lines.append(f"the clip c = {report.settings.clip:g} held {np.mean(held):.2%} of the updates' tokens "
                     f"(largest run {max(held):.2%})")
    c = report.convergence
    if c is not None and c.progress is not None:
        lines.append(f"lambda = 1 runs: parse rate {c.runs_at_one:.2f}, {c.progress:.0%} of the way from the warm start "
                     f"({c.warm_start:.2f}) to the fixed point ({c.fixed_point_at_one:.2f}; both by {c.measured_by})"
                     + ("" if c.reached else ": not reached, so the onset tests a finite budget and comes later"))
    lines.append(f"prediction sha256 {report.prediction_sha256} ({'verified' if report.lock_verified else 'CHANGED'})")
    return "\n".join(lines)
