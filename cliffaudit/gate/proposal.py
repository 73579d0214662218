"""What is proposed for training: lambda, c and the budget in rollouts, each with
where it came from, from the command line, a training config, or both.

The command line fills what a config leaves out (c, the budget) but may not
contradict it: a gate that let ``--lambda`` override the config it checks would
pass a launch that trains with another lambda. Every launch has a lambda (1 by
construction where its framework cannot extrapolate), so ``--lambda`` beside a
config can only agree with it.
c is reported but never judged (it does not move the cliff), so it may be
missing; the budget only matters past the bound, where without it the gate fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import ConfigValue, ModelPath, TrainingSettings
from cliffaudit.gate.readers.settings import describe_setting


@dataclass(frozen=True)
class Origin:
    """Where a proposed value came from."""

    value: float
    key: str  # the config key or flag, "--lambda", or "settings.clip" of the report
    written: str | None
    location: str  # FILE:LINE, or "command line"
    file: Path | None = None  # for annotations
    line: int | None = None
    meaning: str = ""

    def describe(self) -> str:
        return describe_setting(self.key, self.written, self.location, self.meaning)

    @classmethod
    def from_config(cls, value: ConfigValue, path: Path) -> Origin:
        return cls(value.value, value.key, value.written, value.location, value.file or path, value.line,
                   value.meaning)


@dataclass(frozen=True)
class Proposal:
    lam: Origin
    clip: Origin | None  # None: stated nowhere (it does not move the bound)
    rollouts: Origin | None = None  # None: the budget is unknown
    framework: str | None = None
    config: Path | None = None
    other_clips: tuple[Origin, ...] = ()  # caps the config also states, larger than the one reported
    warnings: tuple[str, ...] = ()
    location: str = "command line"  # the launch: its command line in a script, or the config
    reference: ModelPath | None = None  # what the launch extrapolates away from (checked against the report)
    teacher: ModelPath | None = None  # what the launch distils toward (checked against the report)


def from_command_line(lam: float, clip: float | None, rollouts: int | None) -> Proposal:
    """``--lambda`` alone, with ``--clip`` and ``--rollouts`` when given."""
    return Proposal(Origin(lam, "--lambda", _number(lam), "command line"),
                    None if clip is None else Origin(clip, "--clip", _number(clip), "command line"),
                    None if rollouts is None else Origin(rollouts, "--rollouts", str(rollouts), "command line"))


def from_config(settings: TrainingSettings, lam: float | None, clip: float | None, rollouts: int | None) -> Proposal:
    """lambda, c and the budget from ``settings``, the command line filling in what the
    config does not state."""
    lam_origin = _combine("lambda", settings.lam, lam, "--lambda", settings.path)
    clip_origin = _combine("c", settings.clip, clip, "--clip", settings.path)
    budget = _combine("the budget", settings.rollouts, rollouts, "--rollouts", settings.path)
    judged = settings.clip
    others = tuple(Origin.from_config(v, settings.path) for v in settings.clip_candidates if v is not judged)
    return Proposal(lam_origin, clip_origin, budget, settings.framework, settings.path, others,
                    tuple(settings.warnings), settings.location or str(settings.path), settings.reference,
                    settings.teacher)


def _combine(name: str, stated: ConfigValue | None, given: float | None, flag: str, config: Path) -> Origin | None:
    if stated is not None and given is not None and not math.isclose(stated.value, given, rel_tol=0, abs_tol=1e-12):
        raise GateInputError(f"{flag} {given:g} contradicts the config, which gives {name} = {stated.value:g} "
                             f"from {stated.key} ({stated.location}); {flag} only fills in what a config leaves out")
    if stated is not None:
        return Origin.from_config(stated, config)
    if given is not None:
        return Origin(given, flag, _number(given), "command line", meaning=f"the config states no {name}")
    return None


def _number(value: float) -> str:
    return f"{value:g}"
