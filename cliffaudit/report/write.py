"""Outputs that belong together (report.json and report.html, sweep.json and sweep.html)
appear together or not at all, and no output is written over an input. No torch here.

A write stages every file in full in a fresh hidden folder beside the targets, marks the
folder complete, then renames the files into place with SIGINT, SIGTERM and SIGHUP held
back. Only SIGKILL (or a power cut) can land between two renames; the complete folder it
leaves behind is finished by the next write into that folder, or by
``complete_interrupted_writes`` (``cliffaudit report`` calls it before reading), and a
folder killed before it was complete is removed there, so a kill never leaves temporary
files for good.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

from cliffaudit.report.model import AuditReport, report_text

STAGING_PREFIX = ".cliffaudit-staging-"  # a folder beside the targets, holding a write until it is complete
COMPLETE = ".complete"  # in a staging folder: every file is written; renaming may begin


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` name one file (through links too), or would once written."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.abspath(a) == os.path.abspath(b)


_DEFERRED_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


@contextmanager
def _signals_held():
    """SIGINT, SIGTERM and SIGHUP wait until the block is done, then take their course.

    Python runs signal handlers in the main thread whichever thread the signal hit, so
    the handlers themselves are swapped for one that only records (a thread's signal
    mask would not hold a signal that another thread, e.g. a torch worker, receives)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in _DEFERRED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in received:
            signal.raise_signal(signum)


@contextmanager
def _folder_lock(folder: Path):
    """One writer at a time in ``folder`` (an advisory lock on the folder itself, released
    when the process dies), so that finishing another run's interrupted write never races
    a live one. Where the platform or file system has no such lock, writes go unlocked."""
    try:
        import fcntl

        handle = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:  # e.g. a network file system without flock
            pass
        yield
    finally:
        os.close(handle)


def _rename_into_place(staging: Path, folder: Path) -> None:
    """Every staged file to its target. A failure before the first rename (a file system
    that refuses it) leaves the targets as they were and no staging folder; one after it
    leaves the complete staging folder for the next write to finish."""
    moved = 0
    try:
        for file in sorted(staging.iterdir()):
            if file.name != COMPLETE:
                os.replace(file, folder / file.name)
                moved += 1
    except BaseException:
        if not moved:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    (staging / COMPLETE).unlink()
    staging.rmdir()


def _finish_interrupted(folder: Path) -> None:
    """Under the folder's lock: rename into place what a killed write had staged in full,
    and remove what it had not finished staging."""
    for staging in sorted(folder.glob(STAGING_PREFIX + "*")):
        if (staging / COMPLETE).is_file():
            _rename_into_place(staging, folder)
        elif staging.is_dir():
            shutil.rmtree(staging, ignore_errors=True)


def complete_interrupted_writes(folder: Path) -> None:
    """Before reading outputs from ``folder``: finish a write a SIGKILL cut between its
    renames, so that the files read belong together. Does nothing where there is nothing
    to finish or the folder cannot be written."""
    folder = Path(folder)
    try:
        if not any(folder.glob(STAGING_PREFIX + "*")):
            return
        with _folder_lock(folder):
            _finish_interrupted(folder)
    except OSError:
        pass


def write_together(files: dict[Path, str]) -> None:
    """Write outputs that belong together (report.json and report.html) so that they
    appear together or not at all (the module's docstring says how). They share one
    folder. Any failure before the renames (a folder that cannot be written, a full
    disk) leaves no file behind."""
    folders = {Path(path).parent for path in files}
    if len(folders) != 1:
        raise ValueError(f"outputs written together share one folder, got {sorted(map(str, folders))}")
    folder = folders.pop()
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder):
        _finish_interrupted(folder)
        for path in files:  # temporary files an earlier cliffaudit, which wrote them beside the targets, left
            for stale in folder.glob(f".{Path(path).name}.????????"):
                stale.unlink(missing_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
        try:
            for path, text in files.items():
                # A new file in a new folder: the umask's permissions, as any file the user writes.
                (staging / Path(path).name).write_text(text, encoding="utf-8")
            (staging / COMPLETE).touch()
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        with _signals_held():
            _rename_into_place(staging, folder)


def write_json_atomically(text: str, path: Path) -> None:
    """Write ``text`` to ``path`` through a staged file and a rename, so a crash never
    leaves a partial file."""
    write_together({Path(path): text})


def write_report(report: AuditReport, out_dir: Path) -> Path:
    """report.json alone (tests and tools; the audit writes it with its page: ``write_together``)."""
    path = Path(out_dir) / "report.json"
    write_json_atomically(report_text(report), path)
    return path
