"""The audit end to end (``run_audit``): inputs checked, models loaded, then the stages
(samples, rollouts, assemble) in order, and the report with its provenance."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cliffaudit import __version__, estimate, theory
from cliffaudit.audit.assemble import (
    class_approximations,
    class_row,
    contract_precondition,
    example_outputs,
    judge_reachability,
    logged_samples,
    recommendation_text,
    reconcile_cliff,
    report_preconditions,
    role_calibration,
    role_positions,
    rollout_shares,
)
from cliffaudit.audit.rollouts import sample_fixed_point_rollouts
from cliffaudit.audit.samples import AuditRun, concat_masses, probe_roles, role_prompts
from cliffaudit.contract import TokenContract
from cliffaudit.inputs import (
    AuditInputError,
    check_before_loading,
    check_prompts,
    check_vocabulary_sizes,
    schema_fingerprint,
)
from cliffaudit.report import (
    AuditReport,
    AuditSettings,
    Fingerprints,
    ModelCalibration,
    ParseRate,
    RolloutPoint,
    RunInfo,
    sha256_file,
)
from cliffaudit.report.fingerprints import model_fingerprint


def lambda_grid(settings: AuditSettings) -> np.ndarray:
    return np.array(theory.lambda_grid(settings.lambda_min, settings.lambda_max, settings.lambda_step))


def run_audit(settings: AuditSettings, out_dir: str | Path | None = None,
              sample_log: list | None = None) -> AuditReport | None:
    """The report, on the main process; None on the other processes of a launched run.
    ``sample_log``, when given, receives every sampled output (``logged_samples``).

    Everything that can be checked from the files (``inputs.check_before_loading``,
    ``out_dir`` included when given) is checked before torch is imported; the prompts
    against the tokenizer, before the models load."""
    started = time.perf_counter()
    records = check_before_loading(settings, out_dir)

    from cliffaudit import probe
    from cliffaudit.distributed import current_layout

    layout = current_layout(settings.device)
    device = layout.device if layout.device and settings.device == "auto" else settings.device
    try:
        probe.resolve_device(device)
        tokenizers = probe.load_tokenizers(settings.teacher, settings.student, settings.reference,
                                           settings.trust_remote_code)
    except probe.ProbeError as exc:
        raise AuditInputError(str(exc)) from None
    check_vocabulary_sizes(settings, {role: len(tokenizer) for role, tokenizer in tokenizers.items()})
    prompts = role_prompts(tokenizers, records, settings)
    check_prompts(settings, records, prompts,
                  {role: bool(getattr(t, "chat_template", None)) for role, t in tokenizers.items()})
    try:
        pair = probe.load_pair(settings.teacher, settings.student, device, settings.dtype,
                               settings.trust_remote_code, settings.teacher_dtype, settings.student_dtype,
                               settings.device_map, settings.reference, tokenizers)
    except probe.ProbeError as exc:
        raise AuditInputError(str(exc)) from None
    try:
        contract = TokenContract.from_tokenizer(pair.tokenizer)
    except ValueError as exc:
        raise AuditInputError(f"{settings.teacher}: {exc}") from None
    lambdas = lambda_grid(settings)
    run = AuditRun(pair, contract, records, prompts, settings, lambdas, layout)

    probed = probe_roles(run)
    student, teacher = probed["student"], probed["teacher"]
    student_masses, teacher_masses = concat_masses(student.masses), concat_masses(teacher.masses)
    teacher_positions = role_positions(teacher, teacher_masses)
    # Every process holds the gathered samples, so every one computes the same curve
    # and takes the same rollout decisions.
    curve = estimate.analytic_curve(teacher_positions, lambdas, settings.drop, settings.seed)
    rollouts = sample_fixed_point_rollouts(run, teacher, curve)
    layout.leave()  # the last collective is behind us; the main process estimates alone
    if not layout.is_main:
        return None

    student_positions = role_positions(student, student_masses)
    cliff = reconcile_cliff(settings, lambdas, curve, rollouts)
    shares, draws = {}, {}
    if cliff.lambda_v is not None:
        shares = estimate.drop_shares(teacher_positions, curve, lambdas, cliff.lambda_v) \
            or rollout_shares(rollouts.rates, cliff.lambda_v)
        draws = estimate.draws_per_rollout(student_positions, lambdas, cliff.lambda_v)
    binding = max(shares, key=lambda k: (shares[k], k)) if shares else None
    binding_share = shares.get(binding) if binding else None
    reachability = judge_reachability(settings, cliff, binding, draws, shares)
    classes = estimate.class_estimates(teacher_positions, student_positions, settings.drop, settings.clip)

    calibration = {"teacher": role_calibration(teacher, teacher_masses, "teacher"),
                   "student": role_calibration(student, student_masses, "student")}
    teacher_rate = float(np.mean(teacher.strictly_valid))
    student_rate = float(np.mean(student.strictly_valid))
    warnings = [pair.template_warning] if pair.template_warning else []
    if settings.limit is not None:
        warnings.append(f"audited only the first {settings.limit} probe records (--limit): a quick look, not a "
                        f"verdict to gate training on")
    for role, samples in (("student", student), ("teacher", teacher)):
        truncated = sum(1 for o in samples.outputs if not o or o[-1] != pair.tokenizer.eos_token_id)
        if truncated:
            warnings.append(f"{truncated} of {len(samples.outputs)} {role} samples reached --max-new-tokens "
                            f"({settings.max_new_tokens}) before end-of-sequence; they count as not strictly valid")

    fingerprints = Fingerprints(
        teacher=model_fingerprint(settings.teacher), student=model_fingerprint(settings.student),
        reference=model_fingerprint(settings.reference) if settings.reference else None,
        probes=sha256_file(Path(settings.probes)),
        schema_file=schema_fingerprint(settings.schema_path) if settings.schema_path else None)
    examples = example_outputs(student, records, contract, "student") + example_outputs(teacher, records, contract, "teacher")
    for lam, breaking in sorted(rollouts.breaking.items()):
        if cliff.lambda_v is not None and lam >= cliff.lambda_v:
            examples += example_outputs(breaking, records, contract, f"fixed point at lambda {lam:g}", valid_one=False)
            break
    recommended = cliff.interval[0] if cliff.lambda_v is not None else None
    if sample_log is not None:
        sample_log.extend(logged_samples(records, contract, pair.tokenizer.eos_token_id, teacher, student,
                                         rollouts.samples))
    ordered = sorted(classes, key=lambda e: (-(shares.get(e.label) or 0.0), e.label))
    approximations = class_approximations([e.label for e in ordered], [schema for _, schema in records])
    rows = [class_row(e, shares.get(e.label), draws.get(e.label), contract, approximations.get(e.label)) for e in ordered]
    return AuditReport(
        tool_version=__version__, settings=settings, fingerprints=fingerprints, device=pair.device.type,
        records=len(records), lambdas=lambdas.tolist(), teacher_parse_rate=teacher_rate,
        student_parse_rate=student_rate,
        parse_rate=ParseRate(analytic=curve.rates.tolist(), analytic_low=curve.low.tolist(),
                             analytic_high=curve.high.tolist(),
                             rollouts=[RolloutPoint(lam=r.lam, samples=r.samples, valid=r.valid, parse_rate=r.rate,
                                                    interval=r.interval(), violations=r.violations)
                                       for r in sorted(rollouts.rates, key=lambda r: r.lam)]),
        cliff=cliff, binding_class=binding, binding_share=binding_share, reachability=reachability,
        recommended_lambda=recommended, recommendation=recommendation_text(cliff, binding, binding_share, reachability),
        classes=rows,
        preconditions=report_preconditions(calibration, cliff, binding, binding_share,
                                     sorted(rollouts.rates, key=lambda r: r.lam)) + [contract_precondition(rows, cliff)],
        calibration={k: ModelCalibration(**vars(v)) for k, v in calibration.items()},
        warnings=warnings, examples=examples,
        run=RunInfo(processes=layout.world, wall_seconds=round(time.perf_counter() - started, 3),
                    tokens_probed=sum(len(o) for o in student.outputs + teacher.outputs),
                    peak_memory_bytes=peak_memory_bytes(pair.device), **provenance(pair)),
    )


def provenance(pair) -> dict:
    """What produced a report: when, from which source and library versions, on which
    device and in which precision (the settings say "auto"; this says what it became)."""
    import datetime
    import importlib.metadata
    import platform
    import subprocess

    versions = {"python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "llguidance", "accelerate", "numpy"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    source = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=5, check=False)
        commit = head.stdout.strip() if head.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    models = {"teacher": pair.teacher, "student": pair.student}
    if pair.separate_reference:
        models["reference"] = pair.reference
    return {"created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "cliffaudit_commit": commit or None, "versions": versions, "device_used": str(pair.device),
            "dtypes_used": {role: str(next(model.parameters()).dtype).removeprefix("torch.")
                            for role, model in models.items()}}


def peak_memory_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB

