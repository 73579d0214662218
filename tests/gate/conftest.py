"""Fixtures of the gate's tests: a report with known numbers on disk, and the
command line run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliffaudit.cli import main

from .reports import known_report, write_report


@pytest.fixture
def known_report_path(tmp_path) -> Path:
    return write_report(known_report(), tmp_path)


@pytest.fixture
def gate(capsys, monkeypatch):
    """Run ``cliffaudit gate ARGS`` in-process: (exit code, stdout, stderr). The
    launch scripts' variables come from their defaults, not the test's environment."""
    for name in ("LAMBDA_VAL", "OPD_KL_COEF", "TIS_IMP_RATIO_CAP", "MODEL_ROOT"):
        monkeypatch.delenv(name, raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(["gate", *map(str, argv)])
        out, err = capsys.readouterr()
        return code, out, err

    return run
