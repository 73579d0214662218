"""Training launches as flat sets of keys, whatever file they came in.

Training frameworks are configured three ways: a YAML (Hydra/OmegaConf) or JSON/TOML
file of nested keys, a launch script that passes Hydra overrides or ``--flags`` to the
trainer, or a job manifest whose argument lists carry them (a RayJob's ``entrypoint``,
a Kubernetes job's ``args:``). ``load_documents`` turns each into one
``ConfigDocument`` per launch it may run (a script can run several, one per command
line and per combination of the values its branches and loops give a variable):
occurrences of a key (dotted path, or ``--flag``) with the value as written, the value
it resolves to, and the file and line, so a reader can say where lambda and c came from.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cliffaudit import safe_yaml
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import hydra, shell

# A Hydra/OmegaConf interpolation of another key (`${a.b.c}`) or of the environment.
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)\}$")
_ENV_INTERPOLATION = re.compile(r"^\$\{oc\.env:([A-Za-z_]\w*)(?:,([^}]*))?\}$")
_NULLS = {"null", "none", "~", ""}
_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0"}
# Strings in a manifest that hold a command line (a RayJob's entrypoint, a job's command).
_COMMAND_KEYS = {"entrypoint", "command", "args", "script", "run", "cmd"}
MAX_CHARACTERS = safe_yaml.MAX_CHARACTERS
MAX_DEPTH = 64


@dataclass(frozen=True)
class Occurrence:
    """One place a launch sets a key."""

    key: str
    written: str | None  # as it reads in the file; None for a bare flag (`--use-tis`)
    value: object  # resolved: a YAML/JSON scalar, a string from a script, True for a bare flag
    resolved: bool  # False when it depends on something the gate cannot evaluate
    line: int | None
    via: tuple[tuple[str, str], ...] = ()  # shell variables the value went through, with their values
    file: Path | None = None  # where it is written, when another file than the document's
    doubt: str | None = None  # why it cannot be evaluated


class ConfigDocument:
    """The keys one launch sets. ``kind`` is "script" or "mapping"."""

    def __init__(self, path: Path, text: str, kind: str, occurrences: dict[str, list[Occurrence]],
                 forwards_arguments: bool = False, base_config: str | None = None,
                 opaque: Sequence[shell.Arg] = (), line: int | None = None, file: Path | None = None):
        self.path = path
        self.text = text  # what detection reads: the command line, or the file
        self.kind = kind
        self._occurrences = occurrences
        self.forwards_arguments = forwards_arguments  # a script passing "$@" on to the trainer
        self.base_config = base_config  # a framework's own config the launch composes ("ppo_trainer")
        self.opaque = tuple(opaque)  # arguments that could be any setting
        self.line = line  # the command line's, for a launch from a script
        self.file = file or path

    @property
    def location(self) -> str:
        """Where the launch is: its command line in a script, else the file."""
        return f"{self.file}:{self.line}" if self.line else str(self.path)

    def all_keys(self) -> set[str]:
        return set(self._occurrences)

    def has(self, key: str) -> bool:
        return key in self._occurrences

    def get(self, key: str) -> Occurrence | None:
        """The one value the launch gives ``key``, None if it gives none.

        A key set twice to different values (twice on one command line, a duplicate
        key) is refused: the gate cannot tell which one the launch uses.
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
        file = occurrence.file or self.path
        return f"{file}:{occurrence.line}" if occurrence.line else str(file)

    def mentions(self, pattern: str) -> bool:
        return re.search(pattern, self.text) is not None


# ----------------------------------------------------------------------------- value helpers


def as_float(document: ConfigDocument, occurrence: Occurrence) -> float:
    """The occurrence's value as a number, or a one-line error saying why not."""
    value = resolved_value(document, occurrence)
    if isinstance(value, bool) or value is None:
        raise GateInputError(f"{document.where(occurrence)}: {occurrence.key} is {occurrence.written!r}, not a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise GateInputError(f"{document.where(occurrence)}: {occurrence.key} is {occurrence.written!r}, "
                             f"not a number") from None


def resolved_value(document: ConfigDocument, occurrence: Occurrence) -> object:
    """The occurrence's value, refused with its line and reason when it cannot be known."""
    if not occurrence.resolved:
        reason = occurrence.doubt or "it needs a value the gate cannot see"
        raise GateInputError(f"{document.where(occurrence)}: cannot evaluate {occurrence.key}={occurrence.written} "
                             f"({reason}); set what it needs in the environment the gate runs in, or state it")
    return occurrence.value


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


def load_documents(path: Path, environ: Mapping[str, str], config_dirs: Sequence[Path] = ()) -> list[ConfigDocument]:
    """One document per launch the file may run."""
    text = _read(path)
    composer = hydra.Composer(environ, tuple(Path(d) for d in config_dirs), flatten_yaml)
    if path.name == "overrides.yaml" and path.parent.name == ".hydra":
        return [_hydra_run(path, text, composer)]
    suffix = path.suffix.lower()
    if suffix in {".sh", ".bash", ".zsh"} or (suffix not in {".yaml", ".yml", ".json", ".toml"}
                                              and shell.looks_like_script(text)):
        return [_from_launch(path, launch, composer) for launch in shell.read_script(path, text, environ).launches]
    if suffix in {".json", ".toml"}:
        data = _parse_json(path, text) if suffix == ".json" else _parse_toml(path, text)
        if not isinstance(data, dict):
            raise GateInputError(f"{path}: not a training config (expected keys and values, "
                                 f"found {type(data).__name__})")
        occurrences = _mapping_occurrences(path, data, {}, environ)
        return [ConfigDocument(path, text, "mapping", occurrences)]
    try:
        documents = safe_yaml.compose_all(text)  # .yaml, .yml and anything else that is not a script
    except safe_yaml.YAMLInputError as exc:
        raise GateInputError(f"{path}: {exc}") from None
    return [_from_yaml(path, text, document, composer) for document in documents] or \
        [ConfigDocument(path, text, "mapping", {})]


def _read(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read(MAX_CHARACTERS + 1)
    except FileNotFoundError:
        raise GateInputError(f"{path}: no such training config") from None
    except IsADirectoryError:
        raise GateInputError(f"{path}: is a directory, not a training config") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GateInputError(f"{path}: cannot read the training config: {exc}") from None
    if len(text) > MAX_CHARACTERS:
        raise GateInputError(f"{path}: larger than {MAX_CHARACTERS:,} characters; not a training config")
    return text


def _occurrence(setting: shell.Setting) -> Occurrence:
    if setting.value is None:
        return Occurrence(setting.key, None, True, True, setting.line, file=setting.file)
    value = setting.value
    return Occurrence(setting.key, setting.written, value.text, value.resolved, setting.line, value.via,
                      setting.file, value.doubt)


def settings_layer(settings: Sequence[shell.Setting]) -> dict[str, list[Occurrence]]:
    layer: dict[str, list[Occurrence]] = {}
    for setting in settings:
        layer.setdefault(setting.key, []).append(_occurrence(setting))
    return layer


def _from_launch(path: Path, launch: shell.Launch, composer: hydra.Composer) -> ConfigDocument:
    settings, opaque = shell.settings_of(launch.args[1:])
    top = settings_layer(settings)
    base, base_config = composer.named_config(top, launch.file)
    text = " ".join(a.text for a in launch.args)
    return ConfigDocument(path, text, "script", hydra.layered(base, top), launch.forwards_arguments, base_config,
                          opaque, launch.line, launch.file)


def _hydra_run(path: Path, text: str, composer: hydra.Composer) -> ConfigDocument:
    """A Hydra run's ``.hydra/overrides.yaml`` (the launch's overrides), over its
    ``.hydra/config.yaml`` (the config they composed) when that is beside it."""
    try:
        documents = safe_yaml.compose_all(text)
    except safe_yaml.YAMLInputError as exc:
        raise GateInputError(f"{path}: {exc}") from None
    root = documents[0].root if documents else None
    if root is None or not isinstance(documents[0].data, list) or \
            not all(isinstance(item, str) for item in documents[0].data):
        raise GateInputError(f"{path}: not a Hydra overrides file (expected a list of overrides)")
    words = [(node.value, node.start_mark.line + 1) for node in root.value]
    settings, _ = shell.read_words(words, path)
    top = settings_layer(settings)
    base: dict[str, list[Occurrence]] = {}
    composed = path.parent / "config.yaml"
    if composed.is_file():
        base = composer.load_yaml(composed, ()).occurrences
    return ConfigDocument(path, text, "script", hydra.layered(base, top))


def _from_yaml(path: Path, text: str, document: safe_yaml.Document, composer: hydra.Composer) -> ConfigDocument:
    if not isinstance(document.data, dict):
        raise GateInputError(f"{path}: not a training config (expected keys and values, "
                             f"found {type(document.data).__name__})")
    composed = composer.compose(path, document, ())
    named, named_base = composer.named_config(composed.occurrences, path)
    return ConfigDocument(path, text, "mapping", hydra.layered(named, composed.occurrences),
                          base_config=composed.base_config or named_base, opaque=composed.opaque)


def flatten_yaml(path: Path, document: safe_yaml.Document, environ: Mapping[str, str],
                 composer: hydra.Composer) -> tuple[dict[str, list[Occurrence]], list[shell.Arg]]:
    """A YAML mapping's keys with their lines, and the settings its argument lists and
    command strings carry (a manifest's ``args:``, a RayJob's ``entrypoint``)."""
    lines: dict[str, int] = {}
    embedded: list[shell.Setting] = []
    opaque: list[shell.Arg] = []
    _node_lines(document.root, "", lines, {}, path, embedded, opaque, environ, 0)
    occurrences = _mapping_occurrences(path, document.data, lines, environ)
    for key, found in settings_layer(embedded).items():
        occurrences.setdefault(key, []).extend(found)
    return occurrences, opaque


def _mapping_occurrences(path: Path, data: dict, lines: dict[str, int],
                         environ: Mapping[str, str]) -> dict[str, list[Occurrence]]:
    flat: dict[str, object] = {}
    _flatten(data, "", flat, path, 0)
    occurrences: dict[str, list[Occurrence]] = {}
    for key, value in flat.items():
        resolved_value, resolved = _interpolate(value, flat, environ)
        written = value if isinstance(value, str) else json.dumps(value)
        doubt = None if resolved else f"the interpolation {value} is not resolved"
        occurrences[key] = [Occurrence(key, written, resolved_value, resolved, lines.get(key), file=path,
                                       doubt=doubt)]
    return occurrences


def _flatten(node: dict, prefix: str, out: dict[str, object], path: Path, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise GateInputError(f"{path}: nests deeper than {MAX_DEPTH} levels; not a training config")
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            _flatten(value, f"{dotted}.", out, path, depth + 1)
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
    except RecursionError:
        raise GateInputError(f"{path}: nested too deeply; not a training config") from None


def _parse_toml(path: Path, text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise GateInputError(f"{path}: not TOML ({' '.join(str(exc).split())})") from None
    except RecursionError:
        raise GateInputError(f"{path}: nested too deeply; not a training config") from None


def _node_lines(node, prefix: str, out: dict[str, int], written: dict[str, str], path: Path,
                embedded: list[shell.Setting], opaque: list[shell.Arg], environ: Mapping[str, str],
                depth: int) -> None:
    """The line of every dotted key, and the settings carried by argument lists and command
    strings. A key written twice with different values (a duplicate key, a repeated block, a
    dotted key beside the nested one) is refused: YAML loaders keep the last, and the gate
    will not guess what the launch reads."""
    import yaml

    if isinstance(node, yaml.SequenceNode):
        _scan_list(node, path, embedded, opaque, environ)
        for item in node.value:
            if isinstance(item, (yaml.MappingNode, yaml.SequenceNode)):
                _node_lines(item, prefix, {}, {}, path, embedded, opaque, environ, depth + 1)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    for key_node, value_node in node.value:
        key = f"{prefix}{key_node.value}"
        if isinstance(value_node, yaml.MappingNode):
            _node_lines(value_node, f"{key}.", out, written, path, embedded, opaque, environ, depth + 1)
            continue
        if isinstance(value_node, yaml.SequenceNode):
            _node_lines(value_node, f"{key}.", {}, {}, path, embedded, opaque, environ, depth + 1)
        elif isinstance(value_node, yaml.ScalarNode) and str(key_node.value) in _COMMAND_KEYS \
                and isinstance(value_node.value, str) and value_node.value.strip():
            _scan_command(value_node.value, value_node.start_mark.line + 1, path, embedded, opaque, environ)
        value = value_node.value if isinstance(value_node, yaml.ScalarNode) else \
            " ".join(yaml.serialize(value_node).split())
        line = key_node.start_mark.line + 1
        if key in written and written[key] != value:
            raise GateInputError(f"{path}: {key} is set twice (line {out[key]}: {written[key]}, line {line}: "
                                 f"{value}); the gate cannot tell which one the launch uses")
        out[key], written[key] = line, value


def _scan_list(node, path: Path, embedded: list[shell.Setting], opaque: list[shell.Arg],
               environ: Mapping[str, str]) -> None:
    """A list of strings is a command line's words (a job's ``args:``); an item with spaces
    is a command line of its own (``["bash", "-c", "python3 train.py ..."]``)."""
    import yaml

    words = []
    for item in node.value:
        if not isinstance(item, yaml.ScalarNode) or not isinstance(item.value, str):
            continue
        if re.search(r"\s", item.value.strip()):
            _scan_command(item.value, item.start_mark.line + 1, path, embedded, opaque, environ)
        else:
            words.append((item.value, item.start_mark.line + 1))
    if words:
        settings, hidden = shell.read_words(words, path)
        embedded.extend(settings)
        opaque.extend(hidden)


def _scan_command(text: str, line: int, path: Path, embedded: list[shell.Setting], opaque: list[shell.Arg],
                  environ: Mapping[str, str]) -> None:
    script = shell.read_script(path, "\n" * (line - 1) + text, environ)
    for launch in script.launches:
        settings, hidden = shell.settings_of(launch.args[1:])
        embedded.extend(settings)
        opaque.extend(hidden)


__all__ = ["ConfigDocument", "Occurrence", "as_bool", "as_float", "is_null", "load_documents", "resolved_value"]
