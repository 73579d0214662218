"""The audit report's data: its typed model, strict loading, and outputs written together
(``write``). No torch here.

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
    report_json_schema,
    report_text,
    sha256_file,
)
from cliffaudit.report.write import (
    complete_interrupted_writes,
    same_file,
    write_json_atomically,
    write_report,
    write_together,
)
from cliffaudit.theory import finite_or_none

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
    "complete_interrupted_writes",
    "fingerprint_checkpoint",
    "finite_or_none",
    "report_json_schema",
    "sha256_file",
    "report_text",
    "same_file",
    "write_json_atomically",
    "write_report",
    "write_together",
]
