"""Fixtures shared across test modules: tiny real checkpoints and an audit of them."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit import audit
from cliffaudit.report import AuditSettings

from .contract.conftest import ranking_schema, train_byte_level

SCALE = 0.6  # student logits = SCALE * teacher logits: a warm start hotter than the teacher


@pytest.fixture(scope="session", autouse=True)
def conversion_cache(tmp_path_factory):
    """The session's own cache folder (``$XDG_CACHE_HOME``): a GGUF file a test converts
    never lands in, or is served from, the user's cache. Subprocesses inherit it."""
    import os

    folder = tmp_path_factory.mktemp("xdg-cache")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
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


def tiny_settings(root, **extra):
    return AuditSettings(teacher=str(root / "teacher"), student=str(root / "student"), probes=str(root / "probes.jsonl"),
                         samples_per_prompt=3, max_new_tokens=6, batch_size=5, lambda_step=0.05, **extra)


@pytest.fixture(scope="session")
def audit_report(tiny_checkpoints):
    """A real audit of tiny random checkpoints (the teacher's student is its own logits times SCALE)."""
    return audit.run_audit(tiny_settings(tiny_checkpoints))


def pytest_collection_modifyitems(session, config, items):
    """Files with slow tests first (a stable sort; the order within a file is kept).
    ``make test`` hands whole files to its workers in this order (``--no-loadscope-reorder``;
    xdist's own order, most tests first, puts the one-test files that take 14 s last), so
    no long file runs alone at the end while the other worker idles."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)
