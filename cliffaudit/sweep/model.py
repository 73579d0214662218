"""The sweep's typed output, sweep.json (schema under schemas/). No torch here."""

from __future__ import annotations

import json
import math
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from cliffaudit.errors import InputError
from cliffaudit.report.load import load_report, other_output
from cliffaudit.report.model import REPORT_SCHEMA_PATH, AuditReport
from cliffaudit.sweep.onset import OnsetRange
from cliffaudit.tasks import TASKS
from cliffaudit.theory import DEFAULT_DROP, check_clip

# 4: the warm start's and the teacher's rates under the sweep's evaluator (baselines), the
# finite-budget lock of a two-phase sweep, each run's clipped share, the clip band at the
# sweep's own clip; 3: verdicts judge the onset's range (onset_range); 2 judged its point
SWEEP_SCHEMA_VERSION = 4


class SweepSettings(BaseModel):
    """A sweep's settings: the one place their defaults and checks live (the CLI's
    options take their defaults from here)."""

    # Each field's description is its option's help in `cliffaudit sweep` (cliffaudit.cli_options).
    teacher: str = Field(description="teacher checkpoint, as for `cliffaudit audit`")
    student: str = Field(description="the warm start: every run starts here")
    reference: str | None = Field(None, description="G-OPD's reference [default: the warm start]")
    probes: str = Field(description="training prompts (JSONL, or parquet with cliffaudit[parquet])")
    eval_probes: str = Field(description="held-out prompts the trained runs are evaluated on (JSONL or parquet)")
    schema_path: str | None = Field(None, description="JSON Schema for records without their own, as for "
                                                      "`cliffaudit audit`")
    lambdas: list[float] = Field(min_length=1, description="START:STOP:STEP (both ends) or a comma list")
    seeds: int = Field(3, ge=1, description="training runs per lambda, each with its own seed")
    first_seed: int = Field(0, ge=0, description="seeds run from here: a new lock draws fresh runs instead of "
                                                 "replaying old ones")
    steps: int = Field(40, ge=1, description="training steps per run")
    clip: float = Field(2.0, description="PPO upper clip and importance-weight cap c > 1")
    lr: float = Field(1e-4, gt=0.0, description="learning rate of the student's training")
    batch_size: int = Field(16, ge=1, description="rollouts per training step")
    max_new_tokens: int = Field(64, ge=1, description="longest rollout and evaluation answer")
    eval_samples_per_prompt: int = Field(2, ge=1, description="evaluation samples per held-out prompt and run")
    task: str = Field("ranking", description="how outputs that parse are scored against the eval records' targets "
                                             "(cliffaudit.tasks)")
    chat_template_kwargs: dict = Field(default_factory=dict, description="JSON object passed to the chat template, "
                                                                         "as for `cliffaudit audit`")
    rollout_dtype: str | None = Field(None, description="sample rollouts in this precision (e.g. bfloat16) against "
                                                        "fp32 training")
    # As the audit has them (with --from-report the CLI takes them from the report unless given):
    device: str = Field("auto", description="as for `cliffaudit audit`: auto picks cuda, then mps, then cpu")
    dtype: str = Field("auto", description="the models' precision, as for `cliffaudit audit` (auto: bf16 on cuda, "
                                           "fp32 elsewhere); a student that trains all its weights trains in float32")
    use_chat_template: bool = Field(True, description="render prompts with each model's chat template")
    lora_rank: int | None = Field(None, ge=1, description="train a new LoRA adapter of this rank on the student's "
                                                          "attention projections instead of all its weights (a "
                                                          "student that is a PEFT adapter always trains its own)")
    from_report: str | None = Field(None, description="lock this audit's prediction instead of auditing the "
                                                      "training probes first")
    onset_tolerance: float = Field(DEFAULT_DROP, gt=0.0, lt=1.0)
    finite_budget: bool = Field(False, description="two phases: train the lambda = 1 runs, lock the onset predicted "
                                                   "at this budget from them (finite-budget.json, hashed), then "
                                                   "train the other lambdas (docs/sweep.md)")

    @model_validator(mode="after")
    def _finite_budget_needs_lambda_one(self):
        if self.finite_budget and 1.0 not in self.lambdas:
            raise ValueError("a finite-budget sweep fits its speed from the lambda = 1 runs: --lambdas must hold 1.0")
        return self

    @field_validator("clip")
    @classmethod
    def _clip(cls, value: float) -> float:
        return check_clip(value)

    @field_validator("lambdas")
    @classmethod
    def _lambdas(cls, values: list[float]) -> list[float]:
        if not all(math.isfinite(v) and v >= 0.0 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"lambdas must be distinct finite numbers >= 0, got {values}")
        return values

    @field_validator("task")
    @classmethod
    def _task(cls, value: str) -> str:
        if value not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {value!r}")
        return value


class Prediction(BaseModel):
    """What the audit predicted, locked before the first training step."""

    binding_class: str | None
    drop: float
    lambda_max: float = Field(description="the audited grid's end: no cliff predicted means none up to here")
    lambda_v: float | None = Field(description="the fixed point's cliff; None: no cliff up to lambda_max")
    interval: tuple[float | None, float | None]
    recommended_lambda: float | None
    clip: float = Field(description="the c the clip band is computed at: the sweep's own (before schema 4, the "
                                    "report's)")
    clip_band_lambda_star: float | None = Field(description="the refuted clip-band rule's cliff (smallest over "
                                                            "classes, Bernoulli form), locked for comparison")
    report_path: str
    report_sha256: str
    sweep_settings: SweepSettings


class RunResult(BaseModel):
    @model_validator(mode="before")
    @classmethod
    def _schema_2_metrics(cls, data):
        """Schema-2 runs (the archived locks) stored the ranking metrics as fields."""
        if isinstance(data, dict) and "metrics" not in data and {"exact_match", "ndcg_at_1"} & data.keys():
            data = dict(data)
            data["metrics"] = {k: data.pop(k) for k in ("exact_match", "ndcg_at_1") if data.get(k) is not None}
        return data

    lam: float
    seed: int
    parse_rate: float
    metrics: dict[str, float] = Field(default_factory=dict, description="the task's metrics (cliffaudit.tasks), "
                                      "means over outputs that parse; empty without ground truth")
    eval_samples: int
    seconds: float
    clipped_share: float | None = Field(None, description="share of the updates' tokens whose PPO ratio the clip "
                                                          "held (its gradient 0); None before schema 4")


class Baseline(BaseModel):
    """An untrained model under the sweep's own evaluator, at one run seed's evaluation draws:
    the warm start (the fixed point at lambda 0 when it is the reference) and the teacher (at 1)."""

    role: str = Field(description='"warm start" or "teacher"')
    seed: int
    parse_rate: float
    eval_samples: int


class FiniteBudgetLock(BaseModel):
    """The finite-budget onset of a two-phase sweep, written after its lambda = 1 runs and before
    any other run trains (theory.finite_budget, docs/theory.md section 9)."""

    rule: str = "finite budget"
    status: str = Field(description="where the rule stands: it failed its simulator criterion, so it is locked as "
                                    "evidence and offered nowhere")
    prediction_sha256: str = Field(description="the first lock's, which this one follows")
    steps: int
    warm_start: tuple[int, int] = Field(description="(valid, samples) of the warm start under the sweep's evaluator")
    teacher: tuple[int, int]
    runs_at_one: list[tuple[int, int]] = Field(description="(valid, samples) of each lambda = 1 run")
    offered: bool = Field(description="finite_budget.is_offered: the runs' parse rate measures the falling class")
    reason: str
    effective_lambda: float | None = Field(description="f: the lambda = 1 runs parse like the fixed point at f")
    effective_lambda_interval: tuple[float, float] | None
    window: tuple[float | None, float | None] = Field(description="(earliest, latest) onset at this budget; None at "
                                                                  "the upper end: past the curve; (None, None): none "
                                                                  "predicted up to predicted_up_to")
    predicted_up_to: float | None
    lambda_v: float | None = Field(description="the fixed point's cliff: the limit")


class OnsetInterval(BaseModel):
    lower: float
    upper: float


class RuleVerdict(BaseModel):
    rule: str  # "fixed point" (the prediction) or "clip band" (the refuted alternative)
    window: tuple[float | None, float | None] = Field(description="(None, None): no cliff predicted")
    hit: bool | None = Field(description="the verdict: true consistent, false inconsistent, None undecided "
                                         "(the sweep cannot tell: its grid ends inside the window, or its onset may "
                                         "lie past the audited grid); judged on onset_range (schema 3; on "
                                         "onset_pooled before)")
    outcome: str = Field(description='the verdict word and its detail: "consistent: ...", "inconsistent: '
                                     'earlier by ...", "inconsistent: later by ...", "undecided: ..." (sweeps '
                                     'before cliffaudit.verdicts wrote "inside", "agree", "miss", "no verdict")')
    miss: float | None
    direction: str | None
    miss_at_least: bool = Field(False, description="the miss is a lower bound: no onset was observed up to the "
                                                   "grid's end, which lies past the window")


class Convergence(BaseModel):
    """How far the lambda = 1 runs got from the warm start to the fixed point there (the
    teacher). The fixed point is a limit; runs that have not reached it at lambda = 1 test
    a finite-budget onset, which comes later than lambda_v (docs/sweep.md)."""

    warm_start: float = Field(description="the warm start's strict parse rate (under the sweep's evaluator when "
                                          "measured_by says so, else the audit's)")
    fixed_point_at_one: float = Field(description="the teacher's strict parse rate, measured alike")
    measured_by: str = Field("the audit", description='"the sweep\'s evaluator" (schema 4: the runs\' own '
                                                      'measure) or "the audit" (before: other samples, another '
                                                      'token limit)')
    runs_at_one: float | None = Field(description="pooled parse rate of the lambda = 1 runs; None without them")
    progress: float | None = Field(description="(warm_start - runs_at_one) / (warm_start - fixed_point_at_one)")
    reached: bool | None = Field(description="progress at least 0.9; None when it cannot be told (no lambda = 1 "
                                             "runs, or warm start and teacher parse alike)")


class SweepReport(BaseModel):
    schema_version: int = SWEEP_SCHEMA_VERSION
    tool_version: str
    settings: SweepSettings
    prediction: Prediction
    prediction_sha256: str
    lock_verified: bool = Field(description="prediction.json still has the hash printed before training")
    runs: list[RunResult]
    onset_per_seed: dict[str, OnsetInterval | None]
    onset_pooled: OnsetInterval | None = Field(description="the onset of the mean rate over seeds")
    onset_range: OnsetRange | None = Field(None, description="where the pooled onset lies given the runs' noise; "
                                                             "the verdicts judge it (absent before schema 3)")
    verdicts: list[RuleVerdict]
    convergence: Convergence | None = None
    baselines: list[Baseline] = Field(default_factory=list, description="the warm start and the teacher under the "
                                                                        "sweep's evaluator (empty before schema 4)")
    finite_budget: FiniteBudgetLock | None = None
    finite_budget_sha256: str | None = None


LOCKED_REPORT = "locked-report.json"  # the report a lock came from, copied beside prediction.json


def load_sweep(path: Path) -> SweepReport:
    """A sweep.json, or one line saying what the file is instead and which to give."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a sweep.json (not UTF-8 text)") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and {"cliff", "parse_rate"} <= data.keys():
        raise InputError(f"{path}: an audit report, not a sweep.json: the report comes first (REPORT.json), and "
                         f"--sweep takes the sweep.json `cliffaudit sweep` wrote beside prediction.json")
    other = other_output(path, text, data)
    if other and not other.startswith("a sweep.json"):
        beside = path.parent / "sweep.json"
        hint = f"{beside}, beside it" if beside.is_file() else "the sweep.json `cliffaudit sweep` wrote"
        raise InputError(f"{path}: {other.split(', not ')[0]}, not a sweep.json: --sweep takes {hint}")
    try:
        return SweepReport.model_validate_json(text)
    except (ValueError, ValidationError) as exc:
        raise InputError(f"{path}: not a readable sweep.json: {' '.join(str(exc).split())[:200]}") from None


def locked_report(prediction: Prediction, out: Path) -> AuditReport:
    """The report the prediction was locked from: the copy beside the lock, else the original."""
    kept = Path(out) / LOCKED_REPORT
    return load_report(kept if kept.exists() else Path(prediction.report_path))


SWEEP_SCHEMA_PATH = REPORT_SCHEMA_PATH.with_name("sweep.schema.json")


def sweep_json_schema() -> str:
    """The JSON Schema of sweep.json, generated from its pydantic model."""
    schema = SweepReport.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"cliffaudit sweep, schema_version {SWEEP_SCHEMA_VERSION}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
