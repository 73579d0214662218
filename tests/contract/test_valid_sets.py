"""The valid-token sets equal their definition, token by token.

Definition (docs/contract.md): at a position, token v keeps the contract when the
output so far followed by v's bytes can still be completed inside the schema's
grammar, and the end of sequence keeps it when the output so far is complete. The
oracle here is the same grammar read one byte at a time (a vocabulary of the 256
bytes): every token of the tokenizer is fed byte by byte from the same prefix. It
checks llguidance's token-level masks (its token trie, lexemes that a token starts in
one place and ends in another, partial UTF-8) against plain byte-level parsing, at
every position of outputs with escapes, whitespace, any member order and violations.
Whether the grammar itself admits exactly the strictly valid outputs is the
agreement tests' question.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from cliffaudit.contract import TokenContract

from .conftest import ITEM_SCHEMA, RANKING_CANDIDATES, ranking_schema
from .helpers import byte_vocabulary, random_segmentation
from .pydantic_models import CASES
from .test_agreement import MUTATIONS, _dump, _item, _mutate

RANKING = ranking_schema()
# Values whose raw bytes hold a quote, a backslash, a control character and
# multi-byte characters.
AWKWARD = ['say "hi"', "back\\slash", "tab\there", "ünï ✓", "say"]
AWKWARD_SCHEMA = {"type": "object", "properties": {"quote": {"type": "string", "enum": AWKWARD}},
                  "required": ["quote"], "additionalProperties": False}
PERSON = next(schema for name, schema, _ in CASES if name == "nested model")
PERSON_EXAMPLE = next(examples for name, _, examples in CASES if name == "nested model")[0]
BYTES = TokenContract(byte_vocabulary())


_TRIES: dict[str, dict] = {}


def _trie(vocab) -> dict:
    """The vocabulary's tokens as a trie of their bytes (token ids at ``None``), built once
    per vocabulary: at 49k tokens building it took most of a position's check."""
    if vocab.fingerprint not in _TRIES:
        trie: dict = {}
        for token_id, data in enumerate(vocab.token_bytes):
            if data and token_id != vocab.eos_token_id:
                node = trie
                for byte in data:
                    node = node.setdefault(byte, {})
                node.setdefault(None, []).append(token_id)
        _TRIES[vocab.fingerprint] = trie
    return _TRIES[vocab.fingerprint]


def _by_bytes(contract: TokenContract, matcher) -> np.ndarray:
    """Every token of ``contract``'s vocabulary, fed byte by byte to a copy of ``matcher``:
    one walk of the trie the tokens' bytes form, so a shared prefix is fed once and a
    refused byte refuses every token below it."""
    valid = np.zeros(contract.vocab.size, dtype=bool)
    valid[contract.vocab.eos_token_id] = matcher.deep_copy().consume_token(256)
    trie = _trie(contract.vocab)
    words = np.zeros(9, dtype=np.int32)  # 257 bits: the bytes and the end of sequence
    pending = [(trie, matcher)]
    while pending:
        node, state = pending.pop()
        valid[node.get(None, [])] = True
        state.unsafe_compute_mask_ptr(words.ctypes.data, words.nbytes)
        allowed = np.unpackbits(words.view(np.uint8), bitorder="little")
        for byte, child in node.items():
            if byte is not None and allowed[byte]:
                trial = state.deep_copy()
                assert trial.consume_token(byte)
                pending.append((child, trial))
    return valid


def _outputs(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(n):
        ws = lambda: rng.choice(["", "", " ", "\n  "])  # noqa: E731
        kind = i % 4
        if kind == 3:
            out.append((_mutate(_dump(PERSON_EXAMPLE, rng, ws), rng.choice(MUTATIONS), rng), PERSON))
        elif kind == 2:
            out.append((_dump({"quote": rng.choice(AWKWARD)}, rng, ws), AWKWARD_SCHEMA))
        elif kind == 1:
            out.append((_mutate(_dump(_item(rng), rng, ws), rng.choice(MUTATIONS), rng), ITEM_SCHEMA))
        else:
            order = rng.sample(RANKING_CANDIDATES, len(RANKING_CANDIDATES))
            out.append((_mutate(_dump({"ranking": order}, rng, ws), rng.choice(MUTATIONS), rng), RANKING))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_valid_sets_equal_the_definition_at_every_position(contract, seed):
    rng = random.Random(seed)
    checked = 0
    for text, schema in _outputs(rng, 16):
        ids = random_segmentation(contract, text.encode(), rng) + [contract.vocab.eos_token_id]
        batch = contract.analyze_batch([ids], [schema])
        sequence = batch.sequences[0]
        oracle = BYTES.schema_matcher(schema).matcher.deep_copy()
        for position, token_id in enumerate(ids[: len(sequence.mask_index)]):
            expected = _by_bytes(contract, oracle)
            got = batch.valid_mask(sequence.mask_index[position])
            assert np.array_equal(got, expected), (text, position, np.flatnonzero(got ^ expected))
            checked += 1
            if not got[token_id] or token_id == contract.vocab.eos_token_id:
                break
            assert all(oracle.consume_token(b) for b in contract.vocab.token_bytes[token_id])
    assert checked > 150
