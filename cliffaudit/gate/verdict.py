"""The gate's decision, as pure logic: a report, a proposed lambda, a margin and a
training budget in; pass or fail with the reason out. And the check that a report
still describes the checkpoints in hand.

The gate fails closed. It passes a lambda strictly below the bound minus the
margin, inside the audited grid (outside it the audit looked at nothing: past its end,
nor below its start, where lambda < 1 interpolates toward the reference). At
or past the bound it passes only when a training budget is known and the cliff is
not reachable within it: every class that carries a material share of the drop
would be drawn fewer times than training needs to move it (theory.reachability).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cliffaudit import theory
from cliffaudit.checkpoints import is_gguf
from cliffaudit.gate.bound import Bound, report_bound
from cliffaudit.gate.errors import GateInputError
from cliffaudit.report import AuditReport
from cliffaudit.report.fingerprints import model_fingerprint
from cliffaudit.report.model import resolve_checkpoint
from cliffaudit.report.preconditions import DEFAULT_POLICY, POLICIES, blocks
from cliffaudit.verdicts import FAIL, PASS

EXIT_PASS, EXIT_FAIL = 0, 1


@dataclass(frozen=True)
class Verdict:
    passed: bool
    proposed_lambda: float
    margin: float
    bound: Bound
    grid: tuple[float, float]  # the audited lambdas, first and last
    rollouts: int | None  # the training budget judged against; None when unknown
    reason: str
    warnings: tuple[str, ...]  # preconditions not passed that the policy lets through
    preconditions: str = DEFAULT_POLICY  # what a failed or unclear precondition does (report.preconditions)
    predicted: PredictedRate | None = None  # the fixed point's parse rate at the proposed lambda

    @property
    def exit_code(self) -> int:
        return EXIT_PASS if self.passed else EXIT_FAIL

    @property
    def must_be_below(self) -> float | None:
        """Bound minus margin; None when there is no cliff up to the grid's end."""
        return None if self.bound.value is None else self.bound.value - self.margin


def evaluate(report: AuditReport, proposed_lambda: float, margin: float = 0.0,
             rollouts: int | None = None, preconditions: str = DEFAULT_POLICY) -> Verdict:
    """Judge ``proposed_lambda`` against the report, keeping ``margin`` below the bound;
    ``rollouts`` is the training budget (rollouts per step x steps) when known;
    ``preconditions`` says what a failed or unclear precondition does (``POLICIES``)."""
    _check_inputs(proposed_lambda, margin, rollouts)
    if preconditions not in POLICIES:
        raise GateInputError(f"--preconditions must be one of {', '.join(POLICIES)}, got {preconditions!r}")
    bound = report_bound(report)
    grid = (float(report.lambdas[0]), float(report.lambdas[-1]))
    refused = meaningless(report)
    # A report that says nothing passes nothing, whoever asks (the banner of `cliffaudit report` too).
    passed, reason = (False, refused) if refused else _judge(report, proposed_lambda, bound, grid, margin, rollouts)
    doubted = [p for p in report.preconditions if p.status != PASS]
    blocking = [p for p in doubted if blocks(preconditions, p.status)]
    if passed and blocking:
        passed = False
        reason = (f"{reason}, but precondition {blocking[0].name!r} is {blocking[0].status} ({blocking[0].detail}) and "
                  f"--preconditions {preconditions} lets no {'failed' if blocking[0].status == FAIL else 'unclear'} "
                  f"precondition pass")
    warnings = tuple(f"precondition {p.name!r} {'failed' if p.status == FAIL else 'is unclear'}: {p.detail}"
                     for p in doubted if p not in blocking)
    return Verdict(passed, proposed_lambda, margin, bound, grid, rollouts, reason, warnings, preconditions,
                   predicted_rate(report, proposed_lambda))


@dataclass(frozen=True)
class PredictedRate:
    """The fixed point's predicted strict-parse rate at a lambda (the analytic curve,
    interpolated on the audited grid), its 90% band, and the rate at lambda = 1 (the
    teacher), against which "falls by the drop" is read."""

    lam: float
    rate: float
    band: tuple[float, float]
    at_one: float
    best_below: float  # the best predicted rate at lambdas up to ``lam``: the cliff is a fall below it
    drop: float

    def describe(self) -> str:
        return (f"predicted parse rate at lambda {self.lam:g}: {self.rate:.3f} (90% band {self.band[0]:.3f} to "
                f"{self.band[1]:.3f}); at lambda 1 (the teacher): {self.at_one:.3f}; the cliff is where it falls "
                f"{self.drop:g} (absolute) below its best at smaller lambdas, here below {self.best_below - self.drop:.3f}")


def predicted_rate(report: AuditReport, lam: float) -> PredictedRate | None:
    """None outside the audited grid, where the audit predicts nothing."""
    grid = report.lambdas
    if not grid or not (grid[0] <= lam <= grid[-1]):
        return None
    curve = report.parse_rate

    def at(values: list[float], x: float) -> float:
        right = bisect.bisect_left(grid, x)
        if right == 0 or grid[right] == x:
            return values[right]
        left = right - 1
        weight = (x - grid[left]) / (grid[right] - grid[left])
        return values[left] + weight * (values[right] - values[left])

    one = min(max(1.0, grid[0]), grid[-1])
    best = max([v for g, v in zip(grid, curve.analytic) if g <= lam] + [at(curve.analytic, lam)])
    return PredictedRate(lam, at(curve.analytic, lam), (at(curve.analytic_low, lam), at(curve.analytic_high, lam)),
                         at(curve.analytic, one), best, report.cliff.drop)


def _check_inputs(proposed_lambda: float, margin: float, rollouts: int | None) -> None:
    if not (math.isfinite(proposed_lambda) and proposed_lambda >= 0):
        raise GateInputError(f"lambda must be a finite number >= 0, got {proposed_lambda!r}")
    if not (math.isfinite(margin) and margin >= 0):
        raise GateInputError(f"margin must be a finite number >= 0, got {margin!r}")
    if rollouts is not None and not (int(rollouts) == rollouts and rollouts >= 1):
        raise GateInputError(f"the training budget must be a whole number of rollouts >= 1, got {rollouts!r}")


def unreachable_within(report: AuditReport, rollouts: int) -> bool:
    """No class carrying a material share of the drop is drawn often enough within
    ``rollouts``: the audit's own rule (``theory.reachable_carriers``), on the report's rows."""
    reached = theory.reachable_carriers({row.label: row.share_of_drop for row in report.classes},
                                        {row.label: row.draws_per_rollout for row in report.classes}, rollouts)
    return reached is not None and not reached


def _judge(report: AuditReport, lam: float, bound: Bound, grid: tuple[float, float], margin: float,
           rollouts: int | None) -> tuple[bool, str]:
    start, end = grid
    if lam > end:
        return False, (f"lambda {lam:g} lies beyond the audited grid's end {end:g}, where the audit says nothing; "
                       f"re-audit with --lambda-max above it")
    if lam < start:
        return False, (f"lambda {lam:g} lies below the audited grid's start {start:g}, where the audit says nothing: "
                       f"lambda < 1 interpolates toward the reference, a fixed point the audit did not sample")
    if bound.value is None:
        return True, f"no cliff up to lambda_max = {end:g}, and lambda {lam:g} is within it"
    if lam < bound.value - margin:
        return True, f"lambda {lam:g} is below the bound {bound.value:.4f}{_minus_margin(margin, bound.value)}"
    beyond = (f"lambda {lam:g} is not below the bound {bound.value:.4f}{_minus_margin(margin, bound.value)}: the "
              f"fixed point's parse rate falls {report.cliff.drop:g} below its best at lambda_v = "
              f"{bound.lambda_v:.4f}")
    if rollouts is None:
        return False, f"{beyond}, and no training budget is known to show the cliff out of reach"
    if unreachable_within(report, rollouts):
        return True, (f"{beyond}, but not within {rollouts:,} rollouts: the classes that carry the drop would be "
                      f"drawn fewer than {report.reachability.draws_to_reach:g} times")
    return False, f"{beyond}, reachable within {rollouts:,} rollouts"


def _minus_margin(margin: float, value: float) -> str:
    return f" minus the margin {margin:g} ({value - margin:.4f})" if margin else ""


# ----------------------------------------------------------------------------- reports that say nothing


def meaningless(report: AuditReport) -> str | None:
    """Why the report's measurements cannot carry its prediction (docs/gate.md), or None:
    it audited only the first records (``--limit``, a quick look), it probed no contract
    position, or its teacher parses less than the drop (the fixed point at lambda = 1 is
    the teacher; a parse rate that starts below the drop cannot fall by it, so "no cliff"
    would be vacuous). The last two come from inputs the audit could not use: prompts
    cut at the context, messages without a chat template, a schema the outputs never meet."""
    if report.settings.limit is not None:
        return (f"the report audited only the first {report.settings.limit} probe records (--limit): a quick look, "
                f"not a verdict to gate training on; re-run `cliffaudit audit` without --limit")
    if report.run.tokens_probed == 0 or not any(row.teacher_positions for row in report.classes):
        return "the report probed no contract position, so its prediction says nothing; " \
               "check the probes and re-run `cliffaudit audit`"
    inexact = next((p for p in report.preconditions if p.name == "contract exact" and not p.passed), None)
    if inexact is not None:
        return (f"the token-level contract is approximate where the fall happens ({inexact.detail}), so the "
                f"predicted cliff rests on masses the contract misjudges; docs/contract.md says what each "
                f"approximation means and how to state the schema exactly")
    if report.teacher_parse_rate < report.cliff.drop:
        return (f"the teacher parses {report.teacher_parse_rate:.3f} of its outputs, less than the "
                f"drop {report.cliff.drop:g}: the fixed point's parse rate cannot fall by the drop, so "
                f"the report's prediction says nothing; check the chat template, the prompts' length "
                f"and the schema, then re-run `cliffaudit audit`")
    return None


def check_meaningful(report: AuditReport) -> None:
    """The gate command refuses a meaningless report as input it cannot judge (exit 2)."""
    reason = meaningless(report)
    if reason:
        raise GateInputError(reason)


# ----------------------------------------------------------------------------- fingerprints


def check_fingerprints(report: AuditReport, checkpoints: Mapping[str, Path]) -> None:
    """Refuse a report whose recorded checkpoint files no longer match the ones
    at hand. ``checkpoints`` maps "teacher"/"student" to a directory."""
    for role, path in checkpoints.items():
        if resolve_checkpoint(path) is None and not is_gguf(path):
            raise GateInputError(f"--{role} {path}: not a checkpoint directory or a GGUF file (nor a hub id in the "
                                 f"local cache)")
        recorded: dict[str, str] = getattr(report.fingerprints, role)
        if not recorded:
            audited = getattr(report.settings, role)
            raise GateInputError(f"the report holds no fingerprints of the {role} (it was audited from {audited!r}, "
                                 f"not a local directory), so it cannot be checked against {path}")
        changes = stale_files(role, recorded, model_fingerprint(str(path)))
        if changes:
            audited = getattr(report.settings, role)
            raise GateInputError(f"--{role} {path} is not the {role} the report audited ({audited}): "
                                 f"{', '.join(changes[:5])}{' ...' if len(changes) > 5 else ''} since the report; "
                                 f"audit this pair with `cliffaudit audit` (or re-run it, if the checkpoint was "
                                 f"updated)")


def stale_files(role: str, recorded: Mapping[str, str], current: Mapping[str, str]) -> list[str]:
    """What differs between the recorded and the current sha256 of each file."""
    changed = [f"{role}/{name} changed" for name in sorted(recorded.keys() & current.keys())
               if recorded[name] != current[name]]
    removed = [f"{role}/{name} was removed" for name in sorted(recorded.keys() - current.keys())]
    added = [f"{role}/{name} was added" for name in sorted(current.keys() - recorded.keys())]
    return changed + removed + added
