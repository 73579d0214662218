"""The third stage: per-position masses -> classes -> the predicted parse rate and
lambda_v, reconciled with the sampled fixed point; the binding class, reachability, the
recommendation, the preconditions and the report's rows."""

from __future__ import annotations

import json
import math

import numpy as np

from cliffaudit import estimate, theory
from cliffaudit.audit.rollouts import FixedPointRollouts
from cliffaudit.audit.samples import EXAMPLES_PER_ROLE, RoleSamples
from cliffaudit.contract import TokenContract, load_contract_schema
from cliffaudit.report import (
    AuditSettings,
    ClassRow,
    Cliff,
    Example,
    Precondition,
    Reachability,
    finite_or_none,
    preconditions,
)
from cliffaudit.report import samples as report_samples
from cliffaudit.report.samples import LoggedSample

# Thresholds of the preconditions (docs/audit.md).
CALIBRATION_GAP = preconditions.CALIBRATION_GAP  # |predicted - observed| sequence validity, per model
BINDING_SHARE = 0.50  # share of the drop the binding class must carry
CONTRACT_SHARE = theory.MATERIAL_SHARE  # share of the drop a class may carry only where the contract is exact


def role_calibration(samples: RoleSamples, masses, role: str) -> estimate.Calibration:
    log_valid = masses.teacher_log_valid if role == "teacher" else masses.student_log_valid
    outcome = np.ones(len(masses.sample), dtype=bool)
    for i, violation in enumerate(samples.violations):
        if violation is not None:
            outcome[(masses.sample == i) & (masses.position == violation.position)] = False
    valid_mass = np.exp(log_valid)
    hazard = np.bincount(masses.sample, weights=1.0 - valid_mass, minlength=len(samples.outputs))
    return estimate.calibration(valid_mass, outcome, hazard, np.array(samples.strictly_valid),
                                np.array(samples.record_index))


def example_outputs(samples: RoleSamples, records, contract, role: str, valid_one: bool = True) -> list[Example]:
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


def complementary_masses(log_valid: np.ndarray, log_tail: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(valid, tail) in float64, each taken from the smaller of the two and the other as
    its complement: p = 0.9999998 from a float32 log would keep one digit of 1 - p."""
    log_valid, log_tail = log_valid.astype(np.float64), log_tail.astype(np.float64)
    valid_is_small = log_valid < log_tail
    valid = np.where(valid_is_small, np.exp(log_valid), -np.expm1(np.minimum(log_tail, 0.0)))
    tail = np.where(valid_is_small, -np.expm1(np.minimum(log_valid, 0.0)), np.exp(log_tail))
    return valid, tail


def role_positions(samples: RoleSamples, masses) -> estimate.Positions:
    """One model's scored positions, as the statistics take them."""
    pairs = {name: complementary_masses(getattr(masses, f"{name}_log_valid"), getattr(masses, f"{name}_log_tail"))
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


def _interval(pair: tuple[float, float] | None) -> tuple[float | None, float | None]:
    return (None, None) if pair is None else (finite_or_none(pair[0]), finite_or_none(pair[1]))


def reconcile_cliff(settings: AuditSettings, lambdas: np.ndarray, curve: estimate.AnalyticCurve,
           rollouts: FixedPointRollouts) -> Cliff:
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


def interval_end(value: float | None) -> str:
    """An interval's upper end; None when it runs past the audited grid."""
    return "past the grid's end" if value is None else f"{value:.3f}"


def source_text(cliff: Cliff) -> str:
    if cliff.source == "rollouts":
        return "the fixed point's samples, which disagree with the analytic curve"
    return "the analytic curve"


def rollout_shares(rates: list[estimate.RolloutRate], lam: float) -> dict[str, float]:
    """Classes' shares of the new first violations between lambda = 1 and the first sampled lambda past ``lam``."""
    rates = sorted(rates, key=lambda r: r.lam)
    past = next((r for r in rates if r.lam >= lam), rates[-1])
    base = rates[0]
    added = {label: past.violations.get(label, 0) / past.samples - base.violations.get(label, 0) / base.samples
             for label in set(past.violations) | set(base.violations)}
    total = sum(v for v in added.values() if v > 0)
    return {label: v / total for label, v in added.items()} if total > 0 else {}


def judge_reachability(settings: AuditSettings, cliff: Cliff, binding: str | None, draws: dict[str, float],
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


def recommendation_text(cliff: Cliff, binding: str | None, share: float | None, reachability: Reachability) -> str:
    if cliff.lambda_v is None:
        return (f"no cliff up to lambda_max = {cliff.lambda_max:g}: the fixed point's parse rate stays within "
                f"{cliff.drop:g} of its best; lambdas beyond {cliff.lambda_max:g} were not audited")
    lo, hi = cliff.interval
    text = (f"train with lambda < {lo:.3f}: the fixed point's parse rate falls {cliff.drop:g} below its best at "
            f"lambda_v = {cliff.lambda_v:.3f} (interval {lo:.3f} to {interval_end(hi)}, from {source_text(cliff)})")
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


def class_row(est: estimate.ClassEstimate, share: float | None, draws: float | None, contract,
         approximation: str | None = None) -> ClassRow:
    return ClassRow(
        label=est.label, teacher_positions=est.teacher_positions, student_positions=est.student_positions,
        prompts=est.prompts, teacher_valid_mass=est.teacher_valid_mass, student_valid_mass=est.student_valid_mass,
        reference_valid_mass=est.reference_valid_mass, bernoulli_lambda_v=finite_or_none(est.bernoulli_lambda_v),
        clip_band_lambda_star=finite_or_none(est.clip_band_lambda_star), share_of_drop=share,
        draws_per_rollout=draws, approximation=approximation,
        amplified_tokens=[(contract.vocab.describe(t), r) for t, r in est.amplified_tokens])


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


def report_preconditions(calibration, cliff: Cliff, binding: str | None, share: float | None,
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
        return f"lambda_v {value:.3f} ({interval[0]:.3f} to {interval_end(interval[1])})"

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

