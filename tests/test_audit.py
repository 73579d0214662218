"""The audit end to end on tiny saved checkpoints, a known answer, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit import audit, probe, theory
from cliffaudit.cli import main
from cliffaudit.contract import TokenContract
from cliffaudit.report import AuditSettings

from .contract.conftest import ranking_schema, train_byte_level

SCALE = 0.6  # student logits = SCALE * teacher logits: a warm start hotter than the teacher


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    tokenizer = train_byte_level(420, use_regex=True)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    torch.manual_seed(1)
    teacher = LlamaForCausalLM(config)
    student = LlamaForCausalLM(config)
    student.load_state_dict(teacher.state_dict())
    with torch.no_grad():
        student.lm_head.weight.mul_(SCALE)
    for name, model in (("teacher", teacher), ("student", student)):
        model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    probes = root / "probes.jsonl"
    probes.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"rank {i}", "schema": ranking_schema()}) + "\n"
                              for i in range(4)))
    return root


def _settings(root, **extra):
    return AuditSettings(teacher=str(root / "teacher"), student=str(root / "student"), probes=str(root / "probes.jsonl"),
                         samples_per_prompt=3, max_new_tokens=6, batch_size=5, lambda_step=0.05, **extra)


@pytest.fixture(scope="module")
def report(checkpoints):
    return audit.run_audit(_settings(checkpoints))


def test_report_rows_follow_the_theory(report):
    labels = [row.label for row in report.classes]
    assert len(labels) == len(set(labels)) and labels
    for row in report.classes:
        expected = theory.lambda_star(row.teacher_valid_mass, row.student_valid_mass, report.settings.clip)
        assert row.reduced_lambda_star == (expected if math.isfinite(expected) else None)
        assert row.positions > 0
    finite = [r for r in report.classes if r.lambda_star is not None]
    if finite:
        assert report.binding_class == min(finite, key=lambda r: r.lambda_star).label


def test_known_answer_student_mass_per_class(checkpoints, report):
    """b of every class equals an independent computation from the teacher's logits
    and the known temperature of the student."""
    settings = report.settings
    pair = probe.load_pair(settings.teacher, settings.student, "cpu", "float32")
    records = audit.read_probes(settings.probes)
    contract = TokenContract.from_tokenizer(pair.tokenizer)
    sums: dict[str, list[float]] = {}
    for r, (record, schema) in enumerate(records):
        prompt = probe.render_prompt(pair.tokenizer, record.prompt, record.messages, True)
        for k in range(settings.samples_per_prompt):
            seed = audit.sample_seed(settings.seed, record.id, k, "student")
            output = probe.sample(pair.student, [prompt], [seed], settings.max_new_tokens,
                                  pair.tokenizer.eos_token_id, pair.tokenizer.pad_token_id)[0]
            seq = contract.analyze_batch([output], [schema]).sequences[0]
            with torch.no_grad():
                logits = pair.teacher(input_ids=torch.tensor([prompt + output])).logits[0].double()
            for t, lbl in enumerate(seq.labels):
                student_probs = torch.softmax(SCALE * logits[len(prompt) - 1 + t], -1).numpy()
                valid = contract.analyze_batch([output], [schema]).valid_mask(seq.mask_index[t])
                sums.setdefault(lbl, []).append(float(student_probs[valid].sum()))
    rows = {row.label: row for row in report.classes}
    assert set(rows) == set(sums)
    for lbl, values in sums.items():
        assert rows[lbl].student_valid_mass == pytest.approx(np.mean(values), abs=1e-6)


def test_truncated_samples_are_warned_about(report):
    # max_new_tokens=6 is far too short for a ranking: every sample that did not break early is truncated.
    assert any("reached --max-new-tokens (6)" in w for w in report.warnings)


def test_same_seed_same_report(checkpoints, report):
    again = audit.run_audit(_settings(checkpoints))
    assert again.model_dump() == report.model_dump()


def test_cli_writes_report_and_summary(checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["audit", "--teacher", str(checkpoints / "teacher"), "--student", str(checkpoints / "student"),
                 "--probes", str(checkpoints / "probes.jsonl"), "--samples-per-prompt", "2", "--max-new-tokens", "4",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert data["schema_version"] == 1 and data["records"] == 4
    assert "recommended:" in printed and str(out / "report.json") in printed
    assert [p["name"] for p in data["preconditions"]] == ["calibrated", "single binding class",
                                                           "warm start has parse headroom"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json\n", "probes.jsonl:1: not JSON"),
        ('{"id": "a"}\n', "probes.jsonl:1: record: Value error, needs exactly one of 'prompt' or 'messages'"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "object", "properties": {}, '
         '"additionalProperties": false}}\n{"id": "a", "prompt": "y"}\n', "probes.jsonl:2: duplicate id 'a'"),
        ('{"id": "a", "prompt": "x"}\n', "probes.jsonl:1: no 'schema' in the record"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", '
         '"pattern": "x"}}, "additionalProperties": false}}\n', "probes.jsonl:1: schema: unsupported keyword 'pattern'"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "objec"}}\n', "probes.jsonl:1: schema: not a valid JSON Schema"),
    ],
)
def test_bad_probe_lines_exit_two_and_write_nothing(checkpoints, tmp_path, capsys, content, fragment):
    probes = tmp_path / "probes.jsonl"
    probes.write_text(content)
    out = tmp_path / "out"
    code = main(["audit", "--teacher", str(checkpoints / "teacher"), "--student", str(checkpoints / "student"),
                 "--probes", str(probes), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1
    assert not out.exists()


def test_mismatched_vocabularies_exit_two(checkpoints, tmp_path, capsys):
    other = tmp_path / "other"
    train_byte_level(430, use_regex=True).save_pretrained(other)
    LlamaForCausalLM(LlamaConfig(vocab_size=430, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(other)
    code = main(["audit", "--teacher", str(checkpoints / "teacher"), "--student", str(other),
                 "--probes", str(checkpoints / "probes.jsonl"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "vocabularies differ: id 420" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
