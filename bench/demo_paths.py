"""The embedded demo's paths for the bench scripts, or a clear exit without them."""

from __future__ import annotations


def demo_paths():
    try:
        from cliffaudit.demo import paths
    except ImportError:
        paths = None
    if paths is None or not (paths.TEACHER_DIR / "config.json").exists():
        raise SystemExit("bench: the embedded demo checkpoints are not in this checkout (cliffaudit/demo); "
                         "pass --teacher/--student/--probes where the script takes them")
    return paths
