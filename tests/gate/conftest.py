"""Fixtures of the gate's tests: a report with known numbers on disk, and the
command line run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliffaudit.cli import main

from .reports import TEACHER, known_report, with_models, write_report


@pytest.fixture
def known_report_path(tmp_path) -> Path:
    return write_report(known_report(), tmp_path)


@pytest.fixture
def report_for(tmp_path):
    """known_report() written as audited from the given reference (its student) and teacher
    (TEACHER, the tests' own launches' teacher, unless given), so a launch that extrapolates
    away from that model and distils toward that teacher can be judged against it."""
    def write(reference: str, teacher: str = TEACHER, **changes) -> Path:
        directory = tmp_path / "report"
        directory.mkdir(exist_ok=True)
        return write_report(with_models(known_report(**changes), student=reference, teacher=teacher), directory)
    return write


@pytest.fixture
def launch(tmp_path):
    """Write a launch file of the test's own: launch(text, name) -> its path."""
    def write(text: str, name: str = "run.sh") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    return write


@pytest.fixture
def gate(capsys, monkeypatch):
    """Run ``cliffaudit gate ARGS`` in-process: (exit code, stdout, stderr). The
    launch scripts' variables come from their defaults, not the test's environment."""
    for name in ("LAMBDA_VAL", "OPD_KL_COEF", "TIS_IMP_RATIO_CAP", "MODEL_ROOT", "BASE_MODEL_PATH",
                 "STUDENT_MODEL_PATH", "TEACHER_MODEL_PATH", "DATA_ROOT", "TOTAL_TRAINING_STEPS"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["gate", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run
