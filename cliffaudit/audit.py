"""The main job: probes -> samples -> per-position masses -> classes -> lambda* -> report.

Reads the probe file, samples from the warm start (the OPD rollout policy) and
from the teacher (for calibration), scores both models teacher-forced on every
sample, and turns the masses into per-class thresholds and a recommendation.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ValidationError, model_validator
from tqdm import tqdm

from cliffaudit import __version__, estimate
from cliffaudit.contract import ContractSchemaError, TokenContract, load_contract_schema, strict_validate_bytes
from cliffaudit.contract.background import BackgroundContract
from cliffaudit.report import (
    AuditReport,
    AuditSettings,
    ClassRow,
    Example,
    Fingerprints,
    ModelCalibration,
    Precondition,
    RunInfo,
    fingerprint_checkpoint,
    finite_or_none,
    sha256_file,
)

# Thresholds of the three preconditions (docs/audit.md).
CALIBRATION_GAP = 0.10  # |predicted - observed| sequence validity, per model
BINDING_SHARE = 0.50  # share of predicted invalid mass the binding class must carry
EXAMPLES_PER_ROLE = 3


class AuditInputError(ValueError):
    """Unusable audit input; the message names the file and line or field."""


class ProbeRecord(BaseModel):
    id: str
    prompt: str | None = None
    messages: list[dict] | None = None
    schema_: dict | None = None

    model_config = {"populate_by_name": True, "extra": "allow"}

    @model_validator(mode="before")
    @classmethod
    def _rename_schema(cls, data):
        if isinstance(data, dict) and "schema" in data:
            data = {**data, "schema_": data["schema"]}
            data.pop("schema")
        return data

    @model_validator(mode="after")
    def _needs_prompt(self):
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("needs exactly one of 'prompt' or 'messages'")
        return self


def read_probes(path: str | Path, default_schema: dict | None = None) -> list[tuple[ProbeRecord, dict]]:
    """Records with their schemas; any bad line stops with file, line and reason."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AuditInputError(f"{path}: cannot read: {exc.strerror}") from None
    records: list[tuple[ProbeRecord, dict]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AuditInputError(f"{where}: not JSON: {exc.msg}") from None
        if isinstance(data, dict) and "id" in data and not isinstance(data["id"], str):
            data["id"] = str(data["id"])
        try:
            record = ProbeRecord.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "record"
            raise AuditInputError(f"{where}: {field}: {first['msg']}") from None
        if record.id in seen:
            raise AuditInputError(f"{where}: duplicate id {record.id!r}")
        seen.add(record.id)
        schema = record.schema_ if record.schema_ is not None else default_schema
        if schema is None:
            raise AuditInputError(f"{where}: no 'schema' in the record and no --schema given")
        try:
            load_contract_schema(schema)
        except ContractSchemaError as exc:
            raise AuditInputError(f"{where}: schema: {exc}") from None
        records.append((record, schema))
    if not records:
        raise AuditInputError(f"{path}: no probe records")
    return records


def sample_seed(seed: int, record_id: str, sample_index: int, role: str) -> int:
    """A sample's seed depends on the run seed, its record and index, never on batch layout."""
    digest = hashlib.sha256(f"{seed}\x00{role}\x00{record_id}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def lambda_grid(settings: AuditSettings) -> np.ndarray:
    count = int(round((settings.lambda_max - settings.lambda_min) / settings.lambda_step)) + 1
    return np.round(settings.lambda_min + settings.lambda_step * np.arange(count), 10)


@dataclass
class RoleSamples:
    """One model's samples and what the contract and the probe found in them."""

    record_index: list[int]
    outputs: list[list[int]]
    labels: list[list[str]]
    strictly_valid: list[bool]
    violations: list
    masses: list  # one probe.PositionMasses per batch; sample indices local to this RoleSamples

    @classmethod
    def empty(cls) -> "RoleSamples":
        return cls([], [], [], [], [], [])

    def extend(self, other: "RoleSamples") -> None:
        offset = len(self.outputs)
        for masses in other.masses:
            masses.sample = masses.sample + offset
            self.masses.append(masses)
        self.record_index += other.record_index
        self.outputs += other.outputs
        self.labels += other.labels
        self.strictly_valid += other.strictly_valid
        self.violations += other.violations


def record_batches(n_records: int, samples_per_prompt: int, batch_size: int) -> list[list[int]]:
    """Consecutive records whose samples fill one batch. The grouping depends on the
    inputs alone, so every process layout runs the very same batches and the
    report does not depend on how many processes shared the work."""
    per_batch = max(1, batch_size // samples_per_prompt)
    return [list(range(i, min(n_records, i + per_batch))) for i in range(0, n_records, per_batch)]


def shard(n_batches: int, rank: int, world: int) -> list[int]:
    """The batch indices process ``rank`` of ``world`` runs: every batch exactly once."""
    return list(range(rank, n_batches, world))


ROLES = ("student", "teacher")


@dataclass
class _SampledBatch:
    """One batch of one model's samples and the future of its contract (already done when inline)."""

    role: str
    index: int
    samples: list[tuple[int, int]]  # (record, sample index)
    prompts: list[list[int]]
    outputs: list[list[int]]
    contract: Future  # of a ContractBatch


def _sample_batch(pair, background, records, prompts, settings, role, index, batch_records) -> _SampledBatch:
    from cliffaudit import probe

    model = pair.student if role == "student" else pair.teacher
    tokenizer = pair.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    samples = [(r, k) for r in batch_records for k in range(settings.samples_per_prompt)]
    batch_prompts = [prompts[r] for r, _ in samples]
    seeds = [sample_seed(settings.seed, records[r][0].id, k, role) for r, k in samples]
    outputs = probe.sample(model, batch_prompts, seeds, settings.max_new_tokens, tokenizer.eos_token_id, pad_id)
    contract = background.submit(outputs, [records[r][1] for r, _ in samples])
    return _SampledBatch(role, index, samples, batch_prompts, outputs, contract)


def _score_batch(pair, contract, records, lambdas, batch: _SampledBatch) -> RoleSamples:
    from cliffaudit import probe

    contract_batch = batch.contract.result()
    # OPD visits the student's samples: only they need the fixed point's tail over
    # the lambda grid. The teacher's own samples serve calibration.
    grid = lambdas if batch.role == "student" else lambdas[:0]
    result = RoleSamples.empty()
    result.masses.append(probe.score(pair, batch.prompts, batch.outputs, contract_batch, grid))
    eos = pair.tokenizer.eos_token_id
    for (r, _), output, seq in zip(batch.samples, batch.outputs, contract_batch.sequences):
        text = b"".join(contract.vocab.token_bytes[t] or b"" for t in output if t != eos)
        ended = bool(output) and output[-1] == eos
        result.record_index.append(r)
        result.outputs.append(output)
        result.labels.append(seq.labels)
        result.strictly_valid.append(ended and strict_validate_bytes(text, records[r][1]).valid)
        result.violations.append(seq.violation)
    return result


def _probe(pair, contract, records, prompts, settings, lambdas, layout) -> dict[str, RoleSamples]:
    """Both models' samples, scored: this process's share, gathered in global batch order.

    A pipeline: each batch is scored after the next one is sampled, so that its
    contract, in a background process on an accelerator, runs meanwhile (docs/audit.md)."""
    batches = record_batches(len(records), settings.samples_per_prompt, settings.batch_size)
    mine = shard(len(batches), layout.rank, layout.world)
    done: list[tuple[tuple[int, int], RoleSamples]] = []
    total = len(ROLES) * sum(len(batches[i]) for i in mine) * settings.samples_per_prompt
    pending: _SampledBatch | None = None
    # On a CPU the models' threads already use every core: a worker would only contend
    # with them (the demo audit ran 1.35x longer with one), so the contract runs inline.
    with BackgroundContract(contract, start_worker=pair.device.type != "cpu") as background, \
            tqdm(total=total, desc="sample + score", unit="sample", leave=False, disable=not layout.is_main) as bar:

        def finish(batch: _SampledBatch) -> None:
            done.append(((ROLES.index(batch.role), batch.index), _score_batch(pair, contract, records, lambdas, batch)))
            bar.update(len(batch.samples))

        for role in ROLES:
            for i in mine:
                sampled = _sample_batch(pair, background, records, prompts, settings, role, i, batches[i])
                if pending is not None:
                    finish(pending)
                pending = sampled
        if pending is not None:
            finish(pending)
    result = {role: RoleSamples.empty() for role in ROLES}
    for (role, _), part in sorted(layout.gather(done), key=lambda item: item[0]):
        result[ROLES[role]].extend(part)
    return result


def _concat(masses: list):
    fields = masses[0].__dataclass_fields__
    return type(masses[0])(**{k: np.concatenate([getattr(m, k) for m in masses]) for k in fields})


def _calibration(samples: RoleSamples, masses, role: str) -> estimate.Calibration:
    log_valid = masses.teacher_log_valid if role == "teacher" else masses.student_log_valid
    outcome = np.ones(len(masses.sample), dtype=bool)
    for i, violation in enumerate(samples.violations):
        if violation is not None:
            outcome[(masses.sample == i) & (masses.position == violation.position)] = False
    per_sample = np.bincount(masses.sample, weights=log_valid, minlength=len(samples.outputs))
    return estimate.calibration(np.exp(log_valid), outcome, per_sample, np.array(samples.strictly_valid))


def _examples(samples: RoleSamples, records, contract, role: str) -> list[Example]:
    chosen = [i for i, v in enumerate(samples.violations) if v is not None][:EXAMPLES_PER_ROLE]
    chosen += [i for i, ok in enumerate(samples.strictly_valid) if ok][:1]

    def text(ids) -> str:
        return b"".join(contract.vocab.token_bytes[t] or b"" for t in ids).decode("utf-8", "replace")

    out = []
    for i in chosen:
        output, v = samples.outputs[i], samples.violations[i]
        cut = v.position if v else len(output)
        out.append(Example(record_id=records[samples.record_index[i]][0].id, role=role,
                           strictly_valid=samples.strictly_valid[i], before_violation=text(output[:cut]),
                           violating_token=(text(output[cut:cut + 1]) or v.token) if v else "",
                           after_violation=text(output[cut + 1:]),
                           violation_position=v.position if v else None, violation_reason=v.reason if v else None))
    return out


def _complementary_masses(log_valid: np.ndarray, log_tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, tail) in float64, each taken from the smaller of the two and the other as
    its complement: p = 0.9999998 from a float32 log would keep one digit of 1 - p."""
    log_valid, log_tail = log_valid.astype(np.float64), log_tail.astype(np.float64)
    valid_is_small = log_valid < log_tail
    valid = np.where(valid_is_small, np.exp(log_valid), -np.expm1(np.minimum(log_tail, 0.0)))
    tail = np.where(valid_is_small, -np.expm1(np.minimum(log_valid, 0.0)), np.exp(log_tail))
    return valid, tail


def _class_positions(samples: RoleSamples, masses) -> dict[str, estimate.ClassPositions]:
    labels = np.array([samples.labels[s][p] for s, p in zip(masses.sample, masses.position)])
    prompt = np.array([samples.record_index[s] for s in masses.sample])
    out = {}
    for lbl in sorted(set(labels.tolist())):
        sel = labels == lbl
        teacher_valid, teacher_tail = _complementary_masses(masses.teacher_log_valid[sel], masses.teacher_log_tail[sel])
        student_valid, student_tail = _complementary_masses(masses.student_log_valid[sel], masses.student_log_tail[sel])
        out[lbl] = estimate.ClassPositions(
            label=lbl, prompt=prompt[sel], teacher_valid=teacher_valid, teacher_tail=teacher_tail,
            student_valid=student_valid, student_tail=student_tail,
            tail_curve=np.exp(masses.log_tail_curve[sel].astype(np.float64)), amplified_tokens=masses.amplified_tokens[sel],
            amplified_log_ratio=masses.amplified_log_ratio[sel])
    return out


def _row(est: estimate.ClassEstimate, cls: estimate.ClassPositions, contract) -> ClassRow:
    teacher_tail = float(cls.teacher_tail.mean())
    mean_curve = cls.tail_curve.mean(axis=0)
    ratio = [finite_or_none(teacher_tail / t) if t > 0 else None for t in mean_curve]
    return ClassRow(
        label=est.label, positions=est.positions, prompts=est.prompts,
        teacher_valid_mass=est.teacher_valid_mass, student_valid_mass=est.student_valid_mass,
        regime=est.reduced.regime.value, reduced_lambda_star=finite_or_none(est.reduced.lambda_star),
        reduced_edge=est.reduced.edge, base_neutral_lambda_star=finite_or_none(est.base_neutral_lambda_star),
        exact_lambda_star=finite_or_none(est.exact_lambda_star), exact_edge=est.exact_edge,
        lambda_star=finite_or_none(est.lambda_star),
        interval=tuple(finite_or_none(v) for v in est.interval),
        reduced_interval=tuple(finite_or_none(v) for v in est.reduced_interval),
        exact_interval=tuple(finite_or_none(v) for v in est.exact_interval),
        reduced_percentiles={str(q): finite_or_none(v) for q, v in est.reduced_percentiles.items()},
        exact_percentiles={str(q): finite_or_none(v) for q, v in est.exact_percentiles.items()},
        disagreement=est.disagreement,
        amplified_tokens=[(contract.vocab.describe(t), r) for t, r in est.amplified_tokens],
        mean_tail_ratio=ratio,
    )


def run_audit(settings: AuditSettings) -> AuditReport | None:
    """The report, on the main process; None on the other processes of a launched run."""
    from cliffaudit import probe
    from cliffaudit.distributed import current_layout

    started = time.perf_counter()
    default_schema = None
    if settings.schema_path:
        try:
            default_schema = json.loads(Path(settings.schema_path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise AuditInputError(f"{settings.schema_path}: cannot read a JSON schema: {exc}") from None
    records = read_probes(settings.probes, default_schema)
    layout = current_layout(settings.device)
    device = layout.device if layout.device and settings.device == "auto" else settings.device
    try:
        pair = probe.load_pair(settings.teacher, settings.student, device, settings.dtype,
                               settings.trust_remote_code, settings.teacher_dtype, settings.student_dtype,
                               settings.device_map)
    except probe.ProbeError as exc:
        raise AuditInputError(str(exc)) from None
    try:
        contract = TokenContract.from_tokenizer(pair.tokenizer)
    except ValueError as exc:
        raise AuditInputError(f"{settings.teacher}: {exc}") from None
    prompts = [probe.render_prompt(pair.tokenizer, r.prompt, r.messages, settings.use_chat_template)
               for r, _ in records]
    lambdas = lambda_grid(settings)

    probed = _probe(pair, contract, records, prompts, settings, lambdas, layout)
    student, teacher = probed["student"], probed["teacher"]
    layout.leave()  # the last collective is behind us; the main process estimates alone
    if not layout.is_main:
        return None
    student_masses, teacher_masses = _concat(student.masses), _concat(teacher.masses)

    classes = _class_positions(student, student_masses)
    estimates = [estimate.estimate_class(cls, lambdas, settings.clip, settings.seed) for cls in classes.values()]
    binding = estimate.binding_class(estimates)
    calibration = {"teacher": _calibration(teacher, teacher_masses, "teacher"),
                   "student": _calibration(student, student_masses, "student")}
    teacher_rate = float(np.mean(teacher.strictly_valid))
    student_rate = float(np.mean(student.strictly_valid))
    preconditions = _preconditions(calibration, classes, binding, teacher_rate, student_rate)

    warnings = [pair.template_warning] if pair.template_warning else []
    for role, samples in (("student", student), ("teacher", teacher)):
        truncated = sum(1 for o in samples.outputs if not o or o[-1] != pair.tokenizer.eos_token_id)
        if truncated:
            warnings.append(f"{truncated} of {len(samples.outputs)} {role} samples reached --max-new-tokens "
                            f"({settings.max_new_tokens}) before end-of-sequence; they count as not strictly valid")

    fingerprints = Fingerprints(
        teacher=fingerprint_checkpoint(settings.teacher), student=fingerprint_checkpoint(settings.student),
        probes=sha256_file(Path(settings.probes)),
        schema_file=sha256_file(Path(settings.schema_path)) if settings.schema_path else None)

    return AuditReport(
        tool_version=__version__, settings=settings, fingerprints=fingerprints, device=pair.device.type, records=len(records),
        lambdas=lambdas.tolist(), teacher_parse_rate=teacher_rate, student_parse_rate=student_rate,
        classes=[_row(e, classes[e.label], contract) for e in sorted(estimates, key=lambda e: e.lambda_star)],
        binding_class=binding.label if binding else None,
        recommended_lambda=finite_or_none(binding.interval[0]) if binding else None,
        preconditions=preconditions,
        calibration={k: ModelCalibration(**vars(v)) for k, v in calibration.items()},
        warnings=warnings,
        examples=_examples(student, records, contract, "student") + _examples(teacher, records, contract, "teacher"),
        run=RunInfo(processes=layout.world, wall_seconds=round(time.perf_counter() - started, 3),
                    tokens_probed=sum(len(o) for o in student.outputs + teacher.outputs),
                    peak_memory_bytes=peak_memory_bytes(pair.device)),
    )


def peak_memory_bytes(device) -> int:
    import torch

    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def _preconditions(calibration, classes, binding, teacher_rate, student_rate) -> list[Precondition]:
    gaps = {k: abs(c.predicted_validity - c.observed_validity) for k, c in calibration.items()}
    calibrated = Precondition(
        name="calibrated", passed=all(g <= CALIBRATION_GAP for g in gaps.values()),
        detail="; ".join(f"{k}: predicted validity {c.predicted_validity:.3f} vs observed {c.observed_validity:.3f}, "
                         f"ECE {c.ece:.3f}" for k, c in calibration.items()) + f" (gap limit {CALIBRATION_GAP})")
    invalid_mass = {lbl: float(c.teacher_tail.sum()) for lbl, c in classes.items()}
    total = sum(invalid_mass.values())
    share = invalid_mass.get(binding.label, 0.0) / total if binding and total > 0 else 0.0
    dominant = Precondition(
        name="single binding class", passed=binding is not None and share >= BINDING_SHARE,
        detail=(f"{binding.label!r} carries {share:.1%} of the teacher's predicted invalid mass "
                f"(needs {BINDING_SHARE:.0%})") if binding else "no class reaches the cliff on the grid")
    headroom = Precondition(
        name="warm start has parse headroom", passed=student_rate < teacher_rate,
        detail=f"student strict parse rate {student_rate:.3f} vs teacher {teacher_rate:.3f}")
    return [calibrated, dominant, headroom]


def summary(report: AuditReport) -> str:
    lines = [f"cliffaudit audit: {report.records} records, teacher parse rate {report.teacher_parse_rate:.3f}, "
             f"student {report.student_parse_rate:.3f} (clip c = {report.settings.clip:g})"]
    for row in report.classes[:8]:
        star = "unbounded" if row.lambda_star is None else f"{row.lambda_star:.3f}"
        mark = "  <- binding" if row.label == report.binding_class else ""
        lines.append(f"  {row.label:<28} n={row.positions:<5} p={row.teacher_valid_mass:.4f} "
                     f"b={row.student_valid_mass:.4f} lambda*={star}{' (disagree)' if row.disagreement else ''}{mark}")
    if len(report.classes) > 8:
        lines.append(f"  ... {len(report.classes) - 8} more classes in the report")
    rec = "none (no class reaches the cliff on the grid)" if report.recommended_lambda is None \
        else f"lambda < {report.recommended_lambda:.3f}"
    lines.append(f"recommended: {rec}; binding class: {report.binding_class}")
    for pre in report.preconditions:
        lines.append(f"  [{'pass' if pre.passed else 'FAIL'}] {pre.name}: {pre.detail}")
    lines.append(f"{report.run.processes} process(es), {report.run.wall_seconds:.1f} s, "
                 f"{report.run.tokens_probed / max(report.run.wall_seconds, 1e-9):,.0f} tokens probed/s, "
                 f"peak memory {report.run.peak_memory_bytes / 2**20:.0f} MiB ({report.device})")
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)
