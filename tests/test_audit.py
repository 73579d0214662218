"""The audit end to end on tiny saved checkpoints, a known answer, and bad input."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit import audit, inputs, probe, theory
from cliffaudit.cli import main
from cliffaudit.contract import TokenContract
from cliffaudit.contract.background import BackgroundContract

from .conftest import SCALE, ranking_schema, tiny_settings
from .contract.conftest import train_byte_level
from .reproduce import assert_reproduces


def test_report_rows_follow_the_theory(audit_report):
    labels = [row.label for row in audit_report.classes]
    assert len(labels) == len(set(labels)) and labels
    settings = audit_report.settings
    for row in audit_report.classes:
        p, r = row.teacher_valid_mass, row.reference_valid_mass
        expected = theory.bernoulli_lambda_v(min(p, 1.0), min(r, 1.0), settings.drop)
        assert row.bernoulli_lambda_v == (expected if math.isfinite(expected) else None)
        band = theory.clip_band_lambda_star(min(p, 1.0), min(r, 1.0), settings.clip)
        assert row.clip_band_lambda_star == (band if math.isfinite(band) else None)
        assert row.reference_valid_mass == row.student_valid_mass  # no --reference: the warm start
        assert row.teacher_positions + row.student_positions > 0
    shares = {row.label: row.share_of_drop for row in audit_report.classes if row.share_of_drop is not None}
    if audit_report.cliff.lambda_v is None:
        assert audit_report.binding_class is None and audit_report.recommended_lambda is None
    elif shares:
        assert audit_report.binding_class == max(shares, key=shares.get)
        assert sum(shares.values()) == pytest.approx(1.0)


def test_the_report_carries_the_curve_the_cliff_and_the_teachers_point(audit_report):
    rates = audit_report.parse_rate
    assert len(rates.analytic) == len(audit_report.lambdas) == len(rates.analytic_low)
    first = rates.rollouts[0]
    assert first.lam == 1.0 and first.parse_rate == audit_report.teacher_parse_rate  # lambda = 1 is the teacher
    assert first.interval[0] <= first.parse_rate <= first.interval[1]
    assert [r.lam for r in rates.rollouts] == sorted(r.lam for r in rates.rollouts)
    assert len(rates.rollouts) - 1 <= audit_report.settings.fixed_point_lambdas
    assert audit_report.cliff.lambda_max == audit_report.lambdas[-1]


def test_known_answer_student_mass_per_class(tiny_checkpoints, audit_report):
    """b of every class equals an independent computation from the teacher's logits and
    the known temperature of the student, over the positions both models' samples visit."""
    settings = audit_report.settings
    pair = probe.load_pair(settings.teacher, settings.student, "cpu", "float32")
    records = inputs.read_probes(settings.probes)
    contract = TokenContract.from_tokenizer(pair.tokenizer)
    sums: dict[str, list[float]] = {}
    for record, schema in records:
        prompt = probe.render_prompt(pair.tokenizer, record.prompt, record.messages, True)
        for role, model in (("student", pair.student), ("teacher", pair.teacher)):
            for k in range(settings.samples_per_prompt):
                seed = audit.sample_seed(settings.seed, record.id, k, role)
                output = probe.sample(model, [prompt], [seed], settings.max_new_tokens,
                                      pair.tokenizer.eos_token_id, pair.tokenizer.pad_token_id)[0]
                analysed = contract.analyze_batch([output], [schema])
                seq = analysed.sequences[0]
                with torch.no_grad():
                    logits = pair.teacher(input_ids=torch.tensor([prompt + output])).logits[0].double()
                for t, lbl in enumerate(seq.labels):
                    student_probs = torch.softmax(SCALE * logits[len(prompt) - 1 + t], -1).numpy()
                    valid = analysed.valid_mask(seq.mask_index[t])
                    sums.setdefault(lbl, []).append(float(student_probs[valid].sum()))
    rows = {row.label: row for row in audit_report.classes}
    assert set(rows) == set(sums)
    for lbl, values in sums.items():
        assert rows[lbl].student_valid_mass == pytest.approx(np.mean(values), abs=1e-6)


def test_truncated_samples_are_warned_about(audit_report):
    # max_new_tokens=6 is far too short for a ranking: every sample that did not break early is truncated.
    assert any("reached --max-new-tokens (6)" in w for w in audit_report.warnings)


def test_same_seed_same_report(tiny_checkpoints, audit_report):
    again = audit.run_audit(tiny_settings(tiny_checkpoints))
    assert_reproduces(again, audit_report)


def test_cli_writes_report_and_summary(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["audit", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
                 "--probes", str(tiny_checkpoints / "probes.jsonl"), "--samples-per-prompt", "2", "--max-new-tokens", "4",
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    assert data["schema_version"] == 2 and data["records"] == 4
    assert "recommended:" in printed and str(out / "report.json") in printed
    assert [p["name"] for p in data["preconditions"]] == ["calibrated", "single binding class",
                                                           "analytic curve and rollouts agree", "contract exact"]


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("not json\n", "probes.jsonl:1: not JSON"),
        ('{"id": "a"}\n', "probes.jsonl:1: record: needs exactly one of 'prompt' or 'messages'"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "object", "properties": {}, '
         '"additionalProperties": false}}\n{"id": "a", "prompt": "y"}\n', "probes.jsonl:2: duplicate id 'a'"),
        ('{"id": "a", "prompt": "x"}\n', "probes.jsonl:1: no 'schema' in the record"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "object", "properties": {"a": {"type": "string", '
         '"$dynamicRef": "#x"}}, "additionalProperties": false}}\n', "probes.jsonl:1: schema: unsupported keyword '$dynamicRef'"),
        ('{"id": "a", "prompt": "x", "schema": {"type": "objec"}}\n', "probes.jsonl:1: schema: not a valid JSON Schema"),
    ],
)
def test_bad_probe_lines_exit_two_and_write_nothing(tiny_checkpoints, tmp_path, capsys, content, fragment):
    probes = tmp_path / "probes.jsonl"
    probes.write_text(content)
    out = tmp_path / "out"
    code = main(["audit", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(tiny_checkpoints / "student"),
                 "--probes", str(probes), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and err.count("\n") == 1
    assert not out.exists()


def test_mismatched_vocabularies_exit_two(tiny_checkpoints, tmp_path, capsys):
    other = tmp_path / "other"
    train_byte_level(430, use_regex=True).save_pretrained(other)
    LlamaForCausalLM(LlamaConfig(vocab_size=430, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).save_pretrained(other)
    code = main(["audit", "--teacher", str(tiny_checkpoints / "teacher"), "--student", str(other),
                 "--probes", str(tiny_checkpoints / "probes.jsonl"), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "vocabularies differ: id 420" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_report_fingerprints_its_inputs(tiny_checkpoints, audit_report):
    from cliffaudit.report import sha256_file

    assert audit_report.fingerprints.probes == sha256_file(tiny_checkpoints / "probes.jsonl")
    teacher_weights = tiny_checkpoints / "teacher" / "model.safetensors"
    assert audit_report.fingerprints.teacher["model.safetensors"] == sha256_file(teacher_weights)
    assert {"config.json", "tokenizer.json"} <= set(audit_report.fingerprints.student)
    assert audit_report.fingerprints.schema_file is None


def test_masses_near_one_keep_the_digits_of_their_complement():
    """float32 logs of p = 1 - 1e-9 and of its tail: p comes back as the complement of
    the tail (not exp of a log that rounds to 0), and a small p keeps its own digits."""
    log_valid = np.array([np.log1p(-1e-9), np.log(1e-9), np.log(0.5)], dtype=np.float32)
    log_tail = np.array([np.log(1e-9), np.log1p(-1e-9), np.log(0.5)], dtype=np.float32)
    valid, tail = audit.complementary_masses(log_valid, log_tail)
    assert valid.dtype == np.float64 and tail.dtype == np.float64
    assert tail[0] == pytest.approx(1e-9, rel=1e-6) and 1.0 - valid[0] == pytest.approx(1e-9, rel=1e-6)
    assert valid[1] == pytest.approx(1e-9, rel=1e-6) and 1.0 - tail[1] == pytest.approx(1e-9, rel=1e-6)
    assert valid[2] + tail[2] == pytest.approx(1.0, abs=1e-7)


def test_contract_in_a_worker_process_gives_the_same_report(tiny_checkpoints, audit_report, monkeypatch):
    """The pipeline's background worker (used on accelerators) changes nothing in the report."""
    started = []

    def with_worker(contract, start_worker):
        background = BackgroundContract(contract, start_worker=True)
        started.append(background.in_background)
        return background

    monkeypatch.setattr(audit.samples, "BackgroundContract", with_worker)
    again = audit.run_audit(tiny_settings(tiny_checkpoints))
    assert started == [True]
    assert_reproduces(again, audit_report)


def test_without_rollouts_the_cliff_comes_from_the_analytic_curve(tiny_checkpoints):
    report = audit.run_audit(tiny_settings(tiny_checkpoints, fixed_point_lambdas=0))
    assert report.cliff.source == "analytic" and report.cliff.agree
    assert [r.lam for r in report.parse_rate.rollouts] == [1.0]  # only the teacher's own samples
    assert "no fixed-point rollouts" in report.preconditions[2].detail


def _cliff(lambda_v):
    from cliffaudit.report import Cliff

    return Cliff(drop=0.1, lambda_max=3.0, lambda_v=lambda_v, interval=(lambda_v - 0.05, lambda_v), source="rollouts",
                 analytic_lambda_v=lambda_v, analytic_interval=(lambda_v - 0.1, lambda_v + 0.1),
                 rollout_lambda_v=lambda_v, rollout_interval=(lambda_v - 0.05, lambda_v), agree=True)


@pytest.mark.parametrize(("budget", "reachable", "fragment"), [
    (None, True, "no training budget given (--rollouts), so it counts as reachable"),
    (100, True, "reachable within 100 rollouts (5.0 expected driving draws"),
    (10, False, "not reachable within 10 rollouts (about 60 needed)"),
])
def test_reachability_statement(tiny_checkpoints, budget, reachable, fragment):
    settings = tiny_settings(tiny_checkpoints, rollouts=budget)
    # 'value' is drawn often but carries 5% of the fall: it does not make the cliff reachable.
    result = audit.judge_reachability(settings, _cliff(1.4), "fence", {"fence": 0.05, "value": 1.0},
                                 {"fence": 0.95, "value": 0.05})
    assert result.reachable is reachable and fragment in result.statement
    assert result.draws_per_rollout == 0.05 and result.rollouts_needed == pytest.approx(theory.DRAWS_TO_REACH / 0.05)
    none = audit.judge_reachability(settings, _cliff(1.4).model_copy(update={"lambda_v": None}), None, {}, {})
    assert none.reachable is None and "no cliff" in none.statement


@pytest.mark.parametrize(("shares", "draws", "budget"), [
    ({"fence": 0.95, "value": 0.05}, {"fence": 0.05, "value": 1.0}, 10),  # the binding class alone decides
    ({"fence": 0.8, "value": 0.2}, {"fence": 0.001, "value": 1.0}, 10),  # a second carrier is reached first
    ({"fence": 0.8, "value": 0.2}, {"fence": 0.001, "value": 0.001}, 10),  # no carrier reached
    ({"fence": 0.8, "value": 0.2}, {"fence": 0.001, "value": None}, 10),  # unknown draws: fail closed
    ({"fence": 0.8, "value": 0.2}, {"fence": 0.001, "value": 0.001}, None),  # no budget: fail closed
])
def test_the_report_and_the_gate_give_one_reachability_answer(tiny_checkpoints, shares, draws, budget):
    from cliffaudit.gate.verdict import unreachable_within
    from tests.gate.reports import cliff as gate_cliff
    from tests.gate.reports import make_report, row

    settings = tiny_settings(tiny_checkpoints, rollouts=budget)
    in_report = audit.judge_reachability(settings, _cliff(1.4), "fence", draws, shares).reachable
    rows = [row(label, 0.9, 0.97, share=shares[label], draws=draws[label]) for label in shares]
    report = make_report(rows, gate_cliff(1.4, (1.35, 1.45)), "fence", rollouts=budget)
    by_gate = True if budget is None else not unreachable_within(report, budget)
    assert in_report is by_gate


def test_the_report_records_its_provenance(audit_report):
    """When, from what, on which device and in which precision: what "auto" became."""
    run = audit_report.run
    assert run.created and run.created.endswith("+00:00")
    assert {"python", "torch", "transformers", "llguidance"} <= set(run.versions)
    assert run.device_used == "cpu" and run.dtypes_used == {"teacher": "float32", "student": "float32"}
    assert run.cliffaudit_commit is None or len(run.cliffaudit_commit) == 40


# A Qwen3-style chat template: with enable_thinking false, the assistant turn opens with an
# empty think block, as the G-OPD launch scripts render their prompts.
QWEN3_STYLE_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n"
    "{%- if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{%- endif %}"
    "{%- endif %}")


def _templated_pair(tiny_checkpoints, tmp_path, templates: dict[str, str]):
    """Copies of the tiny teacher and student whose tokenizers carry these chat templates,
    one chat probe, and a tokenizer to read rendered prompts back."""
    import shutil

    from transformers import AutoTokenizer

    for role, template in templates.items():
        shutil.copytree(tiny_checkpoints / role, tmp_path / role)
        tokenizer = AutoTokenizer.from_pretrained(tmp_path / role)
        tokenizer.chat_template = template
        tokenizer.save_pretrained(tmp_path / role)
    probes = tmp_path / "probes.jsonl"
    probes.write_text(json.dumps({"id": "a", "messages": [{"role": "user", "content": "rank"}],
                                  "schema": ranking_schema()}) + "\n")
    return probes, tokenizer


def test_an_audit_renders_prompts_with_the_chat_template_arguments(tiny_checkpoints, tmp_path, monkeypatch):
    probes, tokenizer = _templated_pair(tiny_checkpoints, tmp_path,
                                        {"teacher": QWEN3_STYLE_TEMPLATE, "student": QWEN3_STYLE_TEMPLATE})
    seen: list[str] = []
    sample = probe.sample

    def spying(model, prompts, *args, **kwargs):
        seen.extend(tokenizer.decode(p) for p in prompts)
        return sample(model, prompts, *args, **kwargs)

    monkeypatch.setattr(probe, "sample", spying)
    def settings(**extra):
        return tiny_settings(tmp_path, fixed_point_lambdas=0, **extra).model_copy(update={"probes": str(probes)})

    report = audit.run_audit(settings(chat_template_kwargs={"enable_thinking": False}))
    assert report.settings.chat_template_kwargs == {"enable_thinking": False}
    assert seen and all(p.rstrip().endswith("<think>\n\n</think>") for p in seen)
    seen.clear()
    audit.run_audit(settings())
    assert seen and not any("<think>" in p for p in seen)  # thinking on: no empty block


def test_limit_audits_the_first_records_and_says_so(tiny_checkpoints):
    report = audit.run_audit(tiny_settings(tiny_checkpoints, limit=2, fixed_point_lambdas=0))
    assert report.records == 2 and any("--limit" in w for w in report.warnings)


def test_probe_fields_can_be_named_as_the_training_data_names_them(tmp_path):
    """verl's parquet rows carry the chat as `prompt`; other data sets use `question`."""
    probes = tmp_path / "probes.jsonl"
    probes.write_text(json.dumps({"id": "a", "prompt": [{"role": "user", "content": "rank"}],
                                  "schema": ranking_schema()}) + "\n" +
                      json.dumps({"id": "b", "question": "rank", "schema": ranking_schema()}) + "\n")
    as_messages = inputs.read_probes(probes, None, prompt_key="question", messages_key="prompt")
    assert as_messages[0][0].messages == [{"role": "user", "content": "rank"}] and as_messages[0][0].prompt is None
    assert as_messages[1][0].prompt == "rank" and as_messages[1][0].messages is None
    with pytest.raises(inputs.AuditInputError, match="probes.jsonl:1: prompt: Input should be a valid string"):
        inputs.read_probes(probes)  # read as plain prompts, the first record's prompt is a list


def test_a_parquet_probe_file_is_read_like_jsonl(tmp_path):
    """verl's data files: parquet rows with the chat under `prompt` and no id of their own."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": [{"role": "user", "content": f"rank {i}"}], "data_source": "json"} for i in range(3)]
    path = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    records = inputs.read_probes(path, ranking_schema(), messages_key="prompt")
    assert [r.id for r, _ in records] == ["row1", "row2", "row3"]
    assert records[2][0].messages == [{"role": "user", "content": "rank 2"}]
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(inputs.AuditInputError, match="bad.parquet: not a readable parquet file"):
        inputs.read_probes(tmp_path / "bad.parquet", ranking_schema())


def test_each_model_sees_its_own_chat_template(tiny_checkpoints, tmp_path, monkeypatch):
    """Teacher and warm start with different chat templates: as in training, the student
    samples after its own rendering of the prompt, and each model scores the outputs
    after its own (the teacher's template is not forced on the student)."""
    probes, tokenizer = _templated_pair(tiny_checkpoints, tmp_path, {
        "teacher": QWEN3_STYLE_TEMPLATE,
        "student": "{%- for m in messages %}USER: {{ m.content }}\n{%- endfor %}ASSISTANT:"})
    sampled: list[tuple[object, str]] = []
    scored: list[tuple[object, str]] = []
    sample, forward = probe.sample, probe.teacher_forced_logits

    def spying_sample(model, prompts, *args, **kwargs):
        sampled.extend((model, tokenizer.decode(p)) for p in prompts)
        return sample(model, prompts, *args, **kwargs)

    def spying_forward(model, prompts, *args, **kwargs):
        scored.extend((model, tokenizer.decode(p)) for p in prompts)
        return forward(model, prompts, *args, **kwargs)

    monkeypatch.setattr(probe, "sample", spying_sample)
    monkeypatch.setattr(probe.scoring, "teacher_forced_logits", spying_forward)  # probe.score calls it there
    settings = tiny_settings(tmp_path, fixed_point_lambdas=0).model_copy(update={"probes": str(probes)})
    report = audit.run_audit(settings)
    assert any("chat templates differ" in w for w in report.warnings)
    teacher = next(model for model, text in sampled if "<|im_start|>" in text)
    for model, text in sampled + scored:
        assert ("<|im_start|>" in text) is (model is teacher), text
        assert ("ASSISTANT:" in text) is (model is not teacher), text
    assert {model is teacher for model, _ in scored} == {True, False}  # both models scored


def _calibration(predicted: float, observed: float, interval: tuple[float, float]):
    from cliffaudit import estimate

    return estimate.Calibration(predicted, observed, 0.0, [], [], list(interval))


@pytest.mark.parametrize(("interval", "passed"), [
    ((-0.04, 0.05), True),  # within the limit
    ((-0.19, -0.06), True),  # a gap of -0.13 the samples cannot tell from -0.1
    ((-0.30, 0.30), True),  # too few samples to say anything
    ((0.12, 0.2), False),  # surely more than 0.1 too optimistic
    ((-0.25, -0.11), False),  # surely more than 0.1 too pessimistic
])
def test_the_calibration_precondition_fails_only_on_a_gap_surely_beyond_the_limit(interval, passed):
    middle = sum(interval) / 2
    result = audit.calibration_precondition({"teacher": _calibration(0.98, 0.98, (-0.01, 0.01)),
                                             "student": _calibration(0.5 + middle, 0.5, interval)})
    assert result.name == "calibrated" and result.passed is passed
    assert f"90% interval {interval[0]:+.3f} to {interval[1]:+.3f}" in result.detail


def test_the_contract_precondition_fails_only_where_an_approximation_carries_the_fall():
    from cliffaudit.report import ClassRow

    def class_row(label, share, approximation):
        return ClassRow(label=label, teacher_positions=1, student_positions=1, prompts=1, teacher_valid_mass=0.9,
                        student_valid_mass=0.95, reference_valid_mass=0.95, bernoulli_lambda_v=None,
                        clip_band_lambda_star=None, share_of_drop=share, draws_per_rollout=None,
                        approximation=approximation)

    cliff = _cliff(1.4)
    inexact = audit.contract_precondition([class_row("/n value", 0.6, "admits too little: x"),
                                           class_row("root open", 0.4, None)], cliff)
    assert not inexact.passed and "'/n value' carries 60% of the fall" in inexact.detail
    elsewhere = audit.contract_precondition([class_row("/n value", 0.05, "admits too little: x"),
                                             class_row("root open", 0.95, None)], cliff)
    assert elsewhere.passed and "approximated elsewhere: '/n value'" in elsewhere.detail
    no_cliff = _cliff(1.4).model_copy(update={"lambda_v": None})
    none = audit.contract_precondition([class_row("root open", None, "admits too much: y")], no_cliff)
    assert none.passed and "no cliff" in none.detail


def test_class_approximations_name_the_keyword_and_its_direction():
    schema = {"type": "object", "properties": {"n": {"type": "number", "minimum": 0}, "s": {"type": "string"}},
              "required": ["n"], "additionalProperties": False}
    found = audit.class_approximations(["/n value", "/s value", "root key", "root open"], [schema, schema])
    assert set(found) == {"/n value"}
    assert found["/n value"].startswith("admits too little: ") and "minimum at /properties/n/minimum" in found["/n value"]


PYDANTIC_STYLE = {  # as pydantic writes a model with a nested model and a bounded number
    "$defs": {"Address": {"properties": {"city": {"title": "City", "type": "string"},
                                         "zip": {"pattern": "^\\d{5}$", "title": "Zip", "type": "string"}},
                          "required": ["city", "zip"], "title": "Address", "type": "object"}},
    "properties": {"name": {"title": "Name", "type": "string"}, "address": {"$ref": "#/$defs/Address"},
                   "score": {"maximum": 1, "minimum": 0, "title": "Score", "type": "number"}},
    "required": ["name", "address", "score"], "title": "Person", "type": "object"}


def test_an_audit_on_a_pydantic_schema_records_its_approximations(tiny_checkpoints, tmp_path):
    probes = tmp_path / "probes.jsonl"
    probes.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"person {i}", "schema": PYDANTIC_STYLE}) + "\n"
                              for i in range(3)))
    settings = tiny_settings(tiny_checkpoints).model_copy(update={"probes": str(probes), "max_new_tokens": 12})
    report = audit.run_audit(settings)
    assert report.preconditions[-1].name == "contract exact"
    rows = {r.label: r for r in report.classes}
    assert "root open" in rows and rows["root open"].approximation is None  # the object opens exactly
    # Random tiny models write garbage: whatever classes they reach, the approximations
    # recorded are exactly those the compiled contract states for them.
    expected = audit.class_approximations(list(rows), [PYDANTIC_STYLE])
    assert {label: r.approximation for label, r in rows.items() if r.approximation} == expected
