"""Outputs written together survive SIGKILL: a write cut between its renames is finished
by the next write into the folder (or by a reader such as `cliffaudit report`), and one
cut while staging leaves nothing behind once the folder is written again."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cliffaudit.cli import main
from cliffaudit.report import complete_interrupted_writes, write_report, write_together
from cliffaudit.report.write import COMPLETE, STAGING_PREFIX

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked writer")


def _killed(write, owner=os, kill_after: str = "replace") -> None:
    """Run ``write`` in a forked child that SIGKILLs itself right after its first call of
    ``owner.<kill_after>`` (``os.replace``: a rename into place; ``Path.write_text``: a
    file staged)."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            original, seen = getattr(owner, kill_after), []

            def killing(*args, **kwargs):
                result = original(*args, **kwargs)
                seen.append(args)
                if len(seen) == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                return result

            setattr(owner, kill_after, killing)
            write()
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status


def _pair(folder: Path, text: str) -> dict[Path, str]:
    return {folder / "report.json": f"{text} json", folder / "report.html": f"{text} html"}


def _contents(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() if p.is_file() else "(folder)" for p in sorted(folder.iterdir())}


def test_a_pair_killed_between_its_renames_is_finished_before_anything_reads_it(tmp_path):
    write_together(_pair(tmp_path, "old"))
    _killed(lambda: write_together(_pair(tmp_path, "new")))
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(staged) == 1 and (staged[0] / COMPLETE).is_file()  # the kill landed between the two renames
    assert {_contents(tmp_path)["report.json"], _contents(tmp_path)["report.html"]} == {"old json", "new html"}
    complete_interrupted_writes(tmp_path)
    assert _contents(tmp_path) == {"report.html": "new html", "report.json": "new json"}


def test_the_next_write_into_the_folder_finishes_a_killed_pair_first(tmp_path):
    write_together(_pair(tmp_path, "old"))
    _killed(lambda: write_together(_pair(tmp_path, "new")))
    write_together({tmp_path / "other.json": "other"})
    assert _contents(tmp_path) == {"other.json": "other", "report.html": "new html", "report.json": "new json"}


def test_a_write_killed_while_staging_leaves_the_old_pair_and_no_temporary_files(tmp_path):
    write_together(_pair(tmp_path, "old"))
    _killed(lambda: write_together(_pair(tmp_path, "new")), Path, "write_text")  # one of two files staged
    staged = [p for p in tmp_path.iterdir() if p.name.startswith(STAGING_PREFIX)]
    assert len(staged) == 1 and not (staged[0] / COMPLETE).exists()
    assert _contents(tmp_path)["report.json"] == "old json"  # nothing was renamed
    write_together(_pair(tmp_path, "next"))
    assert _contents(tmp_path) == {"report.html": "next html", "report.json": "next json"}


def test_temporary_files_an_earlier_version_left_are_removed(tmp_path):
    (tmp_path / ".report.json.k2x_9aq1").write_text("half")  # mkstemp's name beside the target, from a kill
    write_together(_pair(tmp_path, "new"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.json"]


def test_cliffaudit_report_reads_a_pair_a_kill_left_half_renamed_only_once_finished(audit_report, tmp_path, capsys):
    folder = tmp_path / "audit"
    old_report = write_report(audit_report, folder).read_text()
    new_report = audit_report.model_copy(update={"records": audit_report.records + 1}).model_dump_json(indent=2)
    assert new_report != old_report
    # Killed after the first rename, report.html's: the folder holds the old report.json.
    _killed(lambda: write_together({folder / "report.json": new_report, folder / "report.html": "page"}))
    assert (folder / "report.json").read_text() == old_report
    assert main(["report", str(folder / "report.json")]) == 0
    capsys.readouterr()
    assert (folder / "report.json").read_text() == new_report
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]
