"""What the gate reads from a report: the bound, and the refusal of reports it cannot judge."""

from __future__ import annotations

import json

import pytest

from cliffaudit.gate.bound import report_bound
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.report_file import load_report

from .reports import LAMBDA_V, RECOMMENDED, known_report, no_cliff_report, write_report


def test_the_bound_is_the_recommended_lambda():
    bound = report_bound(known_report())
    assert bound.value == RECOMMENDED and bound.lambda_v == LAMBDA_V
    assert bound.binding_class == "value:number"
    assert "safe end of lambda_v = 1.3000's interval" in bound.describe()


def test_no_cliff_gives_no_bound():
    bound = report_bound(no_cliff_report())
    assert bound.value is None and bound.describe() == "no cliff up to lambda_max = 3"


def test_a_schema_1_report_is_refused_with_a_re_audit_message(tmp_path):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"schema_version": 1, "recommended_lambda": 1.08}))
    with pytest.raises(GateInputError, match="schema_version 1 report predicts the clip-band cliff.*re-audit"):
        load_report(path)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"recommended_lambda": None}, "disagree on whether there is a cliff"),
    ({"recommended_lambda": 1.5}, "is not between the grid's start and lambda_v"),
    ({"lambdas": [1.0, 1.0]}, "not ascending"),
])
def test_inconsistent_reports_are_refused(tmp_path, changes, fragment):
    path = write_report(known_report(**changes), tmp_path)
    with pytest.raises(GateInputError, match=fragment):
        load_report(path)


def test_a_consistent_report_loads(tmp_path):
    assert load_report(write_report(known_report(), tmp_path)).recommended_lambda == RECOMMENDED
