"""Render a report as one self-contained HTML file: inline CSS and SVG, no network.

jinja2 autoescapes everything: prompts, outputs and even schema keys are
untrusted text. Only the SVG plots, which matplotlib writes with its own XML
escaping, are inserted as markup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from cliffaudit.gate.verdict import PredictedRate, evaluate, predicted_rate
from cliffaudit.render import plots
from cliffaudit.render.glossary import breakable, class_gloss, lambda_words, metric_name, visible_text, visible_token
from cliffaudit.render.pair import locked_prediction_differs, pair_name
from cliffaudit.report.model import AuditReport, report_text
from cliffaudit.report.preconditions import DEFAULT_POLICY, MEANING, POLICIES
from cliffaudit.report.preconditions import meaning as precondition_meaning
from cliffaudit.report.samples import SAMPLES_FILE, LoggedSample, samples_text
from cliffaudit.report.write import write_json_atomically, write_together
from cliffaudit.sweep.model import SweepReport, locked_report
from cliffaudit.verdicts import PRECONDITION_STATUSES, prediction_detail, prediction_word


@dataclass
class Banner:
    """What the page's banner shows; pass/fail is the gate's own verdict (gate.verdict)."""

    bound: float | None  # train with lambda below this; None: no cliff up to lambda_max
    lambda_max: float
    binding_class: str | None
    proposed_lambda: float | None
    passed: bool | None  # None when no lambda was proposed
    reason: str | None
    predicted: PredictedRate | None = None  # the fixed point's parse rate at the proposed lambda


def banner(report: AuditReport, proposed_lambda: float | None = None) -> Banner:
    judged = evaluate(report, proposed_lambda, rollouts=report.settings.rollouts) \
        if proposed_lambda is not None else None
    return Banner(report.recommended_lambda, report.cliff.lambda_max, report.binding_class, proposed_lambda,
                  judged.passed if judged else None, judged.reason if judged else None,
                  judged.predicted if judged else None)


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cliffaudit.render", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["lam"] = lambda x: "none" if x is None or not math.isfinite(x) else f"{x:.3f}"
    env.filters["visible"] = visible_token
    env.filters["visible_text"] = visible_text
    env.filters["breakable"] = breakable
    env.filters["gloss"] = class_gloss
    return env


def render_html(report: AuditReport, proposed_lambda: float | None = None, sweep: SweepReport | None = None) -> str:
    """The report page; ``sweep`` (a SweepReport of the same pair: ``pair.sweep_pair_difference``)
    adds its test of the prediction."""
    v = banner(report, proposed_lambda)
    end = report.cliff.lambda_max
    grid_words = partial(lambda_words, end=end)
    statuses = [p.status for p in report.preconditions]
    sweep_verdict = next((x for x in sweep.verdicts if x.rule == "fixed point"), None) if sweep else None
    return _environment().get_template("report.html.jinja").render(
        report=report, verdict=v, pair=pair_name(report), grid_words=grid_words,
        at_lambda=partial(predicted_rate, report),
        precondition_counts={status: statuses.count(status) for status in PRECONDITION_STATUSES if status in statuses},
        precondition_meaning=precondition_meaning, precondition_checks=lambda name: MEANING.get(name, {}).get("checks"),
        policy=POLICIES[DEFAULT_POLICY], policies=POLICIES,
        parse_rate_svg=Markup(plots.parse_rate(report, proposed_lambda)),
        reliability_svg=Markup(plots.reliability(report)),
        sweep=sweep, sweep_svg=Markup(plots.sweep(sweep, report)) if sweep else None,
        sweep_verdict=sweep_verdict,
        sweep_word=prediction_word(sweep_verdict.hit) if sweep_verdict else None,
        sweep_detail=prediction_detail(sweep_verdict.outcome) if sweep_verdict else None,
        other_verdicts=[(x, prediction_word(x.hit), prediction_detail(x.outcome)) for x in sweep.verdicts]
        if sweep else [],
        locked_differs=locked_prediction_differs(report, sweep) if sweep else False,
        metric_name=metric_name, samples_file=SAMPLES_FILE,
    )


def write_html(report: AuditReport, path: Path, **options) -> Path:
    write_json_atomically(render_html(report, **options), Path(path))
    return Path(path)


def write_sweep(sweep: SweepReport, out_dir: Path) -> tuple[Path, Path]:
    """sweep.json and sweep.html (the locked audit's page with the sweep's section), together."""
    out = Path(out_dir)
    page = render_html(locked_report(sweep.prediction, out), sweep=sweep)
    write_together({out / "sweep.json": sweep.model_dump_json(indent=2) + "\n", out / "sweep.html": page})
    return out / "sweep.json", out / "sweep.html"


def write_report_and_html(report: AuditReport, out_dir: Path,
                          samples: list[LoggedSample] | None = None) -> tuple[Path, Path]:
    """report.json and report.html (and samples.jsonl, every sampled output, when given),
    which appear together or not at all."""
    json_path, html_path = Path(out_dir) / "report.json", Path(out_dir) / "report.html"
    files = {json_path: report_text(report), html_path: render_html(report)}
    if samples is not None:
        files[Path(out_dir) / SAMPLES_FILE] = samples_text(samples)
    write_together(files)
    return json_path, html_path
