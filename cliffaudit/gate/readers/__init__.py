"""Readers of real training configs: each finds G-OPD's lambda and the clip c in
one framework's config, and says which key gave each.

One module per framework (``verl``, ``slime``, ``skyrl``, ``trl``), each with
``NAME``, ``detect(document)`` and ``read(document)``; ``docs/gate.md`` lists
their keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import skyrl, slime, trl, verl
from cliffaudit.gate.readers.document import ConfigDocument, load_document
from cliffaudit.gate.readers.settings import ConfigValue, TrainingSettings

READERS = {module.NAME: module for module in (verl, slime, skyrl, trl)}
FRAMEWORKS = tuple(READERS)

__all__ = ["FRAMEWORKS", "READERS", "ConfigValue", "TrainingSettings", "detect_framework", "read_training_config"]


def detect_framework(document: ConfigDocument) -> str:
    """The one framework whose keys the config uses; refused when none or several match."""
    matches = [name for name, module in READERS.items() if module.detect(document)]
    if len(matches) == 1:
        return matches[0]
    choices = "|".join(FRAMEWORKS)
    if not matches:
        raise GateInputError(f"{document.path}: cannot tell which framework this config is for; "
                             f"pass --framework {choices}")
    raise GateInputError(f"{document.path}: looks like a config for {' and '.join(matches)}; "
                         f"pass --framework {choices}")


def read_training_config(path: Path, framework: str = "auto",
                         environ: Mapping[str, str] | None = None) -> TrainingSettings:
    """lambda and c as the config at ``path`` states them. Shell variables a script
    does not set come from ``environ`` (the gate's own environment by default)."""
    document = load_document(Path(path), os.environ if environ is None else environ)
    name = detect_framework(document) if framework == "auto" else framework
    if name not in READERS:
        raise GateInputError(f"unknown framework {name!r}; choose one of {', '.join(FRAMEWORKS)}")
    if framework != "auto":
        _refuse_lambda_elsewhere(document, name)
    return READERS[name].read(document)


def _refuse_lambda_elsewhere(document: ConfigDocument, forced: str) -> None:
    """A forced framework must not read past a lambda the file states under another
    framework's keys: the launch would train with that lambda, not the --lambda given."""
    for other, reader in READERS.items():
        if other == forced or not reader.detect(document):
            continue
        stated = reader.read(document).lam  # a value it cannot evaluate is refused here too
        if stated is not None:
            raise GateInputError(f"{document.path}: states lambda under {other}'s keys ({stated.describe()}); "
                                 f"--framework {forced} would read past it: pass --framework {other}, or auto")
