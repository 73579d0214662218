"""The sweep's typed output, sweep.json (schema under schemas/). No torch here."""

from __future__ import annotations

from pydantic import BaseModel, Field

SWEEP_SCHEMA_VERSION = 1


class SweepSettings(BaseModel):
    teacher: str
    student: str
    probes: str
    eval_probes: str
    schema_path: str | None = None
    lambdas: list[float]
    seeds: int = 3
    steps: int = 40
    clip: float = 2.0
    lr: float = 1e-4
    batch_size: int = 16
    max_new_tokens: int = 64
    eval_samples_per_prompt: int = 2
    rollout_dtype: str | None = None
    from_report: str | None = None
    onset_tolerance: float = 0.10


class Prediction(BaseModel):
    """What the audit predicted, locked before the first training step."""

    binding_class: str | None
    clip: float
    reduced_lambda_star: float | None
    reduced_interval: tuple[float | None, float | None]
    exact_lambda_star: float | None
    exact_interval: tuple[float | None, float | None]
    recommended_lambda: float | None
    report_path: str
    report_sha256: str
    sweep_settings: SweepSettings


class RunResult(BaseModel):
    lam: float
    seed: int
    parse_rate: float
    exact_match: float | None = Field(description="on outputs that parse; None without ground truth")
    ndcg_at_1: float | None
    eval_samples: int
    seconds: float


class OnsetInterval(BaseModel):
    lower: float
    upper: float


class WindowVerdict(BaseModel):
    threshold: str  # "reduced" (Bernoulli reduction) or "exact" (K-ary fixed point)
    window: tuple[float | None, float | None]
    inside: bool | None = Field(description="None when the prediction is unbounded, or no onset was observed "
                                            "on a grid that ends inside the window")
    miss: float | None
    direction: str | None
    miss_at_least: bool = Field(False, description="the miss is a lower bound: no onset was observed up to the "
                                                   "grid's end, which lies past the window")


class SweepReport(BaseModel):
    schema_version: int = SWEEP_SCHEMA_VERSION
    tool_version: str
    settings: SweepSettings
    prediction: Prediction
    prediction_sha256: str
    lock_verified: bool = Field(description="prediction.json still has the hash printed before training")
    runs: list[RunResult]
    onset_per_seed: dict[str, OnsetInterval | None]
    onset_pooled: OnsetInterval | None
    verdicts: list[WindowVerdict]
