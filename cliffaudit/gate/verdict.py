"""The gate's decision, as pure logic: a report, a proposed lambda, a clip and a
margin in; pass or fail with the reason out. And the check that a report
still describes the checkpoints in hand.

The gate fails closed. It passes only a lambda strictly below the bound minus
the margin *and* inside the audited grid: beyond the grid's end the exact
fixed point was never looked at, so a lambda there fails even when no class
reaches the cliff on the grid, or the (closed-form) bound lies further out.
The margin keeps lambda away from the cliff; the grid's end is no cliff, so
the margin does not apply to it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cliffaudit.gate.bound import Bound, bound_at_clip
from cliffaudit.gate.errors import GateInputError
from cliffaudit.report import AuditReport, fingerprint_checkpoint

EXIT_PASS, EXIT_FAIL = 0, 1


@dataclass(frozen=True)
class Verdict:
    passed: bool
    proposed_lambda: float
    margin: float
    bound: Bound
    grid: tuple[float, float]  # the audited lambdas, first and last
    reason: str
    warnings: tuple[str, ...]  # failed preconditions: reported, never a reason to pass or fail

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    @property
    def must_be_below(self) -> float | None:
        """Bound minus margin; None when no class reaches the cliff on the grid."""
        return None if self.bound.value is None else self.bound.value - self.margin


def evaluate(report: AuditReport, proposed_lambda: float, clip: float | None = None, margin: float = 0.0) -> Verdict:
    """Judge ``proposed_lambda`` against the report at ``clip`` (the report's own
    clip when None), keeping ``margin`` below the bound."""
    _check_inputs(proposed_lambda, clip, margin)
    bound = bound_at_clip(report, report.settings.clip if clip is None else clip)
    grid = (float(report.lambdas[0]), float(report.lambdas[-1]))
    passed, reason = _judge(proposed_lambda, bound, grid, margin)
    warnings = tuple(f"precondition {p.name!r} failed: {p.detail}" for p in report.preconditions if not p.passed)
    return Verdict(passed, proposed_lambda, margin, bound, grid, reason, warnings)


def _check_inputs(proposed_lambda: float, clip: float | None, margin: float) -> None:
    if not (math.isfinite(proposed_lambda) and proposed_lambda >= 0):
        raise GateInputError(f"lambda must be a finite number >= 0, got {proposed_lambda!r}")
    if clip is not None and not (math.isfinite(clip) and clip > 1.0):
        raise GateInputError(f"clip must be > 1 (a PPO upper clip eps is c = 1 + eps), got {clip!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise GateInputError(f"margin must be a finite number >= 0, got {margin!r}")


def _judge(lam: float, bound: Bound, grid: tuple[float, float], margin: float) -> tuple[bool, str]:
    end = grid[1]
    if bound.value is not None and not lam < bound.value - margin:
        return False, (f"lambda {lam:g} is not below the bound {bound.value:.4f}"
                       f"{_minus_margin(margin, bound.value)}: from there on training risks leaving the clip-safe "
                       f"region, where JSON validity collapses")
    if lam > end:
        beyond = f"beyond the audited grid's end {end:g}"
        if bound.value is None:
            return False, (f"no class reaches the cliff on the audited grid, but lambda {lam:g} lies {beyond}, "
                           f"where the audit says nothing; re-audit with a grid that reaches it")
        return False, (f"lambda {lam:g} is below the bound {bound.value:.4f} but lies {beyond}, where the exact "
                       f"threshold was not checked; re-audit with a grid that reaches it")
    if bound.value is None:
        return True, f"no class reaches the cliff on the audited grid, and lambda {lam:g} is within its end {end:g}"
    return True, f"lambda {lam:g} is below the bound {bound.value:.4f}{_minus_margin(margin, bound.value)}"


def _minus_margin(margin: float, value: float) -> str:
    return f" minus the margin {margin:g} ({value - margin:.4f})" if margin else ""


# ----------------------------------------------------------------------------- fingerprints


def check_fingerprints(report: AuditReport, checkpoints: Mapping[str, Path]) -> None:
    """Refuse a report whose recorded checkpoint files no longer match the ones
    at hand. ``checkpoints`` maps "teacher"/"student" to a directory."""
    for role, path in checkpoints.items():
        path = Path(path)
        if not path.is_dir():
            raise GateInputError(f"--{role} {path}: not a checkpoint directory")
        recorded: dict[str, str] = getattr(report.fingerprints, role)
        if not recorded:
            audited = getattr(report.settings, role)
            raise GateInputError(f"the report holds no fingerprints of the {role} (it was audited from {audited!r}, "
                                 f"not a local directory), so it cannot be checked against {path}")
        changes = stale_files(role, recorded, fingerprint_checkpoint(path))
        if changes:
            raise GateInputError(f"{', '.join(changes)} since the report; re-run `cliffaudit audit`")


def stale_files(role: str, recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """What differs between the recorded and the current sha256 of each file."""
    changed = [f"{role}/{name} changed" for name in sorted(recorded.keys() & current.keys())
               if recorded[name] != current[name]]
    removed = [f"{role}/{name} was removed" for name in sorted(recorded.keys() - current.keys())]
    added = [f"{role}/{name} was added" for name in sorted(current.keys() - recorded.keys())]
    return changed + removed + added
