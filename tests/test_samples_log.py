"""samples.jsonl: every output the audit sampled, from which each parse rate in the report
is re-derived here, sample by sample."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from cliffaudit.cli import main
from cliffaudit.demo import paths
from cliffaudit.report.load import load_report
from cliffaudit.report.samples import SAMPLES_SCHEMA_PATH, LoggedSample, read_samples, samples_json_schema

HABIT = Path(paths.__file__).resolve().parent / "habit"


@pytest.fixture(scope="module")
def habit_audit(tmp_path_factory):
    """The habit pair (a real cliff) on 12 records: the teacher breaks at `root open`, the
    fixed point is sampled at several lambdas."""
    out = tmp_path_factory.mktemp("habit")
    code = main(["audit", "--teacher", str(HABIT / "checkpoints" / "teacher"),
                 "--student", str(HABIT / "checkpoints" / "student"), "--probes", str(HABIT / "data" / "probes.jsonl"),
                 "--limit", "12", "--samples-per-prompt", "4", "--fixed-point-lambdas", "2", "--out", str(out)])
    assert code == 0
    return load_report(out / "report.json"), read_samples(out / "samples.jsonl"), out


@pytest.mark.slow
def test_every_rate_in_the_report_is_re_derived_from_samples_jsonl(habit_audit):
    report, samples, _ = habit_audit
    by_role = {role: [s for s in samples if s.role == role] for role in ("teacher", "student", "fixed point")}
    per_model = report.records * report.settings.samples_per_prompt
    assert len(by_role["teacher"]) == len(by_role["student"]) == per_model

    def rate(group: list[LoggedSample]) -> float:
        return sum(s.strictly_valid for s in group) / len(group)

    assert rate(by_role["teacher"]) == pytest.approx(report.teacher_parse_rate, abs=1e-12)
    assert rate(by_role["student"]) == pytest.approx(report.student_parse_rate, abs=1e-12)
    assert len(report.parse_rate.rollouts) >= 2, "the fixed point was sampled past lambda = 1"
    for point in report.parse_rate.rollouts:
        group = by_role["teacher"] if point.lam == 1.0 else \
            [s for s in by_role["fixed point"] if s.lam == pytest.approx(point.lam, abs=1e-12)]
        assert len(group) == point.samples and sum(s.strictly_valid for s in group) == point.valid
        assert point.parse_rate == pytest.approx(rate(group), abs=1e-12)
        counted = Counter(s.counted_as for s in group if not s.strictly_valid)
        assert dict(counted) == point.violations, point.lam
    logged_lambdas = {s.lam for s in by_role["fixed point"]}
    assert logged_lambdas == {p.lam for p in report.parse_rate.rollouts if p.lam != 1.0}


@pytest.mark.slow
def test_each_logged_sample_says_where_it_breaks(habit_audit):
    report, samples, out = habit_audit
    broken = [s for s in samples if s.first_break is not None]
    assert broken and all(s.verdict != "strictly valid" or s.strictly_valid for s in samples)
    fenced = [s for s in broken if s.first_break.label == "root open"]
    assert fenced and all(s.text.startswith("```") for s in fenced[:5])  # the habit: a ```json fence
    assert all(0 <= s.first_break.position < len(s.tokens) for s in broken)
    # one seed per (role, record, sample): no two outputs of a role and lambda share one
    keys = Counter((s.role, s.lam, s.seed) for s in samples)
    assert max(keys.values()) == 1
    # token ids, not masses: the log stays near the outputs' own size
    size = (out / "samples.jsonl").stat().st_size
    assert size < 600 * len(samples)


def test_committed_samples_schema_is_up_to_date():
    assert SAMPLES_SCHEMA_PATH.read_text() == samples_json_schema(), "schemas/samples.schema.json: run `make schemas`"


@pytest.mark.slow
def test_every_line_meets_the_committed_schema(habit_audit):
    import json

    import jsonschema

    _, _, out = habit_audit
    schema = json.loads(SAMPLES_SCHEMA_PATH.read_text())
    for line in (out / "samples.jsonl").read_text().splitlines()[:50]:
        jsonschema.validate(json.loads(line), schema)
