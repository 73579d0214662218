"""The lambda bound a report gives at a clip c, as the gate states it.

``cliffaudit.report.thresholds`` computes it: at the report's own clip, its
``recommended_lambda`` (the lower end of the binding class's 90% bootstrap
interval); at another clip, per class the smaller of the reduced threshold
``theory.lambda_star(p, b, c)`` from the stored p and b and the exact one from
the stored ``mean_tail_ratio`` curve, then the smallest over classes. The
bootstrap needs per-position data the report does not keep, so the bound at
another clip is a point estimate, and the gate says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliffaudit.report import thresholds
from cliffaudit.report.model import AuditReport


@dataclass(frozen=True)
class Bound:
    """The lambda a proposal must stay below; ``value`` is None when no class reaches
    the cliff on the audited grid."""

    value: float | None
    clip: float
    point_estimate: bool  # True when recomputed at a clip other than the report's
    binding_class: str | None

    def describe(self) -> str:
        if self.point_estimate:
            kind = (f"point estimate at c = {self.clip:g}, recomputed from the stored per-class p, b and tail-ratio "
                    f"curves (no bootstrap interval exists for another clip)")
        else:
            kind = f"recommended lambda of the report: lower end of the 90% interval at its clip c = {self.clip:g}"
        binding = f"; binding class {self.binding_class!r}" if self.binding_class else ""
        return f"{kind}{binding}"


def bound_at_clip(report: AuditReport, clip: float) -> Bound:
    """The report's recommended lambda at its own clip, a recomputed point estimate at another."""
    value, binding, is_interval = thresholds.bound_at(report, clip)
    if is_interval and value is None and binding is not None:
        # A binding class whose interval has no finite lower end still has a finite
        # threshold: failing closed, that bounds lambda rather than "no cliff".
        row = next((r for r in report.classes if r.label == binding), None)
        value = None if row is None else row.lambda_star
    return Bound(value, report.settings.clip if is_interval else clip, not is_interval, binding)
