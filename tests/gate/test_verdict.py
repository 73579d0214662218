"""The decision itself: strictly below the bound minus the margin, and inside the
audited grid; and the staleness check of the fingerprints."""

from __future__ import annotations

import pytest

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.verdict import check_fingerprints, evaluate, stale_files
from cliffaudit.report import Precondition

from .reports import RECOMMENDED, known_report, no_cliff_report


@pytest.mark.parametrize(("lam", "margin", "passed"), [
    (1.2, 0.0, True),
    (RECOMMENDED, 0.0, False),  # at the bound is not below it
    (1.3, 0.0, False),
    (1.2, 0.05, False),  # 1.2 is not below 1.25 - 0.05
    (1.19, 0.05, True),
    (0.5, 0.0, True),  # interpolation (lambda < 1) never reaches the extrapolation cliff
])
def test_pass_means_strictly_below_the_bound_minus_the_margin(lam, margin, passed):
    verdict = evaluate(known_report(), lam, margin=margin)
    assert verdict.passed is passed
    assert verdict.exit_code == (0 if passed else 1)
    assert verdict.must_be_below == pytest.approx(RECOMMENDED - margin)


def test_a_failing_reason_names_the_bound_and_the_margin():
    verdict = evaluate(known_report(), 1.22, margin=0.05)
    assert "not below the bound 1.2500 minus the margin 0.05 (1.2000)" in verdict.reason


def test_no_cliff_on_the_grid_passes_inside_it_and_fails_beyond():
    report = no_cliff_report()
    inside = evaluate(report, 3.0)
    assert inside.passed and "no class reaches the cliff" in inside.reason
    beyond = evaluate(report, 3.01)
    assert not beyond.passed
    assert "beyond the audited grid's end 3" in beyond.reason


def test_a_bound_beyond_the_grid_does_not_vouch_for_lambdas_past_its_end():
    report = known_report(recommended_lambda=7.5)  # as a closed-form threshold can be
    assert evaluate(report, 2.9).passed
    verdict = evaluate(report, 3.5)
    assert not verdict.passed
    assert "exact threshold was not checked" in verdict.reason


def test_another_clip_judges_against_the_recomputed_bound():
    report = known_report()
    assert not evaluate(report, 1.3).passed  # 1.3 >= 1.25 at c = 2
    at_three = evaluate(report, 1.3, clip=3.0)  # lambda* rises to ~1.46 at c = 3
    assert at_three.passed and at_three.bound.point_estimate
    assert not evaluate(report, 1.3, clip=1.28).passed


def test_failed_preconditions_are_warnings_not_verdicts():
    failed = Precondition(name="parse headroom", passed=False, detail="student 0.90 vs teacher 0.85")
    report = known_report(preconditions=[failed])
    verdict = evaluate(report, 1.2)
    assert verdict.passed
    assert verdict.warnings == ("precondition 'parse headroom' failed: student 0.90 vs teacher 0.85",)


@pytest.mark.parametrize(("lam", "clip", "margin", "fragment"), [
    (float("nan"), None, 0.0, "lambda must be a finite number"),
    (-0.5, None, 0.0, "lambda must be a finite number"),
    (1.2, 1.0, 0.0, "clip must be > 1"),
    (1.2, None, -0.1, "margin must be a finite number >= 0"),
])
def test_unusable_numbers_are_refused(lam, clip, margin, fragment):
    with pytest.raises(GateInputError, match=fragment):
        evaluate(known_report(), lam, clip, margin)


def test_stale_files_names_what_changed_was_removed_or_added():
    recorded = {"config.json": "a", "model.safetensors": "b", "tokenizer.json": "c"}
    current = {"config.json": "a", "model.safetensors": "B", "vocab.txt": "d"}
    assert stale_files("teacher", recorded, current) == [
        "teacher/model.safetensors changed", "teacher/tokenizer.json was removed", "teacher/vocab.txt was added"]


def test_a_report_without_fingerprints_cannot_be_checked(tmp_path):
    report = known_report()
    report = report.model_copy(update={"fingerprints": report.fingerprints.model_copy(update={"teacher": {}})})
    with pytest.raises(GateInputError, match="holds no fingerprints of the teacher"):
        check_fingerprints(report, {"teacher": tmp_path})


def test_a_checkpoint_that_is_not_a_directory_is_refused(tmp_path):
    with pytest.raises(GateInputError, match="not a checkpoint directory"):
        check_fingerprints(known_report(), {"student": tmp_path / "missing"})
