"""The scale benchmark's pieces (bench/scale_bench.py): the configs are Qwen3's published
shapes, the CPU reduction keeps the vocabulary, and the synthetic tokenizer has Qwen3's
vocabulary size and a chat template that honours enable_thinking. The benchmark itself
prints measured ratios (make bench-scale); it is not a timed test."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import scale_bench  # noqa: E402


def test_the_configs_are_the_published_qwen3_shapes():
    four, small = scale_bench.shaped("qwen3-4b", full=True), scale_bench.shaped("qwen3-1.7b", full=True)
    assert (four["hidden_size"], four["num_hidden_layers"], four["intermediate_size"]) == (2560, 36, 9728)
    assert (small["hidden_size"], small["num_hidden_layers"], small["intermediate_size"]) == (2048, 28, 6144)
    assert four["vocab_size"] == small["vocab_size"] == scale_bench.QWEN3_VOCAB == 151936


def test_the_cpu_shape_keeps_the_vocabulary():
    reduced = scale_bench.shaped("qwen3-4b", full=False)
    assert reduced["vocab_size"] == 151936 and reduced["num_hidden_layers"] == 2
    assert reduced["num_attention_heads"] * reduced["head_dim"] == reduced["hidden_size"]


def test_the_synthetic_tokenizer_has_qwen3s_vocabulary_and_template():
    tokenizer = scale_bench.synthetic_tokenizer()
    assert len(tokenizer) == 151936
    messages = [{"role": "user", "content": "rank"}]
    off = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, enable_thinking=False)
    on = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert "<think>" in off and "<think>" not in on
    ids = tokenizer.encode('{"ranking": ["A11"]}', add_special_tokens=False)
    assert tokenizer.decode(ids) == '{"ranking": ["A11"]}'
