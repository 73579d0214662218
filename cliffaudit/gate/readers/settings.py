"""What a reader finds in a training config: lambda, the clip c and the training
budget in rollouts, each with the key that gave it, and the rules that turn a
config value into c."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers.document import ConfigDocument, Occurrence, as_float


@dataclass(frozen=True)
class ConfigValue:
    """lambda or c as a config states it."""

    value: float
    key: str  # the key or flag that gave it
    written: str | None  # the value as written there; None when the key alone says it (a trainer)
    location: str  # FILE:LINE (FILE when the format has no lines)
    line: int | None
    meaning: str = ""  # how the written value maps to lambda or c, when it is not one-to-one

    def describe(self) -> str:
        return describe_setting(self.key, self.written, self.location, self.meaning)


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
    """lambda and c of one training launch, as far as its config states them."""

    framework: str
    path: Path
    lam: ConfigValue | None
    clip_candidates: list[ConfigValue]
    warnings: list[str] = field(default_factory=list)
    # Why the config has no lambda or no c, for the error when the command line
    # does not supply one either (e.g. TRL, whose configs carry neither).
    no_lambda_reason: str = ""
    no_clip_reason: str = ""
    rollouts: ConfigValue | None = None  # rollouts per step x steps, when every factor is stated

    @property
    def clip(self) -> ConfigValue | None:
        """The tightest cap the config states. When it states several (a truncated-IS
        cap and a PPO clip), the smallest c gives the lowest cliff: failing closed,
        the gate judges against that one and lists the others."""
        return min(self.clip_candidates, key=lambda v: v.value) if self.clip_candidates else None


def config_value(document: ConfigDocument, occurrence: Occurrence, value: float, meaning: str = "") -> ConfigValue:
    return ConfigValue(value, occurrence.key, str(occurrence.written), document.where(occurrence),
                       occurrence.line, _via(occurrence, meaning))


def _via(occurrence: Occurrence, meaning: str) -> str:
    if not occurrence.via:
        return meaning
    through = "through $" + ", $".join(occurrence.via) + f" = {occurrence.value}"
    return f"{through}; {meaning}" if meaning else through


def lambda_value(document: ConfigDocument, key: str, meaning: str = "") -> ConfigValue | None:
    occurrence = document.get(key)
    if occurrence is None:
        return None
    return config_value(document, occurrence, as_float(document, occurrence), meaning)


def cap_value(document: ConfigDocument, key: str, meaning: str = "truncated-IS cap: c as written") -> ConfigValue | None:
    """A truncated importance-sampling cap, which is c itself. A cap <= 0 is how
    several frameworks write "off" (SkyRL's -1.0, slime forks' 0), so it is no cap."""
    occurrence = document.get(key)
    if occurrence is None:
        return None
    cap = as_float(document, occurrence)
    if cap <= 0:
        return None
    return checked_clip(document, config_value(document, occurrence, cap, meaning))


def ppo_clip_value(document: ConfigDocument, key: str) -> ConfigValue | None:
    """A PPO upper clip eps: the ratio is capped at 1 + eps, so c = 1 + eps."""
    occurrence = document.get(key)
    if occurrence is None:
        return None
    eps = as_float(document, occurrence)
    if not (eps > 0 and math.isfinite(eps)):
        raise GateInputError(f"{document.where(occurrence)}: {key}={occurrence.written} is not a PPO clip eps > 0")
    return config_value(document, occurrence, 1.0 + eps, f"PPO upper clip eps: c = 1 + eps = {1.0 + eps:g}")


def checked_clip(document: ConfigDocument, value: ConfigValue) -> ConfigValue:
    if not (value.value > 1.0 and math.isfinite(value.value)):
        raise GateInputError(f"{value.location}: {value.key}={value.written} is not an importance-weight cap c > 1")
    return value


def rollout_budget(document: ConfigDocument, keys: tuple[str, ...]) -> ConfigValue | None:
    """The product of ``keys`` (prompts per step, samples per prompt, steps) as the
    training budget in rollouts; None unless the config states every factor, since
    an assumed default could understate the budget and pass an unsafe launch."""
    found = [document.get(key) for key in keys]
    if any(occurrence is None for occurrence in found):
        return None
    factors = [as_float(document, occurrence) for occurrence in found]
    if not all(math.isfinite(f) and f >= 1 and f == int(f) for f in factors):
        return None
    total = math.prod(int(f) for f in factors)
    first = found[0]
    written = " x ".join(str(o.written) for o in found)
    return ConfigValue(float(total), " x ".join(keys), written, document.where(first), first.line,
                       "training budget in rollouts: prompts per step x samples per prompt x steps")


def forwarded_arguments_warning(document: ConfigDocument) -> list[str]:
    """A script that passes "$@" on lets the launch override anything the gate read."""
    if document.forwards_arguments:
        return [(f"{document.path} passes its own arguments (\"$@\") to the trainer: overrides given at launch "
                 f"are not seen by the gate")]
    return []


def defaults_warning(document: ConfigDocument) -> list[str]:
    if document.composes_defaults:
        return [(f"{document.path} composes Hydra defaults: keys it inherits from them are not read; "
                 f"lambda and c must be set in this file")]
    return []
