"""The packaged teacher and student: offline loading, size, pure sampling, parse-rate bands.

One module-scoped sample of every held-out probe per model feeds several tests, so
the whole file runs in a few seconds on CPU.
"""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # the checkpoints must load with no network

from cliffaudit.demo import paths  # noqa: E402
from cliffaudit.demo.jsonl import read_jsonl  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

SAMPLING_SEED = 0
MAX_CHECKPOINT_BYTES = 5 * 1024 * 1024


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def probes() -> list[dict]:
    return read_jsonl(paths.PROBES_PATH)


def _load(directory):
    model = transformers.AutoModelForCausalLM.from_pretrained(str(directory))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(directory))
    return model, tokenizer


@pytest.fixture(scope="module")
def teacher():
    return _load(paths.TEACHER_DIR)


@pytest.fixture(scope="module")
def student():
    return _load(paths.STUDENT_DIR)


@pytest.fixture(scope="module")
def teacher_samples(teacher, probes):
    from cliffaudit.demo.evaluate import sample_records

    return sample_records(*teacher, probes, SAMPLING_SEED)


@pytest.fixture(scope="module")
def student_samples(student, probes):
    from cliffaudit.demo.evaluate import sample_records

    return sample_records(*student, probes, SAMPLING_SEED)


def _parse_rate(samples) -> float:
    return sum(s.valid for s in samples) / len(samples)


@pytest.mark.parametrize("directory", [paths.TEACHER_DIR, paths.STUDENT_DIR], ids=["teacher", "student"])
def test_checkpoint_folder_is_complete_and_small(directory):
    names = {p.name for p in directory.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
            "tokenizer_config.json"} <= names
    assert "chat_template.jinja" in names or "chat_template" in (directory / "tokenizer_config.json").read_text()
    assert (directory / "model.safetensors").stat().st_size <= MAX_CHECKPOINT_BYTES


def test_both_are_llama_and_the_student_is_smaller(teacher, student):
    assert isinstance(teacher[0], transformers.LlamaForCausalLM)
    assert isinstance(student[0], transformers.LlamaForCausalLM)
    assert student[0].num_parameters() < teacher[0].num_parameters()
    assert teacher[0].config.vocab_size == student[0].config.vocab_size == len(teacher[1])


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_saved_generation_config_is_pure_temperature_one(which, request):
    config = request.getfixturevalue(which)[0].generation_config
    assert config.do_sample is True
    assert config.temperature == 1.0 and config.top_k == 0 and config.top_p == 1.0


@pytest.mark.parametrize("explicit", [True, False], ids=["the build's config", "checkpoint default"])
def test_generate_applies_no_logit_processing(teacher, probes, explicit):
    """A user's ``generate`` on the shipped checkpoints samples the model's own distribution:
    scores after processing equal the raw logits (no top-k, top-p or temperature change)."""
    from cliffaudit.demo.train import prompt_text, pure_sampling_config
    from cliffaudit.probe import left_pad

    model, tokenizer = teacher
    rows = tokenizer([prompt_text(tokenizer, r) for r in probes[:2]], add_special_tokens=False)["input_ids"]
    input_ids, attention_mask = left_pad(rows, tokenizer.pad_token_id, "cpu")
    config = pure_sampling_config(tokenizer) if explicit else None  # None: generation_config.json
    torch.manual_seed(0)
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config,
                         max_new_tokens=4, output_scores=True,
                         output_logits=True, return_dict_in_generate=True)
    assert len(out.scores) == 4
    for processed, raw in zip(out.scores, out.logits):
        assert torch.isfinite(processed).all()  # nothing was masked to -inf
        assert torch.equal(processed, raw)


def test_teacher_is_near_deterministic_in_structure(teacher_samples):
    assert _parse_rate(teacher_samples) >= 0.95


def test_student_has_parse_headroom(student_samples, teacher_samples):
    rate = _parse_rate(student_samples)
    assert 0.25 <= rate <= 0.80
    assert rate < _parse_rate(teacher_samples) - 0.1


def test_student_failures_are_contract_violations(student_samples, probes):
    reasons = [s.reason for s in student_samples if not s.valid]
    assert reasons and all(reason for reason in reasons)


def test_teacher_outputs_use_merged_json_punctuation(teacher, teacher_samples):
    tokenizer = teacher[1]
    used = {token for s in teacher_samples if s.valid for token in tokenizer.convert_ids_to_tokens(s.token_ids)}
    assert {'{"', '",', '"]}'} <= used


def test_sampling_is_reproducible_for_a_seed(student, probes, student_samples):
    from cliffaudit.demo.evaluate import sample_records

    again = sample_records(*student, probes, SAMPLING_SEED)
    assert [s.text for s in again] == [s.text for s in student_samples]
    other = sample_records(*student, probes, SAMPLING_SEED + 1)
    assert [s.text for s in other] != [s.text for s in student_samples]
