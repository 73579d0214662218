"""The audit end to end on the embedded demo checkpoints, checked against independent
computations: the analytic curve position by position, and fixed-point rollouts on a
pair whose fixed point is known in closed form (a reference that is the teacher at a
lower temperature makes pi_lambda the teacher at another temperature)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from cliffaudit import audit, inputs, probe, theory
from cliffaudit.contract import TokenContract, strict_validate_bytes
from cliffaudit.demo import paths
from cliffaudit.report import AuditSettings

RECORDS = 3
SHARPER = 2.5  # the reference's logits are the teacher's times this


def _probes(directory, count: int):
    probes = directory / "probes.jsonl"
    lines = paths.PROBES_PATH.read_text(encoding="utf-8").splitlines()[:count]
    probes.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return probes


@pytest.fixture(scope="module")
def demo_audit(tmp_path_factory):
    settings = AuditSettings(teacher=str(paths.TEACHER_DIR), student=str(paths.STUDENT_DIR),
                             probes=str(_probes(tmp_path_factory.mktemp("demo"), RECORDS)), samples_per_prompt=2,
                             batch_size=5, device="cpu", dtype="float32", fixed_point_lambdas=1)
    return audit.run_audit(settings)


def test_analytic_curve_matches_theory_sample_by_sample(demo_audit):
    """V(lambda) is the mean over the teacher's samples of the product over their positions of
    the exact fixed point's valid mass, here from one-at-a-time float64 forwards."""
    settings = demo_audit.settings
    pair = probe.load_pair(settings.teacher, settings.student, "cpu", "float32")
    tokenizer = pair.tokenizer
    contract = TokenContract.from_tokenizer(tokenizer)
    lambdas = np.array(demo_audit.lambdas)
    checked = [0, 30, 100, len(lambdas) - 1]
    per_sample = []
    for record, schema in inputs.read_probes(settings.probes):
        prompt = probe.render_prompt(tokenizer, record.prompt, record.messages, True)
        for k in range(settings.samples_per_prompt):
            seed = audit.sample_seed(settings.seed, record.id, k, "teacher")
            output = probe.sample(pair.teacher, [prompt], [seed], settings.max_new_tokens, tokenizer.eos_token_id,
                                  tokenizer.pad_token_id)[0]
            batch = contract.analyze_batch([output], [schema])
            seq = batch.sequences[0]
            with torch.no_grad():
                ids = torch.tensor([prompt + output])
                teacher = torch.log_softmax(pair.teacher(input_ids=ids).logits[0].double(), -1).numpy()
                student = torch.log_softmax(pair.student(input_ids=ids).logits[0].double(), -1).numpy()
            rows = [len(prompt) - 1 + t for t in range(len(seq.labels))]
            valid = np.array([batch.valid_mask(seq.mask_index[t]) for t in range(len(seq.labels))])
            per_sample.append(theory.sequence_parse_rate(teacher[rows], student[rows], valid, lambdas[checked]))
    expected = np.mean(per_sample, axis=0)
    np.testing.assert_allclose(np.array(demo_audit.parse_rate.analytic)[checked], expected, rtol=2e-4, atol=1e-6)


def test_demo_has_no_cliff_and_says_so(demo_audit):
    assert demo_audit.cliff.lambda_v is None and demo_audit.recommended_lambda is None
    assert demo_audit.binding_class is None
    assert "no cliff up to lambda_max = 3" in demo_audit.recommendation
    assert [r.lam for r in demo_audit.parse_rate.rollouts] == [1.0, 3.0]  # the teacher, then the grid's end
    assert json.loads(demo_audit.model_dump_json())["cliff"]["lambda_v"] is None


@pytest.fixture(scope="module")
def tempered(tmp_path_factory):
    """The demo teacher as teacher and warm start, and the same teacher with logits x SHARPER
    as the reference: pi_lambda is the teacher at inverse temperature SHARPER - (SHARPER - 1) lambda."""
    root = tmp_path_factory.mktemp("tempered")
    model = AutoModelForCausalLM.from_pretrained(paths.TEACHER_DIR)
    with torch.no_grad():
        model.lm_head.weight.mul_(SHARPER)
    model.save_pretrained(root / "reference")
    AutoTokenizer.from_pretrained(paths.TEACHER_DIR).save_pretrained(root / "reference")
    settings = AuditSettings(teacher=str(paths.TEACHER_DIR), student=str(paths.TEACHER_DIR),
                             reference=str(root / "reference"), probes=str(_probes(root, 8)), samples_per_prompt=4,
                             batch_size=16, device="cpu", dtype="float32", fixed_point_lambdas=4)
    return audit.run_audit(settings)


def test_rollouts_sample_the_fixed_point_exactly(tempered):
    """Each sampled lambda's parse rate equals sampling the teacher at the temperature the
    closed form gives, with the same seeds (up to a draw flipped by float rounding)."""
    settings = tempered.settings
    pair = probe.load_pair(settings.teacher, settings.student, "cpu", "float32")
    tokenizer = pair.tokenizer
    records = inputs.read_probes(settings.probes)
    prompts = [probe.render_prompt(tokenizer, r.prompt, r.messages, True) for r, _ in records]
    samples = [(i, k) for i in range(len(records)) for k in range(settings.samples_per_prompt)]
    seeds = [audit.sample_seed(settings.seed, records[i][0].id, k, "fixed point") for i, k in samples]
    assert len(tempered.parse_rate.rollouts) >= 3
    for point in tempered.parse_rate.rollouts[1:]:
        temperature = 1.0 / (SHARPER - (SHARPER - 1.0) * point.lam)
        outputs = probe.sample(pair.teacher, [prompts[i] for i, _ in samples], seeds, settings.max_new_tokens,
                               tokenizer.eos_token_id, tokenizer.pad_token_id, temperature=temperature)
        valid = 0
        for (i, _), output in zip(samples, outputs):
            if output and output[-1] == tokenizer.eos_token_id:
                text = tokenizer.decode(output[:-1]).encode()
                valid += strict_validate_bytes(text, records[i][1]).valid
        assert abs(point.valid - valid) <= 2, (point.lam, point.valid, valid)


def test_a_reference_sharper_than_the_teacher_has_a_cliff(tempered):
    cliff = tempered.cliff
    assert cliff.lambda_v is not None and 1.0 < cliff.lambda_v < 2.0
    assert tempered.recommended_lambda == cliff.interval[0] < cliff.lambda_v <= cliff.interval[1]
    assert tempered.binding_class is not None and tempered.fingerprints.reference
    assert any(ex.role.startswith("fixed point at lambda") for ex in tempered.examples)
