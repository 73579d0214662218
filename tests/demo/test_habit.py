"""The habit pair's build on a toy plan: layout, determinism, and the answers each model learns from."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from cliffaudit.contract import strict_validate  # noqa: E402
from cliffaudit.demo import catalogue, paths, train  # noqa: E402
from cliffaudit.demo.build import BUILD_INFO  # noqa: E402
from cliffaudit.demo.habit import HabitPlan, answers, build_habit, habit_rate  # noqa: E402

TOY = HabitPlan(size=train.ModelSize(hidden=32, intermediate=64, layers=1, heads=2),
                teacher=train.Schedule(steps=3, batch_size=4), student=train.Schedule(steps=3, batch_size=4),
                n_sft=48, n_probes=4, vocab_size=320)


def test_answers_carry_the_habit_at_its_rate_and_stay_well_formed_otherwise():
    records = catalogue.generate(3, n_sft=2000, n_probes=2).sft
    teacher = answers(records, 0.15, 0.0, np.random.default_rng(0))
    student = answers(records, 0.03, 0.5, np.random.default_rng(1))
    assert habit_rate(teacher) == pytest.approx(0.15, abs=0.025)
    assert habit_rate(student) == pytest.approx(0.03, abs=0.01)
    for record, text in zip(records, student):
        verdict = strict_validate(text, record["schema"])
        assert verdict.valid is (not text.startswith("```"))  # a fence is the only way to break it
    unfenced = [(r, t) for r, t in zip(records, teacher) if not t.startswith("```")]
    assert all(json.loads(t)["ranking"] == r["target"] for r, t in unfenced)  # the teacher ranks right
    reordered = sum(json.loads(t.strip("`json\n"))["ranking"] != r["target"] for r, t in zip(records, student))
    assert reordered / len(records) == pytest.approx(0.5 * 7 / 8, abs=0.06)  # ~1/8 of shuffles keep the order


@pytest.fixture(scope="module")
def toy_habit(tmp_path_factory):
    out = tmp_path_factory.mktemp("habit")
    return out, build_habit(out, seed=5, plan=TOY, threads=1)


def test_habit_build_writes_the_package_layout_and_is_deterministic(toy_habit, tmp_path):
    out, info = toy_habit
    where = paths.layout(out)
    for name in ("teacher", "student"):
        assert (where[name] / "model.safetensors").is_file()
        assert (where[name] / "tokenizer.json").read_text() == (where["teacher"] / "tokenizer.json").read_text()
    assert json.loads((out / "checkpoints" / BUILD_INFO).read_text()) == info
    assert info["pair"] == "habit" and set(info["habit_rate"]) == {"teacher", "student"}
    again = build_habit(tmp_path, seed=5, plan=TOY, threads=1)
    assert again["probe_scores"] == info["probe_scores"]
    for name in ("teacher", "student"):
        assert (paths.layout(tmp_path)[name] / "model.safetensors").read_bytes() == \
            (where[name] / "model.safetensors").read_bytes()


def test_the_shipped_habit_pair_is_small_and_has_the_habit():
    info = json.loads((paths.HABIT_DIR / "checkpoints" / BUILD_INFO).read_text())
    for name in ("teacher", "student"):
        assert (paths.HABIT[name] / "model.safetensors").stat().st_size <= 5 * 2**20
    assert 0.10 <= info["habit_rate"]["teacher"] <= 0.20  # the teacher's habit, at one decision point
    assert 0.0 < info["habit_rate"]["student"] < info["habit_rate"]["teacher"]  # the warm start keeps the format
    assert info["probe_scores"]["teacher"]["ndcg_at_1"] > info["probe_scores"]["student"]["ndcg_at_1"]  # ranks better
