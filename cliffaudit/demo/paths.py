"""Where the packaged demo artefacts live (inside the installed package)."""

from __future__ import annotations

from pathlib import Path

DEMO_DIR = Path(__file__).resolve().parent
CHECKPOINTS_DIR = DEMO_DIR / "checkpoints"
TEACHER_DIR = CHECKPOINTS_DIR / "teacher"
STUDENT_DIR = CHECKPOINTS_DIR / "student"
DATA_DIR = DEMO_DIR / "data"
PROBES_PATH = DATA_DIR / "probes.jsonl"  # held-out prompts for the audit and `demo eval`
TRAIN_PROBES_PATH = DATA_DIR / "train.jsonl"  # training prompts for a later OPD sweep
HABIT_DIR = DEMO_DIR / "habit"  # the second pair, whose teacher fences some answers (cliffaudit.demo.habit)


def layout(root: Path) -> dict[str, Path]:
    """The same layout under another root, e.g. a `demo build --out` directory."""
    return {
        "teacher": root / "checkpoints" / "teacher",
        "student": root / "checkpoints" / "student",
        "probes": root / "data" / "probes.jsonl",
        "train_probes": root / "data" / "train.jsonl",
    }


HABIT = layout(HABIT_DIR)
