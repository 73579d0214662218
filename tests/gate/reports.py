"""Reports with known numbers for the gate, built without running an audit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cliffaudit import theory
from cliffaudit.report import AuditReport, AuditSettings, ClassRow, Fingerprints, Precondition, RunInfo

CONFIGS = Path(__file__).parent / "configs"
GRID = np.round(np.linspace(1.0, 3.0, 201), 10)  # the audit's default grid, 1.00 to 3.00 by 0.01
RECOMMENDED = 1.25  # lower end of the binding class's interval in known_report()


def bernoulli_row(label: str, p: float, b: float, clip: float, interval: tuple[float | None, float | None]) -> ClassRow:
    """A class whose exact tail-ratio curve is the Bernoulli fixed point's, so the
    reduced and the exact thresholds agree up to the grid's resolution."""
    limit = theory.threshold(p, b, clip)
    star = limit.lambda_star if limit.bounded else None
    return ClassRow(
        label=label, positions=40, prompts=8, teacher_valid_mass=p, student_valid_mass=b, regime=limit.regime.value,
        reduced_lambda_star=star, reduced_edge=limit.edge, base_neutral_lambda_star=None,
        exact_lambda_star=star, exact_edge=limit.edge, lambda_star=star, interval=interval,
        reduced_interval=interval, exact_interval=interval, reduced_percentiles={}, exact_percentiles={},
        disagreement=False, mean_tail_ratio=[theory.tail_ratio(p, b, lam) for lam in GRID])


def make_report(rows: list[ClassRow], recommended: float | None, binding: str | None, clip: float = 2.0,
                preconditions: list[Precondition] | None = None) -> AuditReport:
    settings = AuditSettings(teacher="/ckpt/teacher", student="/ckpt/student", probes="/ckpt/probes.jsonl", clip=clip)
    return AuditReport(
        tool_version="test", settings=settings,
        fingerprints=Fingerprints(teacher={"model.safetensors": "0" * 64}, student={"model.safetensors": "1" * 64},
                                  probes="2" * 64),
        device="cpu", records=8, lambdas=GRID.tolist(), teacher_parse_rate=0.95, student_parse_rate=0.7,
        classes=rows, binding_class=binding, recommended_lambda=recommended,
        preconditions=preconditions if preconditions is not None else [
            Precondition(name="calibrated", passed=True, detail="gap 0.02 (teacher), 0.04 (student)")],
        calibration={}, run=RunInfo(processes=1, wall_seconds=1.0, tokens_probed=1000, peak_memory_bytes=1 << 30))


def known_report(**changes) -> AuditReport:
    """Two classes at c = 2: 'value:number' (p=0.99, b=0.9, lambda* 1.2912) binds;
    'key' (p=0.9, b=0.97, lambda* 1.6341) does not. Recommended lambda 1.25."""
    rows = [bernoulli_row("value:number", 0.99, 0.9, 2.0, (RECOMMENDED, 1.33)),
            bernoulli_row("key", 0.9, 0.97, 2.0, (1.58, 1.70))]
    report = make_report(rows, RECOMMENDED, "value:number")
    return report.model_copy(update=changes)


def no_cliff_report() -> AuditReport:
    """b == p in every class: the fixed point is the teacher for every lambda."""
    rows = [bernoulli_row("value:number", 0.95, 0.95, 2.0, (None, None))]
    return make_report(rows, None, None)


def write_report(report: AuditReport, directory: Path) -> Path:
    path = directory / "report.json"
    path.write_text(report.model_dump_json(indent=2))
    return path
