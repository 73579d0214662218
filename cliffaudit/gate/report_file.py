"""Load report.json for the gate, refusing anything it could misjudge."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.report.load import ReportError
from cliffaudit.report.load import load_report as load_any_report
from cliffaudit.report.model import AuditReport


def load_report(path: Path) -> AuditReport:
    """The audit report at ``path``. Missing, unreadable, not JSON, another
    schema_version, not a report (``cliffaudit.report.load`` refuses those), or
    without what the gate relies on: refused with a one-line reason."""
    try:
        report = load_any_report(Path(path))
    except ReportError as exc:
        raise GateInputError(str(exc)) from None
    _check_usable(Path(path), report)
    return report


def _check_usable(path: Path, report: AuditReport) -> None:
    """What the gate relies on beyond the schema: an ascending grid (its end is the
    last lambda the audit looked at), and one tail ratio per grid point for each
    class (to re-threshold at another clip)."""
    lambdas = report.lambdas
    if not lambdas or any(b <= a for a, b in pairwise(lambdas)):
        raise GateInputError(f"{path}: the report's lambda grid is empty or not ascending")
    for row in report.classes:
        if len(row.mean_tail_ratio) != len(lambdas):
            raise GateInputError(f"{path}: class {row.label!r} has {len(row.mean_tail_ratio)} tail ratios for "
                                 f"{len(lambdas)} grid points")
