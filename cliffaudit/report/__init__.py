"""The outputs a person reads: the typed JSON report and its HTML rendering. No torch here."""

from cliffaudit.report.model import (
    REPORT_SCHEMA_PATH,
    SCHEMA_VERSION,
    AuditReport,
    AuditSettings,
    ClassRow,
    Example,
    Fingerprints,
    ModelCalibration,
    Precondition,
    RunInfo,
    fingerprint_checkpoint,
    finite_or_none,
    report_json_schema,
    sha256_file,
    write_json_atomically,
    write_report,
)

__all__ = [
    "REPORT_SCHEMA_PATH",
    "SCHEMA_VERSION",
    "AuditReport",
    "AuditSettings",
    "ClassRow",
    "Example",
    "Fingerprints",
    "ModelCalibration",
    "Precondition",
    "RunInfo",
    "fingerprint_checkpoint",
    "finite_or_none",
    "report_json_schema",
    "sha256_file",
    "write_json_atomically",
    "write_report",
]
