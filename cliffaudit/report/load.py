"""Read a report.json back, refusing anything that is not a consistent report of this version.

A report is judged by the gate and re-rendered by ``cliffaudit report``: both must
refuse what they could misread. So a report is parsed strictly (no ``"1.5"`` for a
number; no NaN, Infinity or a number too large for a float such as ``1e999``; every
number in its range, by the model's field constraints) and then checked against the
invariants an audit always satisfies."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

from pydantic import ValidationError

from cliffaudit.errors import InputError
from cliffaudit.report.model import SCHEMA_VERSION, AuditReport
from cliffaudit.report.preconditions import refine_stored
from cliffaudit.theory import DRAWS_TO_REACH


class ReportError(InputError):
    """An unusable report; the message names the file and why."""


def load_report(path: Path) -> AuditReport:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not a cliffaudit report (not UTF-8 text)") from None
    try:
        data = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        other = other_output(Path(path), text, None)
        if other:
            raise ReportError(f"{path}: {other}") from None
        raise ReportError(f"{path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    except RecursionError:
        raise ReportError(f"{path}: not a cliffaudit report (nested too deeply to read)") from None
    other = other_output(Path(path), text, data)
    if other:
        raise ReportError(f"{path}: {other}")
    if not isinstance(data, dict) or "schema_version" not in data:
        raise ReportError(f"{path}: not a cliffaudit report (no schema_version)")
    if data["schema_version"] == 1:
        raise ReportError(f"{path}: a schema_version 1 report predicts the clip-band cliff, which the sweeps "
                          f"refuted; re-audit with `cliffaudit audit` for a schema_version {SCHEMA_VERSION} report")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ReportError(f"{path}: report schema_version {data['schema_version']!r}, "
                          f"this cliffaudit reads {SCHEMA_VERSION}: re-run the audit")
    try:
        report = AuditReport.model_validate_json(text, strict=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        raise ReportError(f"{path}: field {field}: {first['msg']}") from None
    report = refine_stored(report, data.get("preconditions"))
    problem = inconsistency(report)
    if problem:
        raise ReportError(f"{path}: {problem}")
    return report


def _is_sweep(data) -> bool:
    return isinstance(data, dict) and {"prediction", "runs", "verdicts"} <= data.keys()


def _is_lock(data) -> bool:
    return isinstance(data, dict) and {"sweep_settings", "report_sha256"} <= data.keys()


def _locked_report_path(path: Path, data) -> str | None:
    """The report a sweep.json or prediction.json locked its prediction from: the copy the
    sweep keeps beside the lock (the original may have been re-audited since), else the
    path the lock names."""
    kept = path.parent / "locked-report.json"
    if kept.is_file():
        return str(kept)
    lock = data.get("prediction") if _is_sweep(data) else data
    found = lock.get("report_path") if isinstance(lock, dict) else None
    return found if isinstance(found, str) and found.isprintable() else None


def _report_beside(path: Path) -> str:
    """The report in ``path``'s folder (a sweep's folder keeps the one it locked), or a hint."""
    for name in ("report.json", "locked-report.json"):
        if (path.parent / name).is_file():
            return f"{path.parent / name}, beside it"
    return "the report.json it came from"


def other_output(path: Path, text: str, data) -> str | None:
    """What ``path`` is when it is another cliffaudit output than an audit report (a
    sweep.json, a prediction.json, a rendered page, the per-sample log), saying which
    file to give instead; None when it is none of those. ``data`` is the parsed JSON,
    None when the text is not one JSON document."""
    if _is_sweep(data):
        locked = _locked_report_path(path, data)
        return (f"a sweep.json (what `cliffaudit sweep` writes), not an audit report: give the report.json it tested "
                f"({locked or _report_beside(path)}); to read both on one page: cliffaudit report "
                f"{locked or 'REPORT.json'} --sweep {path}")
    if _is_lock(data):
        locked = _locked_report_path(path, data)
        return (f"a sweep's prediction lock (prediction.json), not an audit report: give the report.json it locked "
                f"({locked or _report_beside(path)})")
    if data is None and text.lstrip()[:15].lower().startswith(("<!doctype html", "<html")):
        return f"an HTML page (what cliffaudit renders), not report.json: give {_report_beside(path)}"
    if data is None:
        first = text.split("\n", 1)[0]
        try:
            line = json.loads(first)
        except (ValueError, RecursionError):
            return None
        if isinstance(line, dict) and {"role", "tokens"} <= line.keys():
            return f"the audit's per-sample log (samples.jsonl), not report.json: give {_report_beside(path)}"
    return None


def _no_constants(name: str):
    raise ValueError(f"{name} is not a JSON number")


def inconsistency(report: AuditReport) -> str | None:
    """The first thing in ``report`` that no audit writes, or None."""
    lambdas = report.lambdas
    if not lambdas or any(b <= a for a, b in pairwise(lambdas)) or lambdas[0] < 0:
        return "the lambda grid is empty, negative or not ascending"
    rates = report.parse_rate
    for name in ("analytic", "analytic_low", "analytic_high"):
        values = getattr(rates, name)
        if len(values) != len(lambdas):
            return f"parse_rate.{name} has {len(values)} values for {len(lambdas)} grid points"
    if not all(p.valid <= p.samples for p in rates.rollouts):
        return "a sampled parse rate counts more valid samples than samples"
    cliff = report.cliff
    if cliff.lambda_max != lambdas[-1]:
        return f"cliff.lambda_max {cliff.lambda_max!r} is not the grid's end {lambdas[-1]!r}"
    if (cliff.lambda_v is None) != (report.recommended_lambda is None):
        return "recommended_lambda and cliff.lambda_v disagree on whether there is a cliff"
    if cliff.lambda_v is not None:
        lo, hi = cliff.interval  # hi None: the interval runs past the grid's end
        if lo is None or not (lambdas[0] <= lo <= cliff.lambda_v <= (math.inf if hi is None else hi)):
            return f"cliff.interval {cliff.interval!r} does not hold lambda_v {cliff.lambda_v!r} inside the grid"
        if report.recommended_lambda != lo:
            return f"recommended_lambda {report.recommended_lambda!r} is not the safe end of lambda_v's interval"
    if report.reachability.draws_to_reach != DRAWS_TO_REACH:
        # the gate passes a cliff past the bound when its classes are drawn fewer times than this
        return (f"reachability.draws_to_reach {report.reachability.draws_to_reach!r} is not the {DRAWS_TO_REACH:g} "
                f"draws every audit uses")
    if not report.classes:
        return "the report has no classes"
    labels = {row.label for row in report.classes}
    if report.binding_class is not None and report.binding_class not in labels:
        return f"binding_class {report.binding_class!r} is not one of the report's classes"
    return None
