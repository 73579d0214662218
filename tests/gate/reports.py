"""Reports with known numbers for the gate, built without running an audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cliffaudit import theory
from cliffaudit.report import (
    AuditReport,
    AuditSettings,
    ClassRow,
    Cliff,
    Fingerprints,
    ParseRate,
    Precondition,
    Reachability,
    RolloutPoint,
    RunInfo,
)

CONFIGS = Path(__file__).parent / "configs"
# The model each sample launch extrapolates away from (or starts from, with lambda = 1).
SAMPLE_REFERENCES = {
    "verl/run_qwen3_4b_json_exopd.sh": "/personal/models/Qwen3-4B",
    "verl/g_opd_json_qwen3_1.7b.yaml": "Qwen/Qwen3-1.7B",
    "slime/run-qwen3-4B-opd-json.sh": "/root/Qwen3-4B",
    "slime/run-qwen3-4B-opd-megatron-json.sh": "/root/Qwen3-4B",
    "skyrl/run_on_policy_distill_json_qwen3_1.7b.sh": "Qwen/Qwen3-1.7B",
    "skyrl/opd_kl_in_reward_json.yaml": "Qwen/Qwen3-1.7B",
    "trl/gkd_qwen3_json.yaml": "Qwen/Qwen3-1.7B",
}
# The teacher each sample launch distils toward; None where the launch does not name it
# (slime's SGLang teacher is a server).
SAMPLE_TEACHERS = {
    "verl/run_qwen3_4b_json_exopd.sh": "/personal/models/Qwen3-8B-json-tools-RL-step400",
    "verl/g_opd_json_qwen3_1.7b.yaml": "/models/Qwen3-8B-json-tools-RL-step400",
    "slime/run-qwen3-4B-opd-json.sh": None,
    "slime/run-qwen3-4B-opd-megatron-json.sh": "/root/Qwen3-4B-json-tools-RL_torch_dist",
    "skyrl/run_on_policy_distill_json_qwen3_1.7b.sh": "/ckpts/qwen3_8b_json_tools_rl/global_step_400/",
    "skyrl/opd_kl_in_reward_json.yaml": "/ckpts/qwen3_8b_json_tools_rl/global_step_400",
    "trl/gkd_qwen3_json.yaml": "/models/Qwen3-8B-json-tools",
}
TEACHER = "/models/teacher"  # the teacher of the launches the tests write (test_readers.FORK_ON)
GRID = np.round(np.linspace(1.0, 3.0, 201), 10)  # the audit's default grid, 1.00 to 3.00 by 0.01
RECOMMENDED = 1.25  # lower end of lambda_v's interval in known_report()
LAMBDA_V = 1.3
BINDING_DRAWS = 0.5  # driving draws per rollout of the binding class in known_report()


def row(label: str, p: float, b: float, share: float | None = None, draws: float | None = None) -> ClassRow:
    star = theory.bernoulli_lambda_v(p, b)
    band = theory.clip_band_lambda_star(p, b, 2.0)
    return ClassRow(label=label, teacher_positions=40, student_positions=40, prompts=8, teacher_valid_mass=p,
                    student_valid_mass=b, reference_valid_mass=b, bernoulli_lambda_v=star if np.isfinite(star) else None,
                    clip_band_lambda_star=band if np.isfinite(band) else None, share_of_drop=share,
                    draws_per_rollout=draws)


def make_report(rows: list[ClassRow], cliff: Cliff, binding: str | None, rollouts: int | None = None,
                preconditions: list[Precondition] | None = None) -> AuditReport:
    settings = AuditSettings(teacher="/ckpt/teacher", student="/ckpt/student", probes="/ckpt/probes.jsonl",
                             rollouts=rollouts)
    curve = [theory.bernoulli_valid_mass(0.95, 0.999, lam) for lam in GRID]
    binding_row = next((r for r in rows if r.label == binding), None)
    per_rollout = binding_row.draws_per_rollout if binding_row else None
    return AuditReport(
        tool_version="test", settings=settings,
        fingerprints=Fingerprints(teacher={"model.safetensors": "0" * 64}, student={"model.safetensors": "1" * 64},
                                  probes="2" * 64),
        device="cpu", records=8, lambdas=GRID.tolist(), teacher_parse_rate=0.95, student_parse_rate=0.7,
        parse_rate=ParseRate(analytic=curve, analytic_low=curve, analytic_high=curve,
                             rollouts=[RolloutPoint(lam=1.0, samples=100, valid=95, parse_rate=0.95,
                                                    interval=(0.9, 0.98), violations={"value:number": 5})]),
        cliff=cliff, binding_class=binding, binding_share=binding_row.share_of_drop if binding_row else None,
        reachability=Reachability(budget_rollouts=rollouts, draws_per_rollout=per_rollout,
                                  draws_to_reach=theory.DRAWS_TO_REACH, expected_draws=None, rollouts_needed=None,
                                  reachable=None if cliff.lambda_v is None else True, statement="test"),
        recommended_lambda=cliff.interval[0] if cliff.lambda_v is not None else None, recommendation="test",
        classes=rows,
        preconditions=preconditions if preconditions is not None else [
            Precondition(name="calibrated", passed=True, detail="gap 0.02 (teacher), 0.04 (student)")],
        calibration={}, run=RunInfo(processes=1, wall_seconds=1.0, tokens_probed=1000, peak_memory_bytes=1 << 30))


def cliff(lambda_v: float | None, interval=(None, None)) -> Cliff:
    return Cliff(drop=0.1, lambda_max=float(GRID[-1]), lambda_v=lambda_v, interval=interval, source="rollouts",
                 analytic_lambda_v=lambda_v, analytic_interval=interval, rollout_lambda_v=lambda_v,
                 rollout_interval=interval, agree=True)


def known_report(**changes) -> AuditReport:
    """A cliff at lambda_v = 1.3 (interval 1.25 to 1.35): 'value:number' carries 90% of the
    fall and is drawn 0.5 times a rollout; 'key' 10%, drawn 0.02 times. Recommended 1.25."""
    rows = [row("value:number", 0.95, 0.999, share=0.9, draws=BINDING_DRAWS),
            row("key", 0.9, 0.97, share=0.1, draws=0.02)]
    report = make_report(rows, cliff(LAMBDA_V, (RECOMMENDED, 1.35)), "value:number")
    return report.model_copy(update=changes)


def with_models(report: AuditReport, **models: str | None) -> AuditReport:
    """``report`` as audited from these teacher/student/reference paths."""
    return report.model_copy(update={"settings": report.settings.model_copy(update=models)})


def no_cliff_report() -> AuditReport:
    """b < p in every class: extrapolation sharpens the format; no cliff up to 3."""
    return make_report([row("value:number", 0.99, 0.9)], cliff(None), None)


def write_report(report: AuditReport, directory: Path) -> Path:
    path = directory / "report.json"
    path.write_text(report.model_dump_json(indent=2))
    return path
