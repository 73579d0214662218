"""Whether a launch's reference and teacher are the ones its report audited.

G-OPD's fixed point ``pi_T^lambda * pi_ref^(1-lambda)`` depends on the reference: a
report that extrapolated away from one model says nothing about a launch that
extrapolates away from another. The launch's reference is G-OPD's base model where the
fork's lambda acts, else its warm start (the reference where a framework has none); the
audit's is ``settings.reference``, or the student when that is null. They match when
their paths are the same, or when the launch's path is a checkpoint on this machine
whose files hash to the fingerprints the report recorded. Anything else is refused, as
is a second teacher (G-OPD's ``multi_teacher_distill``) the report did not audit.

The cliff is a property of the pair: a report audited for teacher A says nothing about a
launch that distils from teacher B. The launch's teacher (the G-OPD fork's ref model,
verl's ``distillation.teacher_models``, slime's ``--opd-teacher-load``, SkyRL's ref model,
TRL's ``teacher_model_name_or_path``) must be ``settings.teacher`` of the report by the
same rule, and a launch that names no teacher the gate can compare is refused, as one
that names no reference is: the gate never passes on doubt.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from cliffaudit.checkpoints import is_gguf
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import TrainingSettings
from cliffaudit.gate.readers.settings import ModelPath
from cliffaudit.report import AuditReport
from cliffaudit.report.fingerprints import model_fingerprint
from cliffaudit.report.model import HUB_COMMIT, resolve_checkpoint


def check_reference(report: AuditReport, settings: TrainingSettings) -> None:
    launch = settings.reference
    if launch is None:
        raise GateInputError(settings.no_reference)
    audited = report.settings.reference or report.settings.student
    recorded = report.fingerprints.reference if report.settings.reference else report.fingerprints.student
    if not same_model(launch.path, audited, recorded or {}):
        raise GateInputError(f"the audit extrapolated away from {audited}; this launch {launch.role} {launch.path} "
                             f"({launch.describe()}): re-audit with --reference {launch.path}")
    second = settings.second_teacher
    if second is not None and not same_model(second.path, report.settings.teacher, report.fingerprints.teacher):
        raise GateInputError(f"multi_teacher_distill: this launch {second.role} {second.path} ({second.describe()}), "
                             f"which the report did not audit (its teacher is {report.settings.teacher}): audit "
                             f"that teacher and gate the launch against its report")


def check_teacher(report: AuditReport, settings: TrainingSettings) -> None:
    if settings.teacher is None:
        raise GateInputError(f"{settings.no_teacher} (or give --teacher PATH, the checkpoint the launch's teacher is)")
    audited = report.settings.teacher
    for launch in (settings.teacher, *settings.more_teachers):
        if launch.key == COMMAND_LINE_TEACHER:
            continue  # check_fingerprints has compared its files with the report's: no second hashing
        if not same_model(launch.path, audited, report.fingerprints.teacher or {}):
            raise GateInputError(f"the audit's teacher is {audited}; this launch {launch.role} {launch.path} "
                                 f"({launch.describe()}): audit that pair (cliffaudit audit --teacher "
                                 f"{launch.path} ...) and gate the launch against its report")


COMMAND_LINE_TEACHER = "--teacher"


def teacher_from_command_line(path: Path) -> ModelPath:
    """``--teacher PATH`` for a launch that does not name its teacher (slime's SGLang server,
    a teacher behind a URL): the user states which checkpoint serves it, and the gate has
    checked that checkpoint's files against the report's fingerprints before this."""
    return ModelPath(path=str(path), key=COMMAND_LINE_TEACHER, written=str(path), location="command line",
                     role="distils toward", what="its teacher as --teacher states it (the launch names none)")


def same_model(launch: str, audited: str, recorded: Mapping[str, str]) -> bool:
    """The same path, or a local checkpoint whose files match the recorded fingerprints."""
    if _normal(launch) == _normal(audited):
        return True
    if recorded and (resolve_checkpoint(launch) is not None or is_gguf(launch)):
        return _files(model_fingerprint(launch)) == _files(recorded)
    return False


def _normal(path: str) -> str:
    return os.path.normpath(os.path.expanduser(path.strip()))


def _files(fingerprints: Mapping[str, str]) -> dict[str, str]:
    # a hub snapshot also records its commit; the files decide whether two copies are one model
    return {name: digest for name, digest in fingerprints.items() if name != HUB_COMMIT}
