"""A report's preconditions, three-valued: pass, unclear (the data cannot tell) or fail.
No torch here.

The audit measures each (``cliffaudit.audit``), the gate decides what an unclear or a
failed one does to a launch (``--preconditions``), and the page says in one sentence
what each status means. Reports written before the status existed stored ``passed``
alone; ``refine_stored`` reads their statuses from the numbers they kept, so an old
report's calibration gap that its samples cannot tell from the limit reads "unclear",
not "pass".
"""

from __future__ import annotations

from collections.abc import Iterable

from cliffaudit.verdicts import FAIL, PASS, UNCLEAR

CALIBRATED = "calibrated"
SINGLE_BINDING_CLASS = "single binding class"
AGREE = "analytic curve and rollouts agree"
CONTRACT_EXACT = "contract exact"

CALIBRATION_GAP = 0.10  # |predicted - observed| sequence validity, per model


def calibration_status(gap_intervals: Iterable[tuple[float, float]], limit: float = CALIBRATION_GAP) -> str:
    """fail when some model's 90% interval of (predicted - observed) validity lies wholly
    beyond +-limit, pass when every model's lies wholly within it, else unclear: the
    samples cannot tell the gap from the limit (256 samples leave it about 0.15 wide)."""
    intervals = list(gap_intervals)
    if any(lo > limit or hi < -limit for lo, hi in intervals):
        return FAIL
    if all(-limit <= lo and hi <= limit for lo, hi in intervals):
        return PASS
    return UNCLEAR


def agreement_status(agree: bool, sampled_lambdas: int) -> str:
    """Unclear when the fixed point was not sampled past lambda = 1 (nothing checked the
    analytic curve), else pass when the samples agree with it."""
    if sampled_lambdas <= 1:
        return UNCLEAR
    return PASS if agree else FAIL


# What each precondition checks, and what its status means, one sentence each (the page
# shows them; docs/audit.md section 8 has the measurement).
MEANING = {
    CALIBRATED: {
        "checks": "The models' per-position masses, which the predicted curve is built from, predict how often "
                  "their own samples parse.",
        PASS: "For both models the predicted and observed parse rates agree within the limit, beyond sampling "
              "doubt.",
        UNCLEAR: "A model's gap between predicted and observed parse rate may exceed the limit or not: its 90% "
                 "interval crosses it, so the curve may be off by that much; more probe records narrow it.",
        FAIL: "A model's masses miss its observed parse rate by more than the limit beyond doubt, so the predicted "
              "curve may be off by as much.",
    },
    SINGLE_BINDING_CLASS: {
        "checks": "One class of output positions carries most of the fall, so the cliff has one cause to watch.",
        PASS: "One class carries at least half of the fall at lambda_v (or there is no cliff, and nothing binds).",
        UNCLEAR: "The report cannot tell which class carries the fall.",
        FAIL: "The fall is spread over several classes; the class named is only the largest share.",
    },
    AGREE: {
        "checks": "Outputs sampled from the fixed point itself land on the side of the drop line the analytic "
                  "curve predicts.",
        PASS: "Every sampled lambda that is clearly on one side agrees with the curve.",
        UNCLEAR: "The fixed point was not sampled past lambda = 1 (--fixed-point-lambdas 0), so nothing checked the "
                 "analytic curve.",
        FAIL: "A sample contradicts the curve; the report takes the earlier of the two cliffs.",
    },
    CONTRACT_EXACT: {
        "checks": "The token-level contract holds the schema exactly where the fall happens.",
        PASS: "No approximation of the contract touches a class carrying 10% of the fall.",
        UNCLEAR: "The report cannot tell whether the contract is exact where the fall happens.",
        FAIL: "The contract approximates the schema where the fall happens, so the masses there may be wrong; the "
              "gate refuses this report.",
    },
}


def meaning(name: str, status: str) -> str:
    """One sentence: what ``status`` of the precondition ``name`` means."""
    known = MEANING.get(name)
    if known is None:
        return {PASS: "It holds.", UNCLEAR: "The data cannot tell whether it holds.", FAIL: "It does not hold."}[status]
    return known[status]


# What the gate does with a precondition that is not "pass" (``cliffaudit gate --preconditions``).
# A failed "contract exact" is refused whatever the policy (exit 2): the cliff rests on masses
# the contract misjudges.
POLICIES = {
    "warn": "failed and unclear preconditions are warnings; the verdict judges the bound",
    "no-fail": "a failed precondition fails the launch; unclear ones are warnings",
    "all-pass": "a failed or unclear precondition fails the launch",
}
DEFAULT_POLICY = "warn"


def blocks(policy: str, status: str) -> bool:
    """Whether a precondition of this status fails a launch under ``policy``."""
    if policy not in POLICIES:
        raise ValueError(f"precondition policy must be one of {sorted(POLICIES)}, got {policy!r}")
    return (status == FAIL and policy != "warn") or (status == UNCLEAR and policy == "all-pass")


def refine_stored(report, stored: list) -> object:
    """``report`` with the statuses of preconditions its file stored without one (``stored``
    is the file's ``preconditions`` list) read from the numbers it kept."""
    if not isinstance(stored, list) or len(stored) != len(report.preconditions):
        return report
    refined = []
    for precondition, raw in zip(report.preconditions, stored):
        if isinstance(raw, dict) and "status" not in raw and precondition.passed:
            status = _status_from_numbers(report, precondition.name)
            if status is not None and status != FAIL:  # passed: the stored verdict was not a failure
                precondition = precondition.model_copy(update={"status": status})
        refined.append(precondition)
    return report.model_copy(update={"preconditions": refined})


def _status_from_numbers(report, name: str) -> str | None:
    if name == CALIBRATED:
        intervals = [c.gap_interval for c in report.calibration.values()]
        if intervals and all(i is not None and len(i) == 2 for i in intervals):
            return calibration_status(intervals)
    if name == AGREE:
        return agreement_status(report.cliff.agree, len(report.parse_rate.rollouts))
    return None
