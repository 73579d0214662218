"""`cliffaudit gate` end to end: exit codes, unusable input, stale reports,
training configs of each framework, and the three output formats."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from cliffaudit.demo import paths
from cliffaudit.gate.readers import skyrl, verl
from cliffaudit.report import Precondition, fingerprint_checkpoint
from cliffaudit.report.load import load_report

from .reports import (
    CONFIGS,
    RECOMMENDED,
    SAMPLE_REFERENCES,
    SAMPLE_TEACHERS,
    TEACHER,
    known_report,
    no_cliff_report,
    with_models,
    write_report,
)
from .test_readers import FORK_ON, SECOND_TEACHER, VERL


def assert_one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cliffaudit: error:")
    assert fragment in err


# ----------------------------------------------------------------------------- verdicts


def test_pass_below_the_bound(gate, known_report_path):
    code, out, err = gate(known_report_path, "--lambda", "1.2")
    assert code == 0 and err == ""
    assert out.startswith("PASS: lambda 1.2 is below the bound 1.2500")
    assert "lambda = 1.2 from --lambda 1.2 (command line)" in out
    assert "c: not stated (it does not move the cliff" in out
    assert "budget: unknown" in out


def test_fail_at_or_above_the_bound(gate, known_report_path):
    code, out, _ = gate(known_report_path, "--lambda", str(RECOMMENDED))
    assert code == 1
    assert out.startswith("FAIL: lambda 1.25 is not below the bound 1.2500")


def test_margin_keeps_lambda_further_below(gate, known_report_path):
    assert gate(known_report_path, "--lambda", "1.22")[0] == 0
    code, out, _ = gate(known_report_path, "--lambda", "1.22", "--margin", "0.05")
    assert code == 1
    assert "minus the margin 0.05 (1.2000)" in out
    assert gate(known_report_path, "--lambda", "1.19", "--margin", "0.05")[0] == 0


def test_no_cliff_passes_inside_the_grid_and_fails_beyond_it(gate, tmp_path):
    path = write_report(no_cliff_report(), tmp_path)
    assert gate(path, "--lambda", "2.5")[0] == 0
    code, out, _ = gate(path, "--lambda", "3.2")
    assert code == 1
    assert "beyond the audited grid's end 3" in out


@pytest.mark.parametrize("lam", ["0", "0.5", "1e-320", "3.5"])
def test_a_lambda_outside_the_audited_grid_fails_with_or_without_a_cliff(gate, tmp_path, lam):
    """What docs/gate.md promises: outside the grid (below its start 1, past its end 3) the
    audit says nothing, so the gate fails the lambda (exit 1) and says which end."""
    for report in (known_report(), no_cliff_report()):
        code, out, _ = gate(write_report(report, tmp_path), "--lambda", lam, "--rollouts", "1")
        assert code == 1
        end = "below the audited grid's start 1" if float(lam) < 1 else "beyond the audited grid's end 3"
        assert out.startswith(f"FAIL: lambda {float(lam):g} lies {end}")


def test_the_clip_is_reported_and_does_not_move_the_bound(gate, known_report_path):
    code, out, _ = gate(known_report_path, "--lambda", "1.2", "--clip", "1.05", "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["bound"] == RECOMMENDED and result["clip"] == 1.05
    assert gate(known_report_path, "--lambda", "1.3", "--clip", "50")[0] == 1


def test_a_budget_that_cannot_reach_the_cliff_passes_past_the_bound(gate, known_report_path):
    code, out, _ = gate(known_report_path, "--lambda", "1.5", "--rollouts", "5")
    assert code == 0 and "not within 5 rollouts" in out and "budget: 5 rollouts from --rollouts 5" in out
    assert gate(known_report_path, "--lambda", "1.5", "--rollouts", "100000")[0] == 1


def test_a_real_audit_of_random_models_is_refused_as_meaningless(gate, audit_report, tmp_path):
    """The tiny random checkpoints never write valid JSON: their audit predicts nothing,
    and the gate says so instead of passing any lambda."""
    assert audit_report.teacher_parse_rate < audit_report.cliff.drop
    path = write_report(audit_report, tmp_path)
    assert_one_line_error(*gate(path, "--lambda", "1.0"), "of its outputs, less than the drop")


def test_the_committed_demo_report_gates_against_the_shipped_checkpoints(gate):
    """What `make demo` shows: exit 0 below the demo's recommended bound, 1 above it,
    and the report still describes the checkpoints the package ships."""
    path = Path(__file__).resolve().parents[2] / "reports" / "demo" / "report.json"
    report = load_report(path)
    assert report.recommended_lambda is None  # the demo has no cliff up to its grid's end
    models = ["--teacher", str(paths.TEACHER_DIR), "--student", str(paths.STUDENT_DIR)]
    end = report.lambdas[-1]
    assert gate(path, "--lambda", "1.5", *models)[0] == 0
    assert gate(path, "--lambda", f"{end}", *models)[0] == 0
    assert gate(path, "--lambda", f"{end + 0.05:.4f}", *models)[0] == 1


def test_an_unclear_precondition_warns_by_default_and_fails_where_asked(gate):
    """The demo report's calibration is unclear: the gate says so, says what it does with it,
    and states the predicted parse rate at the lambda it judges."""
    path = Path(__file__).resolve().parents[2] / "reports" / "demo" / "report.json"
    code, out, _ = gate(path, "--lambda", "1.5")
    assert code == 0 and out.startswith("PASS: ")
    assert "warning: precondition 'calibrated' is unclear: " in out
    assert "(preconditions: failed and unclear preconditions are warnings; the verdict judges the bound; " \
           "--preconditions no-fail or all-pass makes them fail the launch)" in out
    assert "predicted parse rate at lambda 1.5: 0.99" in out and "at lambda 1 (the teacher): 0.983" in out
    code, out, _ = gate(path, "--lambda", "1.5", "--preconditions", "all-pass")
    assert code == 1 and out.startswith("FAIL: no cliff up to lambda_max = 3, and lambda 1.5 is within it, but "
                                        "precondition 'calibrated' is unclear")
    assert gate(path, "--lambda", "1.5", "--preconditions", "no-fail")[0] == 0
    data = json.loads(gate(path, "--lambda", "1.5", "--format", "json")[1])
    assert data["preconditions"]["policy"] == "warn"
    assert data["predicted_parse_rate"]["at_lambda_1"] == pytest.approx(0.983, abs=5e-4)
    assert data["predicted_parse_rate"]["band"][0] <= data["predicted_parse_rate"]["rate"]


# ----------------------------------------------------------------------------- unusable input


def unusable_reports(tmp_path):
    (tmp_path / "not-json.json").write_text("{ this is not json")
    version = json.loads(known_report().model_dump_json())
    version["schema_version"] = 99
    (tmp_path / "version.json").write_text(json.dumps(version))
    (tmp_path / "other.json").write_text(json.dumps({"name": "some other tool", "lambda": 1.2}))
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "partial.json").write_text(json.dumps({"schema_version": 2, "lambdas": [1.0, 2.0]}))
    (tmp_path / "old.json").write_text(json.dumps({"schema_version": 1, "recommended_lambda": 1.08}))
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00report")
    (tmp_path / "grid.json").write_text(known_report(lambdas=[]).model_dump_json())


@pytest.mark.parametrize(("name", "fragment"), [
    ("missing.json", "missing.json: cannot read: No such file or directory"),
    ("not-json.json", "not-json.json: not JSON (line 1: Expecting property name"),
    ("version.json", "report schema_version 99, this cliffaudit reads 2"),
    ("old.json", "schema_version 1 report predicts the clip-band cliff"),
    ("other.json", "not a cliffaudit report (no schema_version)"),
    ("list.json", "not a cliffaudit report"),
    ("partial.json", "partial.json: field tool_version: Field required"),
    ("binary.json", "not a cliffaudit report (not UTF-8 text)"),
    ("grid.json", "the lambda grid is empty, negative or not ascending"),
])
def test_unusable_reports_exit_two_and_write_nothing(gate, tmp_path, name, fragment):
    unusable_reports(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = gate(tmp_path / name, "--lambda", "1.1")
    assert_one_line_error(code, out, err, fragment)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


REPOSITORY = Path(__file__).resolve().parents[2]
DEMO_SWEEP = REPOSITORY / "reports" / "demo" / "sweep"


@pytest.mark.parametrize(("given", "fragment"), [
    (DEMO_SWEEP / "sweep.json", f"a sweep.json (what `cliffaudit sweep` writes), not an audit report: give the "
                                f"report.json it tested ({DEMO_SWEEP / 'locked-report.json'})"),
    (DEMO_SWEEP / "prediction.json", f"a sweep's prediction lock (prediction.json), not an audit report: give the "
                                     f"report.json it locked ({DEMO_SWEEP / 'locked-report.json'})"),
    (REPOSITORY / "reports" / "demo" / "report.html",
     f"an HTML page (what cliffaudit renders), not report.json: give {REPOSITORY / 'reports' / 'demo' / 'report.json'}"),
    (DEMO_SWEEP / "sweep.html", f"not report.json: give {DEMO_SWEEP / 'locked-report.json'}, beside it"),
])
def test_another_cliffaudit_output_is_refused_naming_the_right_file(gate, given, fragment):
    """`gate sweep.json` used to say "re-run the audit": each output says what it is instead."""
    code, out, err = gate(given, "--lambda", "1.1")
    assert_one_line_error(code, out, err, fragment)


def test_the_per_sample_log_is_refused_naming_its_report(gate, tmp_path, known_report_path):
    log = known_report_path.parent / "samples.jsonl"
    log.write_text('{"role": "teacher", "lambda": 1.0, "tokens": [1, 2]}\n{"role": "student", "tokens": [3]}\n')
    code, out, err = gate(log, "--lambda", "1.1")
    assert_one_line_error(code, out, err, f"the audit's per-sample log (samples.jsonl), not report.json: give "
                                          f"{known_report_path}, beside it")


def test_checkpoints_of_another_pair_are_refused_naming_the_model(gate, tiny_checkpoints, tmp_path):
    report_path = write_report(_fingerprinted(known_report(), tiny_checkpoints / "teacher", tiny_checkpoints / "student"),
                               tmp_path)
    code, out, err = gate(report_path, "--lambda", "1.0", "--teacher", tiny_checkpoints / "student")
    assert_one_line_error(code, out, err, f"--teacher {tiny_checkpoints / 'student'} is not the teacher the report "
                                          f"audited")


@pytest.mark.parametrize(("argv", "fragment"), [
    ([], "give the lambda to check"),
    (["--lambda", "1.1", "--framework", "verl"], "--framework needs --train-config"),
    (["--lambda", "1.1", "--margin", "-0.1"], "margin must be a finite number >= 0"),
    (["--lambda", "1.1", "--clip", "0.8"], "--clip must be a finite number > 1"),
    (["--lambda", "1.1", "--clip", "inf"], "--clip must be a finite number > 1"),
    (["--lambda", "x"], "'x' is not a valid float"),
])
def test_unusable_arguments_exit_two(gate, known_report_path, argv, fragment):
    assert_one_line_error(*gate(known_report_path, *argv), fragment)


def test_a_config_that_cannot_extrapolate_is_judged_at_lambda_one_and_says_why(gate, report_for, launch):
    """A verl launch without the fork's G-OPD switches trains at lambda = 1: the gate says so,
    needs no --lambda, and refuses one that contradicts it."""
    config = launch("actor_rollout_ref:\n  model:\n    path: Qwen/Qwen3-1.7B\n  actor:\n    policy_loss:\n"
                    "      lambda_vals: 2.5\n  ref:\n    model:\n      path: /models/teacher\n", "ppo.yaml")
    report = report_for("Qwen/Qwen3-1.7B")
    code, out, _ = gate(report, "--train-config", config)
    assert code == 0 and out.startswith("PASS: lambda 1 is below the bound")
    assert "lambda = 1 by construction: actor_rollout_ref.actor.policy_loss.only_reverse_kl_advantages is off" in out
    assert "lambda_vals=2.5 does not act" in out
    assert gate(report, "--train-config", config, "--lambda", "1")[0] == 0
    assert_one_line_error(*gate(report, "--train-config", config, "--lambda", "1.5"),
                          "--lambda 1.5 contradicts the config, which gives lambda = 1")


def test_a_config_without_clip_is_judged_and_says_so(gate, report_for, launch):
    # One update per batch (mini batch = train batch): verl's PPO clip cannot act, no IS: no c.
    config = launch(f"{VERL} {FORK_ON} actor_rollout_ref.actor.policy_loss.lambda_vals=1.1 data.train_batch_size=64 "
                    f"actor_rollout_ref.actor.ppo_mini_batch_size=64\n")
    report = report_for("Qwen/Qwen3-1.7B")
    code, out, _ = gate(report, "--train-config", config)
    assert code == 0 and "c: not stated" in out
    code, out, _ = gate(report, "--train-config", config, "--clip", "2")
    assert code == 0
    assert "c = 2 from --clip 2 (command line); the config states no c" in out


def test_a_config_that_states_its_budget_is_judged_with_it(gate, report_for):
    # 256 prompts x 4 samples x 200 steps: the cliff is reachable, lambda 1.5 fails.
    code, out, _ = gate(report_for("Qwen/Qwen3-1.7B", SAMPLE_TEACHERS["verl/g_opd_json_qwen3_1.7b.yaml"]), "--train-config",
                          CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml")
    assert code == 1
    assert "budget: 204,800 rollouts from data.train_batch_size x actor_rollout_ref.rollout.n x " \
           "trainer.total_training_steps=256 x 4 x 200" in out
    assert "reachable within 204,800 rollouts" in out


def test_missing_and_undetectable_configs_exit_two(gate, known_report_path, tmp_path):
    assert_one_line_error(*gate(known_report_path, "--train-config", tmp_path / "nope.yaml"), "no such training config")
    other = tmp_path / "other.yaml"
    other.write_text("model:\n  lr: 0.1\n")
    assert_one_line_error(*gate(known_report_path, "--train-config", other), "cannot tell which framework")


def test_the_command_line_may_not_contradict_the_config(gate, report_for):
    config = CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml"
    report = report_for("Qwen/Qwen3-1.7B", SAMPLE_TEACHERS["verl/g_opd_json_qwen3_1.7b.yaml"])
    code, out, err = gate(report, "--train-config", config, "--lambda", "1.1")
    assert_one_line_error(code, out, err, "--lambda 1.1 contradicts the config, which gives lambda = 1.5")


# ----------------------------------------------------------------------------- the reference


def test_a_launch_that_extrapolates_away_from_another_model_is_refused(gate, report_for):
    """The audit's reference is settings.reference, or the student when it is null; the
    fork's is model.base_model_path. Another model is another fixed point."""
    script = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    code, out, err = gate(report_for("/personal/models/Qwen3-4B-Base"), "--train-config", script)
    assert_one_line_error(code, out, err, "the audit extrapolated away from /personal/models/Qwen3-4B-Base; this launch "
                                          "extrapolates away from /personal/models/Qwen3-4B (its G-OPD reference: "
                                          "actor_rollout_ref.model.base_model_path=\"${BASE_MODEL_PATH}\" (")
    assert err.rstrip().endswith("re-audit with --reference /personal/models/Qwen3-4B")
    same = report_for("/personal/models/Qwen3-4B/", SAMPLE_TEACHERS["verl/run_qwen3_4b_json_exopd.sh"])  # the same path
    assert gate(same, "--train-config", script)[0] == 1


def test_the_reference_is_the_audits_reference_before_its_student(gate, tmp_path, launch):
    text = f"{VERL} {FORK_ON.replace('model.base_model_path=Qwen/Qwen3-1.7B', 'model.base_model_path=/m/teacher-sft', 1)}\n"
    config = launch(text)
    report = with_models(known_report(), student="/m/teacher-sft", reference="/m/student", teacher=TEACHER)
    assert_one_line_error(*gate(write_report(report, tmp_path), "--train-config", config),
                          "the audit extrapolated away from /m/student; this launch extrapolates away from "
                          "/m/teacher-sft")
    report = with_models(known_report(), student="/m/student", reference="/m/teacher-sft", teacher=TEACHER)
    assert gate(write_report(report, tmp_path), "--train-config", config)[0] == 0


def test_a_reference_at_another_path_matches_by_its_fingerprints(gate, tmp_path, launch):
    audited, copy, other = tmp_path / "audited", tmp_path / "copy", tmp_path / "other"
    for directory, weights in ((audited, b"w"), (copy, b"w"), (other, b"x")):
        directory.mkdir()
        (directory / "model.safetensors").write_bytes(weights)
    report = known_report()
    report = report.model_copy(update={"settings": report.settings.model_copy(update={"student": str(audited),
                                                                                     "teacher": TEACHER}),
                                       "fingerprints": report.fingerprints.model_copy(
                                           update={"student": fingerprint_checkpoint(audited)})})
    path = write_report(report, tmp_path)
    for model, code in ((copy, 0), (other, 2)):
        config = launch(f"{VERL} {FORK_ON.replace('Qwen/Qwen3-1.7B', str(model))}\n", f"{model.name}.sh")
        assert gate(path, "--train-config", config)[0] == code


def test_multi_teacher_distill_is_refused_unless_the_report_audited_that_teacher(gate, tmp_path, launch):
    text = (f"{VERL} {SECOND_TEACHER}"
            f" actor_rollout_ref.actor.policy_loss.lambda_vals=1.2"
            f" actor_rollout_ref.actor.policy_loss.multi_teacher_distill=True\n")
    config = launch(text)
    report = with_models(known_report(), student="Qwen/Qwen3-1.7B", teacher="/models/teacher")
    assert_one_line_error(*gate(write_report(report, tmp_path), "--train-config", config),
                          "multi_teacher_distill: this launch extrapolates toward /m/code (a second teacher, with "
                          "multi_teacher_distill: actor_rollout_ref.ref.model.base_model_path=/m/code (")
    # The report audited the second teacher, not the first (the ref model): that is refused too.
    report = with_models(known_report(), student="Qwen/Qwen3-1.7B", teacher="/m/code")
    assert_one_line_error(*gate(write_report(report, tmp_path), "--train-config", config),
                          "the audit's teacher is /m/code; this launch distils toward /models/teacher")
    both = launch(text.replace("ref.model.path=/models/teacher", "ref.model.path=/m/code"), "both.sh")
    assert gate(write_report(report, tmp_path), "--train-config", both)[0] == 0


# ----------------------------------------------------------------------------- the teacher


FORK_NO_TEACHER = FORK_ON.replace(" +actor_rollout_ref.ref.model.path=/models/teacher", "")
# One OPD launch per framework, as (name, text with the teacher in {teacher}, the teacher key).
TEACHER_LAUNCHES = [
    ("verl-fork", f"{VERL} {FORK_NO_TEACHER} actor_rollout_ref.actor.policy_loss.lambda_vals=1.1 "
                  f"+actor_rollout_ref.ref.model.path={{teacher}}\n", verl.TEACHER_KEY),
    ("verl-native", f"{VERL} distillation.enabled=True actor_rollout_ref.model.path=Qwen/Qwen3-1.7B "
                    f"+distillation.teacher_models.teacher_model.model_path={{teacher}}\n",
     "distillation.teacher_models.teacher_model.model_path"),
    ("slime", "python3 train.py --use-opd --opd-type megatron --hf-checkpoint Qwen/Qwen3-1.7B "
              "--opd-teacher-load {teacher}\n", "--opd-teacher-load"),
    ("skyrl", f"uv run -m {skyrl.OPD_ENTRYPOINTS[0]} trainer.policy.model.path=Qwen/Qwen3-1.7B "
              f"trainer.ref.model.path={{teacher}}\n", skyrl.TEACHER_KEY),
    ("trl", "python examples/scripts/gkd.py --model_name_or_path Qwen/Qwen3-1.7B --lmbda 0.5 "
            "--teacher_model_name_or_path {teacher}\n", "--teacher_model_name_or_path"),
]


def _without_teacher(text: str, key: str) -> str:
    words = text.split()
    kept = [w for n, w in enumerate(words) if not w.lstrip("+").startswith(key) and
            not (n and words[n - 1] == key)]
    return " ".join(kept) + "\n"


@pytest.mark.parametrize(("name", "text", "key"), TEACHER_LAUNCHES, ids=[t[0] for t in TEACHER_LAUNCHES])
def test_a_launch_distilling_from_the_reports_teacher_passes_and_shows_it(gate, report_for, launch, name, text, key):
    config = launch(text.format(teacher=TEACHER))
    code, out, err = gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config)
    assert (code, err) == (0, "")
    assert f"  teacher: the launch distils toward {TEACHER} (its teacher: {key}" in out
    sources = json.loads(gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config, "--format", "json")[1])
    assert sources["sources"]["teacher"]["path"] == TEACHER and sources["sources"]["teacher"]["key"] == key


@pytest.mark.parametrize(("name", "text", "key"), TEACHER_LAUNCHES, ids=[t[0] for t in TEACHER_LAUNCHES])
def test_a_launch_distilling_from_another_teacher_is_refused(gate, report_for, launch, name, text, key):
    """A report audited for teacher A says nothing about a launch that distils from B."""
    config = launch(text.format(teacher="/models/other-teacher"))
    code, out, err = gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config)
    assert_one_line_error(code, out, err, f"the audit's teacher is {TEACHER}; this launch distils toward "
                                          f"/models/other-teacher (its teacher: {key}")
    assert f"{config}:1)): audit that pair (cliffaudit audit --teacher /models/other-teacher ...)" in err


@pytest.mark.parametrize(("name", "text", "key"), TEACHER_LAUNCHES, ids=[t[0] for t in TEACHER_LAUNCHES])
def test_a_launch_that_names_no_teacher_is_refused(gate, report_for, launch, name, text, key):
    """As a launch that names no reference: the gate never passes on doubt."""
    config = launch(_without_teacher(text.format(teacher=TEACHER), key))
    code, out, err = gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config)
    named = "teacher_model_name_or_path" if name == "trl" else key  # TRL's, in a YAML or as a flag
    assert_one_line_error(code, out, err, f"{config}:1: the launch states no {named} (")
    assert "the gate compares" in err


def _report_with_a_local_teacher(tmp_path: Path, student: str) -> tuple[Path, Path, Path, Path]:
    """A report whose teacher is a local checkpoint with recorded fingerprints; a copy of
    that checkpoint at another path, and another checkpoint."""
    audited, copy, other = tmp_path / "audited", tmp_path / "copy", tmp_path / "other"
    for directory, weights in ((audited, b"t"), (copy, b"t"), (other, b"u")):
        directory.mkdir()
        (directory / "model.safetensors").write_bytes(weights)
    report = with_models(known_report(), student=student, teacher=str(audited))
    report = report.model_copy(update={"fingerprints": report.fingerprints.model_copy(
        update={"teacher": fingerprint_checkpoint(audited)})})
    return write_report(report, tmp_path), audited, copy, other


@pytest.mark.parametrize(("name", "text", "key"), TEACHER_LAUNCHES, ids=[t[0] for t in TEACHER_LAUNCHES])
def test_a_teacher_at_another_path_matches_by_its_fingerprints(gate, tmp_path, launch, name, text, key):
    path, audited, copy, other = _report_with_a_local_teacher(tmp_path, "Qwen/Qwen3-1.7B")
    assert gate(path, "--train-config", launch(text.format(teacher=copy), "copy.sh"))[0] == 0
    code, out, err = gate(path, "--train-config", launch(text.format(teacher=other), "other.sh"))
    assert_one_line_error(code, out, err, f"the audit's teacher is {audited}; this launch distils toward {other}")


def test_slimes_sglang_teacher_is_a_server_the_launch_does_not_name(gate, report_for):
    """--opd-type sglang: the teacher's log-probs come from a server at --rm-url; which model
    it serves is not in the launch, so the gate cannot compare it and refuses."""
    relative = "slime/run-qwen3-4B-opd-json.sh"
    code, out, err = gate(report_for(SAMPLE_REFERENCES[relative]), "--train-config", CONFIGS / relative)
    assert_one_line_error(code, out, err, "--opd-type sglang takes the teacher's log-probs from the SGLang server at "
                                          "--rm-url http://$TEACHER_IP:$TEACHER_PORT/generate (")
    assert "the launch does not name the model it serves" in err


def test_a_teacher_the_launch_leaves_unnamed_is_the_checked_teacher_option(gate, tmp_path):
    """--teacher PATH stands for the model slime's SGLang server serves, once its files match
    the report's teacher; another checkpoint is still refused."""
    relative = "slime/run-qwen3-4B-opd-json.sh"
    path, _, served, other = _report_with_a_local_teacher(tmp_path, SAMPLE_REFERENCES[relative])
    code, out, err = gate(path, "--train-config", CONFIGS / relative, "--teacher", str(served))
    assert code == 0, err
    assert f"teacher: the launch distils toward {served} (its teacher as --teacher states it (the launch names " \
           f"none): --teacher {served} (command line))" in out
    code, out, err = gate(path, "--train-config", CONFIGS / relative, "--teacher", str(other))
    assert code == 2 and "model.safetensors" in err and out == ""
    # without it, the refusal says how to state it
    assert "(or give --teacher PATH, the checkpoint the launch's teacher is)" in gate(
        path, "--train-config", CONFIGS / relative)[2]


def test_a_trl_teacher_behind_a_server_is_refused(gate, report_for, launch):
    config = launch("model_name_or_path: Qwen/Qwen3-1.7B\nteacher_model_name_or_path: /models/teacher\n"
                    "use_teacher_server: true\nteacher_model_server_url: http://10.0.0.2:8000\n"
                    "# trl.experimental.iw_opd\n", "iw_opd.yaml")
    assert_one_line_error(*gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config),
                          "teacher_model_server_url=http://10.0.0.2:8000 (")
    config = launch("model_name_or_path: Qwen/Qwen3-1.7B\nteacher_model_name_or_path: /models/teacher\n"
                    "use_teacher_server: false\n# trl.experimental.iw_opd\n", "iw_opd_local.yaml")
    assert gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config)[0] == 0


def test_every_teacher_of_verls_native_multi_teacher_launch_must_be_the_reports(gate, report_for, launch):
    """Each teacher_models entry teaches the prompts its key routes to it; the default entry
    teacher_model is dropped once another is added."""
    head = f"{VERL} distillation.enabled=True actor_rollout_ref.model.path=Qwen/Qwen3-1.7B"
    entries = ("+distillation.teacher_models.math.model_path={math} +distillation.teacher_models.math.key=gsm8k "
               "+distillation.teacher_models.code.model_path={code} +distillation.teacher_models.code.key=mbpp")
    report = report_for("Qwen/Qwen3-1.7B")
    same = launch(f"{head} {entries.format(math=TEACHER, code=TEACHER)}"
                  f" distillation.teacher_models.teacher_model.model_path=/models/dropped\n", "same.sh")
    code, out, _ = gate(report, "--train-config", same)
    assert code == 0 and "teacher_model.model_path=/models/dropped does not act" in out
    mixed = launch(f"{head} {entries.format(math=TEACHER, code='/models/coder')}\n", "mixed.sh")
    assert_one_line_error(*gate(report, "--train-config", mixed), "this launch distils toward /models/coder (its "
                                                                  "teacher: distillation.teacher_models.code.model_path")
    unnamed = launch(f"{head} {entries.format(math=TEACHER, code=TEACHER)} +distillation.teacher_models.geo.key=g\n",
                     "unnamed.sh")
    assert_one_line_error(*gate(report, "--train-config", unnamed),
                          "states no distillation.teacher_models.geo.model_path")


@pytest.mark.parametrize(("key", "layout"), [
    ("distillation.teacher_model.model_path", "distillation.enabled=True"),
    ("actor_rollout_ref.distillation.teacher_model.path", "actor_rollout_ref.distillation.enabled=True")])
def test_verls_earlier_native_teacher_keys_are_read(gate, report_for, launch, key, layout):
    text = f"{VERL} {layout} actor_rollout_ref.model.path=Qwen/Qwen3-1.7B {key}={{teacher}}\n"
    assert gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", launch(text.format(teacher=TEACHER)))[0] == 0
    assert_one_line_error(*gate(report_for("Qwen/Qwen3-1.7B"), "--train-config",
                                launch(text.format(teacher="/models/b"), "b.sh")),
                          f"this launch distils toward /models/b (its teacher: {key}=/models/b")


# ----------------------------------------------------------------------------- stale fingerprints


def _fingerprinted(report, teacher, student):
    """``report`` with the fingerprints of these checkpoints (as an audit of them records)."""
    return report.model_copy(update={"fingerprints": report.fingerprints.model_copy(
        update={"teacher": fingerprint_checkpoint(teacher), "student": fingerprint_checkpoint(student)})})


def test_fresh_checkpoints_pass_the_fingerprint_check(gate, tiny_checkpoints, tmp_path):
    path = write_report(_fingerprinted(known_report(), tiny_checkpoints / "teacher", tiny_checkpoints / "student"),
                        tmp_path)
    code, _, err = gate(path, "--lambda", "1.0", "--teacher", tiny_checkpoints / "teacher",
                        "--student", tiny_checkpoints / "student")
    assert code == 0 and err == ""


def test_stale_checkpoint_exits_two_naming_the_file(gate, tiny_checkpoints, tmp_path):
    report_path = write_report(_fingerprinted(known_report(), tiny_checkpoints / "teacher", tiny_checkpoints / "student"),
                               tmp_path)
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, copy)
    with open(copy / "teacher" / "model.safetensors", "ab") as weights:
        weights.write(b"\0")  # one byte more: a different checkpoint
    code, out, err = gate(report_path, "--lambda", "1.0", "--teacher", copy / "teacher", "--student", copy / "student")
    assert_one_line_error(code, out, err, "teacher/model.safetensors changed since the report")
    (copy / "student" / "extra.bin").write_bytes(b"x")
    code, out, err = gate(report_path, "--lambda", "1.0", "--student", copy / "student")
    assert_one_line_error(code, out, err, "student/extra.bin was added since the report")


def test_a_changed_file_in_a_checkpoint_subfolder_is_stale(gate, tiny_checkpoints, tmp_path):
    """Fingerprints cover every file under a checkpoint, not only the top level."""
    copy = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoints, copy)
    (copy / "teacher" / "extra").mkdir()
    (copy / "teacher" / "extra" / "adapter.safetensors").write_bytes(b"one")
    report_path = write_report(_fingerprinted(known_report(), copy / "teacher", copy / "student"), tmp_path)
    assert gate(report_path, "--lambda", "1.0", "--teacher", copy / "teacher")[0] == 0
    (copy / "teacher" / "extra" / "adapter.safetensors").write_bytes(b"two")
    code, out, err = gate(report_path, "--lambda", "1.0", "--teacher", copy / "teacher")
    assert_one_line_error(code, out, err, "teacher/extra/adapter.safetensors changed since the report")


# ----------------------------------------------------------------------------- meaningless audits


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"teacher_parse_rate": 0.0, "student_parse_rate": 0.0}, "the teacher parses 0.000 of its outputs, less than the drop"),
    ({"teacher_parse_rate": 0.05}, "the teacher parses 0.050 of its outputs"),
    ({"run": known_report().run.model_copy(update={"tokens_probed": 0})}, "probed no contract position"),
    ({"settings": known_report().settings.model_copy(update={"limit": 16})},
     "audited only the first 16 probe records (--limit): a quick look, not a verdict to gate training on"),
])
def test_a_report_that_measured_nothing_is_refused(gate, tmp_path, changes, fragment):
    """A teacher that never parses (no chat template, prompts cut at the context) gives a
    flat curve and "no cliff": the gate refuses such a report instead of passing it."""
    path = write_report(known_report(**changes), tmp_path)
    assert_one_line_error(*gate(path, "--lambda", "1.0"), fragment)


# ----------------------------------------------------------------------------- training configs


def test_a_forced_framework_does_not_read_past_another_frameworks_lambda(gate, report_for):
    """--framework trl on a G-OPD (verl) launch script: the script trains with
    lambda_vals=1.25; TRL's lambda 1 must not pass in its place."""
    script = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    code, out, err = gate(report_for("/personal/models/Qwen3-4B"), "--train-config", script, "--framework", "trl")
    assert_one_line_error(code, out, err, "states lambda under verl's keys")


@pytest.mark.parametrize(("relative", "code", "lambda_text", "clip_text"), [
    ("verl/run_qwen3_4b_json_exopd.sh", 1,
     'lambda = 1.25 from actor_rollout_ref.actor.policy_loss.lambda_vals="${LAMBDA_VAL}"',
     "c = 2 from algorithm.rollout_correction.rollout_is_threshold=2.0"),
    ("verl/g_opd_json_qwen3_1.7b.yaml", 1,
     "lambda = 1.5 from actor_rollout_ref.actor.policy_loss.lambda_vals=1.5",
     "c = 1.28 from actor_rollout_ref.actor.clip_ratio_high=0.28"),
    ("slime/run-qwen3-4B-opd-megatron-json.sh", 0, "lambda = 1 from --opd-kl-coef ${OPD_KL_COEF}",
     "c = 2 from --tis-clip 2.0"),
    ("skyrl/run_on_policy_distill_json_qwen3_1.7b.sh", 0,
     "lambda = 1 from examples.train.on_policy_distillation.main_on_policy_distill",
     "c = 2 from trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high=$TIS_IMP_RATIO_CAP"),
    ("skyrl/opd_kl_in_reward_json.yaml", 0, "lambda = 1 from trainer.algorithm.use_kl_in_reward=true",
     "c = 1.28 from trainer.algorithm.eps_clip_high=0.28"),
    ("trl/gkd_qwen3_json.yaml", 0, "lambda = 1 from TRL GKD", "c: not stated"),
])
def test_each_framework_config_reports_the_keys_it_read(gate, report_for, relative, code, lambda_text, clip_text):
    result, out, err = gate(report_for(SAMPLE_REFERENCES[relative], SAMPLE_TEACHERS[relative]), "--train-config",
                            CONFIGS / relative)
    assert (result, err) == (code, "")
    assert lambda_text in out
    assert clip_text in out


def test_the_launch_environment_overrides_a_script_default(gate, report_for, monkeypatch):
    monkeypatch.setenv("LAMBDA_VAL", "1.2")
    report = report_for("/personal/models/Qwen3-4B", SAMPLE_TEACHERS["verl/run_qwen3_4b_json_exopd.sh"])
    code, out, _ = gate(report, "--train-config", CONFIGS / "verl/run_qwen3_4b_json_exopd.sh")
    assert code == 0
    assert "through $LAMBDA_VAL = 1.2;" in out


@pytest.mark.parametrize("relative", ["slime/run-qwen3-4B-opd-megatron-json.sh",
                                      "skyrl/run_on_policy_distill_json_qwen3_1.7b.sh",
                                      "skyrl/opd_kl_in_reward_json.yaml", "trl/gkd_qwen3_json.yaml"])
def test_a_framework_that_cannot_extrapolate_refuses_a_lambda_that_says_otherwise(gate, report_for, relative,
                                                                                   monkeypatch):
    monkeypatch.setenv("OPD_KL_COEF", "2.5")  # slime's coefficient is a step size, whatever its value
    report = report_for(SAMPLE_REFERENCES[relative], SAMPLE_TEACHERS[relative])
    code, out, _ = gate(report, "--train-config", CONFIGS / relative)
    assert code == 0 and "lambda = 1 by construction" in out
    assert gate(report, "--train-config", CONFIGS / relative, "--lambda", "1")[0] == 0
    assert_one_line_error(*gate(report, "--train-config", CONFIGS / relative, "--lambda", "1.2"),
                          "--lambda 1.2 contradicts the config, which gives lambda = 1")


def test_every_launch_of_a_script_is_judged_and_the_worst_decides(gate, report_for, launch):
    config = launch(f"for L in 1.0 1.2 1.5; do\n  {VERL} {FORK_ON} actor_rollout_ref.actor.policy_loss.lambda_vals=$L\n"
                    f"done\n")
    report = report_for("Qwen/Qwen3-1.7B")
    code, out, _ = gate(report, "--train-config", config)
    assert code == 1 and out.startswith("FAIL: lambda 1.5 is not below the bound 1.2500")
    assert "  3 launches, each judged; the worst is shown above:" in out
    assert f"  lambda 1.2 at {config}:2: PASS" in out and f"  lambda 1.5 at {config}:2: FAIL" in out
    result = json.loads(gate(report, "--train-config", config, "--format", "json")[1])
    assert [(x["lambda"], x["verdict"]) for x in result["launches"]] == [(1.0, "pass"), (1.2, "pass"), (1.5, "fail")]
    annotations = gate(report, "--train-config", config, "--format", "github")[1].splitlines()
    assert annotations[-1].startswith(f"::error file={config},line=2,title=cliffaudit gate failed::lambda 1.5")


# Launches written from the upstream repositories' keys that an earlier gate passed (or
# would pass with lambda read as 1 by default); each must fail or be refused, never pass.
HOLES = [
    ("if/else", 'if [[ "$BIG" == 1 ]]; then L=2.5; else L=1.2; fi\n{train}=$L\n', 1),
    ("sweep", "for L in 1.0 1.2 2.5; do {train}=$L; done\n", 1),
    ("sourced", "L=1.2\nsource ./lambda.sh\n{train}=$L\n", 1),
    ("sourced elsewhere", "L=1.2\nsource /etc/train/lambda.sh\n{train}=$L\n", 2),
    ("read", "L=1.2\nread -r L < lambda.txt\n{train}=$L\n", 2),
    ("function", "L=1.2\npick() {{ L=2.5; }}\npick\n{train}=$L\n", 1),
    ("config-name", f"{VERL} --config-path=cfg --config-name=exopd\n", 1),
    ("config-name elsewhere", f"{VERL} --config-path=/nowhere --config-name=exopd {FORK_ON}\n", 2),
    ("hidden overrides", "{train}=1.2 $(cat extra_overrides.txt)\n", 2),
    ("below the grid", "{train}=0.5\n", 1),
]


@pytest.mark.parametrize(("name", "text", "code"), HOLES, ids=[h[0] for h in HOLES])
def test_a_launch_the_gate_cannot_fully_resolve_or_that_trains_past_the_cliff_never_passes(gate, report_for, launch,
                                                                                         name, text, code):
    launch("L=2.5\n", "lambda.sh")
    launch("actor_rollout_ref:\n  model: {path: Qwen/Qwen3-1.7B, base_model_path: Qwen/Qwen3-1.7B}\n"
           "  ref: {model: {base_model_path: Qwen/Qwen3-1.7B, path: /models/teacher}}\n"
           "  actor: {policy_loss: {only_reverse_kl_advantages: true, lambda_vals: 2.5}}\n", "cfg/exopd.yaml")
    config = launch(text.format(train=f"{VERL} {FORK_ON} actor_rollout_ref.actor.policy_loss.lambda_vals"))
    result, out, err = gate(report_for("Qwen/Qwen3-1.7B"), "--train-config", config, "--rollouts", "100000")
    assert result == code, out + err
    if code == 2:
        assert out == "" and err.count("\n") == 1


def test_a_k8s_job_and_a_hydra_run_are_judged_by_the_launch_they_hold(gate, report_for, launch):
    report = report_for("Qwen/Qwen3-1.7B")
    job = launch("kind: Job\nspec:\n  containers:\n    - command: [python3, -m, verl.trainer.main_ppo]\n      args:\n" +
                 "".join(f"        - {w}\n" for w in [*FORK_ON.split(), "actor_rollout_ref.actor.policy_loss.lambda_vals=2.5"]),
                 "job.yaml")
    code, out, _ = gate(report, "--train-config", job)
    assert code == 1 and f"lambda = 2.5 from actor_rollout_ref.actor.policy_loss.lambda_vals=2.5 ({job}:" in out
    overrides = launch("".join(f"- {w}\n" for w in [*FORK_ON.split(), "actor_rollout_ref.actor.policy_loss.lambda_vals=2.5"]),
                       "outputs/.hydra/overrides.yaml")
    assert gate(report, "--train-config", overrides)[0] == 1


def test_a_yaml_bomb_as_training_config_is_refused_before_it_expands(gate, known_report_path, launch):
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    config = launch("\n".join(lines) + "\n", "bomb.yaml")
    tracemalloc.start()
    try:
        assert_one_line_error(*gate(known_report_path, "--train-config", config), "expands to more than 50,000 nodes")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20  # 9**10 nodes expanded would be gigabytes; the refusal comes first


# ----------------------------------------------------------------------------- formats


def test_json_format_is_one_object_with_verdict_bound_and_sources(gate, report_for):
    code, out, _ = gate(report_for("Qwen/Qwen3-1.7B", SAMPLE_TEACHERS["verl/g_opd_json_qwen3_1.7b.yaml"]), "--train-config",
                        CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml", "--format", "json")
    result = json.loads(out)
    assert code == 1
    assert result["verdict"] == "fail" and result["exit_code"] == 1
    assert result["proposed_lambda"] == 1.5 and result["clip"] == pytest.approx(1.28)
    assert result["bound"] == RECOMMENDED and result["lambda_v"] == 1.3
    assert result["rollouts"] == 256 * 4 * 200 and result["sources"]["rollouts"]["key"].startswith("data.train_batch")
    assert result["binding_class"] == "value:number"
    assert result["framework"] == "verl"
    assert result["sources"]["lambda"]["key"] == "actor_rollout_ref.actor.policy_loss.lambda_vals"
    assert result["sources"]["clip"]["key"] == "actor_rollout_ref.actor.clip_ratio_high"
    assert result["warnings"] == []
    assert [x["verdict"] for x in result["launches"]] == ["fail"]


def test_json_format_carries_config_and_precondition_warnings(gate, report_for):
    path = report_for("/personal/models/Qwen3-4B", SAMPLE_TEACHERS["verl/run_qwen3_4b_json_exopd.sh"],
                      preconditions=[Precondition(name="calibrated", passed=False, detail="gap 0.3")])
    _, out, _ = gate(path, "--train-config", CONFIGS / "verl/run_qwen3_4b_json_exopd.sh", "--format", "json")
    warnings = json.loads(out)["warnings"]
    assert any('"$@"' in w for w in warnings)
    assert "precondition 'calibrated' failed: gap 0.3" in warnings


def test_github_format_annotates_the_line_that_sets_lambda(gate, report_for):
    path = report_for("/personal/models/Qwen3-4B", SAMPLE_TEACHERS["verl/run_qwen3_4b_json_exopd.sh"],
                      preconditions=[Precondition(name="calibrated", passed=False, detail="gap 0.3, per 10%")])
    config = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    code, out, _ = gate(path, "--train-config", config, "--format", "github")
    lines = out.splitlines()
    assert code == 1
    assert all(line.startswith(("::notice ", "::warning ", "::error ")) for line in lines)
    lambda_line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "lambda_vals=" in text)
    assert lines[-1].startswith(f"::error file={config},line={lambda_line},title=cliffaudit gate failed::lambda 1.25")
    # workflow-command encoding: "%" in data, ":" and "," in properties
    assert f"::warning file={path},title=cliffaudit%3A precondition failed::precondition 'calibrated' failed: " \
           f"gap 0.3, per 10%25" in lines
    assert any(line.startswith(f"::warning file={config},") and "$@" in line for line in lines)


def test_github_format_passing_is_a_notice(gate, known_report_path):
    code, out, _ = gate(known_report_path, "--lambda", "1.1", "--format", "github")
    assert code == 0
    assert out.splitlines()[-1] == (f"::notice file={known_report_path},title=cliffaudit gate passed::"
                                    f"lambda 1.1 is below the bound 1.2500")


def test_the_gate_runs_without_importing_torch(known_report_path):
    # CI runners that only gate should not pay for (or need) the model stack.
    code = ("import sys; from cliffaudit.cli import main; "
            f"rc = main(['gate', {str(known_report_path)!r}, '--lambda', '1.1']); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("PASS")


# ----------------------------------------------------------------------------- control characters

HOSTILE = "value:\x1b[2J\r\n::error file=x::forged\u202e\x07"


def _hostile_report():
    """Class labels come from model outputs and schemas: one that would clear a terminal,
    forge a GitHub annotation and reverse the text after it."""
    report = known_report(preconditions=[Precondition(name="calibrated", passed=False, detail=f"gap in {HOSTILE}")])
    rows = [row.model_copy(update={"label": HOSTILE}) if row.label == "value:number" else row for row in report.classes]
    return report.model_copy(update={"classes": rows, "binding_class": HOSTILE})


@pytest.mark.parametrize("output_format", ["text", "github", "json"])
def test_control_characters_in_labels_never_reach_the_output_raw(gate, tmp_path, output_format):
    path = write_report(_hostile_report(), tmp_path)
    code, out, err = gate(path, "--lambda", "1.2", "--format", output_format)
    assert code == 0 and err == ""
    assert all(ch.isprintable() for line in out.splitlines() for ch in line)
    assert "\r" not in out and not any(line.startswith("::error") for line in out.splitlines())
    if output_format == "json":
        assert json.loads(out)["warnings"] == [f"precondition 'calibrated' failed: gap in {HOSTILE}"]
    else:
        assert "\\x1b[2J\\r\\n::error file=x::forged\\u202e\\x07" in out


def test_control_characters_in_an_error_stay_on_its_one_line(gate, known_report_path, tmp_path):
    config = tmp_path / "run\x1b[31m.sh"
    config.write_text("python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=$((\n")
    code, out, err = gate(known_report_path, "--train-config", config)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "run\\x1b[31m.sh" in err and all(ch.isprintable() for ch in err.rstrip("\n"))
