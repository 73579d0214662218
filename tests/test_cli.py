"""The command line: exit codes, one-line errors, machine-readable output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cliffaudit.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_threshold_json_reports_the_worked_value(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2", "--json")
    assert code == 0
    result = json.loads(out)
    assert round(result["lambda_star"], 4) == 1.2912
    assert result["regime"] == "sharpening" and result["edge"] == "upper"
    assert round(result["base_neutral_lambda_star"], 4) == round(1.151940536343019, 4)


def test_threshold_verdict_sets_exit_code(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2", "--lambda", "1.2")
    assert code == 0 and "SAFE" in out
    code, out, _ = run(capsys, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2", "--lambda", "1.5")
    assert code == 1 and "BEYOND THE CLIFF" in out


def test_threshold_proposed_lambda_in_json(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2", "--lambda", "1.5", "--json")
    proposed = json.loads(out)["proposed"]
    assert code == 1
    assert proposed["verdict"] == "beyond the cliff"
    assert proposed["tail_ratio"] > 2.0
    assert proposed["tail_mass"] == pytest.approx(0.01 / proposed["tail_ratio"])


def test_threshold_finite_budget(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2",
                       "--steps", "200", "--eta", "0.5", "--json")
    result = json.loads(out)
    assert code == 0
    assert result["finite_budget"]["lambda_star"] > result["lambda_star"]


def test_threshold_unbounded_is_null_in_json(capsys):
    code, out, _ = run(capsys, "threshold", "--p", "0.9", "--b", "0.9", "--clip", "2", "--json", "--lambda", "3")
    result = json.loads(out)
    assert code == 0
    assert result["lambda_star"] is None and result["bounded"] is False
    assert result["proposed"]["verdict"] == "safe"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--p", "1.5", "--b", "0.9", "--clip", "2"], "--p must be a probability"),
        (["--p", "0.9", "--b", "0", "--clip", "2"], "--b must be a probability"),
        (["--p", "x", "--b", "0.9", "--clip", "2"], "'x' is not a valid float"),
        (["--p", "0.9", "--b", "0.5", "--clip", "1"], "clip must be > 1"),
        (["--p", "0.9", "--b", "0.5", "--clip", "2", "--steps", "10"], "--steps and --eta go together"),
        (["--p", "0.9", "--b", "0.5", "--clip", "2", "--steps", "10", "--eta", "9"], "eta must be in (0, 4]"),
        (["--b", "0.5", "--clip", "2"], "Missing option '--p'"),
    ],
)
def test_threshold_bad_input_is_one_line_and_exit_two(capsys, argv, fragment):
    code, out, err = run(capsys, "threshold", *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("cliffaudit: error:")
    assert fragment in err


def test_unknown_command_is_usage_error(capsys):
    code, _, err = run(capsys, "no-such-command")
    assert code == 2 and "no-such-command" in err


# The console script sits beside the interpreter of the environment it was installed in.
@pytest.mark.parametrize("entry", [[sys.executable, "-m", "cliffaudit"], [str(Path(sys.executable).with_name("cliffaudit"))]])
def test_entry_points_return_exit_codes(entry):
    done = subprocess.run([*entry, "threshold", "--p", "0.99", "--b", "0.9", "--clip", "2", "--lambda", "1.5"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert "lambda* = 1.2912" in done.stdout
