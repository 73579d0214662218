"""The decision itself: strictly below the bound minus the margin and inside the
audited grid, or past it only where the budget cannot reach the cliff; and the
staleness check of the fingerprints."""

from __future__ import annotations

import pytest

from cliffaudit import theory
from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.verdict import check_fingerprints, check_meaningful, evaluate, stale_files, unreachable_within
from cliffaudit.report import AuditReport, Precondition

from .reports import BINDING_DRAWS, RECOMMENDED, known_report, no_cliff_report


@pytest.mark.parametrize(("lam", "margin", "passed"), [
    (1.2, 0.0, True),
    (RECOMMENDED, 0.0, False),  # at the bound is not below it
    (1.3, 0.0, False),
    (1.2, 0.05, False),  # 1.2 is not below 1.25 - 0.05
    (1.19, 0.05, True),
    (1.0, 0.0, True),  # the grid's start: the teacher itself
])
def test_pass_means_strictly_below_the_bound_minus_the_margin(lam, margin, passed):
    verdict = evaluate(known_report(), lam, margin=margin)
    assert verdict.passed is passed
    assert verdict.exit_code == (0 if passed else 1)
    assert verdict.must_be_below == pytest.approx(RECOMMENDED - margin)


def test_a_failing_reason_names_the_bound_the_margin_and_the_missing_budget():
    verdict = evaluate(known_report(), 1.22, margin=0.05)
    assert "not below the bound 1.2500 minus the margin 0.05 (1.2000)" in verdict.reason
    assert "no training budget is known" in verdict.reason


def test_no_cliff_passes_inside_the_grid_and_fails_beyond():
    report = no_cliff_report()
    inside = evaluate(report, 3.0)
    assert inside.passed and "no cliff up to lambda_max = 3" in inside.reason
    beyond = evaluate(report, 3.01)
    assert not beyond.passed
    assert "beyond the audited grid's end 3" in beyond.reason


@pytest.mark.parametrize("lam", [0.0, 0.5, 1e-320, 0.999])
def test_a_lambda_below_the_audited_grid_fails_like_one_past_its_end(lam):
    """Below the grid's start the fixed point interpolates toward the reference, which the
    audit never sampled: FAIL (exit 1), as past the grid's end, with or without a cliff."""
    for report in (known_report(), no_cliff_report()):
        verdict = evaluate(report, lam, rollouts=1)
        assert not verdict.passed and verdict.exit_code == 1
        assert f"lambda {lam:g} lies below the audited grid's start 1, where the audit says nothing" in verdict.reason


def test_past_the_bound_a_budget_that_cannot_reach_the_cliff_passes():
    report = known_report()
    # The classes carrying the fall are drawn 0.5 and 0.02 times a rollout: 'key' (10% of the
    # fall, a material share) needs DRAWS_TO_REACH / 0.02 rollouts.
    small = int(theory.DRAWS_TO_REACH / BINDING_DRAWS) - 1
    assert unreachable_within(report, small)
    verdict = evaluate(report, 1.5, rollouts=small)
    assert verdict.passed and f"not within {small:,} rollouts" in verdict.reason
    large = int(theory.DRAWS_TO_REACH / BINDING_DRAWS) + 1
    assert not unreachable_within(report, large)
    assert not evaluate(report, 1.5, rollouts=large).passed
    assert not evaluate(report, 3.5, rollouts=small).passed  # past the grid: nothing is known


def test_without_shares_a_budget_never_makes_a_cliff_unreachable():
    report = known_report()
    rows = [r.model_copy(update={"share_of_drop": None}) for r in report.classes]
    assert not unreachable_within(report.model_copy(update={"classes": rows}), 1)


def test_failed_preconditions_are_warnings_not_verdicts():
    failed = Precondition(name="calibrated", passed=False, detail="student 0.90 vs 0.70")
    verdict = evaluate(known_report(preconditions=[failed]), 1.2)
    assert verdict.passed
    assert verdict.warnings == ("precondition 'calibrated' failed: student 0.90 vs 0.70",)


def _with(status: str) -> AuditReport:
    return known_report(preconditions=[Precondition(name="calibrated", passed=status != "fail", status=status,
                                                    detail="student gap -0.126, 90% interval -0.194 to -0.059")])


@pytest.mark.parametrize(("status", "policy", "passes"), [
    ("pass", "all-pass", True),
    ("unclear", "warn", True), ("unclear", "no-fail", True), ("unclear", "all-pass", False),
    ("fail", "warn", True), ("fail", "no-fail", False), ("fail", "all-pass", False),
])
def test_the_precondition_policy_decides_what_unclear_and_failed_do(status, policy, passes):
    verdict = evaluate(_with(status), 1.2, preconditions=policy)
    assert verdict.passed is passes
    if not passes:
        assert f"precondition 'calibrated' is {status}" in verdict.reason and f"--preconditions {policy}" in verdict.reason
        assert verdict.warnings == ()
    elif status != "pass":
        word = "failed" if status == "fail" else "is unclear"
        assert verdict.warnings == (f"precondition 'calibrated' {word}: student gap -0.126, 90% interval -0.194 to "
                                    f"-0.059",)
    # a lambda past the bound fails for its own reason, whatever the preconditions
    assert evaluate(_with(status), 1.3, preconditions=policy).reason.startswith("lambda 1.3 is not below the bound")


def test_the_verdict_states_the_predicted_parse_rate_at_the_lambda():
    report = known_report()
    verdict = evaluate(report, 1.205)
    expected = theory.bernoulli_valid_mass(0.95, 0.999, 1.205)  # known_report's curve, between grid points
    assert verdict.predicted.rate == pytest.approx(expected, abs=1e-4)
    assert verdict.predicted.at_one == pytest.approx(0.95, abs=1e-9)
    assert verdict.predicted.band[0] <= verdict.predicted.rate <= verdict.predicted.band[1]
    assert "at lambda 1 (the teacher): 0.950" in verdict.predicted.describe()
    assert "falls 0.1 (absolute) below its best at smaller lambdas, here below 0.850" in verdict.predicted.describe()
    assert evaluate(report, 3.5).predicted is None  # past the grid the audit predicts nothing


@pytest.mark.parametrize(("lam", "margin", "rollouts", "fragment"), [
    (float("nan"), 0.0, None, "lambda must be a finite number"),
    (-0.5, 0.0, None, "lambda must be a finite number"),
    (1.2, -0.1, None, "margin must be a finite number >= 0"),
    (1.2, 0.0, 0, "whole number of rollouts >= 1"),
])
def test_unusable_numbers_are_refused(lam, margin, rollouts, fragment):
    with pytest.raises(GateInputError, match=fragment):
        evaluate(known_report(), lam, margin, rollouts)


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


def test_a_hub_id_is_fingerprinted_from_its_cached_snapshot_with_the_commit(tmp_path, monkeypatch):
    """A hub id in the local cache: its snapshot's files and the resolved commit are
    recorded, so a new commit in the cache is stale."""
    import huggingface_hub

    from cliffaudit.report.model import HUB_COMMIT, fingerprint_checkpoint

    snapshots = tmp_path / "models--org--model" / "snapshots"
    for commit in ("a" * 40, "b" * 40):
        (snapshots / commit).mkdir(parents=True)
        (snapshots / commit / "config.json").write_text("{}")
    current = {"commit": "a" * 40}
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo_id, local_files_only: str(snapshots / current["commit"]))
    recorded = fingerprint_checkpoint("org/model")
    assert recorded[HUB_COMMIT] == "a" * 40 and "config.json" in recorded
    current["commit"] = "b" * 40
    assert stale_files("teacher", recorded, fingerprint_checkpoint("org/model")) == \
        [f"teacher/{HUB_COMMIT} changed"]


@pytest.mark.parametrize("changes", [{"teacher_parse_rate": 0.05},
                                     {"run": known_report().run.model_copy(update={"tokens_probed": 0})},
                                     {"settings": known_report().settings.model_copy(update={"limit": 8})}])
def test_a_report_that_says_nothing_passes_no_lambda(changes):
    """evaluate() itself fails closed on what check_meaningful refuses: every caller (the
    gate, the report's banner, a library user) gets FAIL with the refusal as its reason."""
    for lam in (0.5, 1.0, 1.2):
        verdict = evaluate(known_report(**changes), lam, rollouts=5)
        assert not verdict.passed
        assert "says nothing" in verdict.reason or "not a verdict to gate training on" in verdict.reason


def test_a_report_whose_contract_is_approximate_where_the_fall_happens_is_refused():
    """The "contract exact" precondition failed: the gate cannot judge the cliff (exit 2 in
    the command, FAIL with the reason for every caller of evaluate)."""
    failed = Precondition(name="contract exact", passed=False,
                          detail="'value:number' carries 90% of the fall and the contract admits too little: ...")
    report = known_report(preconditions=[*known_report().preconditions, failed])
    verdict = evaluate(report, 1.0, rollouts=5)
    assert not verdict.passed and "contract is approximate where the fall happens" in verdict.reason
    with pytest.raises(GateInputError, match="approximate where the fall happens"):
        check_meaningful(report)
    passed = failed.model_copy(update={"passed": True, "status": "pass"})
    assert evaluate(known_report(preconditions=[*known_report().preconditions, passed]), 1.0, rollouts=5).passed
