"""`cliffaudit demo eval` on the packaged artefacts, its bad-input exits, and lazy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

from cliffaudit.cli import main  # noqa: E402


def test_eval_reports_both_models_as_json(capsys):
    assert main(["demo", "eval", "--limit", "8", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["scores"]) == {"teacher", "student"}
    for scores in report["scores"].values():
        assert scores["samples"] == 8
        assert 0.0 <= scores["parse_rate"] <= 1.0
        if scores["parse_rate"]:  # the metrics are over the answers that parse
            assert 0.0 <= scores["metrics"]["exact_match"] <= scores["metrics"]["ndcg_at_1"] <= 1.0
    assert report["scores"]["teacher"]["parse_rate"] > 0
    assert report["parameters"]["student"] < report["parameters"]["teacher"]


def test_eval_prints_a_table(capsys):
    assert main(["demo", "eval", "--limit", "4"]) == 0
    out = capsys.readouterr().out
    assert "parse rate" in out and "teacher" in out and "student" in out


def test_eval_refuses_a_folder_that_is_not_a_checkpoint(tmp_path, capsys):
    assert main(["demo", "eval", "--teacher", str(tmp_path)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


def test_eval_refuses_missing_probes_and_bad_limit(tmp_path, capsys):
    assert main(["demo", "eval", "--probes", str(tmp_path / "none.jsonl")]) == 2
    assert main(["demo", "eval", "--limit", "0"]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    assert main(["demo", "eval", "--probes", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("cliffaudit: error:") == 3


def test_build_refuses_a_negative_seed(tmp_path):
    assert main(["demo", "build", "--out", str(tmp_path), "--seed", "-1"]) == 2
    assert not any(tmp_path.iterdir())


def test_cli_import_does_not_load_torch():
    code = "import sys, cliffaudit.cli; print('torch' in sys.modules or 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
