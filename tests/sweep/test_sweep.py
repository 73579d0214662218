"""A tiny sweep end to end: prediction locked, runs trained, sweep.json valid."""

from __future__ import annotations

import hashlib
import json

import jsonschema

from cliffaudit.cli import main
from cliffaudit.report import write_report
from cliffaudit.sweep.model import SWEEP_SCHEMA_PATH


def test_tiny_sweep_end_to_end(tiny_checkpoints, audit_report, tmp_path, capsys):
    report_path = write_report(audit_report, tmp_path / "audit")
    out = tmp_path / "sweep"
    argv = ["sweep", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
            "--probes", str(tiny_checkpoints / "probes.jsonl"), "--eval-probes", str(tiny_checkpoints / "probes.jsonl"),
            "--lambdas", "1.0,1.5", "--seeds", "1", "--steps", "2", "--batch-size", "2", "--max-new-tokens", "4",
            "--eval-samples", "1", "--from-report", str(report_path), "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    sweep = json.loads((out / "sweep.json").read_text())
    jsonschema.validate(sweep, json.loads(SWEEP_SCHEMA_PATH.read_text()))
    digest = hashlib.sha256((out / "prediction.json").read_bytes()).hexdigest()
    assert sweep["prediction_sha256"] == digest and sweep["lock_verified"]
    locked = hashlib.sha256((out / "locked-report.json").read_bytes()).hexdigest()
    assert locked == sweep["prediction"]["report_sha256"]  # the report the lock came from, kept beside it
    assert digest in printed
    assert [(r["lam"], r["seed"]) for r in sweep["runs"]] == [(1.0, 0), (1.5, 0)]
    assert [v["rule"] for v in sweep["verdicts"]] == ["fixed point", "clip band"]
    assert sweep["prediction"]["binding_class"] == audit_report.binding_class
    page = (out / "sweep.html").read_text()
    assert 'id="plot-sweep"' in page and digest in page

    # Resumable: a rerun finds the finished runs and trains nothing new, also when the audit has
    # been rerun since and the lock's report is read from its copy beside the lock.
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    assert main(argv) == 0
    report_path.write_text("{}")  # a later audit overwrote the original
    from_copy = [*argv[:argv.index("--from-report") + 1], str(out / "locked-report.json"), "--out", str(out)]
    assert main(from_copy) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == mtimes
    assert json.loads((out / "sweep.json").read_text())["convergence"]["runs_at_one"] is not None
    capsys.readouterr()


def test_a_sweep_without_a_report_audits_its_training_probes_as_it_will_train(tiny_checkpoints, tmp_path, capsys):
    """No --from-report: the sweep audits its own training probes first, with its own device,
    precision and prompt rendering, and locks that audit's prediction."""
    from cliffaudit.report.load import load_report

    out = tmp_path / "sweep"
    probes = str(tiny_checkpoints / "probes.jsonl")
    argv = ["sweep", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
            "--probes", probes, "--eval-probes", probes, "--lambdas", "1.0", "--seeds", "1", "--steps", "1",
            "--batch-size", "2", "--max-new-tokens", "4", "--eval-samples", "1", "--device", "cpu",
            "--dtype", "float32", "--chat-template-kwargs", '{"house_style": "terse"}', "--out", str(out)]
    assert main(argv) == 0
    assert "no --from-report: auditing the training probes first" in capsys.readouterr().out
    audited = load_report(out / "audit" / "report.json")
    assert (audited.settings.probes, audited.settings.device, audited.settings.dtype) == (probes, "cpu", "float32")
    assert audited.settings.chat_template_kwargs == {"house_style": "terse"} and audited.settings.use_chat_template
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["prediction"]["report_path"] == str(out / "audit" / "report.json")
    assert sweep["prediction"]["report_sha256"] == hashlib.sha256((out / "audit" / "report.json").read_bytes()).hexdigest()
    assert sweep["prediction"]["binding_class"] == audited.binding_class
    assert (sweep["settings"]["device"], sweep["settings"]["dtype"]) == ("cpu", "float32")


def test_bad_lambda_grid_is_refused(tiny_checkpoints, tmp_path, capsys):
    argv = ["sweep", "--teacher", "t", "--student", "s", "--probes", str(tiny_checkpoints / "probes.jsonl"),
            "--eval-probes", str(tiny_checkpoints / "probes.jsonl"), "--lambdas", "1.5:1.0:0.1",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "--lambdas must be START:STOP:STEP" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_two_phase_sweep_locks_the_finite_budget_onset_before_the_other_lambdas(tiny_checkpoints, audit_report,
                                                                                  tmp_path, capsys):
    """--finite-budget: the lambda = 1 runs train first, finite-budget.json is written and its
    sha256 printed, and only then does any other lambda train; the clip band is locked at the
    sweep's own c; the baselines are measured at every seed."""
    from cliffaudit.theory import clip_band_lambda_star

    report_path = write_report(audit_report, tmp_path / "audit")
    out = tmp_path / "sweep"
    argv = ["sweep", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
            "--probes", str(tiny_checkpoints / "probes.jsonl"), "--eval-probes", str(tiny_checkpoints / "probes.jsonl"),
            "--lambdas", "1.0,1.5", "--seeds", "2", "--steps", "1", "--batch-size", "2", "--max-new-tokens", "4",
            "--eval-samples", "1", "--clip", "1.5", "--finite-budget", "--from-report", str(report_path),
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    sweep = json.loads((out / "sweep.json").read_text())
    jsonschema.validate(sweep, json.loads(SWEEP_SCHEMA_PATH.read_text()))
    lock = out / "finite-budget.json"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    assert sweep["finite_budget_sha256"] == digest and f"finite-budget onset locked: {lock} sha256 {digest}" in printed
    locked = json.loads(lock.read_text())
    assert locked["prediction_sha256"] == sweep["prediction_sha256"] and len(locked["runs_at_one"]) == 2
    runs = {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()}
    lock_time = lock.stat().st_mtime_ns
    assert all(t <= lock_time for name, t in runs.items() if name.startswith("lambda1.0000"))
    assert all(t >= lock_time for name, t in runs.items() if name.startswith("lambda1.5000"))
    assert sorted((b["role"], b["seed"]) for b in sweep["baselines"]) == [
        ("teacher", 0), ("teacher", 1), ("warm start", 0), ("warm start", 1)]
    assert sweep["convergence"]["measured_by"] == "the sweep's evaluator"
    assert all(0.0 <= r["clipped_share"] <= 1.0 for r in sweep["runs"])
    band = min(clip_band_lambda_star(r.teacher_valid_mass, r.reference_valid_mass, 1.5) for r in audit_report.classes)
    assert sweep["prediction"]["clip"] == 1.5 and sweep["prediction"]["clip_band_lambda_star"] == band
    # Resumed, the same lock is recomputed and nothing retrains.
    assert main(argv) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (out / "runs").iterdir()} == runs
    assert hashlib.sha256(lock.read_bytes()).hexdigest() == digest
    capsys.readouterr()


def test_a_two_phase_sweep_needs_lambda_one(tiny_checkpoints, tmp_path, capsys):
    argv = ["sweep", "--teacher", "t", "--student", "s", "--probes", str(tiny_checkpoints / "probes.jsonl"),
            "--eval-probes", str(tiny_checkpoints / "probes.jsonl"), "--lambdas", "1.2,1.5", "--finite-budget",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "--lambdas must hold 1.0" in capsys.readouterr().err


def test_a_lora_sweep_renders_and_runs_as_its_audit(tiny_checkpoints, audit_report, tmp_path, capsys):
    """Device, precision and the prompts' rendering come from the audit the sweep tests;
    --lora-rank trains a LoRA adapter; a rendering other than the audit's is refused."""
    report_path = write_report(audit_report, tmp_path / "audit")
    out = tmp_path / "sweep"
    argv = ["sweep", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
            "--probes", str(tiny_checkpoints / "probes.jsonl"), "--eval-probes", str(tiny_checkpoints / "probes.jsonl"),
            "--lambdas", "1.0", "--seeds", "1", "--steps", "1", "--batch-size", "2", "--max-new-tokens", "4",
            "--eval-samples", "1", "--lora-rank", "2", "--from-report", str(report_path), "--out", str(out)]
    assert main(argv) == 0
    settings = json.loads((out / "sweep.json").read_text())["settings"]
    audited = audit_report.settings
    assert (settings["device"], settings["dtype"], settings["use_chat_template"], settings["chat_template_kwargs"]) \
        == (audited.device, audited.dtype, audited.use_chat_template, audited.chat_template_kwargs)
    assert settings["lora_rank"] == 2
    capsys.readouterr()
    assert main([*argv[:-2], "--no-chat-template", "--out", str(tmp_path / "other")]) == 2
    assert "the sweep must render them as it did" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_what_trains_full_weights_a_new_lora_or_the_students_own_adapter(tiny_checkpoints, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model

    from cliffaudit import probe
    from cliffaudit.sweep.jobs import trainable_student
    from cliffaudit.sweep.model import SweepSettings

    pair = probe.load_pair(str(tiny_checkpoints / "teacher"), str(tiny_checkpoints / "student"), "cpu", "float32")
    common = dict(teacher=str(tiny_checkpoints / "teacher"), probes="p", eval_probes="p", lambdas=[1.0])

    full = trainable_student(SweepSettings(student=str(tiny_checkpoints / "student"), **common), pair)
    assert full is not pair.student and all(p.dtype == torch.float32 for p in full.parameters())
    lora = trainable_student(SweepSettings(student=str(tiny_checkpoints / "student"), lora_rank=2, **common), pair)
    trained = {name for name, p in lora.named_parameters() if p.requires_grad}
    assert trained and all("lora_" in name for name in trained)
    # A new adapter's random A matrices are drawn the same every time (every process of a pooled
    # sweep builds its own warm start), whatever the global generator's state.
    torch.manual_seed(12345)
    again = trainable_student(SweepSettings(student=str(tiny_checkpoints / "student"), lora_rank=2, **common), pair)
    first, second = dict(lora.named_parameters()), dict(again.named_parameters())
    assert all(torch.equal(first[name], second[name]) for name in trained)

    adapter = tmp_path / "adapter"
    wrapped = get_peft_model(probe.load_model("s", str(tiny_checkpoints / "student")),
                             LoraConfig(r=2, target_modules=["q_proj"]))
    wrapped.save_pretrained(str(adapter))
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path":
                                                                      str(tiny_checkpoints / "student")}))
    own = trainable_student(SweepSettings(student=str(adapter), lora_rank=8, **common), pair)
    names = {name for name, p in own.named_parameters() if p.requires_grad}
    assert names and all("lora_" in name and "q_proj" in name for name in names)  # its own rank-2 adapter, not 8


def test_a_pooled_sweep_trains_the_runs_one_process_trains(tiny_checkpoints, audit_report, tmp_path, capsys):
    """--num-processes 2: the runs and baselines train in two spawned processes, each with its own
    models, and come out as one process's (each draw is seeded by its run); a two-phase sweep's
    lock waits for its lambda = 1 runs."""
    from tests.reproduce import assert_reproduces

    report_path = write_report(audit_report, tmp_path / "audit")
    argv = ["sweep", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
            "--probes", str(tiny_checkpoints / "probes.jsonl"), "--eval-probes", str(tiny_checkpoints / "probes.jsonl"),
            "--lambdas", "1.0,1.5", "--seeds", "2", "--steps", "2", "--batch-size", "2", "--max-new-tokens", "4",
            "--eval-samples", "1", "--from-report", str(report_path), "--finite-budget"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    assert main([*argv, "--num-processes", "2", "--out", str(tmp_path / "pooled")]) == 0
    capsys.readouterr()
    one, pooled = (sorted((tmp_path / name / "runs").iterdir()) for name in ("one", "pooled"))
    assert [p.name for p in pooled] == [p.name for p in one] and len(one) == 4 + 4  # 4 runs, 2 roles x 2 seeds
    for mine, theirs in zip(pooled, one):
        assert_reproduces(json.loads(mine.read_text()), json.loads(theirs.read_text()), exclude={"seconds"})
    sweeps = [json.loads((tmp_path / name / "sweep.json").read_text()) for name in ("one", "pooled")]
    assert_reproduces(sweeps[1]["verdicts"], sweeps[0]["verdicts"])
    locks = [json.loads((tmp_path / name / "finite-budget.json").read_text()) for name in ("pooled", "one")]
    assert_reproduces(*locks)
