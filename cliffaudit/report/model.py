"""The audit report model: typed (pydantic), written atomically as JSON. No torch here.

Thresholds that are unbounded are stored as ``null``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cliffaudit.checkpoints import sha256_file
from cliffaudit.theory import DEFAULT_DROP, check_clip

SCHEMA_VERSION = 2


# Every number a report holds is finite and in its range, checked on load: the gate judges
# a lambda with them, and a negative draw count or an infinite grid end would pass one.
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Count = Annotated[int, Field(ge=0)]
NonNegative = Annotated[float, Field(ge=0.0)]  # lambdas, draws, rollouts, seconds


class ReportPart(BaseModel):
    """A part of report.json: no NaN or infinity anywhere in it (unbounded values are null)."""

    model_config = ConfigDict(allow_inf_nan=False)


class AuditSettings(BaseModel):
    """An audit's settings: the one place their defaults and checks live (the CLI's
    options take their defaults from here, and a report's settings are checked again
    when it is loaded)."""

    # Each field's description is its option's help in `cliffaudit audit` (cliffaudit.cli_options).
    teacher: str = Field(description="teacher checkpoint: a directory, a hub id already in the local Hugging Face "
                                     "cache, a GGUF file or a PEFT adapter directory")
    student: str = Field(description="the warm start: the checkpoint training starts from (verl: "
                                     "actor_rollout_ref.model.path), in any of the teacher's forms")
    reference: str | None = Field(None, description="G-OPD's reference pi_ref, the fork's "
                                                    "actor_rollout_ref.model.base_model_path [default: the warm start]")
    probes: str = Field(description="probe records: JSONL, or parquet with cliffaudit[parquet] (a verl training "
                                    "parquet works with --messages-key prompt). 128 to 256 records give a usable band")
    schema_path: str | None = Field(None, description="JSON Schema of the answers (a file, or a pydantic model as "
                                                      "module:Class), for records without their own 'schema' field "
                                                      "(e.g. the one your reward function validates against)")
    drop: float = Field(DEFAULT_DROP, gt=0.0, lt=1.0, description="fall in parse rate (absolute, e.g. 0.84 to 0.74) "
                                                                  "below its best at smaller lambdas that counts as "
                                                                  "the cliff")
    rollouts: int | None = Field(None, ge=1, description="training budget in rollouts (per step x steps), to judge "
                                                         "reachability [default: unknown, every cliff counts as "
                                                         "reachable]")
    clip: float = Field(2.0, description="importance-weight cap c > 1; only for the clip-band comparison")
    samples_per_prompt: int = Field(4, ge=1, description="samples per probe record and model (and per sampled "
                                                         "lambda of the fixed point)")
    max_new_tokens: int = Field(96, ge=1, description="longest answer sampled; one cut off here counts as not "
                                                      "parsing. Use the training run's limit")
    batch_size: int = Field(16, ge=1, description="samples per forward pass; lower it on a small device (logits "
                                                  "are batch x length x vocab)")
    fixed_point_lambdas: int = Field(8, ge=0, description="most lambdas at which to sample the fixed point itself; "
                                                          "0: the analytic curve only")
    device: str = Field("auto", description="auto picks cuda, then mps, then cpu")
    dtype: str = Field("auto", description="auto: bf16 on cuda, fp32 elsewhere")
    teacher_dtype: str | None = Field(None, description="teacher precision, overriding --dtype (e.g. bfloat16)")
    student_dtype: str | None = Field(None, description="student (and reference) precision, overriding --dtype")
    device_map: str | None = Field(None, description="e.g. auto: spread each model over the GPUs and CPU memory "
                                                     "(accelerate's big-model loading)")
    seed: int = Field(0, description="run seed; each sample's seed derives from it, its record and its index "
                                     "(samples.jsonl lists them)")
    lambda_min: float = 1.0
    lambda_max: float = Field(3.0, description="end of the audited lambda grid")
    lambda_step: float = Field(0.01, gt=0.0, allow_inf_nan=False)
    use_chat_template: bool = Field(True, description="render prompts with the tokenizer's chat template")
    chat_template_kwargs: dict = Field(default_factory=dict, description="JSON object passed to the chat template as "
                                                                         "the training run passes it, e.g. "
                                                                         "'{\"enable_thinking\": false}' for Qwen3")
    limit: int | None = Field(None, ge=1, description="audit only the first N probe records: a quick look, not a "
                                                      "verdict to gate on")
    prompt_key: str = Field("prompt", description="the probe records' field holding a prompt string")
    messages_key: str = Field("messages", description="the probe records' field holding a chat message list (e.g. "
                                                      "prompt, as verl's data has it)")
    trust_remote_code: bool = Field(False, description="allow model code from the checkpoint directory")

    @field_validator("clip")
    @classmethod
    def _clip(cls, value: float) -> float:
        return check_clip(value)

    @model_validator(mode="after")
    def _grid(self):
        if not (math.isfinite(self.lambda_min) and math.isfinite(self.lambda_max)
                and 0.0 <= self.lambda_min < 1.0 + 1e-12 < self.lambda_max):
            raise ValueError(f"lambda_max must be a finite number > 1 (and lambda_min in [0, 1]), got "
                             f"lambda_min={self.lambda_min!r}, lambda_max={self.lambda_max!r}")
        return self


class RolloutPoint(ReportPart):
    """Strict parse rate of outputs sampled from the fixed point at one lambda
    (at lambda = 1 the fixed point is the teacher: its own samples)."""

    lam: NonNegative
    samples: Count
    valid: Count
    parse_rate: Probability
    interval: tuple[Probability, Probability] = Field(description="90% Wilson interval")
    violations: dict[str, Count] = Field(description="first contract violations, by class")


class ParseRate(ReportPart):
    """The fixed point's predicted strict-parse rate V(lambda)."""

    analytic: list[Probability] = Field(description="on the report's lambda grid, from the teacher's samples")
    analytic_low: list[Probability] = Field(description="90% bootstrap band over probe records")
    analytic_high: list[Probability]
    rollouts: list[RolloutPoint]


class Cliff(ReportPart):
    """Where V falls more than ``drop`` below its best at smaller lambdas (docs/theory.md)."""

    drop: float = Field(gt=0.0, lt=1.0)
    lambda_max: NonNegative
    lambda_v: NonNegative | None = Field(description="None: no cliff up to lambda_max")
    interval: tuple[NonNegative | None, NonNegative | None]
    source: str = Field(description='"analytic" (the samples agree, or none were taken) or "rollouts" (they '
                                    'disagree and put the cliff earlier)')
    analytic_lambda_v: NonNegative | None
    analytic_interval: tuple[NonNegative | None, NonNegative | None]
    rollout_lambda_v: NonNegative | None
    rollout_interval: tuple[NonNegative | None, NonNegative | None] = Field(
        description="(last sampled lambda surely above the drop line, first surely below it) by 90% Wilson "
                    "intervals; (null, null) when none is surely below")
    agree: bool = Field(description="no sampled lambda lies surely on the other side of the drop line than the "
                                    "analytic curve says")


class Reachability(ReportPart):
    budget_rollouts: int | None = Field(ge=1)
    draws_per_rollout: NonNegative | None = Field(description="binding class's driving draws per warm-start rollout")
    draws_to_reach: float = Field(gt=0.0)
    expected_draws: NonNegative | None
    rollouts_needed: NonNegative | None
    reachable: bool | None = Field(description="None when there is no cliff; True without a budget (fails closed)")
    statement: str


class ClassRow(ReportPart):
    label: str
    teacher_positions: Count
    student_positions: Count
    prompts: Count
    teacher_valid_mass: Probability = Field(description="p: mean teacher mass on the contract-preserving set")
    student_valid_mass: Probability = Field(description="b: mean warm-start mass on it")
    reference_valid_mass: Probability = Field(description="the reference's mean mass on it (b for the warm start)")
    bernoulli_lambda_v: NonNegative | None = Field(description="closed form of a Bernoulli position; None when b <= p")
    clip_band_lambda_star: NonNegative | None = Field(description="the refuted clip-band rule at settings.clip")
    share_of_drop: float | None = Field(description="share of the analytic fall in V at lambda_v (negative for a "
                                                    "class that gained validity)")
    draws_per_rollout: NonNegative | None = Field(description="driving draws per warm-start rollout towards "
                                                              "lambda_v")
    amplified_tokens: list[tuple[str, float]] = Field(
        default_factory=list, description="breaking tokens the fixed point amplifies most, with log(pi_T/pi_ref)")
    approximation: str | None = Field(None, description="the contract's approximation in play at this class's "
                                                        "positions, with its direction; None: the contract is exact "
                                                        "there (docs/contract.md)")


class Precondition(ReportPart):
    name: str
    passed: bool = Field(description="false when it failed; true when it passed or is unclear")
    detail: str
    # Added within schema_version 2: reports before it stored ``passed`` alone, read as
    # pass/fail here and refined from their numbers on load (report.preconditions).
    status: Literal["pass", "unclear", "fail"] | None = Field(
        None, description="pass, unclear (the data cannot tell) or fail; absent in reports written before it")

    @model_validator(mode="after")
    def _status_agrees(self):
        if self.status is None:
            self.status = "pass" if self.passed else "fail"
        elif self.passed != (self.status != "fail"):
            raise ValueError(f"precondition {self.name!r}: passed {self.passed} contradicts status {self.status!r}")
        return self


class ModelCalibration(ReportPart):
    # 1 - the mean summed invalid mass per sample: an expectation, below 0 when samples are
    # predicted to break more than once on average
    predicted_validity: float = Field(le=1.0)
    observed_validity: Probability
    ece: Probability
    curve_predicted: list[Probability]
    curve_observed: list[Probability]
    # 90% interval of predicted - observed (paired by sample, clustered by record); None
    # in reports written before it was measured.
    gap_interval: list[float] | None = None


class Example(ReportPart):
    """One sample, split around its first violating token (empty when it has none)."""

    record_id: str
    role: str
    strictly_valid: bool
    before_violation: str = Field(description="the output text before the first violating token (all of it if none)")
    violating_token: str = ""
    after_violation: str = ""
    violation_position: Count | None = None
    violation_reason: str | None = None


class Fingerprints(ReportPart):
    """sha256 of every input, to tell later whether a report still describes them."""

    teacher: dict[str, str] = Field(description="file name -> sha256, for each file of the teacher directory")
    student: dict[str, str]
    reference: dict[str, str] | None = None
    probes: str
    schema_file: str | None = None


def resolve_checkpoint(location: str | Path) -> Path | None:
    """The directory a checkpoint's files are in: the path itself, or for a hub id the
    snapshot the local Hugging Face cache holds (its folder is named by the commit), never
    a download. None when neither exists."""
    path = Path(location)
    if path.is_dir():
        return path
    if path.exists() or str(location).startswith((".", "/")) or str(location).count("/") != 1:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(location), local_files_only=True))
    except Exception:  # not in the cache, or no huggingface_hub: nothing to fingerprint
        return None


def fingerprint_checkpoint(location: str | Path) -> dict[str, str]:
    """sha256 of every file under a checkpoint directory (config, weights, tokenizer, and
    files in subfolders, by their path inside it), hidden files left out; a hub id is
    fingerprinted from its cached snapshot. Empty when there is no such checkpoint."""
    path = resolve_checkpoint(location)
    if path is None:
        return {}
    files = (f for f in sorted(path.rglob("*"))
             if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts))
    found = {f.relative_to(path).as_posix(): sha256_file(f) for f in files}
    if not Path(location).exists():  # a hub id: its cached snapshot's folder is the resolved commit
        found[HUB_COMMIT] = path.name
    return found


HUB_COMMIT = "(hub commit)"  # the fingerprint entry that records a hub id's resolved commit


class RunInfo(ReportPart):
    """How this run went: differs between runs and process layouts, unlike the results."""

    processes: int = Field(ge=1)
    wall_seconds: NonNegative
    tokens_probed: Count = Field(description="generated tokens sampled and scored, both models")
    peak_memory_bytes: Count = Field(description="peak device memory on cuda, else the main process's peak RSS")
    # Provenance: what produced the numbers (absent in reports written before it was recorded).
    created: str | None = Field(None, description="when the audit finished, ISO 8601 UTC")
    cliffaudit_commit: str | None = Field(None, description="git commit of the cliffaudit source, when it is a "
                                                            "checkout")
    versions: dict[str, str] = Field(default_factory=dict, description="python, torch, transformers, "
                                                                       "llguidance, ... as imported")
    device_used: str | None = Field(None, description="the device the masses were computed on, e.g. cuda:0")
    dtypes_used: dict[str, str] = Field(default_factory=dict, description="each model's parameter dtype as loaded")


class AuditReport(ReportPart):
    schema_version: int = SCHEMA_VERSION
    tool_version: str
    settings: AuditSettings
    fingerprints: Fingerprints
    device: str
    records: Count
    lambdas: list[NonNegative]
    teacher_parse_rate: Probability
    student_parse_rate: Probability
    parse_rate: ParseRate
    cliff: Cliff
    binding_class: str | None = Field(description="the class with the largest share of the drop at lambda_v")
    binding_share: float | None = Field(le=1.0)
    reachability: Reachability
    recommended_lambda: NonNegative | None = Field(
        description="the largest lambda whose V stays within drop of its best, at the safe end of lambda_v's "
                    "interval; None: no cliff up to lambda_max")
    recommendation: str
    classes: list[ClassRow]
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


def report_text(report: AuditReport) -> str:
    return report.model_dump_json(indent=2) + "\n"
