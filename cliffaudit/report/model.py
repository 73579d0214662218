"""The audit report model: typed (pydantic), written atomically as JSON. No torch here.

Thresholds that are unbounded are stored as ``null``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

SCHEMA_VERSION = 1


def finite_or_none(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class AuditSettings(BaseModel):
    teacher: str
    student: str
    probes: str
    schema_path: str | None = None
    clip: float = 2.0
    samples_per_prompt: int = 4
    max_new_tokens: int = 96
    batch_size: int = 16
    device: str = "auto"
    dtype: str = "auto"
    teacher_dtype: str | None = None  # overrides dtype for the teacher
    student_dtype: str | None = None
    device_map: str | None = None  # e.g. "auto": accelerate's big-model loading
    seed: int = 0
    lambda_min: float = 1.0
    lambda_max: float = 3.0
    lambda_step: float = 0.01
    use_chat_template: bool = True
    trust_remote_code: bool = False


class ClassRow(BaseModel):
    label: str
    positions: int
    prompts: int
    teacher_valid_mass: float = Field(description="p: mean teacher mass on the contract-preserving set")
    student_valid_mass: float = Field(description="b: mean warm-start mass on it")
    regime: str
    reduced_lambda_star: float | None
    reduced_edge: str | None
    base_neutral_lambda_star: float | None
    exact_lambda_star: float | None
    exact_edge: str | None
    lambda_star: float | None = Field(description="the smaller of the two thresholds")
    interval: tuple[float | None, float | None]
    reduced_interval: tuple[float | None, float | None]
    exact_interval: tuple[float | None, float | None]
    reduced_percentiles: dict[str, float | None]
    exact_percentiles: dict[str, float | None]
    disagreement: bool
    amplified_tokens: list[tuple[str, float]] = Field(default_factory=list,
                                                      description="(token, log pi_T/pi_ref) driving the exact tail")
    mean_tail_ratio: list[float | None] = Field(description="(1-p)/t_lambda of the class's mean exact tail on the grid")


class Precondition(BaseModel):
    name: str
    passed: bool
    detail: str


class ModelCalibration(BaseModel):
    predicted_validity: float
    observed_validity: float
    ece: float
    curve_predicted: list[float]
    curve_observed: list[float]


class Example(BaseModel):
    """One sample, split around its first violating token (empty when it has none)."""

    record_id: str
    role: str
    strictly_valid: bool
    before_violation: str = Field(description="the output text before the first violating token (all of it if none)")
    violating_token: str = ""
    after_violation: str = ""
    violation_position: int | None = None
    violation_reason: str | None = None


class Fingerprints(BaseModel):
    """sha256 of every input, to tell later whether a report still describes them."""

    teacher: dict[str, str] = Field(description="file name -> sha256, for each file of the teacher directory")
    student: dict[str, str]
    probes: str
    schema_file: str | None = None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_checkpoint(path: str | Path) -> dict[str, str]:
    """sha256 of each file in a checkpoint directory (config, weights, tokenizer);
    empty for a hub id that is not a local directory."""
    path = Path(path)
    if not path.is_dir():
        return {}
    return {f.name: sha256_file(f) for f in sorted(path.iterdir()) if f.is_file() and not f.name.startswith(".")}


class RunInfo(BaseModel):
    """How this run went: differs between runs and process layouts, unlike the results."""

    processes: int
    wall_seconds: float
    tokens_probed: int = Field(description="generated tokens sampled and scored, both models")
    peak_memory_bytes: int = Field(description="peak device memory on cuda, else the main process's peak RSS")


class AuditReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    tool_version: str
    settings: AuditSettings
    fingerprints: Fingerprints
    device: str
    records: int
    lambdas: list[float]
    teacher_parse_rate: float
    student_parse_rate: float
    classes: list[ClassRow]
    binding_class: str | None
    recommended_lambda: float | None = Field(description="lower end of the binding class's 90% interval")
    preconditions: list[Precondition]
    calibration: dict[str, ModelCalibration]
    warnings: list[str] = Field(default_factory=list)
    examples: list[Example] = Field(default_factory=list)
    run: RunInfo


REPORT_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "report.schema.json"


def report_json_schema() -> str:
    """The JSON Schema of report.json, generated from the pydantic model."""
    schema = AuditReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"cliffaudit report, schema_version {SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


SWEEP_SCHEMA_PATH = REPORT_SCHEMA_PATH.with_name("sweep.schema.json")


def sweep_json_schema() -> str:
    """The JSON Schema of sweep.json, generated from its pydantic model."""
    from cliffaudit.sweep.model import SWEEP_SCHEMA_VERSION, SweepReport

    schema = SweepReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"cliffaudit sweep, schema_version {SWEEP_SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def write_json_atomically(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename, so a
    crash never leaves a partial report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is for reviewers to read
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(report: AuditReport, out_dir: Path) -> Path:
    path = Path(out_dir) / "report.json"
    write_json_atomically(report.model_dump_json(indent=2) + "\n", path)
    return path

