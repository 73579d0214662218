"""The task registry: metrics on parsed outputs, shared by the sweep and the demo."""

from __future__ import annotations

import pytest

from cliffaudit.tasks import RANKING, TASKS, exact_match, ndcg_at_1


def test_exact_match():
    assert exact_match(["a", "b"], ["a", "b"]) == 1.0
    assert exact_match(["b", "a"], ["a", "b"]) == 0.0
    assert exact_match(None, ["a", "b"]) == 0.0


def test_ndcg_at_1_grades_the_first_item():
    target = [f"c{i}" for i in range(8)]
    assert ndcg_at_1(target, target) == 1.0
    assert ndcg_at_1(["c1"] + target[2:], target) == pytest.approx(63 / 127)
    assert ndcg_at_1([target[-1]], target) == 0.0
    assert ndcg_at_1(None, target) == 0.0
    assert ndcg_at_1(["zz"], target) == 0.0


def test_the_ranking_task_scores_its_answer_field():
    assert TASKS["ranking"] is RANKING
    target = ["a", "b", "c"]
    assert RANKING.score({"ranking": ["a", "b", "c"]}, target) == {"exact_match": 1.0, "ndcg_at_1": 1.0}
    assert RANKING.score({"ranking": ["b", "a", "c"]}, target) == {"exact_match": 0.0, "ndcg_at_1": pytest.approx(1 / 3)}
    # a parsed output that is not an object, or lacks the field, scores as no answer
    assert RANKING.score(["a", "b", "c"], target) == {"exact_match": 0.0, "ndcg_at_1": 0.0}
    assert RANKING.score({"other": 1}, target) == {"exact_match": 0.0, "ndcg_at_1": 0.0}
