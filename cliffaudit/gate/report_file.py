"""Load report.json for the gate, refusing anything it could misjudge."""

from __future__ import annotations

from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.report.load import ReportError
from cliffaudit.report.load import load_report as load_any_report
from cliffaudit.report.model import AuditReport


def load_report(path: Path) -> AuditReport:
    """The audit report at ``path``: missing, unreadable, not JSON, another
    schema_version, not a report, or inconsistent (``cliffaudit.report.load``
    refuses those), refused with a one-line reason."""
    try:
        return load_any_report(Path(path))
    except ReportError as exc:
        raise GateInputError(str(exc)) from None
