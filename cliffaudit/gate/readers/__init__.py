"""Readers of real training launches: each finds G-OPD's lambda, the clip c, the budget,
the reference and the teacher in one framework's launch, and says which key gave each.

One module per framework (``verl`` (the G-OPD fork and verl's native OPD), ``slime``,
``skyrl``, ``trl``), each with ``NAME``, ``detect(document)`` and ``read(document)``;
``docs/gate.md`` lists their keys. ``read_launches`` reads every launch a file may run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import skyrl, slime, trl, verl
from cliffaudit.gate.readers.document import ConfigDocument, load_documents
from cliffaudit.gate.readers.settings import ConfigValue, ModelPath, TrainingSettings

READERS = {module.NAME: module for module in (verl, slime, skyrl, trl)}
FRAMEWORKS = tuple(READERS)

__all__ = ["FRAMEWORKS", "READERS", "ConfigValue", "ModelPath", "TrainingSettings", "claims", "read_launches"]


def claims(document: ConfigDocument) -> list[str]:
    """The frameworks whose keys a launch uses."""
    return [name for name, module in READERS.items() if module.detect(document)]


def read_launches(path: Path, framework: str = "auto", environ: Mapping[str, str] | None = None,
                  config_dirs: Sequence[Path] = ()) -> list[TrainingSettings]:
    """Every training launch in the file at ``path``: a config is one, a script one per
    trainer command line and per combination of values its variables may take. Commands
    no framework claims (``ray start``, a teacher server) are not launches. Shell
    variables a script does not set come from ``environ`` (the gate's environment)."""
    path = Path(path)
    if framework != "auto" and framework not in READERS:
        raise GateInputError(f"unknown framework {framework!r}; choose one of {', '.join(FRAMEWORKS)}")
    documents = load_documents(path, os.environ if environ is None else environ, config_dirs)
    launches = []
    for document in documents:
        claimed = claims(document)
        if framework == "auto":
            if len(claimed) > 1:
                raise GateInputError(f"{document.location}: looks like a launch for {' and '.join(claimed)}; "
                                     f"pass --framework {'|'.join(FRAMEWORKS)}")
            name = claimed[0] if claimed else None
        elif framework in claimed or (document.kind == "mapping" and not claimed):
            name = framework
        else:
            _refuse_other_launch(document, framework, claimed)
            name = None
        if name is not None:
            _refuse_opaque(document)
            launches.append(READERS[name].read(document))
    if not launches:
        if framework == "auto":
            raise GateInputError(f"{path}: cannot tell which framework this launch is for; "
                                 f"pass --framework {'|'.join(FRAMEWORKS)}")
        raise GateInputError(f"{path}: no command in it is a {framework} launch")
    return launches


def _refuse_opaque(document: ConfigDocument) -> None:
    """A launch argument whose beginning is unknown could be any setting, lambda's too."""
    if document.opaque:
        arg = document.opaque[0]
        raise GateInputError(f"{arg.file}:{arg.line}: the launch passes {arg.written} ({arg.doubt}), which may hold "
                             f"any setting; the gate cannot see what it sets")


def _refuse_other_launch(document: ConfigDocument, forced: str, claimed: list[str]) -> None:
    """A forced framework must not read past a launch of another framework: it would train
    with that framework's lambda, not the one judged."""
    for other in claimed:
        stated = READERS[other].read(document).lam  # a value it cannot evaluate is refused here too
        if stated.written is not None and stated.value != 1.0:
            raise GateInputError(f"{document.location}: states lambda under {other}'s keys ({stated.describe()}); "
                                 f"--framework {forced} would read past it: pass --framework {other}, or auto")
    if claimed:
        raise GateInputError(f"{document.location}: is a {' and '.join(claimed)} launch; --framework {forced} would "
                             f"read past it: pass --framework {claimed[0]}, or auto")
