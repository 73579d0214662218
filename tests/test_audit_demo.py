"""The audit end to end on the embedded demo checkpoints, checked position by position
against the theory applied to full distributions computed here, independently."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from cliffaudit import audit, probe, theory
from cliffaudit.contract import TokenContract
from cliffaudit.demo import paths
from cliffaudit.report import AuditSettings

RECORDS = 3  # about 180 positions: theory's exact search costs ~0.1 s each
CLIP = 2.0


@pytest.fixture(scope="module")
def demo_audit(tmp_path_factory):
    probes = tmp_path_factory.mktemp("demo") / "probes.jsonl"
    lines = paths.PROBES_PATH.read_text(encoding="utf-8").splitlines()[:RECORDS]
    probes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    settings = AuditSettings(teacher=str(paths.TEACHER_DIR), student=str(paths.STUDENT_DIR), probes=str(probes),
                             samples_per_prompt=2, batch_size=5, clip=CLIP, device="cpu", dtype="float32")
    return audit.run_audit(settings)


def _independent_thresholds(settings: AuditSettings) -> dict[str, dict[str, list[float]]]:
    """Per class: each student-sampled position's p, b and both thresholds, from
    one-at-a-time float64 forwards of the two models (no batching, no chunking)."""
    pair = probe.load_pair(settings.teacher, settings.student, "cpu", "float32")
    tokenizer = pair.tokenizer
    contract = TokenContract.from_tokenizer(tokenizer)
    grid_end = settings.lambda_max
    out: dict[str, dict[str, list[float]]] = {}
    for record, schema in audit.read_probes(settings.probes):
        prompt = probe.render_prompt(tokenizer, record.prompt, record.messages, True)
        for k in range(settings.samples_per_prompt):
            seed = audit.sample_seed(settings.seed, record.id, k, "student")
            output = probe.sample(pair.student, [prompt], [seed], settings.max_new_tokens,
                                  tokenizer.eos_token_id, tokenizer.pad_token_id)[0]
            batch = contract.analyze_batch([output], [schema])
            seq = batch.sequences[0]
            with torch.no_grad():
                ids = torch.tensor([prompt + output])
                teacher = torch.log_softmax(pair.teacher(input_ids=ids).logits[0].double(), -1).numpy()
                student = torch.log_softmax(pair.student(input_ids=ids).logits[0].double(), -1).numpy()
            for t, label in enumerate(seq.labels):
                row = len(prompt) - 1 + t
                valid = batch.valid_mask(seq.mask_index[t])
                p = float(np.exp(teacher[row][valid]).sum())
                b = float(np.exp(student[row][valid]).sum())
                exact = theory.exact_lambda_star(teacher[row], student[row], valid, CLIP)
                entry = out.setdefault(label, {"p": [], "b": [], "reduced": [], "exact": []})
                entry["p"].append(p)
                entry["b"].append(b)
                entry["reduced"].append(theory.lambda_star(p, b, CLIP))
                # The audit reads thresholds off its lambda grid: beyond its end they are unbounded.
                entry["exact"].append(exact if exact <= grid_end else math.inf)
    return out


def _percentiles(values: list[float]) -> dict[int, float]:
    return {q: float(np.percentile(np.array(values), q, method="lower")) for q in (10, 50, 90)}


def _as_float(value) -> float:
    return math.inf if value is None else value


def test_demo_audit_matches_theory_position_by_position(demo_audit):
    report = demo_audit
    assert report.student_parse_rate < report.teacher_parse_rate
    labels = [row.label for row in report.classes]
    assert len(labels) == len(set(labels))
    expected = _independent_thresholds(report.settings)
    assert set(labels) == set(expected)  # one row per class the student's samples visit
    for row in report.classes:
        mine = expected[row.label]
        assert row.positions == len(mine["p"])
        assert row.teacher_valid_mass == pytest.approx(np.mean(mine["p"]), abs=1e-6)
        assert row.student_valid_mass == pytest.approx(np.mean(mine["b"]), abs=1e-6)
        # The Bernoulli reduction of the row is the theory function of the row's own p, b, c.
        reduced = theory.lambda_star(row.teacher_valid_mass, row.student_valid_mass, CLIP)
        assert _as_float(row.reduced_lambda_star) == pytest.approx(reduced, rel=1e-12)
        # Per position, the thresholds equal theory's applied to that position's full
        # distributions; the report keeps their percentiles (actual order statistics).
        for q, value in _percentiles(mine["reduced"]).items():
            assert _as_float(row.reduced_percentiles[str(q)]) == pytest.approx(value, rel=1e-4), (row.label, q)
        for q, value in _percentiles(mine["exact"]).items():
            # The audit interpolates on its 0.01 grid; theory refines with brentq.
            assert _as_float(row.exact_percentiles[str(q)]) == pytest.approx(value, abs=2e-3), (row.label, q)


def test_demo_binding_class_is_the_argmin(demo_audit):
    finite = [row for row in demo_audit.classes if row.lambda_star is not None]
    assert finite, "the demo has a finite threshold in every run"
    binding = min(finite, key=lambda row: row.lambda_star)
    assert demo_audit.binding_class == binding.label
    assert demo_audit.recommended_lambda == binding.interval[0]
    assert demo_audit.recommended_lambda <= binding.lambda_star


def test_demo_report_is_plain_json(demo_audit):
    # What `make demo` writes: a report that survives a JSON round trip unchanged.
    data = json.loads(demo_audit.model_dump_json())
    assert data["binding_class"] == demo_audit.binding_class
