"""Render a report as one self-contained HTML file: inline CSS and SVG, no network.

jinja2 autoescapes everything: prompts, outputs and even schema keys are
untrusted text. Only the SVG plots, which matplotlib writes with its own XML
escaping, are inserted as markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cliffaudit import theory
from cliffaudit.report import plots
from cliffaudit.report.model import AuditReport, write_json_atomically
from cliffaudit.report.thresholds import thresholds_at

BUDGET_POINTS = 12


@dataclass
class Verdict:
    """What the banner shows; pass/fail is the gate's own decision."""

    clip: float
    bound: float | None  # train with lambda below this
    binding_class: str | None
    bound_is_interval: bool  # lower end of a 90% interval (the report's clip) or a point estimate
    proposed_lambda: float | None
    passed: bool | None  # None when no lambda was proposed
    reason: str | None


def verdict(report: AuditReport, clip: float | None = None, proposed_lambda: float | None = None) -> Verdict:
    from cliffaudit.gate.bound import bound_at_clip
    from cliffaudit.gate.verdict import evaluate

    clip = report.settings.clip if clip is None else clip
    bound = bound_at_clip(report, clip)
    judged = evaluate(report, proposed_lambda, clip) if proposed_lambda is not None else None
    return Verdict(clip, bound.value, bound.binding_class, not bound.point_estimate, proposed_lambda,
                   judged.passed if judged else None, judged.reason if judged else None)


def _budget_plot(report: AuditReport, clip: float, steps: int, eta: float, binding: str | None) -> str | None:
    row = next((r for r in report.classes if r.label == binding), None)
    if row is None:
        return None
    p, b = row.teacher_valid_mass, row.student_valid_mass
    if not (0 < p < 1 and 0 < b < 1):
        return None
    grid = sorted({max(1, round(steps ** (k / (BUDGET_POINTS - 1)))) for k in range(BUDGET_POINTS)})
    values = [theory.finite_budget_lambda_star(p, b, clip, t, eta) for t in grid]
    return plots.finite_budget(grid, values, theory.lambda_star(p, b, clip), binding)


def render_html(report: AuditReport, clip: float | None = None, proposed_lambda: float | None = None,
                steps: int | None = None, eta: float | None = None, sweep=None) -> str:
    """The report page; ``sweep`` (a SweepReport) adds the sweep's section."""
    v = verdict(report, clip, proposed_lambda)
    thresholds = {t.label: t for t in thresholds_at(report, v.clip)}
    env = Environment(loader=PackageLoader("cliffaudit.report", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["lam"] = lambda x: "unbounded" if x is None or not math.isfinite(x) else f"{x:.3f}"
    template = env.get_template("report.html.jinja")
    budget = _budget_plot(report, v.clip, steps, eta, v.binding_class) if steps and eta else None
    return template.render(
        report=report, verdict=v, thresholds=thresholds,
        geometry_svg=Markup(plots.clip_geometry(report, v.clip, proposed_lambda,
                                                {k: t.lambda_star if math.isfinite(t.lambda_star) else None
                                                 for k, t in thresholds.items()})),
        reliability_svg=Markup(plots.reliability(report)),
        budget_svg=Markup(budget) if budget else None, steps=steps, eta=eta,
        sweep=sweep, sweep_svg=Markup(plots.sweep(sweep)) if sweep else None,
    )


def write_html(report: AuditReport, path: Path, **options) -> Path:
    write_json_atomically(render_html(report, **options), Path(path))
    return Path(path)
