"""Thresholds of a report's classes at any clip, from the stored p, b and tail-ratio curves.

The report keeps each class's p, b and mean tail ratio (1-p)/t_lambda on the
lambda grid, so lambda* at another clip needs no new probing. Intervals do need
the bootstrap, so at another clip the bound is a point estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cliffaudit import theory
from cliffaudit.estimate import exact_threshold_from_curve
from cliffaudit.report.model import AuditReport, ClassRow


@dataclass(frozen=True)
class ClassThreshold:
    label: str
    reduced: float  # math.inf when unbounded
    exact: float  # math.inf when the class stays in the region on the grid

    @property
    def lambda_star(self) -> float:
        return min(self.reduced, self.exact)


def class_threshold(row: ClassRow, lambdas: list[float], clip: float) -> ClassThreshold:
    p = min(max(row.teacher_valid_mass, 1e-300), 1.0)
    b = min(max(row.student_valid_mass, 1e-300), 1.0)
    reduced = theory.lambda_star(p, b, clip)
    ratio = np.array([np.nan if r is None else r for r in row.mean_tail_ratio], dtype=float)
    # A ratio of None was an infinite one (the fixed point's tail vanished).
    ratio = np.where(np.isnan(ratio), np.inf, ratio)
    with np.errstate(divide="ignore"):
        exact, _ = exact_threshold_from_curve(1.0, 1.0 / ratio, np.asarray(lambdas, dtype=float), clip)
    return ClassThreshold(row.label, reduced, exact)


def thresholds_at(report: AuditReport, clip: float) -> list[ClassThreshold]:
    return [class_threshold(row, report.lambdas, clip) for row in report.classes]


def bound_at(report: AuditReport, clip: float) -> tuple[float | None, str | None, bool]:
    """(bound, binding class, is_interval) at ``clip``: the report's own recommendation
    (the lower end of a 90% interval) at its clip, else the smallest point threshold."""
    if math.isclose(clip, report.settings.clip):
        return report.recommended_lambda, report.binding_class, True
    finite = [t for t in thresholds_at(report, clip) if math.isfinite(t.lambda_star)]
    if not finite:
        return None, None, False
    binding = min(finite, key=lambda t: (t.lambda_star, t.label))
    return binding.lambda_star, binding.label, False
