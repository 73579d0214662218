"""The lambda bound a report gives, as the gate states it.

A schema-2 report predicts the G-OPD fixed point's parse rate and its cliff
lambda_v; the bound is its ``recommended_lambda``, the safe end of lambda_v's
interval. The importance-weight cap c does not move it: c changes how fast
training reaches the fixed point, not where its format breaks (docs/theory.md),
so the gate reads c from a config only to report it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliffaudit.report.model import AuditReport


@dataclass(frozen=True)
class Bound:
    """The lambda a proposal must stay below; ``value`` is None when the audit found no
    cliff up to ``lambda_max``."""

    value: float | None
    lambda_v: float | None
    lambda_max: float
    binding_class: str | None
    source: str  # "rollouts" or "analytic"

    def describe(self) -> str:
        if self.value is None:
            return f"no cliff up to lambda_max = {self.lambda_max:g}"
        binding = f"; binding class {self.binding_class!r}" if self.binding_class else ""
        return (f"recommended lambda of the report: the safe end of lambda_v = {self.lambda_v:.4f}'s interval, "
                f"from {'the analytic curve' if self.source == 'analytic' else 'the fixed point samples'}{binding}")


def report_bound(report: AuditReport) -> Bound:
    return Bound(report.recommended_lambda, report.cliff.lambda_v, report.cliff.lambda_max, report.binding_class,
                 report.cliff.source)
