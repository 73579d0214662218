"""What a reader finds in one training launch: lambda, the clip c, the training budget
in rollouts, the reference model and the teacher, each with the key that gave it, and the rules
that turn a config value into each."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers.document import ConfigDocument, Occurrence, as_float, is_null, resolved_value


@dataclass(frozen=True)
class ConfigValue:
    """lambda, c or the budget as a launch states it (or as its framework fixes it)."""

    value: float
    key: str  # the key or flag that gave it
    written: str | None  # the value as written there; None when nothing is written (a default, a trainer)
    location: str  # FILE:LINE (FILE when the format has no lines)
    line: int | None
    meaning: str = ""  # how the written value maps to lambda or c, when it is not one-to-one
    file: Path | None = None  # the file of the line, for annotations

    def describe(self) -> str:
        return describe_setting(self.key, self.written, self.location, self.meaning)


@dataclass(frozen=True)
class ModelPath:
    """A model a launch names: its reference, warm start or a teacher."""

    path: str
    key: str
    written: str | None
    location: str
    role: str  # what the launch does with it: "extrapolates away from", "starts from"
    what: str  # what the model is to the launch: "its G-OPD reference", "its warm start"

    def describe(self) -> str:
        return f"{self.what}: {describe_setting(self.key, self.written, self.location)}"


def describe_setting(key: str, written: str | None, location: str, meaning: str = "") -> str:
    """``key=value (FILE:LINE); meaning``, with a space after a --flag as it is written."""
    if written is None:
        setting = key
    else:
        setting = f"{key} {written}" if key.startswith("--") else f"{key}={written}"
    text = f"{setting} ({location})"
    return f"{text}; {meaning}" if meaning else text


@dataclass
class TrainingSettings:
    """lambda, c, the budget, the reference and the teacher of one training launch."""

    framework: str
    path: Path
    lam: ConfigValue
    clip_candidates: list[ConfigValue]
    warnings: list[str] = field(default_factory=list)
    rollouts: ConfigValue | None = None  # rollouts per step x steps, when every factor is stated
    # What the launch extrapolates away from (G-OPD's base model), or its warm start where
    # the framework has no reference; None with the reason in no_reference.
    reference: ModelPath | None = None
    no_reference: str = ""
    second_teacher: ModelPath | None = None  # G-OPD multi_teacher_distill: extrapolated toward as well
    # The model the launch distils toward (its teacher log-probs); None, with the reason in
    # no_teacher, when the launch does not name one the gate can compare with the audit's.
    teacher: ModelPath | None = None
    no_teacher: str = ""
    more_teachers: tuple[ModelPath, ...] = ()  # verl's native multi-teacher OPD: each teaches a share of the prompts
    location: str = ""  # the launch: its command line, or the file

    @property
    def clip(self) -> ConfigValue | None:
        """The tightest cap the launch applies. When it applies several (a truncated-IS
        cap and a PPO clip), the smallest c is reported and the others listed."""
        return min(self.clip_candidates, key=lambda v: v.value) if self.clip_candidates else None


def config_value(document: ConfigDocument, occurrence: Occurrence, value: float, meaning: str = "") -> ConfigValue:
    return ConfigValue(value, occurrence.key, str(occurrence.written), document.where(occurrence),
                       occurrence.line, _via(occurrence, meaning), occurrence.file or document.path)


def fixed_value(document: ConfigDocument, value: float, key: str, meaning: str,
                occurrence: Occurrence | None = None) -> ConfigValue:
    """A value the framework fixes (lambda = 1 by construction) or defaults, located at the
    key that is written, if any, else at the launch."""
    if occurrence is not None:
        return ConfigValue(value, occurrence.key, occurrence.written, document.where(occurrence), occurrence.line,
                           meaning, occurrence.file or document.path)
    return ConfigValue(value, key, None, document.location, document.line, meaning, document.file)


def _via(occurrence: Occurrence, meaning: str) -> str:
    if not occurrence.via:
        return meaning
    through = ", ".join(f"${name} = {value}" for name, value in occurrence.via)
    return f"through {through}; {meaning}" if meaning else f"through {through}"


def lambda_value(document: ConfigDocument, key: str, meaning: str = "") -> ConfigValue | None:
    occurrence = document.get(key)
    if occurrence is None:
        return None
    return config_value(document, occurrence, as_float(document, occurrence), meaning)


def path_value(document: ConfigDocument, key: str, role: str, what: str) -> ModelPath | None:
    """A model path the launch states under ``key`` (None when absent or null)."""
    occurrence = document.get(key)
    if occurrence is None or is_null(occurrence):
        return None
    value = str(resolved_value(document, occurrence)).strip()
    return ModelPath(value, key, occurrence.written, document.where(occurrence), role, what)


def warm_start(document: ConfigDocument, *keys: str) -> ModelPath | None:
    """The model a launch starts from: the reference where a framework has none."""
    return next((found for key in keys if (found := path_value(document, key, "starts from",
                                                               "its warm start")) is not None), None)


def teacher_path(document: ConfigDocument, *keys: str) -> ModelPath | None:
    """The teacher a launch names under the first of ``keys`` it states."""
    return next((found for key in keys if (found := path_value(document, key, "distils toward",
                                                               "its teacher")) is not None), None)


def cap_value(document: ConfigDocument, key: str, meaning: str = "truncated-IS cap: c as written",
              default: float | None = None, default_source: str = "") -> ConfigValue | None:
    """A truncated importance-sampling cap, which is c itself, from the launch or else its
    framework's ``default``. A cap <= 0 is how several frameworks write "off" (SkyRL's
    -1.0, slime forks' 0), so it is no cap."""
    occurrence = document.get(key)
    if occurrence is None:
        if default is None:
            return None
        return fixed_value(document, default, key, f"not stated: {default_source}'s default {default:g}; {meaning}")
    cap = as_float(document, occurrence)
    if cap <= 0:
        return None
    return checked_clip(document, config_value(document, occurrence, cap, meaning))


def ppo_clip_value(document: ConfigDocument, key: str, why: str = "") -> ConfigValue | None:
    """A PPO upper clip eps: the ratio is capped at 1 + eps, so c = 1 + eps."""
    occurrence = document.get(key)
    if occurrence is None:
        return None
    eps = as_float(document, occurrence)
    if not (eps > 0 and math.isfinite(eps)):
        raise GateInputError(f"{document.where(occurrence)}: {key}={occurrence.written} is not a PPO clip eps > 0")
    meaning = f"PPO upper clip eps: c = 1 + eps = {1.0 + eps:g}"
    return config_value(document, occurrence, 1.0 + eps, f"{meaning} ({why})" if why else meaning)


def checked_clip(document: ConfigDocument, value: ConfigValue) -> ConfigValue:
    if not (value.value > 1.0 and math.isfinite(value.value)):
        raise GateInputError(f"{value.location}: {value.key}={value.written} is not an importance-weight cap c > 1")
    return value


def rollout_budget(document: ConfigDocument, keys: tuple[str, ...]) -> ConfigValue | None:
    """The product of ``keys`` (prompts per step, samples per prompt, steps) as the
    training budget in rollouts; None (unknown) unless the launch states every factor,
    since an assumed default could understate the budget and pass an unsafe launch. A
    factor stated as null (verl's ``total_training_steps: null``: epochs decide) is unknown too."""
    found = [document.get(key) for key in keys]
    if any(occurrence is None or is_null(occurrence) for occurrence in found):
        return None
    factors = [as_float(document, occurrence) for occurrence in found]
    if not all(math.isfinite(f) and f >= 1 and f == int(f) for f in factors):
        return None
    total = math.prod(int(f) for f in factors)
    first = found[0]
    written = " x ".join(str(o.written) for o in found)
    return ConfigValue(float(total), " x ".join(keys), written, document.where(first), first.line,
                       "training budget in rollouts: prompts per step x samples per prompt x steps",
                       first.file or document.path)


def forwarded_arguments_warning(document: ConfigDocument) -> list[str]:
    """A script that passes "$@" on lets the launch override anything the gate read."""
    if document.forwards_arguments:
        return [(f"{document.location} passes the script's own arguments (\"$@\") to the trainer: overrides given "
                 f"at launch are not seen by the gate")]
    return []
