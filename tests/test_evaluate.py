"""The one evaluator (sweep runs, the demo build's selection, ``demo eval``) on the
shipped demo student: a real model that parses about half of its answers."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from cliffaudit import evaluate, probe  # noqa: E402
from cliffaudit.contract import strict_validate, vocabulary_from_tokenizer  # noqa: E402
from cliffaudit.demo import paths  # noqa: E402
from cliffaudit.demo.jsonl import read_jsonl  # noqa: E402
from cliffaudit.tasks import RANKING  # noqa: E402

SEED = 3


@pytest.fixture(scope="module")
def student():
    model = transformers.AutoModelForCausalLM.from_pretrained(str(paths.STUDENT_DIR)).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(paths.STUDENT_DIR))
    return model, tokenizer


@pytest.fixture(scope="module")
def records():
    return read_jsonl(paths.PROBES_PATH)[:24]


def _inputs(tokenizer, records):
    prompts = [probe.render_prompt(tokenizer, None, r["messages"], True) for r in records]
    return vocabulary_from_tokenizer(tokenizer), prompts, [r["schema"] for r in records]


@pytest.fixture(scope="module")
def answers(student, records):
    model, tokenizer = student
    vocab, prompts, schemas = _inputs(tokenizer, records)
    return evaluate.sample_answers(model, vocab, prompts, schemas, SEED, pad_id=probe.pad_id(tokenizer),
                                   samples_per_prompt=2)


def test_validity_agrees_with_the_tokenizers_own_decoding(student, records, answers):
    """Each verdict, recomputed from text the tokenizer decodes itself (as a trainer's reward does)."""
    _, tokenizer = student
    assert [a.prompt_index for a in answers] == [i for i in range(len(records)) for _ in range(2)]
    for a in answers:
        ended = a.token_ids[-1:] == [tokenizer.eos_token_id]
        text = tokenizer.decode(a.token_ids[:-1] if ended else a.token_ids, skip_special_tokens=True)
        assert a.text == text
        assert a.valid == (ended and strict_validate(text, records[a.prompt_index]["schema"]).valid)
        assert (a.reason is None) == a.valid
    assert 0 < sum(a.valid for a in answers) < len(answers)  # both kinds were judged


def test_answers_are_reproducible_for_a_seed_and_change_with_it(student, records, answers):
    model, tokenizer = student
    vocab, prompts, schemas = _inputs(tokenizer, records)
    again = evaluate.sample_answers(model, vocab, prompts, schemas, SEED, pad_id=probe.pad_id(tokenizer),
                                    samples_per_prompt=2)
    assert [a.token_ids for a in again] == [a.token_ids for a in answers]
    other = evaluate.sample_answers(model, vocab, prompts, schemas, SEED + 1, pad_id=probe.pad_id(tokenizer),
                                    samples_per_prompt=2)
    assert [a.token_ids for a in other] != [a.token_ids for a in answers]
    assert answers[0].token_ids != answers[1].token_ids or answers[2].token_ids != answers[3].token_ids


def test_an_answer_cut_off_at_the_length_limit_is_not_valid(student, records):
    model, tokenizer = student
    vocab, prompts, schemas = _inputs(tokenizer, records[:4])
    cut = evaluate.evaluate(model, vocab, prompts, schemas, [r["target"] for r in records[:4]], RANKING, SEED,
                            pad_id=probe.pad_id(tokenizer), max_new_tokens=3)
    assert cut.parse_rate == 0.0 and cut.metrics == {} and cut.samples == 4


def test_the_models_mode_is_left_as_it_was(student, records):
    model, tokenizer = student
    vocab, prompts, schemas = _inputs(tokenizer, records[:1])
    model.train()
    try:
        evaluate.sample_answers(model, vocab, prompts, schemas, SEED, pad_id=probe.pad_id(tokenizer),
                                max_new_tokens=4)
        assert model.training  # a build evaluates between training steps and trains on
    finally:
        model.eval()
    evaluate.sample_answers(model, vocab, prompts, schemas, SEED, pad_id=probe.pad_id(tokenizer), max_new_tokens=4)
    assert not model.training


def _answer(index: int, ranking: list[str] | None) -> evaluate.Answer:
    valid = ranking is not None
    return evaluate.Answer(index, [], "", valid, None if valid else "not JSON", {"ranking": ranking} if valid else None)


def test_metrics_are_means_over_the_answers_that_parse():
    target = ["a", "b", "c"]
    answers = [_answer(0, ["a", "b", "c"]), _answer(0, ["b", "a", "c"]), _answer(1, None), _answer(2, ["a", "c", "b"])]
    summary = evaluate.summarise(answers, [target, target, None], RANKING)
    assert summary.parse_rate == 3 / 4 and summary.samples == 4
    # The third parsed answer's prompt has no target: it counts for validity, not for quality.
    assert summary.metrics == {"exact_match": 0.5, "ndcg_at_1": pytest.approx((1 + 1 / 3) / 2)}
    assert evaluate.summarise(answers, None, RANKING).metrics == {}
    assert evaluate.summarise([], None, RANKING) == evaluate.Evaluation(0.0, {}, 0)
