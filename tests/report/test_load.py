"""Loading report.json: every number finite and in its range, the invariants an audit
keeps, and files that would crash a naive reader refused in one message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliffaudit.report.load import ReportError, load_report

from ..gate.reports import known_report

REPOSITORY = Path(__file__).resolve().parents[2]


def known_data() -> dict:
    return json.loads(known_report().model_dump_json())


def written(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "report.json"
    path.write_text(text)
    return path


def with_literal(field: str, literal: str) -> str:
    """known_report() as JSON text with ``literal`` at a dotted field: JSON text that Python's
    json reads (1e999 reads as inf, although the literal Infinity is refused)."""
    data = known_data()
    node = data
    *parents, last = field.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[int(last) if last.isdigit() else last] = "@@"
    return json.dumps(data).replace('"@@"', literal)


@pytest.mark.parametrize(("field", "literal", "fragment"), [
    ("classes.0.draws_per_rollout", "-0.5", "classes.0.draws_per_rollout: Input should be greater than or equal to 0"),
    ("reachability.draws_to_reach", "1e308", "draws_to_reach 1e+308 is not the 3 draws every audit uses"),
    ("reachability.draws_to_reach", "1e999", "reachability.draws_to_reach: Input should be a finite number"),
    ("lambdas.200", "1e999", "lambdas.200: Input should be a finite number"),
    ("cliff.lambda_max", "1e999", "cliff.lambda_max: Input should be a finite number"),
    ("classes.1.teacher_positions", "-3", "classes.1.teacher_positions: Input should be greater than or equal to 0"),
    ("run.tokens_probed", "-1", "run.tokens_probed: Input should be greater than or equal to 0"),
    ("teacher_parse_rate", "1.5", "teacher_parse_rate: Input should be less than or equal to 1"),
    ("classes.0.student_valid_mass", "-0.1", "classes.0.student_valid_mass: Input should be greater than or equal to 0"),
    ("parse_rate.analytic.3", "2", "parse_rate.analytic.3: Input should be less than or equal to 1"),
    ("parse_rate.rollouts.0.interval.1", "1.01", "interval.1: Input should be less than or equal to 1"),
    ("parse_rate.rollouts.0.violations.value:number", "-5", "Input should be greater than or equal to 0"),
])
def test_an_impossible_number_is_refused_on_load(tmp_path, field, literal, fragment):
    path = written(tmp_path, with_literal(field, literal))
    with pytest.raises(ReportError, match="^" + str(path)) as raised:
        load_report(path)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_every_number_in_range_still_loads(tmp_path):
    data = known_data()
    data["classes"][0]["share_of_drop"] = -0.2  # a class that gained validity as lambda grew
    path = written(tmp_path, json.dumps(data))
    assert load_report(path).classes[0].share_of_drop == -0.2


def test_a_deeply_nested_report_is_refused_without_a_traceback(tmp_path):
    path = written(tmp_path, '{"schema_version": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ReportError, match="nested too deeply"):
        load_report(path)


def test_the_committed_reports_load():
    paths = [p for p in sorted((REPOSITORY / "reports").rglob("*.json"))
             if p.name in {"report.json", "locked-report.json"}]
    assert len(paths) >= 6
    for path in paths:
        assert load_report(path).lambdas
