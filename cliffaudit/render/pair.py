"""Which pair a page describes: its name for titles, and whether a sweep tested the same
pair as the report it is shown with. No torch.

A sweep's verdict belongs to the pair (teacher, warm start, reference) it trained; shown
beside the report of another pair it would read as that pair's result ("consistent: no
cliff" above "cliff at 1.375"), so ``cliffaudit report --sweep`` refuses the mix.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from cliffaudit.errors import InputError
from cliffaudit.gate.verdict import stale_files
from cliffaudit.report import AuditReport
from cliffaudit.sweep.model import SweepReport, locked_report

# Path parts that say where a checkpoint is kept, not which model it is.
_GENERIC = re.compile(r"^(checkpoints?|ckpts?|models?|hf|huggingface|hf_model|actor|weights|final|latest|"
                      r"snapshots|[0-9a-f]{40})$", re.IGNORECASE)


def model_name(location: str) -> str:
    """A short name of a checkpoint for titles: its last two telling path parts
    (``Qwen/Qwen3-4B``; ``demo/teacher`` for ``cliffaudit/demo/checkpoints/teacher``;
    ``run-7/global_step_200`` for ``/ckpt/run-7/global_step_200/actor/huggingface``)."""
    parts = [p for p in Path(location).parts if p not in ("/", ".", "..") and not _GENERIC.match(p)]
    return "/".join(parts[-2:]) or str(location)


def pair_name(report: AuditReport) -> str:
    settings = report.settings
    name = f"{model_name(settings.teacher)} → {model_name(settings.student)}"
    if settings.reference:
        name += f" (reference {model_name(settings.reference)})"
    return name


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(os.path.expanduser(a)) == os.path.normpath(os.path.expanduser(b))


def sweep_pair_difference(report: AuditReport, sweep: SweepReport, sweep_dir: Path) -> str | None:
    """What makes ``sweep`` a test of another pair than ``report``'s, in words; None when it
    tested the same teacher, warm start and reference, at the same drop. Models compare by
    the fingerprints both audits recorded (the report the sweep locked is read from beside
    it, else from where the lock says), by path where either lacks them."""
    try:
        locked = locked_report(sweep.prediction, sweep_dir)
    except InputError:
        locked = None
    ours, theirs = report.settings, sweep.settings
    roles = (("teacher", ours.teacher, theirs.teacher, "teacher", "teacher"),
             ("warm start", ours.student, theirs.student, "student", "student"),
             ("reference", ours.reference or ours.student, theirs.reference or theirs.student,
              "reference" if ours.reference else "student",
              "reference" if locked is not None and locked.settings.reference else "student"))
    differences = []
    for role, our_path, their_path, our_field, their_field in roles:
        our_files = getattr(report.fingerprints, our_field) or {}
        their_files = (getattr(locked.fingerprints, their_field) or {}) if locked is not None else {}
        if our_files and their_files:
            changes = stale_files(role, their_files, our_files)
            if changes:
                differences.append(f"{role}: the sweep trained {their_path}, the report audited {our_path} "
                                   f"({', '.join(changes[:2])}{' ...' if len(changes) > 2 else ''})")
        elif not _same_path(our_path, their_path):
            differences.append(f"{role}: the sweep trained {their_path}, the report audited {our_path}")
    if abs(sweep.prediction.drop - report.cliff.drop) > 1e-12:
        differences.append(f"drop: the sweep's prediction falls by {sweep.prediction.drop:g}, the report's by "
                           f"{report.cliff.drop:g}")
    return "; ".join(differences) or None


def locked_prediction_differs(report: AuditReport, sweep: SweepReport) -> bool:
    """The sweep tested a prediction other than this report's (an earlier audit of the pair)."""
    locked = sweep.prediction
    if (locked.lambda_v is None) != (report.cliff.lambda_v is None) or locked.lambda_max != report.cliff.lambda_max:
        return True
    if locked.lambda_v is None:
        return False
    return any((a is None) != (b is None) or (a is not None and abs(a - b) > SAME_PREDICTION)
               for a, b in zip(locked.interval, report.cliff.interval))


# A rerun of the same audit on another machine moves lambda_v in the 8th digit (float
# kernels, thread counts); the page prints 3 decimals. Closer than this, it is the prediction
# the sweep tested.
SAME_PREDICTION = 1e-4
