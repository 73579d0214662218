"""Hydra composition, as far as the gate can follow it without guessing.

A launch can take its keys from a config it names (``--config-name``, searched in
``--config-path``, the launch's ``--config-dir`` and the gate's own ``--config-dir``)
and a config from the files its ``defaults:`` list names. Each is composed when its
YAML is found: later layers override earlier ones, the file itself at ``_self_`` (last
when unlisted, as in Hydra 1.1+), the command line's overrides on top. A framework's
own config (verl's ``ppo_trainer``, ``ppo_megatron_trainer``; SkyRL's
``ppo_base_config``) is not read: the readers model its defaults at a named upstream
version. Anything else the gate cannot find, or a config-group choice it does not
compose, is refused with its line: keys it would inherit could set lambda.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cliffaudit import safe_yaml
from cliffaudit.gate.errors import GateInputError

# A framework's own top-level configs, whose defaults the readers model.
BUILTIN_CONFIGS = {"ppo_trainer": "verl", "ppo_megatron_trainer": "verl", "ppo_base_config": "skyrl"}
# --config-path values that point into verl's own package (relative to verl/trainer/main_ppo.py).
_PACKAGE_PATHS = {"config", "pkg://verl.trainer.config", "verl/trainer/config"}
MAX_INCLUDES = 8


@dataclass
class Composed:
    occurrences: dict = field(default_factory=dict)  # key -> occurrences, every layer applied
    base_config: str | None = None
    opaque: list = field(default_factory=list)


def layered(*layers: dict) -> dict:
    """Later layers override earlier ones, key by key (Hydra's merge for flat keys)."""
    merged: dict = {}
    for layer in layers:
        merged.update(layer)
    return merged


class Composer:
    def __init__(self, environ: Mapping[str, str], config_dirs: tuple[Path, ...], flatten: Callable):
        self.environ = environ
        self.config_dirs = config_dirs
        self.flatten = flatten  # (path, safe_yaml.Document, environ, composer) -> (occurrences, opaque)

    def compose(self, path: Path, document: safe_yaml.Document, stack: tuple[Path, ...]) -> Composed:
        own, opaque = self.flatten(path, document, self.environ, self)
        defaults = document.data.get("defaults") if isinstance(document.data, dict) else None
        if defaults is None:
            return Composed(own, None, opaque)
        lines = _item_lines(document.root, "defaults")
        if not isinstance(defaults, list):
            raise GateInputError(f"{path}:{lines[0] if lines else 1}: defaults is not a list")
        layers, base_config, placed_self = [], None, False
        for item, line in zip(defaults, lines, strict=False):
            if item == "_self_":
                layers.append(own)
                placed_self = True
            elif isinstance(item, str):
                name = item.removesuffix(".yaml")
                found = _find(name, (path.parent, *self.config_dirs))
                if found is not None:
                    included = self.load_yaml(found, (*stack, path))
                    layers.append(included.occurrences)
                    base_config = base_config or included.base_config
                elif name in BUILTIN_CONFIGS:
                    base_config = name
                else:
                    raise GateInputError(f"{path}:{line}: the defaults entry {item!r} names {name}.yaml, which is "
                                         f"neither beside the config nor in a --config-dir; the gate cannot see the "
                                         f"keys it sets")
            elif isinstance(item, dict) and all(str(k).removeprefix("override ").startswith("hydra/") for k in item):
                continue  # Hydra's own settings (logging, launcher): no training keys
            else:
                raise GateInputError(f"{path}:{line}: the defaults entry {item!r} selects a config group, which the "
                                     f"gate does not compose; state the keys it sets in this file")
        if not placed_self:
            layers.append(own)
        return Composed(layered(*layers), base_config, opaque)

    def load_yaml(self, path: Path, stack: tuple[Path, ...]) -> Composed:
        if path.resolve() in {p.resolve() for p in stack} or len(stack) > MAX_INCLUDES:
            raise GateInputError(f"{path}: its defaults include it again, or nest deeper than {MAX_INCLUDES}")
        try:
            documents = safe_yaml.compose_all(safe_yaml.read(path))
        except (OSError, UnicodeDecodeError) as exc:
            raise GateInputError(f"{path}: cannot read: {exc}") from None
        except safe_yaml.YAMLInputError as exc:
            raise GateInputError(f"{path}: {exc}") from None
        if len(documents) != 1 or not isinstance(documents[0].data, dict):
            raise GateInputError(f"{path}: not a Hydra config (expected one mapping of keys)")
        return self.compose(path, documents[0], stack)

    def named_config(self, top: dict, script: Path) -> tuple[dict, str | None]:
        """The config a launch names with ``--config-name``, composed: its keys, and the
        framework config beneath it (if any). Nothing when it names none."""
        name = _single(top, "--config-name")
        if name is None:
            return {}, None
        name_text = str(name.value).removesuffix(".yaml")
        config_path = _single(top, "--config-path")
        directories = []
        if config_path is not None:
            location = Path(str(config_path.value)).expanduser()
            directories.append(location if location.is_absolute() else script.resolve().parent / location)
        directories += [Path(str(o.value)).expanduser() for o in top.get("--config-dir", []) if o.resolved]
        directories += list(self.config_dirs)
        found = _find(name_text, tuple(directories))
        if found is not None:
            composed = self.load_yaml(found, ())
            return composed.occurrences, composed.base_config
        if name_text in BUILTIN_CONFIGS and (config_path is None
                                             or os.path.normpath(str(config_path.value)) in _PACKAGE_PATHS):
            return {}, name_text
        searched = ", ".join(str(d) for d in directories) or "no directory"
        raise GateInputError(f"{_where(name)}: --config-name {name_text}: {name_text}.yaml is not in {searched}; the "
                             f"gate cannot see the keys it sets: give its directory with --config-dir")


def _single(top: dict, key: str):
    found = top.get(key) or []
    if not found:
        return None
    if len({repr(o.value) for o in found}) > 1:
        raise GateInputError(f"{_where(found[0])}: {key} is given different values on one command line")
    occurrence = found[-1]
    if not occurrence.resolved:
        raise GateInputError(f"{_where(occurrence)}: cannot evaluate {key} {occurrence.written} ({occurrence.doubt}); "
                             f"the gate cannot tell which config the launch composes")
    return occurrence


def _where(occurrence) -> str:
    return f"{occurrence.file}:{occurrence.line}" if occurrence.line else str(occurrence.file)


def _find(name: str, directories: tuple[Path, ...]) -> Path | None:
    for directory in directories:
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    return None


def _item_lines(root, key: str) -> list[int]:
    """The line of each item of the list under ``key`` in a mapping node."""
    for key_node, value_node in getattr(root, "value", []):
        if getattr(key_node, "value", None) == key and hasattr(value_node, "value") \
                and isinstance(value_node.value, list):
            return [item.start_mark.line + 1 for item in value_node.value]
    return []


__all__ = ["BUILTIN_CONFIGS", "Composed", "Composer", "layered"]
