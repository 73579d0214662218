"""The habit pair's committed audit is reproduced by auditing the shipped checkpoints again."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliffaudit import audit
from cliffaudit.report.load import load_report

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


def test_rebuilding_the_audit_reproduces_lambda_v_within_its_interval(committed):
    again = audit.run_audit(committed.settings)
    lo, hi = committed.cliff.interval
    assert again.cliff.lambda_v is not None and lo <= again.cliff.lambda_v <= hi
    assert again.binding_class == committed.binding_class
