"""Plots for the HTML report, as inline SVG strings (no files, no network).

matplotlib's object API (no pyplot) keeps rendering free of global state; a
fixed hash salt and no date keep the SVG identical from run to run.
"""

from __future__ import annotations

import io
import math

import matplotlib
from matplotlib.figure import Figure

from cliffaudit.report.model import AuditReport

_RC = {"svg.fonttype": "none", "svg.hashsalt": "cliffaudit", "font.size": 9}


def _legend_below(ax, columns: int = 2, handles=None, labels=None) -> None:
    """The legend under the axes, where it covers no curve."""
    args = (handles, labels) if handles is not None else ()
    ax.legend(*args, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=columns, frameon=False)


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue: the SVG sits inside HTML


def parse_rate(report: AuditReport, proposed_lambda: float | None = None, sweep=None) -> str:
    """The fixed point's predicted strict-parse rate against lambda: the analytic curve
    with its band, the sampled points with their intervals, the drop line and lambda_v;
    a sweep's observed rates (after training) on the same axes when there is one."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.5, 4.6))
        ax = fig.add_subplot()
        lambdas, rates = report.lambdas, report.parse_rate
        ax.fill_between(lambdas, rates.analytic_low, rates.analytic_high, color="tab:blue", alpha=0.15, linewidth=0)
        ax.plot(lambdas, rates.analytic, color="tab:blue", linewidth=1.6, label="predicted (analytic, 90% band)")
        points = rates.rollouts
        if points:
            ax.errorbar([r.lam for r in points], [r.parse_rate for r in points],
                        yerr=[[r.parse_rate - r.interval[0] for r in points], [r.interval[1] - r.parse_rate for r in points]],
                        fmt="o", color="tab:orange", capsize=3, label="sampled from the fixed point (90% interval)")
            best = max(r.parse_rate for r in points if r.lam <= (report.cliff.lambda_v or math.inf))
            ax.axhline(best - report.cliff.drop, color="grey", linestyle="--", linewidth=1,
                       label=f"drop line: best - {report.cliff.drop:g}")
        cliff = report.cliff
        if cliff.lambda_v is not None:
            lo, hi = cliff.interval
            ax.axvspan(lo, lambdas[-1] if hi is None else hi, color="crimson", alpha=0.12, linewidth=0)
            ax.axvline(cliff.lambda_v, color="crimson", linewidth=1.4, label=f"lambda_v = {cliff.lambda_v:.3f}")
            reach = report.reachability
            # Past lambda_v only the reachable part of the fall is a risk within the budget.
            words = {True: "reachable", False: "not reachable", None: "reachability unknown"}[reach.reachable]
            budget = f" within {reach.budget_rollouts:,} rollouts" if reach.budget_rollouts else ""
            ax.annotate(f"{words}{budget}", xy=(cliff.lambda_v, 0.98), xytext=(6, 0), textcoords="offset points",
                        fontsize=7, color="crimson", va="top")
        if sweep is not None:
            grid = sorted({r.lam for r in sweep.runs})
            pooled = [sum(r.parse_rate for r in sweep.runs if r.lam == lam) /
                      max(1, sum(1 for r in sweep.runs if r.lam == lam)) for lam in grid]
            ax.plot(grid, pooled, marker="s", color="tab:green", linewidth=1,
                    label=f"observed after {sweep.settings.steps} training steps (mean of {sweep.settings.seeds} seeds)")
            observed = sweep.onset_range
            if observed is not None and observed.lower is not None:
                upper = grid[-1] if observed.upper is None else observed.upper
                ax.axvspan(observed.lower, upper, ymin=0.0, ymax=0.03, color="tab:green", alpha=0.6,
                           label=f"observed onset's range ({observed.level:.0%})")
        if proposed_lambda is not None:
            ax.axvline(proposed_lambda, color="black", linestyle=":", linewidth=1.4,
                       label=f"proposed lambda = {proposed_lambda:g}")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("lambda")
        ax.set_ylabel("strict parse rate")
        ax.set_title("The G-OPD fixed point's parse rate against lambda")
        _legend_below(ax)
        return _svg(fig)


def reliability(report: AuditReport) -> str:
    """Reliability diagram of per-position valid masses, per model on its own samples."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(4.6, 4.2))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect calibration")
        values = []
        for role, cal in report.calibration.items():
            ax.plot(cal.curve_predicted, cal.curve_observed, marker="o", label=f"{role} (ECE {cal.ece:.3f})")
            values += [*cal.curve_predicted, *cal.curve_observed]
        # Valid masses crowd near 1: zoom both axes to the points (the diagonal stays the diagonal).
        low = max(0.0, min(values, default=0.0) - 0.02)
        ax.set_xlim(low, 1.005)
        ax.set_ylim(low, 1.005)
        ax.set_xlabel("predicted valid mass at a position")
        ax.set_ylabel("observed frequency of a valid token")
        ax.set_title("Calibration (quantile bins)")
        _legend_below(ax, columns=1)
        return _svg(fig)


def sweep(sweep_report) -> str:
    """Parse rate and task metric against lambda, one line per seed; the locked
    prediction's windows shaded, the observed onset marked."""
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(7.5, 4.8))
        ax = fig.add_subplot()
        metric_ax = ax.twinx()
        # Quality on parsed outputs: the task's last metric (ndcg_at_1 for the ranking task).
        quality = next((list(r.metrics)[-1] for r in sweep_report.runs if r.metrics), None)
        for seed in sorted({r.seed for r in sweep_report.runs}):
            runs = sorted((r for r in sweep_report.runs if r.seed == seed), key=lambda r: r.lam)
            ax.plot([r.lam for r in runs], [r.parse_rate for r in runs], marker="o", label=f"parse rate, seed {seed}")
            scored = [r for r in runs if quality in r.metrics]
            if scored:
                metric_ax.plot([r.lam for r in scored], [r.metrics[quality] for r in scored], linestyle=":",
                               marker=".", label=f"{quality} on parsed outputs, seed {seed}")
        colours = {"fixed point": "tab:blue", "clip band": "tab:orange"}
        first, last = min(sweep_report.settings.lambdas), max(sweep_report.settings.lambdas)
        for verdict in sweep_report.verdicts:
            lo, hi = verdict.window
            hi = last if hi is None else hi
            if lo is not None and lo <= last and hi >= first:  # shade only what lies on the swept grid
                ax.axvspan(max(lo, first), min(hi, last), alpha=0.15, color=colours.get(verdict.rule, "grey"),
                           label=f"locked {verdict.rule} window")
        ax.set_xlim(first - 0.02, last + 0.02)
        onset = sweep_report.onset_pooled
        if onset is not None:
            ax.axvspan(onset.lower, onset.upper, fill=False, hatch="//", edgecolor="crimson",
                       label="observed onset (pooled)")
        observed = sweep_report.onset_range
        if observed is not None and observed.lower is not None:  # the range the verdicts judge
            upper = last if observed.upper is None else observed.upper
            ax.axvspan(observed.lower, upper, ymin=0.0, ymax=0.04, color="crimson", alpha=0.5,
                       label=f"onset's range ({observed.level:.0%})")
        ax.set_xlabel("lambda")
        ax.set_ylabel("strict parse rate")
        metric_ax.set_ylabel(f"{quality or 'quality'} on parsed outputs")
        ax.set_ylim(-0.02, 1.02)
        metric_ax.set_ylim(-0.02, 1.02)
        ax.set_title("Sweep: parse rate after training (solid) and quality on parsed outputs (dotted)")
        handles, labels = ax.get_legend_handles_labels()
        metric_handles, metric_labels = metric_ax.get_legend_handles_labels()
        _legend_below(ax, columns=2, handles=handles + metric_handles, labels=labels + metric_labels)
        return _svg(fig)
