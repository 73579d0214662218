"""The bound at a clip: the report's recommended lambda at its own clip, a point
estimate recomputed from the stored per-class numbers at another."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cliffaudit import estimate, theory
from cliffaudit.gate.bound import bound_at_clip
from cliffaudit.report.thresholds import class_threshold

from .reports import GRID, RECOMMENDED, bernoulli_row, known_report, make_report, no_cliff_report


def test_at_the_reports_clip_the_bound_is_its_recommended_lambda():
    bound = bound_at_clip(known_report(), 2.0)
    assert bound.value == RECOMMENDED
    assert not bound.point_estimate
    assert bound.binding_class == "value:number"
    assert "90% interval" in bound.describe()


@pytest.mark.parametrize("clip", [1.28, 1.5, 3.0, 5.0])
def test_another_clip_recomputes_from_stored_p_b_and_ratio_curves(clip):
    report = known_report()
    expected = {}
    for row in report.classes:
        ratio = np.array(row.mean_tail_ratio)
        reduced = theory.lambda_star(row.teacher_valid_mass, row.student_valid_mass, clip)
        exact, _ = estimate.exact_threshold_from_curve(1.0, 1.0 / ratio, GRID, clip)
        expected[row.label] = min(reduced, exact)
    binding = min(expected, key=expected.get)

    bound = bound_at_clip(report, clip)

    assert bound.point_estimate and bound.clip == clip
    assert bound.binding_class == binding
    assert bound.value == pytest.approx(expected[binding], rel=1e-12)
    assert "point estimate" in bound.describe()


def test_recomputed_thresholds_match_the_closed_form_within_the_grid_step():
    # The Bernoulli curve's exact threshold is the closed form, up to interpolation.
    row = known_report().classes[0]
    for clip in (1.5, 3.0):
        closed_form = theory.lambda_star(0.99, 0.9, clip)
        threshold = class_threshold(row, GRID.tolist(), clip)
        assert threshold.reduced == closed_form
        assert threshold.exact == pytest.approx(closed_form, abs=1e-3)


def test_recomputing_at_the_reports_clip_gives_back_each_class_threshold():
    report = known_report()
    for row in report.classes:
        assert class_threshold(row, report.lambdas, 2.0).lambda_star == pytest.approx(row.lambda_star, abs=1e-3)


def test_recomputed_thresholds_of_a_real_audit_match_its_stored_ones(audit_report):
    clip = audit_report.settings.clip
    for row in audit_report.classes:
        threshold = class_threshold(row, audit_report.lambdas, clip)
        for stored, recomputed in ((row.reduced_lambda_star, threshold.reduced),
                                   (row.exact_lambda_star, threshold.exact)):
            assert (stored is None and math.isinf(recomputed)) or recomputed == pytest.approx(stored, rel=1e-9)


def test_a_larger_clip_never_lowers_the_bound():
    report = known_report()
    values = [bound_at_clip(report, clip).value for clip in (1.2, 1.5, 2.5, 4.0)]
    assert values == sorted(values)


def test_no_class_reaching_the_cliff_gives_no_bound():
    assert bound_at_clip(no_cliff_report(), 2.0).value is None
    assert bound_at_clip(no_cliff_report(), 5.0).value is None


def test_a_ratio_stored_as_null_counts_as_outside_the_region():
    # null is how the audit stores a ratio whose tail underflowed (ratio infinite);
    # the class is neutral (b == p), so only that point can bound it.
    row = bernoulli_row("x", 0.95, 0.95, 2.0, (None, None))
    curve = list(row.mean_tail_ratio)
    curve[50] = None  # lambda = 1.5
    report = make_report([row.model_copy(update={"mean_tail_ratio": curve})], None, None)
    bound = bound_at_clip(report, 2.5)
    assert bound.value == pytest.approx(GRID[50])


def test_a_binding_class_without_a_finite_interval_still_bounds_lambda():
    # Failing closed: the class's own threshold stands in for the missing lower end.
    report = known_report(recommended_lambda=None)
    assert bound_at_clip(report, 2.0).value == pytest.approx(report.classes[0].lambda_star)


def test_the_bound_is_the_smallest_over_classes():
    rows = [bernoulli_row("a", 0.99, 0.9, 2.0, (1.2, 1.4)), bernoulli_row("b", 0.999, 0.9, 2.0, (1.0, 1.2))]
    report = make_report(rows, 1.0, "b")
    bound = bound_at_clip(report, 3.0)
    assert bound.binding_class == "b"
    assert bound.value == pytest.approx(theory.lambda_star(0.999, 0.9, 3.0), abs=1e-3)
