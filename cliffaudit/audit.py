"""The main job: probes -> samples -> per-position masses -> classes -> predicted
parse rate and lambda_v -> report.

Reads the probe file, samples from the warm start (the states OPD visits) and
from the teacher (the fixed point at lambda = 1), scores the models
teacher-forced on every sample, predicts the G-OPD fixed point's parse rate over
the lambda grid, samples the fixed point itself at a few lambdas to locate its
cliff, and writes the per-class masses, the binding class, reachability and a
recommendation.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cliffaudit import __version__, estimate, theory
from cliffaudit.contract import TokenContract, load_contract_schema, strict_validate_output
from cliffaudit.contract.background import BackgroundContract
from cliffaudit.inputs import (
    AuditInputError,
    ProbeRecord,
    check_before_loading,
    check_prompts,
    check_vocabulary_sizes,
    schema_fingerprint,
)
from cliffaudit.report import (
    AuditReport,
    AuditSettings,
    ClassRow,
    Cliff,
    Example,
    Fingerprints,
    ModelCalibration,
    ParseRate,
    Precondition,
    Reachability,
    RolloutPoint,
    RunInfo,
    finite_or_none,
    preconditions,
    sha256_file,
)
from cliffaudit.report import samples as report_samples
from cliffaudit.report.fingerprints import model_fingerprint
from cliffaudit.report.samples import LoggedSample

# Thresholds of the preconditions (docs/audit.md).
CALIBRATION_GAP = preconditions.CALIBRATION_GAP  # |predicted - observed| sequence validity, per model
BINDING_SHARE = 0.50  # share of the drop the binding class must carry
CONTRACT_SHARE = theory.MATERIAL_SHARE  # share of the drop a class may carry only where the contract is exact
EXAMPLES_PER_ROLE = 3
# Fixed-point rollouts stop refining the cliff once its interval is this narrow.
ROLLOUT_RESOLUTION = 0.05
NOT_ENDED = "(no end-of-sequence)"  # a sample cut off at --max-new-tokens
NOT_STRICT = "(fails strict validation)"  # the contract accepted it, the strict validator did not


def sample_seed(seed: int, record_id: str, sample_index: int, role: str) -> int:
    """A sample's seed depends on the run seed, its record and index, never on batch layout."""
    digest = hashlib.sha256(f"{seed}\x00{role}\x00{record_id}\x00{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def lambda_grid(settings: AuditSettings) -> np.ndarray:
    return np.array(theory.lambda_grid(settings.lambda_min, settings.lambda_max, settings.lambda_step))


@dataclass
class RoleSamples:
    """One model's samples and what the contract and the probe found in them."""

    record_index: list[int]
    outputs: list[list[int]]
    labels: list[list[str]]
    strictly_valid: list[bool]
    violations: list
    masses: list  # one probe.PositionMasses per batch; sample indices local to this RoleSamples
    seeds: list[int] = field(default_factory=list)  # each sample's sampling seed (sample_seed)

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
        self.seeds += other.seeds


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


@dataclass(frozen=True)
class AuditRun:
    """What every stage of one audit reads: the models, the contract, the probes
    (records with their schemas, and their rendered prompts), the settings, the lambda
    grid and this process's place among the launched ones."""

    pair: Any  # probe.ModelPair
    contract: TokenContract
    records: list[tuple[ProbeRecord, dict]]
    prompts: dict[str, list[list[int]]]  # each role's rendering of every record's prompt
    settings: AuditSettings
    lambdas: np.ndarray
    layout: Any  # distributed.Layout

    @property
    def eos_id(self) -> int:
        return self.pair.tokenizer.eos_token_id

    @property
    def pad_id(self) -> int:
        from cliffaudit import probe

        return probe.pad_id(self.pair.tokenizer)

    def samples(self, batch_records: list[int]) -> list[tuple[int, int]]:
        """(record, sample index) of every sample a batch of records draws."""
        return [(r, k) for r in batch_records for k in range(self.settings.samples_per_prompt)]

    def batches(self) -> list[list[int]]:
        return record_batches(len(self.records), self.settings.samples_per_prompt, self.settings.batch_size)

    def my_batches(self) -> list[int]:
        """The indices of this process's batches."""
        return shard(len(self.batches()), self.layout.rank, self.layout.world)


@dataclass
class _SampledBatch:
    """One batch of one model's samples and the future of its contract (already done when inline)."""

    role: str
    index: int
    samples: list[tuple[int, int]]  # (record, sample index)
    prompts: dict[str, list[list[int]]]  # each role's prompt of each sample
    outputs: list[list[int]]
    contract: Future  # of a ContractBatch
    seeds: list[int]


def _sample_batch(run: AuditRun, background: BackgroundContract, role: str, index: int) -> _SampledBatch:
    from cliffaudit import probe

    model = run.pair.student if role == "student" else run.pair.teacher
    samples = run.samples(run.batches()[index])
    batch_prompts = {name: [rendered[r] for r, _ in samples] for name, rendered in run.prompts.items()}
    seeds = [sample_seed(run.settings.seed, run.records[r][0].id, k, role) for r, k in samples]
    outputs = probe.sample(model, batch_prompts[role], seeds, run.settings.max_new_tokens, run.eos_id, run.pad_id)
    contract = background.submit(outputs, [run.records[r][1] for r, _ in samples])
    return _SampledBatch(role, index, samples, batch_prompts, outputs, contract, seeds)


def _score_batch(run: AuditRun, batch: _SampledBatch) -> RoleSamples:
    from cliffaudit import probe

    contract_batch = batch.contract.result()
    # The teacher's samples carry the fixed point's parse rate (its tail over the grid);
    # the warm start's, the states training visits, carry reachability (the pull).
    curve = "tail" if batch.role == "teacher" else "pull"
    result = RoleSamples.empty()
    result.masses.append(probe.score(run.pair, batch.prompts, batch.outputs, contract_batch, run.lambdas, curve))
    result.seeds = list(batch.seeds)
    for (r, _), output, seq in zip(batch.samples, batch.outputs, contract_batch.sequences):
        result.record_index.append(r)
        result.outputs.append(output)
        result.labels.append(seq.labels)
        result.strictly_valid.append(strict_validate_output(output, run.contract.vocab, run.records[r][1]).valid)
        result.violations.append(seq.violation)
    return result


def _probe(run: AuditRun) -> dict[str, RoleSamples]:
    """Both models' samples, scored: this process's share, gathered in global batch order.

    A pipeline: each batch is scored after the next one is sampled, so that its
    contract, in a background process on an accelerator, runs meanwhile (docs/audit.md)."""
    batches, mine = run.batches(), run.my_batches()
    done: list[tuple[tuple[int, int], RoleSamples]] = []
    total = len(ROLES) * sum(len(batches[i]) for i in mine) * run.settings.samples_per_prompt
    pending: _SampledBatch | None = None
    # On a CPU the models' threads already use every core: a worker would only contend
    # with them (the demo audit ran 1.35x longer with one), so the contract runs inline.
    with BackgroundContract(run.contract, start_worker=run.pair.device.type != "cpu") as background, \
            tqdm(total=total, desc="sample + score", unit="sample", leave=False,
                 disable=not run.layout.is_main) as bar:

        def finish(batch: _SampledBatch) -> None:
            done.append(((ROLES.index(batch.role), batch.index), _score_batch(run, batch)))
            bar.update(len(batch.samples))

        for role in ROLES:
            for i in mine:
                sampled = _sample_batch(run, background, role, i)
                if pending is not None:
                    finish(pending)
                pending = sampled
        if pending is not None:
            finish(pending)
    result = {role: RoleSamples.empty() for role in ROLES}
    for (role, _), part in sorted(run.layout.gather(done), key=lambda item: item[0]):
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
    valid_mass = np.exp(log_valid)
    hazard = np.bincount(masses.sample, weights=1.0 - valid_mass, minlength=len(samples.outputs))
    return estimate.calibration(valid_mass, outcome, hazard, np.array(samples.strictly_valid),
                                np.array(samples.record_index))


def _examples(samples: RoleSamples, records, contract, role: str, valid_one: bool = True) -> list[Example]:
    """The first few samples that break the contract, with the breaking token apart, and one valid sample."""
    chosen = [i for i, v in enumerate(samples.violations) if v is not None][:EXAMPLES_PER_ROLE]
    if valid_one:
        chosen += [i for i, ok in enumerate(samples.strictly_valid) if ok][:1]

    def text(ids) -> str:
        return contract.vocab.output_bytes(ids).decode("utf-8", "replace")

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


def _positions(samples: RoleSamples, masses) -> estimate.Positions:
    """One model's scored positions, as the statistics take them."""
    pairs = {name: _complementary_masses(getattr(masses, f"{name}_log_valid"), getattr(masses, f"{name}_log_tail"))
             for name in ("teacher", "student", "reference")}
    return estimate.Positions(
        sample=masses.sample, label=np.array([samples.labels[s][p] for s, p in zip(masses.sample, masses.position)],
                                             dtype=object),
        teacher_valid=pairs["teacher"][0], teacher_tail=pairs["teacher"][1],
        student_valid=pairs["student"][0], student_tail=pairs["student"][1],
        reference_valid=pairs["reference"][0], reference_tail=pairs["reference"][1],
        student_amplified=np.exp(masses.student_log_amplified.astype(np.float64)),
        log_tail_curve=masses.log_tail_curve, log_pull_curve=masses.log_pull_curve,
        amplified_tokens=masses.amplified_tokens, amplified_log_ratio=masses.amplified_log_ratio,
        sample_record=np.array(samples.record_index, dtype=int))


# ----------------------------------------------------------------------------- fixed-point rollouts


@dataclass
class _Rollouts:
    """Strict parse rates of the fixed point's own samples, and a few that break."""

    rates: list[estimate.RolloutRate]
    breaking: dict[float, RoleSamples]  # per sampled lambda, up to EXAMPLES_PER_ROLE samples that break
    samples: dict[float, RoleSamples] = field(default_factory=dict)  # per sampled lambda, every sample


def _violation_counts(samples: RoleSamples, eos: int) -> dict[str, int]:
    """Samples that are not strictly valid, by the class of their first contract violation."""
    counts: dict[str, int] = {}
    for labels, violation, output, valid in zip(samples.labels, samples.violations, samples.outputs,
                                                samples.strictly_valid):
        if valid:
            continue
        if violation is not None:
            key = labels[violation.position]
        else:
            key = NOT_ENDED if not output or output[-1] != eos else NOT_STRICT
        counts[key] = counts.get(key, 0) + 1
    return counts


def _rollout_rate(run: AuditRun, lam: float) -> tuple[estimate.RolloutRate, RoleSamples, RoleSamples]:
    """The fixed point at ``lam`` sampled on every probe record, this process's shard,
    gathered: its rate, a few samples that break, and every sample."""
    from cliffaudit import probe

    batches = run.batches()
    mine = RoleSamples.empty()
    for i in run.my_batches():
        samples = run.samples(batches[i])
        # One seed per (record, sample) for every lambda: common random numbers keep the
        # rates at neighbouring lambdas comparable.
        seeds = [sample_seed(run.settings.seed, run.records[r][0].id, k, "fixed point") for r, k in samples]
        outputs = probe.sample_fixed_point(run.pair.teacher, run.pair.reference, lam,
                                           [run.prompts["teacher"][r] for r, _ in samples], seeds,
                                           run.settings.max_new_tokens, run.eos_id, run.pad_id,
                                           [run.prompts["reference"][r] for r, _ in samples])
        analysed = run.contract.analyze_batch(outputs, [run.records[r][1] for r, _ in samples])
        mine.seeds += seeds
        for (r, _), output, seq in zip(samples, outputs, analysed.sequences):
            mine.record_index.append(r)
            mine.outputs.append(output)
            mine.labels.append(seq.labels)
            mine.strictly_valid.append(strict_validate_output(output, run.contract.vocab, run.records[r][1]).valid)
            mine.violations.append(seq.violation)
    gathered = RoleSamples.empty()
    for part in run.layout.gather([mine]):
        gathered.extend(part)
    rate = estimate.RolloutRate(lam, int(sum(gathered.strictly_valid)), len(gathered.outputs),
                                _violation_counts(gathered, run.eos_id))
    breaking = RoleSamples.empty()
    for i in [i for i, v in enumerate(gathered.violations) if v is not None][:EXAMPLES_PER_ROLE]:
        breaking.record_index.append(gathered.record_index[i])
        breaking.outputs.append(gathered.outputs[i])
        breaking.labels.append(gathered.labels[i])
        breaking.strictly_valid.append(gathered.strictly_valid[i])
        breaking.violations.append(gathered.violations[i])
    return rate, breaking, gathered


def _fixed_point_rollouts(run: AuditRun, teacher: RoleSamples, curve: estimate.AnalyticCurve) -> _Rollouts:
    """Sample the fixed point at the lambdas ``estimate.next_rollout_lambda`` picks; every
    process takes the same decisions from the same gathered counts."""
    at_one = estimate.RolloutRate(1.0, int(sum(teacher.strictly_valid)), len(teacher.outputs),
                                  _violation_counts(teacher, run.eos_id))
    result = _Rollouts([at_one], {})
    settings = run.settings
    while True:
        lam = estimate.next_rollout_lambda(result.rates, run.lambdas, curve.rates, curve.lambda_v, settings.drop,
                                           ROLLOUT_RESOLUTION, settings.fixed_point_lambdas - (len(result.rates) - 1))
        if lam is None:
            return result
        rate, breaking, every = _rollout_rate(run, lam)
        result.rates.append(rate)
        result.breaking[lam] = breaking
        result.samples[lam] = every


# ----------------------------------------------------------------------------- the report


def _interval(pair: tuple[float, float] | None) -> tuple[float | None, float | None]:
    return (None, None) if pair is None else (finite_or_none(pair[0]), finite_or_none(pair[1]))


def _cliff(settings: AuditSettings, lambdas: np.ndarray, curve: estimate.AnalyticCurve,
           rollouts: _Rollouts) -> Cliff:
    """The analytic cliff where the sampled rates agree with it (or none were sampled);
    where they disagree, the earlier of the two cliffs: the verdict fails closed."""
    rates = sorted(rollouts.rates, key=lambda r: r.lam)
    sampled = len(rates) > 1
    analytic = curve.lambda_v
    analytic_interval = curve.interval if math.isfinite(analytic) else None
    sampled_interval = estimate.rollout_interval(rates, settings.drop) if sampled else None
    sampled_point = math.inf
    if sampled_interval is not None:
        point = theory.drop_point([r.lam for r in rates], [r.rate for r in rates], settings.drop)
        sampled_point = min(max(point, sampled_interval[0]), sampled_interval[1]) if math.isfinite(point) \
            else sampled_interval[1]
    agree = not sampled or estimate.rollouts_agree(rates, lambdas, curve.rates, settings.drop)
    if agree or analytic <= sampled_point:
        lambda_v, interval, source = analytic, analytic_interval, "analytic"
    else:
        lambda_v, interval, source = sampled_point, sampled_interval, "rollouts"
    return Cliff(drop=settings.drop, lambda_max=float(lambdas[-1]), lambda_v=finite_or_none(lambda_v),
                 interval=_interval(interval if math.isfinite(lambda_v) else None), source=source,
                 analytic_lambda_v=finite_or_none(analytic), analytic_interval=_interval(analytic_interval),
                 rollout_lambda_v=finite_or_none(sampled_point), rollout_interval=_interval(sampled_interval),
                 agree=agree)


def _end(value: float | None) -> str:
    """An interval's upper end; None when it runs past the audited grid."""
    return "past the grid's end" if value is None else f"{value:.3f}"


def source_text(cliff: Cliff) -> str:
    if cliff.source == "rollouts":
        return "the fixed point's samples, which disagree with the analytic curve"
    return "the analytic curve"


def _rollout_shares(rates: list[estimate.RolloutRate], lam: float) -> dict[str, float]:
    """Classes' shares of the new first violations between lambda = 1 and the first sampled lambda past ``lam``."""
    rates = sorted(rates, key=lambda r: r.lam)
    past = next((r for r in rates if r.lam >= lam), rates[-1])
    base = rates[0]
    added = {label: past.violations.get(label, 0) / past.samples - base.violations.get(label, 0) / base.samples
             for label in set(past.violations) | set(base.violations)}
    total = sum(v for v in added.values() if v > 0)
    return {label: v / total for label, v in added.items()} if total > 0 else {}


def _reachability(settings: AuditSettings, cliff: Cliff, binding: str | None, draws: dict[str, float],
                  shares: dict[str, float]) -> Reachability:
    """Whether training reaches the cliff within its budget, by the rule the gate applies
    to the same report (``theory.reachable_carriers``): some class carrying a material
    share of the fall is drawn often enough. The figures are the binding class's."""
    budget = settings.rollouts
    if cliff.lambda_v is None:
        return Reachability(budget_rollouts=budget, draws_per_rollout=None, draws_to_reach=theory.DRAWS_TO_REACH,
                            expected_draws=None, rollouts_needed=None, reachable=None,
                            statement=f"no cliff up to lambda_max = {cliff.lambda_max:g}")
    per_rollout = draws.get(binding, 0.0) if binding else 0.0
    needed = theory.rollouts_needed(per_rollout)
    reached = theory.reachable_carriers(shares, draws, budget)
    reachable = reached is None or bool(reached)
    if budget is None:
        statement = (f"cliff at lambda_v = {cliff.lambda_v:.3f}; no training budget given (--rollouts), so it counts "
                     f"as reachable")
    elif reached is None:
        statement = (f"cliff at lambda_v = {cliff.lambda_v:.3f}; no class is known to carry the fall, so it counts "
                     f"as reachable")
    elif reachable:
        through = reached[0]
        expected = (draws.get(through) or 0.0) * budget
        statement = (f"cliff at lambda_v = {cliff.lambda_v:.3f}, reachable within {budget:,} rollouts "
                     f"({expected:,.1f} expected driving draws{'' if through == binding else f' of {through!r}'}; "
                     f"{theory.DRAWS_TO_REACH:g} reach it)")
    else:
        statement = (f"cliff at lambda_v = {cliff.lambda_v:.3f}, not reachable within {budget:,} rollouts "
                     f"(about {needed:,.0f} needed)")
    return Reachability(budget_rollouts=budget, draws_per_rollout=per_rollout, draws_to_reach=theory.DRAWS_TO_REACH,
                        expected_draws=None if budget is None else per_rollout * budget,
                        rollouts_needed=finite_or_none(needed), reachable=reachable, statement=statement)


def _recommendation(cliff: Cliff, binding: str | None, share: float | None, reachability: Reachability) -> str:
    if cliff.lambda_v is None:
        return (f"no cliff up to lambda_max = {cliff.lambda_max:g}: the fixed point's parse rate stays within "
                f"{cliff.drop:g} of its best; lambdas beyond {cliff.lambda_max:g} were not audited")
    lo, hi = cliff.interval
    text = (f"train with lambda < {lo:.3f}: the fixed point's parse rate falls {cliff.drop:g} below its best at "
            f"lambda_v = {cliff.lambda_v:.3f} (interval {lo:.3f} to {_end(hi)}, from {source_text(cliff)})")
    if binding:
        text += f"; binding class {binding!r}" + (f" ({share:.0%} of the fall)" if share is not None else "")
    return f"{text}; {reachability.statement}"


def class_approximations(labels, schemas) -> dict[str, str]:
    """Per class, the first approximation of any record's contract that can misjudge its
    positions, in words with its direction and place."""
    compiled = [load_contract_schema(s) for s in {json.dumps(s, sort_keys=True): s for s in schemas}.values()]
    found = {}
    for label in labels:
        for contract_schema in compiled:
            status = contract_schema.approximation_for(label)
            if status is not None:
                found[label] = f"{status.direction}: {status.note} ({status.keyword} at {status.pointer or '/'})"
                break
    return found


def contract_precondition(classes: list[ClassRow], cliff: Cliff) -> Precondition:
    """The contract is exact where the fall happens: no approximation touches a class that
    carries at least CONTRACT_SHARE of it. An approximation elsewhere is reported per class."""
    approximate = [c for c in classes if c.approximation]
    carrying = [c for c in approximate if (c.share_of_drop or 0.0) >= CONTRACT_SHARE]
    if carrying:
        detail = "; ".join(f"{c.label!r} carries {c.share_of_drop:.0%} of the fall and the contract {c.approximation}"
                           for c in carrying)
    elif cliff.lambda_v is None:
        detail = f"no cliff up to lambda_max = {cliff.lambda_max:g}: no class carries a fall"
    else:
        detail = f"no class carrying {CONTRACT_SHARE:.0%} of the fall is approximated"
    if approximate and not carrying:
        detail += f" ({len(approximate)} class(es) approximated elsewhere: " + \
                  ", ".join(repr(c.label) for c in approximate[:5]) + (" ..." if len(approximate) > 5 else "") + ")"
    return Precondition(name="contract exact", passed=not carrying, detail=detail)


def _row(est: estimate.ClassEstimate, share: float | None, draws: float | None, contract,
         approximation: str | None = None) -> ClassRow:
    return ClassRow(
        label=est.label, teacher_positions=est.teacher_positions, student_positions=est.student_positions,
        prompts=est.prompts, teacher_valid_mass=est.teacher_valid_mass, student_valid_mass=est.student_valid_mass,
        reference_valid_mass=est.reference_valid_mass, bernoulli_lambda_v=finite_or_none(est.bernoulli_lambda_v),
        clip_band_lambda_star=finite_or_none(est.clip_band_lambda_star), share_of_drop=share,
        draws_per_rollout=draws, approximation=approximation,
        amplified_tokens=[(contract.vocab.describe(t), r) for t, r in est.amplified_tokens])


def role_prompts(tokenizers: dict, records: list, settings: AuditSettings) -> dict[str, list[list[int]]]:
    """Each role's prompts ("teacher", "student", "reference"), rendered with its own
    tokenizer and chat template, as each model sees them in training; a role that shares
    another's tokenizer shares its list."""
    from cliffaudit import probe

    locations = {"teacher": settings.teacher, "student": settings.student,
                 "reference": settings.reference or settings.student}
    rendered: dict[int, list[list[int]]] = {}
    for role, tokenizer in tokenizers.items():
        if id(tokenizer) in rendered:
            continue
        rendered[id(tokenizer)] = []
        for record, _ in records:
            try:
                rendered[id(tokenizer)].append(probe.render_prompt(
                    tokenizer, record.prompt, record.messages, settings.use_chat_template,
                    settings.chat_template_kwargs))
            except probe.ProbeError as exc:
                raise AuditInputError(f"{locations[role]}: the {role}'s {exc} (record {record.id!r} of "
                                      f"{settings.probes})") from None
    return {role: rendered[id(tokenizer)] for role, tokenizer in tokenizers.items()}


def logged_samples(records: list, contract: TokenContract, eos: int, teacher: RoleSamples, student: RoleSamples,
                   fixed_point: dict[float, RoleSamples]) -> list[LoggedSample]:
    """Every sampled output as samples.jsonl lists it (report.samples): the teacher's (the
    fixed point at lambda = 1), the warm start's, then the fixed point's at each sampled
    lambda; in record order, whatever the process layout."""
    groups = [("teacher", 1.0, teacher), ("student", None, student),
              *(("fixed point", lam, samples) for lam, samples in sorted(fixed_point.items()))]
    logged = []
    for role, lam, samples in groups:
        order = sorted(range(len(samples.outputs)), key=lambda i: samples.record_index[i])  # stable: index order kept
        for i in order:
            output, violation, valid = samples.outputs[i], samples.violations[i], samples.strictly_valid[i]
            if valid:
                verdict = report_samples.VALID
            elif violation is not None:
                verdict = report_samples.BREAKS
            else:
                verdict = report_samples.CUT_OFF if not output or output[-1] != eos else report_samples.NOT_STRICT
            first_break = None if violation is None else report_samples.FirstBreak(
                position=violation.position, label=samples.labels[i][violation.position],
                token=contract.vocab.describe(violation.token_id), reason=violation.reason)
            logged.append(LoggedSample(
                role=role, lam=lam, record=records[samples.record_index[i]][0].id,
                record_index=samples.record_index[i], seed=samples.seeds[i], tokens=list(map(int, output)),
                text=contract.vocab.output_bytes(output).decode("utf-8", "replace"), strictly_valid=bool(valid),
                first_break=first_break, verdict=verdict))
    return logged


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

    probed = _probe(run)
    student, teacher = probed["student"], probed["teacher"]
    student_masses, teacher_masses = _concat(student.masses), _concat(teacher.masses)
    teacher_positions = _positions(teacher, teacher_masses)
    # Every process holds the gathered samples, so every one computes the same curve
    # and takes the same rollout decisions.
    curve = estimate.analytic_curve(teacher_positions, lambdas, settings.drop, settings.seed)
    rollouts = _fixed_point_rollouts(run, teacher, curve)
    layout.leave()  # the last collective is behind us; the main process estimates alone
    if not layout.is_main:
        return None

    student_positions = _positions(student, student_masses)
    cliff = _cliff(settings, lambdas, curve, rollouts)
    shares, draws = {}, {}
    if cliff.lambda_v is not None:
        shares = estimate.drop_shares(teacher_positions, curve, lambdas, cliff.lambda_v) \
            or _rollout_shares(rollouts.rates, cliff.lambda_v)
        draws = estimate.draws_per_rollout(student_positions, lambdas, cliff.lambda_v)
    binding = max(shares, key=lambda k: (shares[k], k)) if shares else None
    binding_share = shares.get(binding) if binding else None
    reachability = _reachability(settings, cliff, binding, draws, shares)
    classes = estimate.class_estimates(teacher_positions, student_positions, settings.drop, settings.clip)

    calibration = {"teacher": _calibration(teacher, teacher_masses, "teacher"),
                   "student": _calibration(student, student_masses, "student")}
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
    examples = _examples(student, records, contract, "student") + _examples(teacher, records, contract, "teacher")
    for lam, breaking in sorted(rollouts.breaking.items()):
        if cliff.lambda_v is not None and lam >= cliff.lambda_v:
            examples += _examples(breaking, records, contract, f"fixed point at lambda {lam:g}", valid_one=False)
            break
    recommended = cliff.interval[0] if cliff.lambda_v is not None else None
    if sample_log is not None:
        sample_log.extend(logged_samples(records, contract, pair.tokenizer.eos_token_id, teacher, student,
                                         rollouts.samples))
    ordered = sorted(classes, key=lambda e: (-(shares.get(e.label) or 0.0), e.label))
    approximations = class_approximations([e.label for e in ordered], [schema for _, schema in records])
    rows = [_row(e, shares.get(e.label), draws.get(e.label), contract, approximations.get(e.label)) for e in ordered]
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
        recommended_lambda=recommended, recommendation=_recommendation(cliff, binding, binding_share, reachability),
        classes=rows,
        preconditions=_preconditions(calibration, cliff, binding, binding_share,
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


def calibration_precondition(calibration: dict[str, estimate.Calibration]) -> Precondition:
    """Failed: for some model, the whole 90% interval of its validity gap lies beyond the
    limit; passed: every model's lies within it; unclear: the samples cannot tell the gap
    from the limit (256 samples leave the gap an interval about 0.15 wide)."""
    status = preconditions.calibration_status([c.gap_interval for c in calibration.values()], CALIBRATION_GAP)
    return Precondition(
        name="calibrated", passed=status != "fail", status=status,
        detail="; ".join(f"{k}: predicted validity {c.predicted_validity:.3f} vs observed {c.observed_validity:.3f} "
                         f"(gap {c.predicted_validity - c.observed_validity:+.3f}, 90% interval "
                         f"{c.gap_interval[0]:+.3f} to {c.gap_interval[1]:+.3f}), ECE {c.ece:.3f}"
                         for k, c in calibration.items()) + f" (gap limit {CALIBRATION_GAP})")


def _preconditions(calibration, cliff: Cliff, binding: str | None, share: float | None,
                   rollouts: list[estimate.RolloutRate]) -> list[Precondition]:
    calibrated = calibration_precondition(calibration)
    if cliff.lambda_v is None:
        dominant = Precondition(name="single binding class", passed=True,
                                detail=f"no cliff up to lambda_max = {cliff.lambda_max:g}: no class binds")
    else:
        dominant = Precondition(
            name="single binding class", passed=binding is not None and (share or 0.0) >= BINDING_SHARE,
            detail=(f"{binding!r} carries {share:.0%} of the fall at lambda_v (needs {BINDING_SHARE:.0%})"
                    if binding and share is not None else "no class carries the fall"))

    def story(value, interval) -> str:
        if value is None:
            return "no cliff"
        return f"lambda_v {value:.3f} ({interval[0]:.3f} to {_end(interval[1])})"

    if len(rollouts) <= 1:
        sampled = "no fixed-point rollouts (--fixed-point-lambdas 0)"
    else:
        sides = estimate.rollout_sides(rollouts, cliff.drop)
        points = ", ".join(f"{r.lam:g}: {r.rate:.3f} ({side})" for r, side in zip(rollouts, sides))
        sampled = (f"sampled {points}; {'every clear side agrees' if cliff.agree else 'a clear side disagrees'}; "
                   f"sampled cliff: {story(cliff.rollout_lambda_v, cliff.rollout_interval)}")
    agreement = preconditions.agreement_status(cliff.agree, len(rollouts))
    agree = Precondition(name="analytic curve and rollouts agree", passed=agreement != "fail", status=agreement,
                         detail=f"analytic: {story(cliff.analytic_lambda_v, cliff.analytic_interval)}; {sampled}")
    return [calibrated, dominant, agree]


def summary(report: AuditReport) -> str:
    cliff = report.cliff
    lines = [f"cliffaudit audit: {report.records} records, teacher parse rate {report.teacher_parse_rate:.3f}, "
             f"student {report.student_parse_rate:.3f}"]
    grid = report.lambdas
    points = ", ".join(f"{r.lam:g}: {r.parse_rate:.3f}" for r in report.parse_rate.rollouts)
    lines.append(f"fixed point's parse rate: analytic {report.parse_rate.analytic[0]:.3f} at lambda {grid[0]:g} to "
                 f"{report.parse_rate.analytic[-1]:.3f} at {grid[-1]:g}; sampled {{{points}}}")
    if cliff.lambda_v is None:
        lines.append(f"cliff: none up to lambda_max = {cliff.lambda_max:g} (drop {cliff.drop:g})")
    else:
        lines.append(f"cliff: lambda_v = {cliff.lambda_v:.3f} ({cliff.interval[0]:.3f} to {_end(cliff.interval[1])}, "
                     f"from {source_text(cliff)}); binding class {report.binding_class!r}")
    for row in report.classes[:6]:
        share = "" if row.share_of_drop is None else f" share={row.share_of_drop:.2f}"
        lines.append(f"  {row.label:<28} p={row.teacher_valid_mass:.4f} b={row.student_valid_mass:.4f}{share}")
    if len(report.classes) > 6:
        lines.append(f"  ... {len(report.classes) - 6} more classes in the report")
    lines.append(f"recommended: {report.recommendation}")
    for pre in report.preconditions:
        lines.append(f"  [{pre.status}] {pre.name}: {pre.detail}")
    lines.append(f"{report.run.processes} process(es), {report.run.wall_seconds:.1f} s, "
                 f"{report.run.tokens_probed / max(report.run.wall_seconds, 1e-9):,.0f} tokens probed/s, "
                 f"peak memory {report.run.peak_memory_bytes / 2**20:.0f} MiB ({report.device})")
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)
