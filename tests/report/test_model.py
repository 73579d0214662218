"""The report model: schema file up to date, round trip, validation of written reports."""

from __future__ import annotations

import json

import jsonschema
import pytest

from cliffaudit.report import REPORT_SCHEMA_PATH, AuditReport, report_json_schema, write_json_atomically


def test_committed_schema_is_up_to_date():
    assert REPORT_SCHEMA_PATH.read_text() == report_json_schema(), \
        "schemas/report.schema.json is stale: run `make schemas`"


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(json.loads(REPORT_SCHEMA_PATH.read_text()))


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text("old")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        write_json_atomically("new", target)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_report_round_trip_and_validates(audit_report):
    text = audit_report.model_dump_json()
    again = AuditReport.model_validate_json(text)
    assert again == audit_report
    jsonschema.validate(json.loads(text), json.loads(REPORT_SCHEMA_PATH.read_text()))


def test_committed_sweep_schema_is_up_to_date():
    from cliffaudit.sweep.model import SWEEP_SCHEMA_PATH, sweep_json_schema

    assert SWEEP_SCHEMA_PATH.read_text() == sweep_json_schema(), "schemas/sweep.schema.json is stale: run `make schemas`"
