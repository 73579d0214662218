"""The gate's output: plain text, one JSON object, or GitHub Actions annotations.

Labels and values in it come from model outputs, schemas and config files, so text and
annotations carry them through ``printable``: an escape sequence or a line break in a
class label must not reach a terminal or a CI log raw. JSON escapes them itself."""

from __future__ import annotations

import json
from pathlib import Path

from cliffaudit.gate.proposal import Origin, Proposal
from cliffaudit.gate.verdict import Verdict
from cliffaudit.report.preconditions import POLICIES

FORMATS = ("text", "json", "github")


Judged = list[tuple[Verdict, Proposal]]
MAX_LISTED = 20  # launches listed one by one in text and annotations


def render(output_format: str, verdict: Verdict, proposal: Proposal, report_path: Path,
           judged: Judged | None = None) -> str:
    """The verdict of the launch that decides (``proposal``), with every launch judged."""
    judged = judged or [(verdict, proposal)]
    if output_format == "json":
        return json.dumps(as_json(verdict, proposal, report_path, judged), indent=2)
    if output_format == "github":
        return "\n".join(github_annotations(verdict, proposal, report_path, judged))
    return "\n".join(text_lines(verdict, proposal, report_path, judged))


def printable(text: str) -> str:
    """``text`` with every character that is not printable (controls such as ESC and CR,
    line and paragraph separators, bidi overrides) written as a Python escape."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def all_warnings(verdict: Verdict, proposal: Proposal) -> list[str]:
    return [*proposal.warnings, *verdict.warnings]


# ----------------------------------------------------------------------------- text


def launch_lines(judged: Judged) -> list[str]:
    """One line per launch, when a file holds several: each is judged, the worst decides."""
    if len(judged) < 2:
        return []
    lines = [f"{len(judged)} launches, each judged; the worst is shown above:"]
    lines += [f"lambda {p.lam.value:g} at {p.location}: {'PASS' if v.passed else 'FAIL'}"
              for v, p in judged[:MAX_LISTED]]
    if len(judged) > MAX_LISTED:
        lines.append(f"and {len(judged) - MAX_LISTED} more")
    return lines


def text_lines(verdict: Verdict, proposal: Proposal, report_path: Path, judged: Judged | None = None) -> list[str]:
    lines = [f"{'PASS' if verdict.passed else 'FAIL'}: {verdict.reason}",
             f"  lambda = {proposal.lam.value:g} from {proposal.lam.describe()}", f"  {_clip_text(proposal)}"]
    lines += [f"    (also stated, larger: c = {o.value:g} from {o.describe()})" for o in proposal.other_clips]
    lines.append(f"  budget: {_budget_text(proposal)}")
    if proposal.reference is not None:
        reference = proposal.reference
        lines.append(f"  reference: the launch {reference.role} {reference.path} ({reference.describe()}), the "
                     f"model the audit extrapolated away from")
    if proposal.teacher is not None:
        teacher = proposal.teacher
        lines.append(f"  teacher: the launch {teacher.role} {teacher.path} ({teacher.describe()}), the teacher the "
                     f"audit probed")
    lines.append(f"  bound: {verdict.bound.describe()} ({report_path})")
    if verdict.predicted is not None:
        lines.append(f"  {verdict.predicted.describe()}")
    lines.append(f"  audited grid: lambda {verdict.grid[0]:g} to {verdict.grid[1]:g}")
    lines += [f"  {line}" for line in launch_lines(judged or [])]
    lines += [f"warning: {w}" for w in all_warnings(verdict, proposal)]
    if verdict.warnings:
        lines.append(f"  (preconditions: {POLICIES[verdict.preconditions]}; --preconditions no-fail or all-pass makes "
                     f"them fail the launch)" if verdict.preconditions == "warn"
                     else f"  (preconditions: {POLICIES[verdict.preconditions]})")
    return [printable(line) for line in lines]


def _clip_text(proposal: Proposal) -> str:
    note = "it does not move the cliff, only how fast training gets there"
    if proposal.clip is None:
        return f"c: not stated ({note})"
    return f"c = {proposal.clip.value:g} from {proposal.clip.describe()} ({note})"


def _budget_text(proposal: Proposal) -> str:
    if proposal.rollouts is None:
        return "unknown (give --rollouts, or a config that states it): every cliff counts as reachable"
    return f"{int(proposal.rollouts.value):,} rollouts from {proposal.rollouts.describe()}"


# ----------------------------------------------------------------------------- json


def as_json(verdict: Verdict, proposal: Proposal, report_path: Path, judged: Judged | None = None) -> dict:
    return {
        "verdict": "pass" if verdict.passed else "fail",
        "exit_code": verdict.exit_code,
        "reason": verdict.reason,
        "proposed_lambda": verdict.proposed_lambda,
        "margin": verdict.margin,
        "bound": verdict.bound.value,
        "lambda_v": verdict.bound.lambda_v,
        "lambda_max": verdict.bound.lambda_max,
        "binding_class": verdict.bound.binding_class,
        "must_be_below": verdict.must_be_below,
        "grid": list(verdict.grid),
        "rollouts": verdict.rollouts,
        "clip": None if proposal.clip is None else proposal.clip.value,
        "report": str(report_path),
        "framework": proposal.framework,
        "config": None if proposal.config is None else str(proposal.config),
        "sources": {"lambda": _origin_json(proposal.lam), "clip": _origin_json(proposal.clip),
                    "rollouts": _origin_json(proposal.rollouts),
                    "reference": None if proposal.reference is None else {
                        "path": proposal.reference.path, "key": proposal.reference.key,
                        "written": proposal.reference.written, "location": proposal.reference.location,
                        "meaning": f"{proposal.reference.what}: the launch {proposal.reference.role} it"},
                    "teacher": None if proposal.teacher is None else {
                        "path": proposal.teacher.path, "key": proposal.teacher.key,
                        "written": proposal.teacher.written, "location": proposal.teacher.location,
                        "meaning": f"{proposal.teacher.what}: the launch {proposal.teacher.role} it"},
                    "other_clips": [_origin_json(o) for o in proposal.other_clips]},
        "warnings": all_warnings(verdict, proposal),
        "preconditions": {"policy": verdict.preconditions, "meaning": POLICIES[verdict.preconditions]},
        "predicted_parse_rate": None if verdict.predicted is None else {
            "lambda": verdict.predicted.lam, "rate": verdict.predicted.rate, "band": list(verdict.predicted.band),
            "at_lambda_1": verdict.predicted.at_one, "drop": verdict.predicted.drop,
            "falls_below": verdict.predicted.best_below - verdict.predicted.drop},
        "launches": [{"lambda": p.lam.value, "location": p.location, "verdict": "pass" if v.passed else "fail",
                      "reason": v.reason} for v, p in judged or [(verdict, proposal)]],
    }


def _origin_json(origin: Origin | None) -> dict | None:
    if origin is None:
        return None
    return {"value": origin.value, "key": origin.key, "written": origin.written, "location": origin.location,
            "meaning": origin.meaning}


# ----------------------------------------------------------------------------- github


def github_annotations(verdict: Verdict, proposal: Proposal, report_path: Path,
                       judged: Judged | None = None) -> list[str]:
    """Workflow commands GitHub Actions turns into annotations on the run and the
    files: warnings for failed preconditions and config caveats, then the verdict
    (an error on the line that sets lambda when it fails, a notice when it passes)."""
    lines = [_command("notice", f"lambda = {proposal.lam.value:g} from {proposal.lam.describe()}; "
                                f"{_clip_text(proposal)}; budget: {_budget_text(proposal)}; "
                                f"bound: {verdict.bound.describe()}", title="cliffaudit gate inputs")]
    listed = launch_lines(judged or [])
    if listed:
        lines.append(_command("notice", "; ".join(listed), file=proposal.config, title="cliffaudit gate launches"))
    for warning in proposal.warnings:
        lines.append(_command("warning", warning, file=proposal.config, title="cliffaudit gate: config"))
    for warning in verdict.warnings:
        status = "unclear" if warning.split(":", 1)[0].endswith(" is unclear") else "failed"
        lines.append(_command("warning", warning, file=report_path, title=f"cliffaudit: precondition {status}"))
    file, line = (proposal.lam.file, proposal.lam.line) if proposal.lam.file else (report_path, None)
    if verdict.passed:
        lines.append(_command("notice", verdict.reason, file=file, line=line, title="cliffaudit gate passed"))
    else:
        lines.append(_command("error", verdict.reason, file=file, line=line, title="cliffaudit gate failed"))
    return lines


def _command(kind: str, message: str, file: Path | None = None, line: int | None = None, title: str = "") -> str:
    properties = []
    if file is not None:
        properties.append(f"file={_escape_property(str(file))}")
    if line is not None:
        properties.append(f"line={line}")
    if title:
        properties.append(f"title={_escape_property(title)}")
    head = f"::{kind} {','.join(properties)}" if properties else f"::{kind}"
    return f"{head}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    # GitHub's workflow-command encoding; line breaks, like every unprintable character, are
    # already escaped by printable (GitHub would decode %0A into a line break).
    return printable(text).replace("%", "%25")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")
