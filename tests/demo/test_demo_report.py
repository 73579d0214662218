"""The committed demo report is what the code writes today: the demo audit, rerun with
the committed settings, gives the same report apart from the ``run`` section (wall time,
memory): every count, sample and verdict exactly, every float within the tolerances of
``tests/reproduce.py`` (another CPU does not reproduce the last digits). A change that
moves any number in it fails here until the report is regenerated (``make demo``) and
the change explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from cliffaudit import audit
from cliffaudit.report.load import load_report

from ..reproduce import assert_reproduces

COMMITTED = Path(__file__).resolve().parents[2] / "reports" / "demo" / "report.json"


@pytest.mark.slow
def test_the_committed_demo_report_is_current(monkeypatch):
    monkeypatch.chdir(COMMITTED.parents[2])  # the report's settings name paths from the repository root
    committed = load_report(COMMITTED)
    again = audit.run_audit(committed.settings)
    assert_reproduces(again, committed)
