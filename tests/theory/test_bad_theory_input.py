"""`threshold` and `simulate` on hostile input (issue #34): a teacher that never keeps the
format has nothing to audit, and every size a user types is refused from its bound
before the work it would cost. Exit 2 and one line, as everywhere."""

from __future__ import annotations

import pytest

from cliffaudit.cli import main

THEORY_CASES = [
    ("--p 0", ["threshold", "--p", "0", "--b", "0.9", "--lambda", "2"], "--p 0: teacher validity 0"),
    ("K-ary teacher validity 0", ["threshold", "--teacher-probs", "0.5,0.5;0,1", "--student-probs", "0.5,0.5;0.5,0.5",
                                  "--valid", "1,0;1,0", "--lambda", "2"],
     "--teacher-probs: teacher validity 0 at position 2"),
    ("simulate, teacher validity 0", ["simulate", "--teacher-probs", "0,1", "--student-probs", "0.5,0.5", "--valid",
                                      "1,0"], "teacher validity 0 at position 1"),
    ("threshold table too large", ["threshold", "--teacher-probs", ";".join(["0.5,0.5"] * 5001), "--student-probs",
                                   ";".join(["0.5,0.5"] * 5001), "--valid", ";".join(["1,0"] * 5001)],
     "--teacher-probs: 10,002 probabilities, over the limit of 10,000"),
    ("--lambdas 1:1e9:1e-3", ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01", "--valid",
                              "1,0", "--lambdas", "1:1e9:1e-3"], "999,999,999,001 lambdas, over the limit of 1,001"),
    ("--lambdas with 2000 values", ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01",
                                    "--valid", "1,0", "--lambdas", ",".join(["1"] * 2000)],
     "2,000 lambdas, over the limit of 1,001"),
    ("--rollouts 1e12", ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01", "--valid", "1,0",
                         "--rollouts", str(10**12)], "simulation too large"),
    ("--batch-size 1e8", ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01", "--valid", "1,0",
                          "--batch-size", str(10**8)], "simulation too large"),
    ("--seeds 1e6", ["simulate", "--teacher-probs", "0.9,0.1", "--student-probs", "0.99,0.01", "--valid", "1,0",
                     "--seeds", str(10**6)], "simulation too large"),
]


@pytest.mark.parametrize(("argv", "fragment"), [c[1:] for c in THEORY_CASES], ids=[c[0] for c in THEORY_CASES])
def test_hostile_threshold_and_simulate_input_exits_two(capsys, argv, fragment):
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, (code, captured.err)
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("cliffaudit: error: ")
    assert fragment in captured.err, captured.err
