"""The habit pair's committed audit is reproduced by auditing the shipped checkpoints again."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliffaudit import audit
from cliffaudit.report.load import load_report

from ..reproduce import assert_reproduces

COMMITTED = Path(__file__).resolve().parents[2] / "reports" / "habit" / "report.json"


@pytest.fixture(scope="module")
def committed():
    return load_report(COMMITTED)


def test_the_committed_audit_has_a_reachable_cliff_at_the_habits_decision(committed):
    cliff = committed.cliff
    assert cliff.lambda_v is not None and 1.0 < cliff.lambda_v < 2.5
    assert committed.binding_class == "root open"  # the first token: '{' or the fence
    assert committed.reachability.reachable is True and committed.reachability.budget_rollouts
    assert committed.recommended_lambda == cliff.interval[0]


@pytest.mark.slow
def test_rebuilding_the_audit_reproduces_lambda_v_within_its_interval(committed, monkeypatch):
    """The analytic curve, lambda_v and the binding class come from the teacher's and the
    warm start's samples; the fixed point's own samples only check them, and are left
    out here (they took 24 of the 38 s): the audit is rerun with the committed settings,
    rollouts off."""
    monkeypatch.chdir(COMMITTED.parents[2])  # the report's settings name paths from the repository root
    again = audit.run_audit(committed.settings.model_copy(update={"fixed_point_lambdas": 0}))
    lo, hi = committed.cliff.interval
    assert again.cliff.analytic_lambda_v is not None and lo <= again.cliff.analytic_lambda_v <= hi
    # What the rollouts do not touch reproduces: the analytic curve and its band, the
    # analytic cliff, the classes, the binding class and reachability, the calibration.
    def analytic_part(report):
        data = report.model_dump(mode="json", include={"parse_rate", "cliff", "classes", "binding_class",
                                                       "binding_share", "reachability", "calibration", "lambdas"})
        data["parse_rate"].pop("rollouts")
        data["cliff"] = {k: v for k, v in data["cliff"].items() if k.startswith("analytic") or k in ("drop", "lambda_max")}
        return data

    assert_reproduces(analytic_part(again), analytic_part(committed))
