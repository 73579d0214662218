"""The demo tokenizer: JSON-straddling merges, multi-token item codes, chat template, specials.

Uses the tokenizer shipped in the teacher checkpoint (the same file is in the student's).
"""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"

from cliffaudit.demo import paths  # noqa: E402
from cliffaudit.demo.catalogue import render_answer  # noqa: E402
from cliffaudit.demo.jsonl import read_jsonl  # noqa: E402

JSON_PUNCTUATION = ('"]', '",', '"]}', '{"', '":')


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok = AutoTokenizer.from_pretrained(str(paths.TEACHER_DIR))
    assert isinstance(tok, PreTrainedTokenizerFast)
    return tok


@pytest.fixture(scope="module")
def probes() -> list[dict]:
    return read_jsonl(paths.PROBES_PATH)


def test_student_ships_the_same_tokenizer():
    assert (paths.STUDENT_DIR / "tokenizer.json").read_bytes() == (paths.TEACHER_DIR / "tokenizer.json").read_bytes()


def test_vocabulary_has_merged_json_punctuation(tokenizer):
    vocab = tokenizer.get_vocab()
    for text in JSON_PUNCTUATION:
        token = tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])
        assert len(token) == 1, f"{text!r} is not one token: {token}"
        assert token[0] in vocab


def test_answers_tokenize_through_the_merged_punctuation(tokenizer, probes):
    tokens = tokenizer.tokenize(render_answer(probes[0]["target"]))
    assert tokens[0] == '{"' and tokens[-1] == '"]}'
    assert tokens.count('",') == len(probes[0]["target"]) - 1


def test_some_item_codes_split_into_several_tokens(tokenizer, probes):
    codes = {code for record in probes for code in record["candidates"]}
    pieces = {code: tokenizer.tokenize(code) for code in codes}
    assert any(len(p) >= 2 for p in pieces.values())
    assert all("".join(p) == code for code, p in pieces.items())  # no byte remapping for ASCII codes


def test_special_tokens_and_chat_template(tokenizer, probes):
    assert tokenizer.eos_token == "<|end|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    messages = probes[0]["messages"]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>\n" + messages[0]["content"] + "\n<|assistant|>\n"
    assert tokenizer.apply_chat_template(messages, tokenize=False) == "<|user|>\n" + messages[0]["content"]
    answer = render_answer(probes[0]["target"])
    chat = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    assert chat == prompt + answer + "<|end|>"
    # each role marker is a single special token
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|user|>")
    assert ids[-2] == tokenizer.convert_tokens_to_ids("<|assistant|>")


def test_round_trip_is_lossless(tokenizer, probes):
    text = probes[0]["messages"][0]["content"]
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
