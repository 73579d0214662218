"""Plots for the HTML report, as inline SVG strings (no files, no network, no script).

matplotlib's object API (no pyplot) keeps rendering free of global state; a fixed hash
salt and no date keep the SVG identical from run to run.

Every plot is drawn to be shown as wide as the page: at the narrowest page the tests
check (800 px) the smallest text is still 11 px. One colour means one thing on every
plot (``COLOURS``). Points carry their values as SVG ``<title>`` elements, which a
browser shows on hover.
"""

from __future__ import annotations

import io
import math
import re
from xml.sax.saxutils import escape

import matplotlib
from matplotlib.figure import Figure

from cliffaudit.render.glossary import metric_name
from cliffaudit.report.model import AuditReport

# One colour per meaning, across every plot of a page.
COLOURS = {
    "predicted": "#1f5fbf",  # the audit's predicted parse rate of the fixed point (curve and 90% band)
    "sampled": "#d46a00",  # outputs sampled from the fixed point itself, during the audit
    "cliff": "#c62828",  # lambda_v, its interval, and the locked window that predicted it
    "observed": "#2e7d32",  # parse rates observed after training (a sweep), pooled over seeds
    "observed seed": "#8bc58e",  # one seed's runs
    "drop line": "#5f5f5f",  # where a parse rate has fallen by the drop below its best so far
    "proposed": "#111111",  # the proposed lambda
    "refuted": "#8a8a8a",  # the refuted clip-band rule, for comparison
    "quality": "#7b3fa0",  # the task's metric on the outputs that parse
    "teacher": "#00838f",  # the teacher's own samples (calibration)
    "warm start": "#a0522d",  # the warm start's own samples (calibration)
}

# Sizes in points of a figure 10 inches (720 pt) wide, about 600 pt once cropped to what it
# draws. The page shows a plot at the width of its column, at least 774 px at an 800 px
# window: 9.5 pt there is about 12 px (the browser test measures it).
WIDE = 10.0
_RC = {"svg.fonttype": "none", "svg.hashsalt": "cliffaudit", "font.size": 9.5, "axes.titlesize": 11,
       "axes.labelsize": 10, "xtick.labelsize": 9.5, "ytick.labelsize": 9.5, "legend.fontsize": 9.5}
LAMBDA = "λ"


class _Hovers:
    """Invisible markers whose ``<title>`` a browser shows on hover; ids are unique on a
    page because each plot has its own prefix."""

    def __init__(self, prefix: str):
        self.prefix, self.titles = prefix, {}

    def add(self, ax, x: float, y: float, text: str, size: float = 11.0) -> None:
        gid = f"{self.prefix}-hover-{len(self.titles)}"
        ax.plot([x], [y], marker="o", markersize=size, alpha=0.0, linestyle="none", gid=gid, zorder=10)
        self.titles[gid] = text

    def insert(self, svg: str) -> str:
        for gid, text in self.titles.items():
            svg = svg.replace(f'<g id="{gid}">', f'<g id="{gid}" class="hover"><title>{escape(text)}</title>', 1)
        return svg


def _legend_below(ax, columns: int = 2, handles=None, labels=None) -> None:
    """The legend under the axes, where it covers no curve."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=columns, frameon=False,
              handlelength=2.2, columnspacing=1.6)


def _svg(fig: Figure, hovers: _Hovers | None = None) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context(_RC):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]  # drop the XML prologue: the SVG sits inside HTML
    # The page sizes the plot (CSS width: 100%); the viewBox keeps its proportions.
    text = re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    return hovers.insert(text) if hovers else text


def _visible_span(ax, lo: float, hi: float, x_range: float, **style) -> None:
    """A vertical band at least 0.6% of the axis wide, so that a narrow window (1.368 to
    1.382 on a 1 to 3 axis) still shows; drawn centred on the window it stands for."""
    least = 0.006 * x_range
    if hi - lo < least:
        middle = (lo + hi) / 2
        lo, hi = middle - least / 2, middle + least / 2
    ax.axvspan(lo, hi, **style)


def parse_rate(report: AuditReport, proposed_lambda: float | None = None) -> str:
    """The fixed point's predicted strict-parse rate against lambda: the analytic curve
    with its band, the sampled points with their intervals, the drop line, lambda_v with
    its interval and reachability, and the proposed lambda."""
    hovers = _Hovers("parse-rate")
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDE, 5.0))
        ax = fig.add_subplot()
        lambdas, rates = report.lambdas, report.parse_rate
        x_range = lambdas[-1] - lambdas[0]
        ax.fill_between(lambdas, rates.analytic_low, rates.analytic_high, color=COLOURS["predicted"], alpha=0.18,
                        linewidth=0, label="90% band over probe records")
        ax.plot(lambdas, rates.analytic, color=COLOURS["predicted"], linewidth=2.0, gid="parse-rate-predicted",
                label="predicted fixed point")
        step = max(1, len(lambdas) // 40)
        for i in range(0, len(lambdas), step):
            hovers.add(ax, lambdas[i], rates.analytic[i],
                       f"{LAMBDA} {lambdas[i]:g}: predicted {rates.analytic[i]:.3f} (90% band "
                       f"{rates.analytic_low[i]:.3f} to {rates.analytic_high[i]:.3f})", size=9)
        best, drop_line = -math.inf, []
        for value in rates.analytic:  # the cliff is a fall below the best rate at smaller lambdas
            best = max(best, value)
            drop_line.append(best - report.cliff.drop)
        ax.plot(lambdas, drop_line, color=COLOURS["drop line"], linestyle="--", linewidth=1.2,
                label=f"drop line (best so far − {report.cliff.drop:g})")
        points = rates.rollouts
        if points:
            ax.errorbar([r.lam for r in points], [r.parse_rate for r in points],
                        yerr=[[r.parse_rate - r.interval[0] for r in points],
                              [r.interval[1] - r.parse_rate for r in points]],
                        fmt="o", markersize=7, color=COLOURS["sampled"], capsize=4, gid="parse-rate-sampled",
                        label="sampled fixed point (90% interval)")
            for r in points:
                hovers.add(ax, r.lam, r.parse_rate,
                           f"{LAMBDA} {r.lam:g}: {r.valid} of {r.samples} samples of the fixed point parse "
                           f"({r.parse_rate:.3f}, 90% interval {r.interval[0]:.3f} to {r.interval[1]:.3f})"
                           + (" — the teacher itself" if r.lam == 1.0 else ""), size=14)
        cliff = report.cliff
        if cliff.lambda_v is not None:
            lo, hi = cliff.interval
            _visible_span(ax, lo, lambdas[-1] if hi is None else hi, x_range, color=COLOURS["cliff"], alpha=0.18,
                          linewidth=0, gid="parse-rate-cliff-interval")
            ax.axvline(cliff.lambda_v, color=COLOURS["cliff"], linewidth=1.8, gid="parse-rate-cliff",
                       label=f"cliff {LAMBDA}v {cliff.lambda_v:.3f} ({lo:.3f} to "
                             f"{'past the grid' if hi is None else f'{hi:.3f}'})")
            reach = report.reachability
            # Past lambda_v only the reachable part of the fall is a risk within the budget.
            words = {True: "reachable", False: "not reachable", None: "reachability unknown"}[reach.reachable]
            budget = f" within {reach.budget_rollouts:,} rollouts" if reach.budget_rollouts else \
                " (no budget given)"
            ax.annotate(f"{LAMBDA}v {cliff.lambda_v:.3f}: {words}{budget}", xy=(cliff.lambda_v, 1.0),
                        xytext=(8, -4), textcoords="offset points", color=COLOURS["cliff"], va="top")
        if proposed_lambda is not None:
            ax.axvline(proposed_lambda, color=COLOURS["proposed"], linestyle=":", linewidth=1.8,
                       label=f"proposed {LAMBDA} {proposed_lambda:g}")
        ax.set_xlim(lambdas[0] - 0.01 * x_range, lambdas[-1] + 0.01 * x_range)
        ax.set_ylim(-0.02, 1.04)
        ax.set_xlabel(f"{LAMBDA} (1: plain distillation; above 1: extrapolating past the teacher)")
        ax.set_ylabel("strict parse rate")
        ax.set_title(f"What training converges to at each {LAMBDA}: the fixed point's strict parse rate")
        ax.grid(alpha=0.25)
        _legend_below(ax)
        return _svg(fig, hovers)


def reliability(report: AuditReport) -> str:
    """Reliability diagram of per-position valid masses, per model on its own samples."""
    hovers = _Hovers("reliability")
    names = {"teacher": "teacher", "student": "warm start"}
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(6.6, 5.0))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color=COLOURS["drop line"], linestyle="--", linewidth=1, label="perfect calibration")
        values = []
        for role, cal in report.calibration.items():
            name = names.get(role, role)
            ax.plot(cal.curve_predicted, cal.curve_observed, marker="o", color=COLOURS.get(name, "#444444"),
                    label=f"{name} (ECE {cal.ece:.3f})", gid=f"reliability-{role}")
            for x, y in zip(cal.curve_predicted, cal.curve_observed):
                hovers.add(ax, x, y, f"{name}: predicted valid mass {x:.4f}, observed {y:.4f}", size=10)
            values += [*cal.curve_predicted, *cal.curve_observed]
        # Valid masses crowd near 1: zoom both axes to the points (the diagonal stays the diagonal).
        low = max(0.0, min(values, default=0.0) - 0.02)
        ax.set_xlim(low, 1.005)
        ax.set_ylim(low, 1.005)
        ax.set_xlabel("predicted valid mass at a position")
        ax.set_ylabel("observed share of valid tokens")
        ax.set_title("Calibration (quantile bins)")
        ax.grid(alpha=0.25)
        _legend_below(ax, columns=1)
        return _svg(fig, hovers)


def _pooled(runs, lam: float, value) -> float | None:
    found = [value(r) for r in runs if r.lam == lam and value(r) is not None]
    return sum(found) / len(found) if found else None


def sweep(sweep_report, report: AuditReport | None = None) -> str:
    """What a sweep observed after training, against its own drop line: each seed's parse
    rate and their mean, the onset and its range, the locked windows, the audit's
    predicted fixed point over the same lambdas with the distance the lambda = 1 runs
    stayed from it; below, the task's metric on the outputs that parse."""
    hovers = _Hovers("sweep")
    runs = sweep_report.runs
    grid = sorted({r.lam for r in runs}) or sorted(sweep_report.settings.lambdas)
    first, last = grid[0], grid[-1]
    x_range = max(last - first, 1e-9)
    tolerance = sweep_report.settings.onset_tolerance
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(WIDE, 7.4))
        ax, quality_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3.2, 1.3], "hspace": 0.12})
        observed = sweep_report.onset_range
        if observed is not None and observed.lower is not None:
            upper = last if observed.upper is None else observed.upper
            ax.axvspan(observed.lower, upper, color=COLOURS["observed"], alpha=0.10, linewidth=0, zorder=0,
                       label=f"onset's range ({observed.level:.0%} of resampled runs)")
        seeds = sorted({r.seed for r in runs})
        for index, seed in enumerate(seeds):
            mine = sorted((r for r in runs if r.seed == seed), key=lambda r: r.lam)
            ax.plot([r.lam for r in mine], [r.parse_rate for r in mine], color=COLOURS["observed seed"], marker=".",
                    linewidth=1.0, label="one seed" if index == 0 else None, zorder=2)
        pooled = [_pooled(runs, lam, lambda r: r.parse_rate) for lam in grid]
        ax.plot(grid, pooled, color=COLOURS["observed"], marker="s", markersize=7, linewidth=2.2, zorder=4,
                gid="sweep-observed",
                label=f"mean of {len(seeds)} seeds, after {sweep_report.settings.steps} steps")
        for lam, value in zip(grid, pooled):
            seed_rates = ", ".join(f"{r.parse_rate:.2f}" for r in sorted(runs, key=lambda r: r.seed) if r.lam == lam)
            hovers.add(ax, lam, value, f"{LAMBDA} {lam:g}: observed parse rate {value:.3f} (seeds: {seed_rates})",
                       size=14)
        best, line = -math.inf, []
        for value in pooled:  # the onset rule: a fall below the best rate at smaller lambdas
            best = max(best, value)
            line.append(best - tolerance)
        ax.step(grid, line, where="post", color=COLOURS["observed"], linestyle="--", linewidth=1.3, zorder=3,
                label=f"the sweep's drop line (best so far − {tolerance:g})")
        onset = sweep_report.onset_pooled
        if onset is not None:
            ax.plot([onset.lower, onset.upper], [0.015, 0.015], color=COLOURS["observed"], linewidth=6,
                    solid_capstyle="butt", label=f"observed onset of the mean: ({onset.lower:g}, {onset.upper:g}]")
        prediction = sweep_report.prediction
        for verdict in sweep_report.verdicts:
            lo, hi = verdict.window
            if lo is None:
                continue
            hi = last if hi is None else hi
            if verdict.rule == "fixed point" and lo <= last and hi >= first:
                _visible_span(ax, max(lo, first), min(hi, last), x_range, color=COLOURS["cliff"], alpha=0.55,
                              linewidth=0, zorder=1.5, gid="sweep-locked-window",
                              label=f"locked {LAMBDA}v window {lo:.3f} to {hi:.3f}")
            elif verdict.rule != "fixed point" and first <= lo <= last:
                ax.axvline(lo, color=COLOURS["refuted"], linestyle=(0, (4, 3)), linewidth=1.4, zorder=3,
                           label=f"clip-band rule (refuted): {lo:.3f}")
        if prediction.lambda_v is None:
            ax.text(0.985, 0.03, f"locked prediction: no cliff up to {LAMBDA} = {prediction.lambda_max:g}",
                    transform=ax.transAxes, ha="right", va="bottom", color=COLOURS["cliff"], zorder=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2})
        if report is not None:
            inside = [(lam, rate) for lam, rate in zip(report.lambdas, report.parse_rate.analytic)
                      if first - 1e-9 <= lam <= last + 1e-9]
            if inside:
                ax.plot([lam for lam, _ in inside], [rate for _, rate in inside], color=COLOURS["predicted"],
                        linewidth=1.6, zorder=3, gid="sweep-predicted",
                        label="predicted fixed point (the audit)")
        convergence = sweep_report.convergence
        if convergence is not None and convergence.runs_at_one is not None and first <= 1.0 <= last:
            start, target = convergence.runs_at_one, convergence.fixed_point_at_one
            ax.annotate("", xy=(1.0, target), xytext=(1.0, start), zorder=6,
                        arrowprops={"arrowstyle": "<->", "color": COLOURS["predicted"], "linewidth": 1.4})
            progress = "" if convergence.progress is None else \
                f" ({max(convergence.progress, 0):.0%} of the way from the warm start)"
            # The words go in the clear lower left, boxed, rather than over the lines.
            ax.text(0.015, 0.12, f"at {LAMBDA} = 1 (↕) the runs stayed {abs(target - start):.2f} from the fixed "
                                 f"point{progress}", transform=ax.transAxes, color=COLOURS["predicted"], zorder=7,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 2})
        ax.set_ylim(-0.02, 1.04)
        ax.set_ylabel("strict parse rate")
        ax.set_title(f"After training: the parse rate each run reached, against {LAMBDA}")
        ax.grid(alpha=0.25)
        quality = next((list(r.metrics)[-1] for r in runs if r.metrics), None)
        if quality is not None:
            for seed in seeds:
                scored = sorted((r for r in runs if r.seed == seed and quality in r.metrics), key=lambda r: r.lam)
                quality_ax.plot([r.lam for r in scored], [r.metrics[quality] for r in scored], color=COLOURS["quality"],
                                alpha=0.35, linewidth=1.0, marker=".")
            means = [_pooled(runs, lam, lambda r: r.metrics.get(quality)) for lam in grid]
            shown = [(lam, m) for lam, m in zip(grid, means) if m is not None]
            quality_ax.plot([lam for lam, _ in shown], [m for _, m in shown], color=COLOURS["quality"], marker="D",
                            linewidth=2.0, gid="sweep-quality")
            for lam, m in shown:
                hovers.add(quality_ax, lam, m, f"{LAMBDA} {lam:g}: {metric_name(quality)} {m:.3f} on the outputs "
                                               f"that parse (mean of seeds)", size=12)
            quality_ax.set_ylabel(f"{metric_name(quality)}\non parsed outputs")
        else:
            quality_ax.text(0.5, 0.5, "no task metric (the eval records hold no targets)", ha="center",
                            va="center", transform=quality_ax.transAxes)
        quality_ax.set_ylim(-0.02, 1.04)
        quality_ax.set_xlim(first - 0.03 * x_range, last + 0.03 * x_range)
        quality_ax.set_xlabel(f"{LAMBDA} (1: plain distillation; above 1: extrapolating past the teacher)")
        quality_ax.grid(alpha=0.25)
        _legend_below(quality_ax, handles=ax.get_legend_handles_labels()[0],
                      labels=ax.get_legend_handles_labels()[1])
        quality_ax.get_legend().set_bbox_to_anchor((0.5, -0.42))
        return _svg(fig, hovers)
