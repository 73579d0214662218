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

from cliffaudit.gate.verdict import evaluate
from cliffaudit.render import plots
from cliffaudit.report.model import AuditReport, report_text
from cliffaudit.report.samples import SAMPLES_FILE, LoggedSample, samples_text
from cliffaudit.report.write import write_json_atomically, write_together
from cliffaudit.sweep.model import SweepReport, locked_report


@dataclass
class Banner:
    """What the page's banner shows; pass/fail is the gate's own verdict (gate.verdict)."""

    bound: float | None  # train with lambda below this; None: no cliff up to lambda_max
    lambda_max: float
    binding_class: str | None
    proposed_lambda: float | None
    passed: bool | None  # None when no lambda was proposed
    reason: str | None


_INVISIBLE = {" ": "␣", "\n": "⏎\n", "\t": "⇥", "\r": "␍"}


def visible_token(token: str) -> str:
    """A token shown so that a reader sees it: whitespace as a symbol, an empty one as ∅
    (a highlighted space or newline would otherwise be an empty box)."""
    if not token:
        return "∅"
    if token.strip():
        return token
    return "".join(_INVISIBLE.get(ch, f"\\u{ord(ch):04x}") for ch in token)


def banner(report: AuditReport, proposed_lambda: float | None = None) -> Banner:
    judged = evaluate(report, proposed_lambda, rollouts=report.settings.rollouts) \
        if proposed_lambda is not None else None
    return Banner(report.recommended_lambda, report.cliff.lambda_max, report.binding_class, proposed_lambda,
                   judged.passed if judged else None, judged.reason if judged else None)


def render_html(report: AuditReport, proposed_lambda: float | None = None, sweep=None) -> str:
    """The report page; ``sweep`` (a SweepReport) adds the sweep's section."""
    v = banner(report, proposed_lambda)
    env = Environment(loader=PackageLoader("cliffaudit.render", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["lam"] = lambda x: "none" if x is None or not math.isfinite(x) else f"{x:.3f}"
    env.filters["visible"] = visible_token
    template = env.get_template("report.html.jinja")
    return template.render(
        report=report, verdict=v,
        parse_rate_svg=Markup(plots.parse_rate(report, proposed_lambda, sweep)),
        reliability_svg=Markup(plots.reliability(report)),
        sweep=sweep, sweep_svg=Markup(plots.sweep(sweep)) if sweep else None,
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
