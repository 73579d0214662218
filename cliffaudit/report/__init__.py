"""The audit report's data: its typed model, strict loading and atomic writing. No torch here.

Its rendering lives in ``cliffaudit.render``, after the gate, so nothing here climbs
the pipeline.
"""

from cliffaudit.report.model import (
    REPORT_SCHEMA_PATH,
    SCHEMA_VERSION,
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
    fingerprint_checkpoint,
    finite_or_none,
    report_json_schema,
    sha256_file,
    report_text,
    write_json_atomically,
    write_report,
    write_together,
)

__all__ = [
    "REPORT_SCHEMA_PATH",
    "SCHEMA_VERSION",
    "AuditReport",
    "AuditSettings",
    "ClassRow",
    "Cliff",
    "Example",
    "Fingerprints",
    "ModelCalibration",
    "ParseRate",
    "Precondition",
    "Reachability",
    "RolloutPoint",
    "RunInfo",
    "fingerprint_checkpoint",
    "finite_or_none",
    "report_json_schema",
    "sha256_file",
    "report_text",
    "write_json_atomically",
    "write_report",
    "write_together",
]
