"""A training config as a flat set of keys, whatever file it came in.

Training frameworks are configured three ways: a YAML (Hydra/OmegaConf) or
JSON/TOML file of nested keys, or a launch script that passes Hydra overrides
or ``--flags`` to the trainer. ``ConfigDocument`` turns each into the same
thing: occurrences of a key (dotted path, or ``--flag``) with the value as
written, the value it resolves to, and the line, so a reader can say exactly
where lambda and c came from.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import shell

# A Hydra/OmegaConf interpolation of another key (`${a.b.c}`) or of the environment.
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\}$")
_ENV_INTERPOLATION = re.compile(r"^\$\{oc\.env:([A-Za-z_]\w*)(?:,([^}]*))?\}$")
_NULLS = {"null", "none", "~", ""}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Occurrence:
    """One place a config sets a key."""

    key: str
    written: str | None  # as it reads in the file; None for a bare flag (`--use-tis`)
    value: object  # resolved: a YAML/JSON scalar, a string from a script, True for a bare flag
    resolved: bool  # False when it depends on something the gate cannot evaluate
    line: int | None
    via: tuple[str, ...] = ()  # shell variables the value went through


class ConfigDocument:
    """The keys a config file sets. ``kind`` is "script" or "mapping"."""

    def __init__(self, path: Path, text: str, kind: str, occurrences: dict[str, list[Occurrence]],
                 forwards_arguments: bool = False, composes_defaults: bool = False):
        self.path = path
        self.text = text
        self.kind = kind
        self._occurrences = occurrences
        self.forwards_arguments = forwards_arguments  # a script passing "$@" on to the trainer
        self.composes_defaults = composes_defaults  # a Hydra file with a `defaults:` list

    def all_keys(self) -> set[str]:
        return set(self._occurrences)

    def has(self, key: str) -> bool:
        return key in self._occurrences

    def get(self, key: str) -> Occurrence | None:
        """The one value the config gives ``key``, None if it gives none.

        A key set twice to different values (two branches of a script, say) is
        refused: the gate cannot tell which one the launch will use.
        """
        found = self._occurrences.get(key)
        if not found:
            return None
        distinct = {repr(o.value) for o in found}
        if len(distinct) > 1:
            places = ", ".join(f"{self.where(o)}: {o.written}" for o in found)
            raise GateInputError(f"{self.path}: {key} is set to different values ({places}); "
                                 f"the gate cannot tell which one the launch uses")
        return found[-1]

    def where(self, occurrence: Occurrence) -> str:
        return f"{self.path}:{occurrence.line}" if occurrence.line else str(self.path)

    def mentions(self, pattern: str) -> bool:
        return re.search(pattern, self.text) is not None


# ----------------------------------------------------------------------------- value helpers


def as_float(document: ConfigDocument, occurrence: Occurrence) -> float:
    """The occurrence's value as a number, or a one-line error saying why not."""
    if not occurrence.resolved:
        via = f" (through ${', $'.join(occurrence.via)})" if occurrence.via else ""
        raise GateInputError(f"{document.where(occurrence)}: cannot evaluate {occurrence.key}={occurrence.written}{via}; "
                             f"set the variable it needs in the environment the gate runs in")
    value = occurrence.value
    if isinstance(value, bool) or value is None:
        raise GateInputError(f"{document.where(occurrence)}: {occurrence.key} is {occurrence.written!r}, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GateInputError(f"{document.where(occurrence)}: {occurrence.key} is {occurrence.written!r}, "
                             f"not a number") from None


def is_null(occurrence: Occurrence) -> bool:
    value = occurrence.value
    return value is None or (isinstance(value, str) and value.strip().lower() in _NULLS)


def as_bool(occurrence: Occurrence) -> bool | None:
    """True/False for the spellings YAML, Hydra and bash use; None if it is neither."""
    value = occurrence.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


# ----------------------------------------------------------------------------- loading


def load_document(path: Path, environ: Mapping[str, str]) -> ConfigDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GateInputError(f"{path}: no such training config") from None
    except IsADirectoryError:
        raise GateInputError(f"{path}: is a directory, not a training config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{path}: cannot read the training config: {exc}") from None
    suffix = path.suffix.lower()
    if suffix in {".sh", ".bash", ".zsh"} or (suffix not in {".yaml", ".yml", ".json", ".toml"}
                                              and shell.looks_like_script(text)):
        return _from_script(path, text, environ)
    if suffix == ".json":
        data = _parse_json(path, text)
        return _from_mapping(path, text, data, {}, environ)
    if suffix == ".toml":
        data = _parse_toml(path, text)
        return _from_mapping(path, text, data, {}, environ)
    data, lines = _parse_yaml(path, text)  # .yaml, .yml and anything else that is not a script
    return _from_mapping(path, text, data, lines, environ)


def _from_script(path: Path, text: str, environ: Mapping[str, str]) -> ConfigDocument:
    script = shell.read_script(text, environ)
    occurrences: dict[str, list[Occurrence]] = {}
    for setting in script.settings:
        if setting.value is None:
            occurrence = Occurrence(setting.key, None, True, True, setting.line)
        else:
            occurrence = Occurrence(setting.key, setting.written, setting.value.text, setting.value.resolved,
                                    setting.line, setting.value.variables)
        occurrences.setdefault(setting.key, []).append(occurrence)
    return ConfigDocument(path, text, "script", occurrences, forwards_arguments=script.forwards_arguments)


def _from_mapping(path: Path, text: str, data: object, lines: dict[str, int],
                  environ: Mapping[str, str]) -> ConfigDocument:
    if not isinstance(data, dict):
        raise GateInputError(f"{path}: not a training config (expected keys and values, found {type(data).__name__})")
    flat: dict[str, object] = {}
    _flatten(data, "", flat, path)
    occurrences: dict[str, list[Occurrence]] = {}
    for key, value in flat.items():
        resolved_value, resolved = _interpolate(value, flat, environ)
        written = value if isinstance(value, str) else json.dumps(value)
        occurrences[key] = [Occurrence(key, written, resolved_value, resolved, lines.get(key))]
    return ConfigDocument(path, text, "mapping", occurrences, composes_defaults="defaults" in data)


def _flatten(node: dict, prefix: str, out: dict[str, object], path: Path) -> None:
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            _flatten(value, f"{dotted}.", out, path)
        elif dotted in out and out[dotted] != value:
            # e.g. a dotted key beside the nested one: which wins depends on the loader
            raise GateInputError(f"{path}: {dotted} is set twice, to {out[dotted]!r} and to {value!r}; "
                                 f"the gate cannot tell which one the launch uses")
        else:
            out[dotted] = value


def _interpolate(value: object, flat: dict[str, object], environ: Mapping[str, str], depth: int = 0):
    """Resolve an OmegaConf ``${other.key}`` or ``${oc.env:NAME,default}`` value."""
    if not isinstance(value, str) or "${" not in value:
        return value, True
    if depth > 10:
        return value, False
    env = _ENV_INTERPOLATION.match(value)
    if env:
        name, default = env.groups()
        found = environ.get(name, default)
        return (found, True) if found is not None else (value, False)
    other = _INTERPOLATION.match(value)
    if other and other.group(1) in flat:
        return _interpolate(flat[other.group(1)], flat, environ, depth + 1)
    return value, False


def _parse_json(path: Path, text: str) -> object:
    def unique(pairs):
        seen: dict = {}
        for key, value in pairs:
            if key in seen and seen[key] != value:
                raise GateInputError(f"{path}: {key} is set twice in one object, to {seen[key]!r} and to {value!r}; "
                                     f"the gate cannot tell which one the launch uses")
            seen[key] = value
        return seen

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise GateInputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _parse_toml(path: Path, text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GateInputError(f"{path}: not TOML ({exc})") from None


def _parse_yaml(path: Path, text: str) -> tuple[object, dict[str, int]]:
    """The YAML data and the line of each dotted key (for annotations in CI)."""
    import yaml  # PyYAML: YAML is how verl, SkyRL and TRL configs are written

    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise GateInputError(f"{path}: not YAML ({detail})") from None
    lines: dict[str, int] = {}
    _node_lines(root, "", lines, {}, path)
    return data, lines


def _node_lines(node, prefix: str, out: dict[str, int], written: dict[str, str], path: Path) -> None:
    """The line of every dotted key. A key written twice with different values (a
    duplicate key, a repeated block, a dotted key beside the nested one) is refused:
    safe_load keeps the last, and the gate will not guess what the launch reads."""
    import yaml

    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        if isinstance(value_node, yaml.MappingNode):
            _node_lines(value_node, f"{key}.", out, written, path)
            continue
        value = value_node.value if isinstance(value_node, yaml.ScalarNode) else \
            " ".join(yaml.serialize(value_node).split())
        line = key_node.start_mark.line + 1
        if key in written and written[key] != value:
            raise GateInputError(f"{path}: {key} is set twice (line {out[key]}: {written[key]}, line {line}: "
                                 f"{value}); the gate cannot tell which one the launch uses")
        out[key], written[key] = line, value
