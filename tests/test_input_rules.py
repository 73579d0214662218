"""The input rules' other side (issue #34): what the hostile-input checks must still
accept, and each size limit exactly at its bound. The refusals are in test_bad_input.py."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit import audit, inputs, probe

from .conftest import ranking_schema, tiny_settings


def _probe_file(tmp_path, *records):
    path = tmp_path / "probes.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_line_ends_at_newline_only_and_integer_ids_are_their_digits(tmp_path):
    # U+2028, U+2029 and U+0085 are line breaks to str.splitlines, and plain characters in JSON text.
    text = "rank\u2028these\u2029now\x85please"
    records = inputs.read_probes(_probe_file(tmp_path, {"id": 7, "prompt": text, "schema": ranking_schema()}))
    assert [(r.id, r.prompt) for r, _ in records] == [("7", text)]


def test_a_conversation_with_a_system_turn_ending_on_the_user_is_read(tmp_path):
    messages = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "rank"}]
    records = inputs.read_probes(_probe_file(tmp_path, {"id": "a", "messages": messages, "schema": ranking_schema()}))
    assert records[0][0].messages == messages


def _objects(depth: int) -> dict:
    schema = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "additionalProperties": False}
    return schema


@pytest.mark.parametrize(("schema", "refused"), [
    (_objects(31), None),  # 63 JSON levels: 2 a level, and the leaf
    (_objects(32), "nested deeper than 64 JSON levels"),
    (ranking_schema(), None),
])
def test_schema_nesting_holds_at_its_limit(schema, refused):
    if refused is None:
        inputs.check_schema_size(schema, "schema.json")
    else:
        with pytest.raises(inputs.AuditInputError, match=refused):
            inputs.check_schema_size(schema, "schema.json")


def test_a_deep_but_legal_schema_compiles_as_fast_as_a_flat_one():
    """The old contract spelled every member twice per level (a schema 20 objects deep took
    9 GB); the grammar grows with the schema's size, not with its depth."""
    from cliffaudit.contract import load_contract_schema

    compiled = load_contract_schema(_objects(30))
    assert len(compiled.grammar) < 60 * 30 * 10


def test_every_precision_name_the_settings_accept_is_one_torch_loads():
    for name in inputs.DTYPE_NAMES:
        assert isinstance(probe.resolve_dtype(name, torch.device("cpu")), torch.dtype)


def _tiny_model(tiny_checkpoints, folder, **config):
    tokenizer_files = [p for p in (tiny_checkpoints / "teacher").iterdir() if p.name.startswith("tokenizer")]
    base = LlamaConfig.from_pretrained(tiny_checkpoints / "teacher")
    torch.manual_seed(3)
    LlamaForCausalLM(LlamaConfig(**(base.to_dict() | config))).save_pretrained(folder)
    for file in tokenizer_files:
        shutil.copy(file, folder / file.name)
    return folder


def test_a_tied_output_head_is_not_a_missing_weight(tiny_checkpoints, tmp_path):
    from safetensors import safe_open

    folder = _tiny_model(tiny_checkpoints, tmp_path / "tied", tie_word_embeddings=True)
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as saved:
        assert "lm_head.weight" not in saved.keys()  # saved once, as the embedding
    model = probe.load_model("teacher", str(folder))
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def test_models_whose_heads_differ_in_width_are_audited_over_the_ids_both_have(tiny_checkpoints, tmp_path):
    """Qwen2.5's 7B head is 152,064 wide, its 0.5B's 151,936: both hold the tokenizer."""
    wide = _tiny_model(tiny_checkpoints, tmp_path / "wide", vocab_size=len(json.loads(
        (tiny_checkpoints / "teacher" / "tokenizer.json").read_text())["model"]["vocab"]) + 12)
    settings = tiny_settings(tiny_checkpoints, limit=1, fixed_point_lambdas=0).model_copy(
        update={"teacher": str(wide), "samples_per_prompt": 1, "max_new_tokens": 4})
    report = audit.run_audit(settings)
    assert report.records == 1 and 0.0 <= report.teacher_parse_rate <= 1.0
