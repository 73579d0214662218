"""What the gate reads from a report: the bound, and the refusal of reports it cannot judge."""

from __future__ import annotations

import json
import re

import pytest

from cliffaudit.gate.bound import report_bound
from cliffaudit.report.load import ReportError, load_report

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
    with pytest.raises(ReportError, match="schema_version 1 report predicts the clip-band cliff.*re-audit"):
        load_report(path)


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"recommended_lambda": None}, "disagree on whether there is a cliff"),
    ({"recommended_lambda": 1.28}, "is not the safe end of lambda_v's interval"),
    ({"lambdas": [1.0, 1.0]}, "the lambda grid is empty, negative or not ascending"),
    ({"classes": []}, "the report has no classes"),
    ({"binding_class": "no such class"}, "binding_class 'no such class' is not one of the report's classes"),
    ({"teacher_parse_rate": 1.5}, "field teacher_parse_rate: Input should be less than or equal to 1"),
])
def test_inconsistent_reports_are_refused(tmp_path, changes, fragment):
    path = write_report(known_report(**changes), tmp_path)
    with pytest.raises(ReportError, match=re.escape(fragment)):
        load_report(path)


@pytest.mark.parametrize(("written", "fragment"), [
    ('"recommended_lambda": Infinity', "Infinity is not a JSON number"),
    ('"recommended_lambda": NaN', "NaN is not a JSON number"),
    ('"recommended_lambda": "1.25"', "field recommended_lambda: Input should be a valid number"),
    ('"recommended_lambda": -1.25', "field recommended_lambda: Input should be greater than or equal to 0"),
])
def test_impossible_bounds_are_refused(tmp_path, written, fragment):
    text = write_report(known_report(), tmp_path).read_text()
    path = tmp_path / "edited.json"
    path.write_text(re.sub(r'"recommended_lambda": [0-9.]+', written, text))
    with pytest.raises(ReportError, match=re.escape(fragment)):
        load_report(path)


def test_a_consistent_report_loads(tmp_path):
    assert load_report(write_report(known_report(), tmp_path)).recommended_lambda == RECOMMENDED
