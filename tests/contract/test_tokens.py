"""Valid-token sets, labels and first violations on real tokenizers."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from cliffaudit.contract import TokenContract

from .conftest import ITEM_SCHEMA, RANKING_CANDIDATES, ranking_schema
from .helpers import encode, output_bytes, valid_at

RANKING = ranking_schema()
RANKING_TEXT = json.dumps({"ranking": RANKING_CANDIDATES})
WS = rb"[ \t\n\r]*"


def analyze(contract, tokenizer, text, schema, eos=True):
    return contract.analyze_batch([encode(tokenizer, text, eos)], [schema]).sequences[0]


def test_valid_ranking_is_complete_with_a_mask_per_position(contract, tokenizer):
    seq = analyze(contract, tokenizer, RANKING_TEXT, RANKING)
    ids = encode(tokenizer, RANKING_TEXT)
    assert seq.violation is None and seq.complete
    assert len(seq.labels) == len(seq.mask_index) == len(ids)
    batch = contract.analyze_batch([ids], [RANKING])
    for position, token_id in enumerate(ids):
        assert batch.valid_mask(batch.sequences[0].mask_index[position])[token_id], position


def test_after_the_last_item_only_closing_brackets_and_whitespace(contract, tokenizer):
    prefix = '{"ranking": [' + ", ".join(f'"{c}"' for c in RANKING_CANDIDATES)
    ids = encode(tokenizer, prefix, eos=False)
    # The prefix's own tokenization may end in a merged quote; take it to the quote.
    assert output_bytes(contract, ids) == prefix.encode()
    valid = valid_at(contract, ids + [tokenizer.eos_token_id], RANKING, len(ids))
    assert None not in valid  # not finished yet
    assert valid, "something must be able to follow"
    closing = re.compile(WS + rb"\]" + WS + rb"(\}" + WS + rb")?")
    whitespace = re.compile(WS)
    assert all(closing.fullmatch(t) or whitespace.fullmatch(t) for t in valid)
    assert b"]" in valid
    # And every such token in the vocabulary is in the set (exactness, not a subset).
    expected = {t for t in contract.vocab.token_bytes if t and (closing.fullmatch(t) or whitespace.fullmatch(t))}
    assert valid == expected


def test_duplicate_code_is_invalid(contract, tokenizer):
    text = '{"ranking": ["AB12", "AB12", "EF56", "GH78", "JK90"]}'
    seq = analyze(contract, tokenizer, text, RANKING)
    assert seq.violation is not None and not seq.complete
    # The violation is inside the second item, never before it.
    before = output_bytes(contract, encode(tokenizer, text)[: seq.violation.position])
    assert before.startswith(b'{"ranking": ["AB12", ')
    assert "expected /ranking/* value" in seq.violation.reason
    # At the start of the second item, the first item's code can no longer begin.
    prefix_ids = encode(tokenizer, '{"ranking": ["AB12", "', eos=False)
    if output_bytes(contract, prefix_ids).endswith(b'"'):
        valid = valid_at(contract, prefix_ids + [tokenizer.eos_token_id], RANKING, len(prefix_ids))
        assert b"A" not in valid and b"C" in valid


def test_code_outside_the_candidates_is_invalid(contract, tokenizer):
    text = '{"ranking": ["AB12", "ZZ99", "EF56", "GH78", "JK90"]}'
    seq = analyze(contract, tokenizer, text, RANKING)
    assert seq.violation is not None and "Z" in seq.violation.token
    assert seq.labels[-1] == "/ranking/* value"
    before = output_bytes(contract, encode(tokenizer, text)[: seq.violation.position])
    assert before.startswith(b'{"ranking": ["AB12", ') and b"Z" not in before


def test_too_few_items_and_extra_keys_are_invalid(contract, tokenizer):
    short = analyze(contract, tokenizer, json.dumps({"ranking": RANKING_CANDIDATES[:-1]}), RANKING)
    assert short.violation is not None and not short.complete
    extra = analyze(contract, tokenizer, json.dumps({"ranking": RANKING_CANDIDATES, "x": 1}), RANKING)
    assert extra.violation is not None


def test_truncated_output_has_no_violation_and_is_incomplete(contract, tokenizer):
    seq = analyze(contract, tokenizer, RANKING_TEXT[:-5], RANKING, eos=False)
    assert seq.violation is None and not seq.complete


def test_end_of_sequence_too_early_is_the_violation(contract, tokenizer):
    ids = encode(tokenizer, RANKING_TEXT[:-2], eos=True)
    seq = contract.analyze_batch([ids], [RANKING]).sequences[0]
    assert seq.violation.position == len(ids) - 1
    assert seq.labels[-1] == "end of sequence"
    assert "end of sequence" in seq.violation.reason


RANKING_LABELS = {"root open", "root key", "/ranking colon", "/ranking open", "/ranking/* value",
                  "/ranking separator", "/ranking close", "root close", "end of sequence",
                  "root whitespace", "/ranking whitespace"}


@pytest.mark.parametrize("indent", [None, 2])
def test_labels_follow_the_first_decision_of_each_token(contract, tokenizer, indent):
    text = json.dumps({"ranking": RANKING_CANDIDATES}, indent=indent)
    ids = encode(tokenizer, text)
    seq = contract.analyze_batch([ids], [RANKING]).sequences[0]
    assert set(seq.labels) <= RANKING_LABELS
    for token_id, lbl in zip(ids, seq.labels):
        data = contract.vocab.token_bytes[token_id]
        if data is None:
            assert lbl == "end of sequence"
            continue
        first = data.lstrip(b" \t\n\r")[:1]
        if not first:
            assert lbl.endswith("whitespace")
        elif first == b"{":
            assert lbl == "root open"
        elif first == b"[":
            assert lbl == "/ranking open"
        elif first == b",":
            assert lbl == "/ranking separator"
        elif first == b"]":
            assert lbl == "/ranking close"
        elif first == b"}":
            assert lbl == "root close"
        elif first == b":":
            assert lbl == "/ranking colon"
    # Every item's tokens carry the item class (a merged token like '{"ranking": ["'
    # is labelled by its first decision, the opening brace, and hides the key).
    assert seq.labels.count("/ranking/* value") >= len(RANKING_CANDIDATES)
    assert seq.labels[0] == "root open" and seq.labels[-1] == "end of sequence"


def test_labels_are_stable_across_samples(contract, tokenizer):
    """The same contract position gets the same label whatever the codes' order."""
    orders = [RANKING_CANDIDATES, RANKING_CANDIDATES[::-1], RANKING_CANDIDATES[2:] + RANKING_CANDIDATES[:2]]
    batch = contract.analyze_batch([encode(tokenizer, json.dumps({"ranking": o})) for o in orders], [RANKING] * 3)
    for seq, order in zip(batch.sequences, orders):
        ids = encode(tokenizer, json.dumps({"ranking": order}))
        # Labels by character: each item's characters sit in the item class.
        for token_id, lbl in zip(ids, seq.labels):
            data = contract.vocab.token_bytes[token_id] or b""
            if data[:1].isalnum() and data != b"ranking" and not data.startswith(b"ran"):
                assert lbl == "/ranking/* value"
    # Samples with the same layout get identical label sequences.
    assert batch.sequences[0].labels[:4] == batch.sequences[1].labels[:4] == batch.sequences[2].labels[:4]


def test_item_schema_valid_outputs(contract, tokenizer):
    for value in [
        {"colour": "navy blue", "size": 12},
        {"size": 0, "colour": "olive/green", "note": 'say "hi"\n', "price": -1.5e3, "in_stock": False,
         "tags": ["x", "y"]},
    ]:
        seq = analyze(contract, tokenizer, json.dumps(value), ITEM_SCHEMA)
        assert seq.violation is None and seq.complete, seq.violation
        pointers = {lbl.rsplit(" ", 1)[0] for lbl in seq.labels} - {"end of"}
        assert pointers <= {"root", "/colour", "/size", "/note", "/price", "/in_stock", "/tags", "/tags/*"}
        assert seq.labels[0] == "root open"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"colour": "navy", "size": 1}', "expected /colour value"),
        ('{"colour": "red", "size": 1.0}', "expected"),
        ('{"colour": "red"}', "allowed: ','"),  # not closed: the required size is missing
        ('{"colour": "red", "size": 1, "size": 2}', ""),
        ('{"colour": "red", "size": 1, "tags": ["a", "b", "c", "d"]}', "expected"),
    ],
)
def test_item_schema_violations(contract, tokenizer, text, fragment):
    seq = analyze(contract, tokenizer, text, ITEM_SCHEMA)
    assert seq.violation is not None
    assert fragment in seq.violation.reason


def test_item_schema_valid_set_inside_an_enum_value(contract, tokenizer):
    prefix = '{"colour": "'
    ids = encode(tokenizer, prefix, eos=False)
    assert output_bytes(contract, ids) == prefix.encode()
    valid = valid_at(contract, ids + [tokenizer.eos_token_id], ITEM_SCHEMA, len(ids))
    # Only the starts of 'red', 'navy blue', 'olive/green' (or an escape) can follow.
    assert valid
    for data in valid:
        text = data.decode("utf-8", "replace")
        assert text[0] in "rno\\", text
    assert b"r" in valid and b"x" not in valid


def test_one_grammar_per_schema_shared_by_its_samples(contract, tokenizer):
    schemas = [ranking_schema([f"Q{i}{j}" for j in range(5)]) for i in range(30)]
    texts = [json.dumps({"ranking": s["properties"]["ranking"]["items"]["enum"]}) for s in schemas]
    before = len(contract._schemas)
    batch = contract.analyze_batch([encode(tokenizer, t) for t in texts * 2], schemas * 2)
    assert len(contract._schemas) - before == 30
    assert all(s.violation is None and s.complete for s in batch.sequences)


def test_masks_are_shared_across_positions_and_samples(contract, tokenizer):
    texts = [json.dumps({"ranking": RANKING_CANDIDATES[i:] + RANKING_CANDIDATES[:i]}) for i in range(5)]
    batch = contract.analyze_batch([encode(tokenizer, t) for t in texts], [RANKING] * 5)
    positions = sum(len(s.mask_index) for s in batch.sequences)
    assert batch.packed_masks.shape[0] < positions
    assert batch.packed_masks.dtype == np.uint8
    assert batch.packed_masks.shape[1] == (contract.vocab.size + 7) // 8


def test_mismatched_lengths_are_refused(contract):
    with pytest.raises(ValueError, match="2 sequences but 1 schemas"):
        contract.analyze_batch([[1], [2]], [RANKING])


def test_tokenizer_without_eos_is_refused(tokenizer):
    import copy

    broken = copy.deepcopy(tokenizer)
    broken.eos_token = None
    with pytest.raises(ValueError, match="eos"):
        TokenContract.from_tokenizer(broken)


def test_a_free_string_shares_its_masks_however_long(contract, tokenizer):
    """Inside a free string nothing is checked but the closing quote, so the positions in
    it share a few valid sets: a long sampled note adds few rows to the batch's masks."""
    def note(words):
        return json.dumps({"colour": "red", "size": 7, "note": " ".join(words * 12)})

    seq_short = contract.analyze_batch([encode(tokenizer, '{"colour": "red", "size": 7}')], [ITEM_SCHEMA])
    batch = contract.analyze_batch([encode(tokenizer, note(["delta", "epsilon:", "[zeta]", "eta"]))], [ITEM_SCHEMA])
    assert batch.sequences[0].complete and len(batch.sequences[0].labels) > 60
    assert batch.packed_masks.shape[0] <= seq_short.packed_masks.shape[0] + 8
