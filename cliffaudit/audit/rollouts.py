"""The second stage: the fixed point itself, sampled at a few lambdas the analytic curve
chooses (teacher and reference in lockstep), to check the curve independently."""

from __future__ import annotations

from dataclasses import dataclass, field

from cliffaudit import estimate
from cliffaudit.audit.samples import EXAMPLES_PER_ROLE, NOT_ENDED, NOT_STRICT, AuditRun, RoleSamples, sample_seed
from cliffaudit.contract import strict_validate_output

# Fixed-point rollouts stop refining the cliff once its interval is this narrow.
ROLLOUT_RESOLUTION = 0.05


@dataclass
class FixedPointRollouts:
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


def sample_fixed_point_rollouts(run: AuditRun, teacher: RoleSamples, curve: estimate.AnalyticCurve) -> FixedPointRollouts:
    """Sample the fixed point at the lambdas ``estimate.next_rollout_lambda`` picks; every
    process takes the same decisions from the same gathered counts."""
    at_one = estimate.RolloutRate(1.0, int(sum(teacher.strictly_valid)), len(teacher.outputs),
                                  _violation_counts(teacher, run.eos_id))
    result = FixedPointRollouts([at_one], {})
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

