"""The G-OPD loss and one training step, on a real tiny model."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit.sweep.loss import gopd_advantage, gopd_loss
from cliffaudit.sweep.train import token_logprobs

PROMPT, OUTPUT = [[5, 6, 7]], [[8, 9, 10, 11]]


@pytest.fixture
def model():
    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False)
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def _step(model, advantage, lr=0.05):
    old, mask = token_logprobs(model, PROMPT, OUTPUT, pad_id=0)
    old = old.detach()
    new, _ = token_logprobs(model, PROMPT, OUTPUT, pad_id=0)
    loss = gopd_loss(new, old, old, advantage, mask, clip=2.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after, _ = token_logprobs(model, PROMPT, OUTPUT, pad_id=0)
    return old, after.detach()


def test_positive_advantage_raises_the_tokens_probability(model):
    advantage = torch.tensor([[0.0, 1.0, 0.0, 0.0]])  # only the second output token is rewarded
    before, after = _step(model, advantage)
    assert after[0, 1] > before[0, 1]
    model2 = copy.deepcopy(model)
    before, after = _step(model2, -advantage)
    assert after[0, 1] < before[0, 1]


def test_lambda_one_with_the_teacher_as_student_makes_no_update(model):
    teacher_logp, _ = token_logprobs(model, PROMPT, OUTPUT, pad_id=0)
    teacher_logp = teacher_logp.detach()
    ref_logp = teacher_logp - 0.7  # any reference: it cancels at lambda = 1
    advantage = gopd_advantage(1.0, teacher_logp, ref_logp, teacher_logp)
    assert torch.count_nonzero(advantage) == 0
    params = [p.detach().clone() for p in model.parameters()]
    _step(model, advantage)
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))


def test_ppo_clip_stops_the_gradient_past_c():
    old = torch.zeros(1, 2)
    new = torch.tensor([[1.5, 0.1]], requires_grad=True)  # ratio e^1.5 = 4.5 > c = 2; e^0.1 inside
    advantage = torch.ones(1, 2)
    loss = gopd_loss(new, old, old, advantage, torch.ones(1, 2, dtype=torch.bool), clip=2.0)
    loss.backward()
    assert new.grad[0, 0] == 0  # clipped: no push past c
    assert new.grad[0, 1] < 0  # inside: the loss falls as the rewarded token rises


def test_truncated_importance_weight_is_capped_at_c():
    old = torch.zeros(1, 1)
    rollout = torch.full((1, 1), -5.0)  # pi_old / pi_rollout = e^5, far above c
    new = torch.zeros(1, 1, requires_grad=True)
    advantage = torch.ones(1, 1)
    mask = torch.ones(1, 1, dtype=torch.bool)
    loss = gopd_loss(new, old, rollout, advantage, mask, clip=3.0)
    assert loss.item() == pytest.approx(-3.0)  # rho capped at c = 3, not e^5
    loss.backward()
    assert new.grad.item() == pytest.approx(-3.0)


def test_clipped_tokens_are_those_the_loss_gives_no_gradient():
    from cliffaudit.sweep.loss import clipped_tokens

    old = torch.zeros(1, 5)
    new = torch.log(torch.tensor([[2.5, 2.5, 0.5, 0.5, 1.0]]))  # ratios past c = 2 and below 1 - 0.2
    advantage = torch.tensor([[1.0, -1.0, -1.0, 1.0, 1.0]])
    mask = torch.tensor([[1, 1, 1, 1, 0]])
    # held: r > c with A > 0 (token 0), r < 0.8 with A < 0 (token 2); token 4 is masked out
    assert clipped_tokens(new, old, advantage, mask, clip=2.0) == 2
    theta = new.clone().requires_grad_(True)
    gopd_loss(theta, old, old, advantage, mask, clip=2.0).backward()
    assert (theta.grad[0, [0, 2]] == 0).all() and (theta.grad[0, [1, 3]] != 0).all()
