"""The model side on real (tiny, randomly initialised) Llama models."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from cliffaudit import fixed_point_sums, probe
from cliffaudit.contract import TokenContract
from cliffaudit.theory.clip_band import exact_tail_mass

from .contract.conftest import RANKING_CANDIDATES, ranking_schema, train_byte_level

SCALE = 1.7  # the student's logits are the teacher's times this


@pytest.fixture(scope="module")
def tokenizer():
    return train_byte_level(420, use_regex=True)


@pytest.fixture(scope="module")
def pair(tokenizer):
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(0)
    teacher = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random init is near uniform; sharpen it so masses and thresholds vary
        teacher.lm_head.weight.mul_(60.0)
    student = LlamaForCausalLM(config).eval()
    student.load_state_dict(teacher.state_dict())
    with torch.no_grad():  # a known temperature: student logits = SCALE * teacher logits
        student.lm_head.weight.mul_(SCALE)
    return probe.ModelPair(teacher, student, tokenizer, torch.device("cpu"), None)


def _full_log_probs(model, prompt, output):
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + output])).logits[0]
    return torch.log_softmax(logits[len(prompt) - 1:len(prompt) + len(output) - 1].double(), dim=-1).numpy()


def test_score_matches_independent_computation(pair, tokenizer):
    contract = TokenContract.from_tokenizer(tokenizer)
    schema = ranking_schema()
    prompts = [tokenizer.encode("rank these:", add_special_tokens=False), tokenizer.encode("go", add_special_tokens=False)]
    outputs = [tokenizer.encode(json.dumps({"ranking": order}), add_special_tokens=False) + [tokenizer.eos_token_id]
               for order in (RANKING_CANDIDATES, RANKING_CANDIDATES[::-1])]
    batch = contract.analyze_batch(outputs, [schema, schema])
    lambdas = np.round(np.arange(1.0, 3.0001, 0.25), 2)
    masses = probe.score(pair, prompts, outputs, batch, lambdas, "tail")
    pulls = probe.score(pair, prompts, outputs, batch, lambdas, "pull")
    assert len(masses.sample) == sum(len(s.mask_index) for s in batch.sequences)
    assert masses.log_pull_curve.shape == (len(masses.sample), 0) and pulls.log_tail_curve.shape[1] == 0

    for row in range(len(masses.sample)):
        i, t = masses.sample[row], masses.position[row]
        valid = batch.valid_mask(batch.sequences[i].mask_index[t])
        lt = _full_log_probs(pair.teacher, prompts[i], outputs[i])[t]
        # The student's distribution follows from the teacher's by the known temperature.
        ls_expected = np.log(np.exp(SCALE * lt - np.max(SCALE * lt)) / np.exp(SCALE * lt - np.max(SCALE * lt)).sum())
        p = np.exp(lt)[valid].sum()
        b = np.exp(ls_expected)[valid].sum()
        assert np.exp(masses.teacher_log_valid[row]) == pytest.approx(p, abs=1e-6)
        assert np.exp(masses.teacher_log_tail[row]) == pytest.approx(1 - p, abs=1e-6)
        assert np.exp(masses.student_log_valid[row]) == pytest.approx(b, abs=1e-6)
        assert masses.reference_log_valid[row] == masses.student_log_valid[row]  # the warm start is the reference
        invalid_ratio = np.where(valid, -np.inf, lt - ls_expected)
        assert masses.amplified_tokens[row, 0] == int(np.argmax(invalid_ratio))
        assert masses.amplified_log_ratio[row, 0] == pytest.approx(invalid_ratio.max(), abs=1e-4)
        amplified = invalid_ratio > 0
        assert np.exp(masses.student_log_amplified[row]) == pytest.approx(np.exp(ls_expected)[amplified].sum(), rel=1e-4,
                                                                          abs=1e-7)
        for j in (0, 2, len(lambdas) - 1):
            expected = exact_tail_mass(lt, ls_expected, valid, lambdas[j])
            assert np.exp(masses.log_tail_curve[row, j]) == pytest.approx(expected, rel=1e-4, abs=1e-9)
            # the pull: the fixed point's weight on all but the amplified breaks over their reference mass
            kept = ~amplified
            pull = (np.logaddexp.reduce(lambdas[j] * lt[kept] + (1 - lambdas[j]) * ls_expected[kept])
                    - np.logaddexp.reduce(ls_expected[kept]))
            assert pulls.log_pull_curve[row, j] == pytest.approx(pull, abs=2e-4)


def test_chunking_does_not_change_results(pair, tokenizer):
    contract = TokenContract.from_tokenizer(tokenizer)
    prompts = [tokenizer.encode("rank", add_special_tokens=False)]
    outputs = [tokenizer.encode(json.dumps({"ranking": RANKING_CANDIDATES}), add_special_tokens=False)]
    batch = contract.analyze_batch(outputs, [ranking_schema()])
    lambdas = np.linspace(1, 3, 21)
    whole = probe.score(pair, prompts, outputs, batch, lambdas, "tail")
    tiny = probe.score(pair, prompts, outputs, batch, lambdas, "tail", chunk_elements=len(tokenizer) * 3)
    # float32 log-space sums: tails agree to float32 precision, whatever the chunking.
    np.testing.assert_allclose(np.exp(whole.log_tail_curve), np.exp(tiny.log_tail_curve), rtol=1e-5)
    np.testing.assert_allclose(whole.student_log_valid, tiny.student_log_valid, rtol=1e-6)


def test_sampling_is_seeded_per_row(pair, tokenizer):
    prompts = [tokenizer.encode("a", add_special_tokens=False), tokenizer.encode("bb b", add_special_tokens=False)]
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    first = probe.sample(pair.student, prompts, [11, 12], 12, eos, pad)
    again = probe.sample(pair.student, prompts, [11, 12], 12, eos, pad)
    alone = probe.sample(pair.student, prompts[1:], [12], 12, eos, pad)
    other = probe.sample(pair.student, prompts, [11, 99], 12, eos, pad)
    assert first == again
    assert first[1] == alone[0]  # a row's sample does not depend on its batch neighbours
    assert first[0] == other[0] and first[1] != other[1]
    assert all(len(o) <= 12 for o in first)


def test_sampling_with_cache_matches_full_forward(pair, tokenizer):
    """The KV-cache loop samples from the same distribution as a full forward."""
    prompt = tokenizer.encode("rank these", add_special_tokens=False)
    out = probe.sample(pair.teacher, [prompt], [3], 8, tokenizer.eos_token_id, tokenizer.pad_token_id)[0]
    generator = torch.Generator().manual_seed(3)
    replay = []
    for _ in range(len(out)):
        with torch.no_grad():
            logits = pair.teacher(input_ids=torch.tensor([prompt + replay])).logits[0, -1]
        replay.append(int(torch.multinomial(torch.softmax(logits.float(), -1), 1, generator=generator)))
    assert replay == out


def test_fixed_point_sampling_matches_full_forwards(pair, tokenizer):
    """Lockstep sampling with two KV caches draws from softmax(lam*log pi_T + (1-lam)*log pi_ref),
    recomputed here with full forwards of both models; lam = 1 is the teacher's own sampling."""
    prompt = tokenizer.encode("rank these", add_special_tokens=False)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    lam = 1.7
    out = probe.sample_fixed_point(pair.teacher, pair.student, lam, [prompt], [5], 8, eos, pad)[0]
    generator = torch.Generator().manual_seed(5)
    replay = []
    for _ in range(len(out)):
        with torch.no_grad():
            ids = torch.tensor([prompt + replay])
            lt = torch.log_softmax(pair.teacher(input_ids=ids).logits[0, -1].float(), -1)
            lr = torch.log_softmax(pair.student(input_ids=ids).logits[0, -1].float(), -1)
        replay.append(int(torch.multinomial(torch.softmax(lam * lt + (1 - lam) * lr, -1), 1, generator=generator)))
    assert replay == out
    prompts = [prompt, tokenizer.encode("go", add_special_tokens=False)]
    assert probe.sample_fixed_point(pair.teacher, pair.student, 1.0, prompts, [3, 4], 8, eos, pad) == \
        probe.sample(pair.teacher, prompts, [3, 4], 8, eos, pad)


def test_a_separate_reference_is_scored_and_used(pair, tokenizer):
    """With a reference other than the warm start, the tail and the amplified breaks follow the reference."""
    contract = TokenContract.from_tokenizer(tokenizer)
    prompts = [tokenizer.encode("rank", add_special_tokens=False)]
    outputs = [tokenizer.encode(json.dumps({"ranking": RANKING_CANDIDATES}), add_special_tokens=False)]
    batch = contract.analyze_batch(outputs, [ranking_schema()])
    lambdas = np.array([1.0, 2.0])
    with_reference = probe.ModelPair(pair.teacher, pair.student, tokenizer, pair.device, None, reference=pair.teacher)
    masses = probe.score(with_reference, prompts, outputs, batch, lambdas, "tail")
    # The reference is the teacher: the fixed point is the teacher at every lambda.
    np.testing.assert_allclose(masses.reference_log_valid, masses.teacher_log_valid, rtol=1e-6)
    np.testing.assert_allclose(masses.log_tail_curve[:, 0], masses.log_tail_curve[:, 1], rtol=1e-4, atol=1e-6)
    assert not np.allclose(masses.student_log_valid, masses.teacher_log_valid)


def test_different_vocabularies_are_refused(tokenizer):
    other = train_byte_level(430, use_regex=True)
    with pytest.raises(probe.ProbeError, match="vocabularies differ: id 420"):
        probe.check_same_vocabulary(tokenizer, other)
    probe.check_same_vocabulary(tokenizer, tokenizer)


def test_dtype_and_device_resolution():
    assert probe.resolve_device("auto").type in {"cpu", "cuda", "mps"}
    assert probe.resolve_dtype("auto", torch.device("cpu")) is torch.float32
    assert probe.resolve_dtype("auto", torch.device("cuda")) is torch.bfloat16
    with pytest.raises(probe.ProbeError, match="--dtype"):
        probe.resolve_dtype("int8", torch.device("cpu"))



@pytest.mark.parametrize("tokens_per_product", [4096, 64, 7])
def test_blocked_fixed_point_sum_equals_a_plain_logsumexp(tokens_per_product, monkeypatch):
    """The exp-factorised blocked sum used on uniform grids is the same number as a
    float64 logsumexp over [positions, lambdas, tokens], padding and a ragged last block
    included, whether its matmul runs over all 300 tokens at once or in padded pieces."""
    monkeypatch.setattr(fixed_point_sums, "_TOKENS_PER_PRODUCT", tokens_per_product)
    torch.manual_seed(0)
    lt = torch.log_softmax(torch.randn(6, 300, dtype=torch.float64) * 8, -1)
    ls = torch.log_softmax(torch.randn(6, 300, dtype=torch.float64) * 8, -1)
    lt[0, 100:] = fixed_point_sums.LOG_ZERO  # a padded row: only its first 100 tokens count
    ls[0, 100:] = fixed_point_sums.LOG_ZERO
    lam = torch.tensor(np.round(1.0 + 0.01 * np.arange(201), 10), dtype=torch.float32)  # 201 = 12 blocks + 9
    assert fixed_point_sums.is_uniform(lam) and not fixed_point_sums.is_uniform(lam[[0, 1, 3]])
    log_ratio = (lt - ls).masked_fill(lt <= fixed_point_sums.LOG_ZERO / 2, 0.0)
    blocked = fixed_point_sums.blocked_log_sum(ls.float(), log_ratio.float(), lam).double()
    log_w = lam.double()[None, :, None] * lt[:, None, :] + (1 - lam.double())[None, :, None] * ls[:, None, :]
    assert torch.allclose(blocked, torch.logsumexp(log_w, -1), rtol=0, atol=2e-4)


def test_blocked_sum_shortens_or_skips_its_blocks_where_weights_would_overflow():
    lam = torch.tensor(np.round(1.0 + 0.01 * np.arange(201), 10), dtype=torch.float32)
    mild = torch.log_softmax(torch.randn(2, 50) * 3, -1)
    everywhere = torch.ones(2, 50, dtype=torch.bool)
    assert fixed_point_sums.block_size(mild.flip(-1), mild - mild.flip(-1), everywhere, lam) == fixed_point_sums.BLOCK
    steep = torch.zeros(1, 2)
    steep[0, 1] = -300.0  # log-ratio 300: 16 steps of 0.01 would move a weight by e^48
    assert fixed_point_sums.block_size(torch.zeros(1, 2), steep, torch.ones(1, 2, dtype=torch.bool), lam) == 13
    coarse = torch.tensor(np.round(1.0 + 0.5 * np.arange(40), 10), dtype=torch.float32)
    # plain logsumexp instead:
    assert fixed_point_sums.block_size(torch.zeros(1, 2), steep, torch.ones(1, 2, dtype=torch.bool), coarse) == 0
    # And the fixed-point tail stays the plain computation's on such a coarse, steep grid.
    lt = torch.log_softmax(torch.randn(3, 40) * 30, -1)
    ls = torch.log_softmax(torch.randn(3, 40) * 30, -1)
    valid = torch.zeros(3, 40, dtype=torch.bool)
    valid[:, :3] = True
    tail = fixed_point_sums.fixed_point_log_tail(lt, ls, valid, coarse)
    lams = coarse.double()[None, :, None]
    log_w = lams * lt.double()[:, None, :] + (1 - lams) * ls.double()[:, None, :]
    expected = torch.logsumexp(log_w[..., 3:], -1) - torch.logsumexp(log_w, -1)
    assert torch.allclose(tail.double(), expected, atol=1e-3)


@pytest.mark.parametrize("grid", [np.round(1.0 + 0.01 * np.arange(201), 10), np.linspace(1, 3, 21)],
                         ids=["blocked", "plain"])
def test_fixed_point_tail_slicing_does_not_change_results(grid):
    """The tail's own position (and, on the plain sum, lambda) slices give the
    unsliced numbers, for sets of every width: none, a few, most and all tokens."""
    torch.manual_seed(1)
    lt = torch.log_softmax(torch.randn(7, 400) * 4, -1)
    ls = torch.log_softmax(torch.randn(7, 400) * 4, -1)
    valid = torch.rand(7, 400) < 0.05
    valid[0], valid[1], valid[2] = False, True, torch.rand(400) < 0.9
    lam = torch.tensor(grid, dtype=torch.float32)
    whole = fixed_point_sums.fixed_point_log_tail(lt, ls, valid, lam, 1 << 24)
    assert torch.isneginf(whole[1]).all() and (whole[0] == 0).all()
    for slice_elements in (1, 3 * 400, 20 * 400):
        sliced = fixed_point_sums.fixed_point_log_tail(lt, ls, valid, lam, slice_elements)
        torch.testing.assert_close(sliced, whole, rtol=0, atol=1e-5)


def test_tokens_the_warm_start_never_emits_take_the_limit_theory_gives():
    """pi_ref = 0 < pi_T: weight pi_T at lambda = 1, unbounded beyond. The tail is the
    teacher's own at lambda = 1, then 1 if such a token breaks the contract, else 0;
    other positions are untouched. Theory's numpy function is the reference."""
    torch.manual_seed(2)
    lt = torch.log_softmax(torch.randn(4, 60) * 2, -1)
    logits = torch.randn(4, 60) * 2
    logits[0, 30] = float("-inf")  # an invalid token the student never emits
    logits[1, 2] = float("-inf")  # a valid one
    logits[2, [2, 30]] = float("-inf")  # both
    ls = torch.log_softmax(logits, -1)
    valid = torch.zeros(4, 60, dtype=torch.bool)
    valid[:, :5] = True
    grid = np.round(1.0 + 0.01 * np.arange(201), 10)
    tail = fixed_point_sums.fixed_point_log_tail(lt, ls, valid, torch.tensor(grid, dtype=torch.float32)).exp().double().numpy()
    assert np.isfinite(tail).all()
    for row in range(4):
        for j in (0, 1, 50, 200):
            expected = exact_tail_mass(lt[row].double().numpy(), ls[row].double().numpy(), valid[row].numpy(), grid[j])
            assert tail[row, j] == pytest.approx(expected, rel=1e-4, abs=1e-9), (row, j)
    assert tail[0, 1] == 1.0 and tail[1, 1] == 0.0 and tail[2, 1] == 1.0


def test_score_names_a_token_the_warm_start_never_emits(pair, tokenizer):
    """A student head that gives one token a -inf logit: that token, where it breaks the
    contract, is the most amplified one (ratio ~1e30, not inf or nan), and the tail
    beyond lambda = 1 is 1 there; every number stays finite."""
    never = tokenizer.encode("Z", add_special_tokens=False)[0]
    student = copy.deepcopy(pair.student)
    student.lm_head.register_forward_hook(lambda module, args, out: out.index_fill(-1, torch.tensor([never]), float("-inf")))
    masked = probe.ModelPair(pair.teacher, student, tokenizer, pair.device, None)
    contract = TokenContract.from_tokenizer(tokenizer)
    prompts = [tokenizer.encode("rank these:", add_special_tokens=False)]
    outputs = [tokenizer.encode(json.dumps({"ranking": RANKING_CANDIDATES}), add_special_tokens=False)]
    batch = contract.analyze_batch(outputs, [ranking_schema()])
    lambdas = np.round(np.arange(1.0, 3.0001, 0.01), 2)
    masses = probe.score(masked, prompts, outputs, batch, lambdas, "tail")
    breaks = ~np.array([batch.valid_mask(i)[never] for i in batch.sequences[0].mask_index])
    assert breaks.any()
    assert (masses.amplified_tokens[breaks, 0] == never).all()
    assert (masses.amplified_log_ratio[breaks, 0] > 1e29).all() and np.isfinite(masses.amplified_log_ratio).all()
    assert np.isfinite(masses.log_tail_curve).all()
    np.testing.assert_array_equal(masses.log_tail_curve[breaks, 1:], 0.0)
