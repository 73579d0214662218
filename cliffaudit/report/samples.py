"""samples.jsonl: every output an audit sampled, one JSON object a line, written beside
report.json (as lm-evaluation-harness's ``--log_samples``), so that any parse rate in the
report can be re-derived and any output inspected. No torch here.

Token ids and text, not per-position masses: the file stays about the size of the
outputs themselves. Roles: ``teacher`` (the fixed point at lambda = 1, whose samples give
the report's teacher parse rate and its lambda = 1 point), ``student`` (the warm start:
the states training visits) and ``fixed point`` (sampled from pi_T^lambda pi_ref^(1-lambda)
at ``lambda``, one line per sample of each sampled lambda).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SAMPLES_FILE = "samples.jsonl"

VALID = "strictly valid"
BREAKS = "breaks the contract"
CUT_OFF = "cut off at --max-new-tokens"
NOT_STRICT = "fails strict validation"

# What a report's "first violations by class" counts a sample under when it breaks no
# contract position (audit.NOT_ENDED and audit.NOT_STRICT).
COUNTED_AS = {CUT_OFF: "(no end-of-sequence)", NOT_STRICT: "(fails strict validation)"}


class FirstBreak(BaseModel):
    model_config = ConfigDict(extra="forbid")

    position: int = Field(ge=0, description="index of the first token that leaves the contract")
    label: str = Field(description="its class, as the report's class table names it")
    token: str = Field(description="the token, with its id")
    reason: str


class LoggedSample(BaseModel):
    role: Literal["teacher", "student", "fixed point"]
    lam: float | None = Field(alias="lambda", description="the fixed point's lambda (1 for the teacher); null for "
                                                          "the warm start")
    record: str = Field(description="the probe record's id")
    record_index: int = Field(ge=0, description="the record's place in the probe file, from 0")
    seed: int = Field(ge=0, description="the sampling seed of this output (from --seed, role, record and index)")
    tokens: list[int] = Field(description="the output's token ids, end-of-sequence included when it was written")
    text: str = Field(description="the output decoded (invalid UTF-8 replaced)")
    strictly_valid: bool
    first_break: FirstBreak | None = Field(description="the first token that leaves the token-level contract")
    verdict: Literal["strictly valid", "breaks the contract", "cut off at --max-new-tokens",
                     "fails strict validation"]

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, populate_by_name=True)

    @property
    def counted_as(self) -> str | None:
        """The key a report's "first violations by class" counts this sample under; None when valid."""
        if self.strictly_valid:
            return None
        if self.first_break is not None:
            return self.first_break.label
        return COUNTED_AS[self.verdict]


SAMPLES_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "samples.schema.json"


def samples_json_schema() -> str:
    """The JSON Schema of one line of samples.jsonl."""
    schema = LoggedSample.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "cliffaudit samples.jsonl, one line"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def samples_text(samples: list[LoggedSample]) -> str:
    return "".join(s.model_dump_json(by_alias=True) + "\n" for s in samples)


def read_samples(path: Path) -> list[LoggedSample]:
    return [LoggedSample.model_validate(json.loads(line))
            for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
