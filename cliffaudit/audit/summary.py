"""The audit's few lines on the terminal."""

from __future__ import annotations

from cliffaudit.audit.assemble import interval_end, source_text
from cliffaudit.report import (
    AuditReport,
)


def summary(report: AuditReport) -> str:
    cliff = report.cliff
    lines = [f"cliffaudit audit: {report.records} records, teacher parse rate {report.teacher_parse_rate:.3f}, "
             f"student {report.student_parse_rate:.3f}"]
    grid = report.lambdas
    points = ", ".join(f"{r.lam:g}: {r.parse_rate:.3f}" for r in report.parse_rate.rollouts)
    lines.append(f"fixed point's parse rate: analytic {report.parse_rate.analytic[0]:.3f} at lambda {grid[0]:g} to "
                 f"{report.parse_rate.analytic[-1]:.3f} at {grid[-1]:g}; sampled {{{points}}}")
    if cliff.lambda_v is None:
        lines.append(f"cliff: none up to lambda_max = {cliff.lambda_max:g} (drop {cliff.drop:g})")
    else:
        lines.append(f"cliff: lambda_v = {cliff.lambda_v:.3f} ({cliff.interval[0]:.3f} to {interval_end(cliff.interval[1])}, "
                     f"from {source_text(cliff)}); binding class {report.binding_class!r}")
    for row in report.classes[:6]:
        share = "" if row.share_of_drop is None else f" share={row.share_of_drop:.2f}"
        lines.append(f"  {row.label:<28} p={row.teacher_valid_mass:.4f} b={row.student_valid_mass:.4f}{share}")
    if len(report.classes) > 6:
        lines.append(f"  ... {len(report.classes) - 6} more classes in the report")
    lines.append(f"recommended: {report.recommendation}")
    for pre in report.preconditions:
        lines.append(f"  [{pre.status}] {pre.name}: {pre.detail}")
    lines.append(f"{report.run.processes} process(es), {report.run.wall_seconds:.1f} s, "
                 f"{report.run.tokens_probed / max(report.run.wall_seconds, 1e-9):,.0f} tokens probed/s, "
                 f"peak memory {report.run.peak_memory_bytes / 2**20:.0f} MiB ({report.device})")
    lines.extend(f"warning: {w}" for w in report.warnings)
    return "\n".join(lines)

