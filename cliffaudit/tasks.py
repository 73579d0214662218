"""What a parsed output is scored on, by task: the registry the sweep and the demo share.

The cliff shows in strict validity while quality on the outputs that parse stays
flat; a task says how to measure that quality against a record's ``target``.
Pure Python, no torch. Add a task by registering another ``Task``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def exact_match(predicted: list[str] | None, target: list[str]) -> float:
    return float(predicted is not None and list(predicted) == list(target))


def ndcg_at_1(predicted: list[str] | None, target: list[str]) -> float:
    """NDCG@1 with graded relevance K-1-rank (exponential gain); 0 for no prediction.

    The ideal first item is the target's first, so the score is the gain of the
    predicted first item over the gain of the best one.
    """
    if not predicted or predicted[0] not in target:
        return 0.0
    top_relevance = len(target) - 1
    relevance = top_relevance - target.index(predicted[0])
    return (2.0 ** relevance - 1.0) / (2.0 ** top_relevance - 1.0)


@dataclass(frozen=True)
class Task:
    name: str
    answer_key: str  # the field of a parsed JSON object that holds the answer
    metrics: dict[str, Callable[[Any, Any], float]]

    def answer(self, parsed: Any) -> Any:
        return parsed.get(self.answer_key) if isinstance(parsed, dict) else None

    def score(self, parsed: Any, target: Any) -> dict[str, float]:
        """Every metric of one parsed output against its record's target."""
        answer = self.answer(parsed)
        return {name: metric(answer, target) for name, metric in self.metrics.items()}


RANKING = Task("ranking", "ranking", {"exact_match": exact_match, "ndcg_at_1": ndcg_at_1})
TASKS: dict[str, Task] = {task.name: task for task in (RANKING,)}
