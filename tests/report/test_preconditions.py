"""Preconditions are three-valued (pass, unclear, fail), and a report written before the
status existed reads its statuses from the numbers it kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cliffaudit.report import Precondition
from cliffaudit.report.load import load_report
from cliffaudit.report.preconditions import MEANING, agreement_status, blocks, calibration_status, meaning

REPORTS = Path(__file__).resolve().parents[2] / "reports"


@pytest.mark.parametrize(("intervals", "status"), [
    ([(-0.017, 0.014), (-0.043, 0.025)], "pass"),
    ([(-0.017, 0.014), (-0.194, -0.059)], "unclear"),  # the demo's warm start: the limit lies inside its interval
    ([(-0.017, 0.014), (-0.3, -0.12)], "fail"),
    ([(0.11, 0.2)], "fail"),
    ([(-0.1, 0.1)], "pass"),  # the limit itself is within it
])
def test_calibration_is_pass_only_when_every_gap_is_surely_within_the_limit(intervals, status):
    assert calibration_status(intervals, 0.1) == status


def test_agreement_is_unclear_when_nothing_checked_the_curve():
    assert agreement_status(True, 1) == "unclear"
    assert agreement_status(True, 3) == "pass" and agreement_status(False, 3) == "fail"


def test_a_status_must_agree_with_passed():
    assert Precondition(name="x", passed=True, detail="").status == "pass"
    assert Precondition(name="x", passed=False, detail="").status == "fail"
    assert Precondition(name="x", passed=True, status="unclear", detail="").passed
    with pytest.raises(ValueError, match="contradicts"):
        Precondition(name="x", passed=True, status="fail", detail="")


def test_an_old_report_reads_its_calibration_from_its_numbers(tmp_path):
    """The committed demo report stored "passed": true beside a warm-start gap of -0.126 whose
    interval (-0.194 to -0.059) crosses the limit of 0.1: it reads "unclear" now."""
    raw = json.loads((REPORTS / "demo" / "report.json").read_text())
    raw["preconditions"] = [{k: v for k, v in p.items() if k != "status"} | {"passed": p["status"] != "fail"}
                            for p in raw["preconditions"] if p["name"] != "contract exact"]  # as written then
    old = tmp_path / "report.json"
    old.write_text(json.dumps(raw))
    report = load_report(old)
    statuses = {p.name: p.status for p in report.preconditions}
    assert statuses == {"calibrated": "unclear", "single binding class": "pass",
                        "analytic curve and rollouts agree": "pass"}
    # a stored status is kept as it is
    raw["preconditions"][0].update(status="pass")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(raw))
    assert load_report(path).preconditions[0].status == "pass"


def test_each_status_of_each_precondition_is_explained_in_one_sentence():
    for name in MEANING:
        for status in ("pass", "unclear", "fail"):
            text = meaning(name, status)
            assert text.endswith(".") and text.count(". ") == 0, (name, status, text)
    assert meaning("a new check", "unclear") == "The data cannot tell whether it holds."


def test_policies():
    assert not blocks("warn", "fail") and blocks("no-fail", "fail") and not blocks("no-fail", "unclear")
    assert blocks("all-pass", "unclear") and not blocks("all-pass", "pass")
    with pytest.raises(ValueError):
        blocks("lenient", "fail")
