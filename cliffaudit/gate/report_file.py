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
    last lambda the audit looked at), one predicted rate per grid point, and a
    bound that agrees with the cliff it comes from."""
    lambdas = report.lambdas
    if not lambdas or any(b <= a for a, b in pairwise(lambdas)):
        raise GateInputError(f"{path}: the report's lambda grid is empty or not ascending")
    if len(report.parse_rate.analytic) != len(lambdas):
        raise GateInputError(f"{path}: parse_rate.analytic has {len(report.parse_rate.analytic)} values for "
                             f"{len(lambdas)} grid points")
    cliff, bound = report.cliff, report.recommended_lambda
    if (cliff.lambda_v is None) != (bound is None):
        raise GateInputError(f"{path}: recommended_lambda and cliff.lambda_v disagree on whether there is a cliff")
    if bound is not None and not (lambdas[0] <= bound <= cliff.lambda_v):
        raise GateInputError(f"{path}: recommended_lambda {bound!r} is not between the grid's start and lambda_v")
