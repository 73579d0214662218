"""Plots for the HTML report, as inline SVG strings (no files, no network).

matplotlib's object API (no pyplot) keeps rendering free of global state; a
fixed hash salt and no date keep the SVG identical from run to run.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure

from cliffaudit.report.model import AuditReport, ClassRow

MAX_CLASSES_PLOTTED = 8
_RC = {"svg.fonttype": "none", "svg.hashsalt": "cliffaudit", "font.size": 9}


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG sits inside HTML


def _plotted(report: AuditReport) -> list[ClassRow]:
    bounded = [r for r in report.classes if r.lambda_star is not None]
    rest = [r for r in report.classes if r.lambda_star is None]
    return (bounded + rest)[:MAX_CLASSES_PLOTTED]


def clip_geometry(report: AuditReport, clip: float, proposed_lambda: float | None,
                  thresholds: dict[str, float | None]) -> str:
    """Tail importance ratio (1-p)/t_lambda per class against lambda, with the clip band."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.5, 4.2))
        ax = fig.add_subplot()
        for row in _plotted(report):
            points = [(lam, r) for lam, r in zip(report.lambdas, row.mean_tail_ratio) if r is not None and r > 0]
            if not points:
                continue
            (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], label=row.label, linewidth=1.4)
            star = thresholds.get(row.label)
            if star is not None and report.lambdas[0] <= star <= report.lambdas[-1]:
                ax.axvline(star, color=line.get_color(), linestyle=":", linewidth=1)
        ax.axhline(clip, color="black", linestyle="--", linewidth=1)
        ax.axhline(1.0 / clip, color="black", linestyle="--", linewidth=1)
        ax.text(report.lambdas[0], clip, f" c = {clip:g}", va="bottom")
        ax.text(report.lambdas[0], 1.0 / clip, f" 1/c = {1 / clip:.3g}", va="top")
        if proposed_lambda is not None:
            ax.axvline(proposed_lambda, color="crimson", linewidth=2, label=f"proposed lambda = {proposed_lambda:g}")
        ax.set_yscale("log")
        ax.set_xlabel("lambda")
        ax.set_ylabel("tail importance ratio (1-p) / t_lambda")
        ax.set_title("Clip-safe geometry: each class leaves [1/c, c] at its lambda* (dotted)")
        ax.legend(fontsize=7, loc="best")
        return _svg(fig)


def reliability(report: AuditReport) -> str:
    """Reliability diagram of per-position valid masses, per model on its own samples."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.6, 4.2))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        for role, cal in report.calibration.items():
            ax.plot(cal.curve_predicted, cal.curve_observed, marker="o", label=f"{role} (ECE {cal.ece:.3f})")
        ax.set_xlabel("predicted valid mass at a position")
        ax.set_ylabel("observed frequency of a valid token")
        ax.set_title("Calibration (quantile bins)")
        ax.legend(fontsize=7)
        return _svg(fig)


def finite_budget(steps: list[int], budget_lambdas: list[float], fixed_point: float, label: str) -> str:
    """lambda*_T of the binding class against training steps T."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6, 3.6))
        ax = fig.add_subplot()
        shown = [(t, v) for t, v in zip(steps, budget_lambdas) if math.isfinite(v)]
        ax.plot([s for s, _ in shown], [v for _, v in shown], marker=".", label=f"lambda*_T ({label})")
        ax.axhline(fixed_point, color="black", linestyle="--", linewidth=1, label=f"fixed point lambda* = {fixed_point:.3f}")
        ax.set_xscale("log")
        ax.set_xlabel("training steps T")
        ax.set_ylabel("lambda at which the cliff is reached")
        ax.set_title("Finite-budget boundary")
        ax.legend(fontsize=7)
        return _svg(fig)


def sweep(sweep_report) -> str:
    """Parse rate and task metric against lambda, one line per seed; the locked
    prediction's windows shaded, the observed onset marked."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.5, 4.2))
        ax = fig.add_subplot()
        metric_ax = ax.twinx()
        for seed in sorted({r.seed for r in sweep_report.runs}):
            runs = sorted((r for r in sweep_report.runs if r.seed == seed), key=lambda r: r.lam)
            ax.plot([r.lam for r in runs], [r.parse_rate for r in runs], marker="o", label=f"parse rate, seed {seed}")
            scored = [r for r in runs if r.ndcg_at_1 is not None]
            if scored:
                metric_ax.plot([r.lam for r in scored], [r.ndcg_at_1 for r in scored], linestyle=":", marker=".",
                               label=f"NDCG@1 on parsed outputs, seed {seed}")
        colours = {"reduced": "tab:blue", "exact": "tab:orange"}
        first, last = min(sweep_report.settings.lambdas), max(sweep_report.settings.lambdas)
        for verdict in sweep_report.verdicts:
            lo, hi = verdict.window
            hi = last if hi is None else hi
            if lo is not None and lo <= last and hi >= first:  # shade only what lies on the swept grid
                ax.axvspan(max(lo, first), min(hi, last), alpha=0.15, color=colours.get(verdict.threshold, "grey"),
                           label=f"locked {verdict.threshold} window")
        ax.set_xlim(first - 0.02, last + 0.02)
        onset = sweep_report.onset_pooled
        if onset is not None:
            ax.axvspan(onset.lower, onset.upper, fill=False, hatch="//", edgecolor="crimson",
                       label="observed onset (pooled)")
        ax.set_xlabel("lambda")
        ax.set_ylabel("strict parse rate")
        metric_ax.set_ylabel("NDCG@1 on parsed outputs")
        ax.set_ylim(-0.02, 1.02)
        metric_ax.set_ylim(-0.02, 1.02)
        ax.set_title("Sweep: where validity collapses, against the locked prediction")
        ax.legend(fontsize=7, loc="lower left")
        return _svg(fig)
