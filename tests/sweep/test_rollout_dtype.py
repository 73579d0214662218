"""--rollout-dtype: rollouts sampled by a lower-precision copy of the policy, whose own
probabilities enter the truncated importance weights."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit.sweep import train
from cliffaudit.sweep.train import RunSettings, train_run

PROMPTS = [[5, 6, 7], [7, 6, 5, 4]]


@pytest.fixture
def models():
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False,
                         pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    teacher, student = LlamaForCausalLM(config), LlamaForCausalLM(config)
    return teacher.eval(), student.eval()


def test_rollout_model_is_a_lower_precision_copy(models):
    _, student = models
    roller = train._rollout_model(student, "bfloat16")
    assert roller is not student
    assert {p.dtype for p in roller.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in student.parameters()} == {torch.float32}
    assert train._rollout_model(student, None) is student


def test_rollout_precision_enters_the_update(models, monkeypatch):
    teacher, warm_start = models
    seen = []
    real_loss = train.gopd_loss

    def recording_loss(new_logp, old_logp, rollout_logp, *args, **kwargs):
        seen.append((old_logp - rollout_logp).abs().max().item())
        return real_loss(new_logp, old_logp, rollout_logp, *args, **kwargs)

    monkeypatch.setattr(train, "gopd_loss", recording_loss)
    trained = {}
    for dtype in (None, "bfloat16"):
        seen.clear()
        student = copy.deepcopy(warm_start)
        settings = RunSettings(lam=1.5, seed=3, steps=1, clip=2.0, lr=1e-2, batch_size=2, max_new_tokens=5,
                               rollout_dtype=dtype)
        train_run(student, teacher, warm_start, pad_id=0, eos_id=1, prompts=PROMPTS, settings=settings)
        trained[dtype] = (student, max(seen))
    # fp32 rollouts are the policy itself: pi_old / pi_rollout is exactly 1.
    assert trained[None][1] == 0.0
    # bf16 rollouts differ from the fp32 policy, and that mismatch is what the weights see.
    assert trained["bfloat16"][1] > 1e-4
    changed = [not torch.equal(a, b) for a, b in zip(trained[None][0].parameters(), trained["bfloat16"][0].parameters())]
    assert any(changed)
