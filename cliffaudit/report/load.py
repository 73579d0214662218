"""Read a report.json back, refusing anything that is not a report of this version."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from cliffaudit.report.model import SCHEMA_VERSION, AuditReport


class ReportError(ValueError):
    """An unusable report; the message names the file and why."""


def load_report(path: Path) -> AuditReport:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a cliffaudit report (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{path}: not a cliffaudit report (no schema_version)")
    if data["schema_version"] == 1:
        raise ReportError(f"{path}: a schema_version 1 report predicts the clip-band cliff, which the sweeps "
                          f"refuted; re-audit with `cliffaudit audit` for a schema_version {SCHEMA_VERSION} report")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(f"{path}: report schema_version {data['schema_version']!r}, "
                          f"this cliffaudit reads {SCHEMA_VERSION}: re-run the audit")
    try:
        return AuditReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"{path}: field {field}: {first['msg']}") from None
