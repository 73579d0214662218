"""`cliffaudit gate` end to end: exit codes, unusable input, stale reports,
training configs of each framework, and the three output formats."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cliffaudit.demo import paths
from cliffaudit.report import Precondition, fingerprint_checkpoint
from cliffaudit.report.load import load_report

from .reports import CONFIGS, RECOMMENDED, known_report, no_cliff_report, write_report


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


def test_a_config_without_lambda_exits_two(gate, known_report_path, tmp_path):
    config = tmp_path / "ppo.yaml"
    config.write_text("actor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.28\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = gate(known_report_path, "--train-config", config)
    assert_one_line_error(code, out, err, "sets no actor_rollout_ref.actor.policy_loss.lambda_vals")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_config_without_clip_is_judged_and_says_so(gate, known_report_path, tmp_path):
    # One update per batch (mini batch = train batch): verl's PPO clip cannot act, no IS: no c.
    config = tmp_path / "run.sh"
    config.write_text("python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=1.1 "
                      "data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64\n")
    code, out, _ = gate(known_report_path, "--train-config", config)
    assert code == 0 and "c: not stated" in out
    code, out, _ = gate(known_report_path, "--train-config", config, "--clip", "2")
    assert code == 0
    assert "c = 2 from --clip 2 (command line); the config states no c" in out


@pytest.mark.parametrize(("overrides", "expected"), [
    ("", "c = 1.2 from actor_rollout_ref.actor.clip_ratio"),  # verl's defaults: 1024 / 256 = 4 updates, eps 0.2
    ("actor_rollout_ref.actor.ppo_epochs=2 data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64",
     "c = 1.2 from actor_rollout_ref.actor.clip_ratio"),  # two epochs: the clip acts
    ("algorithm.rollout_correction.rollout_is=token data.train_batch_size=64 "
     "actor_rollout_ref.actor.ppo_mini_batch_size=64", "c = 2 from algorithm.rollout_correction.rollout_is_threshold"),
    ("algorithm.rollout_correction.rollout_is=token algorithm.rollout_correction.rollout_is_threshold=5 "
     "algorithm.rollout_correction.bypass_mode=true algorithm.rollout_correction.loss_type=ppo_clip "
     "data.train_batch_size=64 actor_rollout_ref.actor.ppo_mini_batch_size=64",
     "c = 1.2 from actor_rollout_ref.actor.clip_ratio"),  # bypass + ppo_clip: no IS weights, the clip acts
])
def test_verl_caps_the_file_leaves_unstated_come_from_verls_defaults(gate, known_report_path, tmp_path, overrides,
                                                                     expected):
    """The effective c of a verl launch: verl's own defaults (a named upstream version) for
    what the file leaves out, and only the caps that act on the update."""
    config = tmp_path / "run.sh"
    config.write_text(f"python3 -m verl.trainer.main_ppo actor_rollout_ref.actor.policy_loss.lambda_vals=1.1 "
                      f"{overrides}\n")
    code, out, _ = gate(known_report_path, "--train-config", config)
    assert code == 0 and expected in out, out


def test_a_config_that_states_its_budget_is_judged_with_it(gate, known_report_path):
    # 256 prompts x 4 samples x 200 steps: the cliff is reachable, lambda 1.5 fails.
    code, out, _ = gate(known_report_path, "--train-config", CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml")
    assert code == 1
    assert "budget: 204,800 rollouts from data.train_batch_size x actor_rollout_ref.rollout.n x " \
           "trainer.total_training_steps=256 x 4 x 200" in out
    assert "reachable within 204,800 rollouts" in out


def test_missing_and_undetectable_configs_exit_two(gate, known_report_path, tmp_path):
    assert_one_line_error(*gate(known_report_path, "--train-config", tmp_path / "nope.yaml"), "no such training config")
    other = tmp_path / "other.yaml"
    other.write_text("model:\n  lr: 0.1\n")
    assert_one_line_error(*gate(known_report_path, "--train-config", other), "cannot tell which framework")


def test_the_command_line_may_not_contradict_the_config(gate, known_report_path):
    config = CONFIGS / "verl/g_opd_json_qwen3_1.7b.yaml"
    code, out, err = gate(known_report_path, "--train-config", config, "--lambda", "1.1")
    assert_one_line_error(code, out, err, "--lambda 1.1 contradicts the config, which gives lambda = 1.5")


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


@pytest.mark.parametrize("content", [
    "actor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.2\n    clip_ratio_high: 0.4\n"
    "    policy_loss:\n      lambda_vals: 1.1\n",
    "actor_rollout_ref.actor.policy_loss.lambda_vals: 1.5\nactor_rollout_ref:\n  actor:\n    clip_ratio_high: 0.2\n"
    "    policy_loss:\n      lambda_vals: 1.1\n",
    "actor_rollout_ref:\n  actor:\n    policy_loss:\n      lambda_vals: 1.1\n"
    "actor_rollout_ref:\n  actor:\n    policy_loss:\n      lambda_vals: 1.3\n",
], ids=["duplicate key", "dotted beside nested", "duplicated block"])
def test_a_config_that_sets_a_key_twice_is_refused(gate, known_report_path, tmp_path, content):
    config = tmp_path / "ppo.yaml"
    config.write_text(content)
    assert_one_line_error(*gate(known_report_path, "--train-config", config), "is set twice")


def test_a_duplicate_json_key_is_refused(gate, known_report_path, tmp_path):
    config = tmp_path / "ppo.json"
    config.write_text('{"actor_rollout_ref": {"actor": {"policy_loss": {"lambda_vals": 1.1, "lambda_vals": 1.4}}}}')
    assert_one_line_error(*gate(known_report_path, "--train-config", config), "lambda_vals is set twice")


def test_a_forced_framework_does_not_read_past_another_frameworks_lambda(gate, known_report_path):
    """--framework trl on a G-OPD (verl) launch script: TRL's reader finds no lambda, but the
    script trains with lambda_vals=1.25; --lambda 1.05 must not pass in its place."""
    script = CONFIGS / "verl/run_qwen3_4b_json_exopd.sh"
    code, out, err = gate(known_report_path, "--train-config", script, "--framework", "trl", "--lambda", "1.05")
    assert_one_line_error(code, out, err, "states lambda under verl's keys")




@pytest.mark.parametrize(("relative", "code", "lambda_text", "clip_text"), [
    ("verl/run_qwen3_4b_json_exopd.sh", 1,
     "lambda = 1.25 from actor_rollout_ref.actor.policy_loss.lambda_vals=${LAMBDA_VAL}",
     "c = 2 from algorithm.rollout_correction.rollout_is_threshold=2.0"),
    ("verl/g_opd_json_qwen3_1.7b.yaml", 1,
     "lambda = 1.5 from actor_rollout_ref.actor.policy_loss.lambda_vals=1.5",
     "c = 1.28 from actor_rollout_ref.actor.clip_ratio_high=0.28"),
    ("slime/run-qwen3-4B-opd-json.sh", 1, "lambda = 1.4 from --opd-kl-coef ${OPD_KL_COEF}",
     "c = 2 from --tis-clip 2.0"),
    ("skyrl/run_on_policy_distill_json_qwen3_1.7b.sh", 0,
     "lambda = 1 from examples.on_policy_distillation.main_on_policy_distill",
     "c = 2 from trainer.algorithm.off_policy_correction.token_tis_ratio_clip_high=$TIS_IMP_RATIO_CAP"),
    ("skyrl/opd_kl_in_reward_json.yaml", 1, "lambda = 1.3 from trainer.algorithm.kl_loss_coef=1.3",
     "c = 1.28 from trainer.algorithm.eps_clip_high=0.28"),
])
def test_each_framework_config_reports_the_keys_it_read(gate, known_report_path, relative, code, lambda_text,
                                                        clip_text):
    result, out, err = gate(known_report_path, "--train-config", CONFIGS / relative)
    assert (result, err) == (code, "")
    assert lambda_text in out
    assert clip_text in out


def test_the_launch_environment_overrides_a_script_default(gate, known_report_path, monkeypatch):
    monkeypatch.setenv("LAMBDA_VAL", "1.2")
    code, out, _ = gate(known_report_path, "--train-config", CONFIGS / "verl/run_qwen3_4b_json_exopd.sh")
    assert code == 0
    assert "through $LAMBDA_VAL = 1.2;" in out


def test_trl_needs_a_lambda_and_says_why(gate, known_report_path):
    config = CONFIGS / "trl/gkd_qwen3_json.yaml"
    code, out, err = gate(known_report_path, "--train-config", config)
    assert_one_line_error(code, out, err, "lmbda=0.5")
    assert "is the on-policy fraction, not lambda" in err
    code, out, err = gate(known_report_path, "--train-config", config, "--lambda", "1.1", "--clip", "2")
    assert code == 0
    assert "warning: lmbda=0.5" in out and "not the extrapolation coefficient lambda" in out


# ----------------------------------------------------------------------------- formats


def test_json_format_is_one_object_with_verdict_bound_and_sources(gate, known_report_path):
    code, out, _ = gate(known_report_path, "--train-config", CONFIGS / "slime/run-qwen3-4B-opd-json.sh",
                        "--format", "json")
    result = json.loads(out)
    assert code == 1
    assert result["verdict"] == "fail" and result["exit_code"] == 1
    assert result["proposed_lambda"] == 1.4 and result["clip"] == 2.0
    assert result["bound"] == RECOMMENDED and result["lambda_v"] == 1.3
    assert result["rollouts"] == 300 * 16 * 4 and result["sources"]["rollouts"]["key"].startswith("--rollout-batch")
    assert result["binding_class"] == "value:number"
    assert result["framework"] == "slime"
    assert result["sources"]["lambda"]["key"] == "--opd-kl-coef"
    assert result["sources"]["clip"]["key"] == "--tis-clip"
    assert result["warnings"] == []


def test_json_format_carries_config_and_precondition_warnings(gate, tmp_path):
    report = known_report(preconditions=[Precondition(name="calibrated", passed=False, detail="gap 0.3")])
    path = write_report(report, tmp_path)
    _, out, _ = gate(path, "--train-config", CONFIGS / "verl/run_qwen3_4b_json_exopd.sh", "--format", "json")
    warnings = json.loads(out)["warnings"]
    assert any('"$@"' in w for w in warnings)
    assert "precondition 'calibrated' failed: gap 0.3" in warnings


def test_github_format_annotates_the_line_that_sets_lambda(gate, tmp_path):
    report = known_report(preconditions=[Precondition(name="calibrated", passed=False, detail="gap 0.3, per 10%")])
    path = write_report(report, tmp_path)
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
