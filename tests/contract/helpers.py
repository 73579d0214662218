"""Small helpers shared by the contract tests."""

from __future__ import annotations

import random
import re

import numpy as np

from cliffaudit.contract import TokenContract, TokenVocabulary
from cliffaudit.contract.tokens import llguidance_tokenizer


def encode(tokenizer, text: str, eos: bool = True) -> list[int]:
    ids = tokenizer.encode(text, add_special_tokens=False)
    return ids + [tokenizer.eos_token_id] if eos else ids


_TOKENS_BY_BYTES: dict[str, dict[bytes, list[int]]] = {}


def _ids_of_prefixes(vocab, text: bytes) -> list[int]:
    """Tokens whose bytes are a non-empty prefix of ``text``, shorter prefixes first."""
    by_bytes = _TOKENS_BY_BYTES.get(vocab.fingerprint)
    if by_bytes is None:
        by_bytes = _TOKENS_BY_BYTES[vocab.fingerprint] = {}
        for token_id, data in enumerate(vocab.token_bytes):
            if data:
                by_bytes.setdefault(data, []).append(token_id)
    return [tid for end in range(1, len(text) + 1) for tid in by_bytes.get(text[:end], ())]


def random_segmentation(contract: TokenContract, data: bytes, rng: random.Random) -> list[int]:
    """Another tokenization of ``data`` a model could emit: at each point a random
    vocabulary token that is a prefix of what is left."""
    ids = []
    while data:
        choices = _ids_of_prefixes(contract.vocab, data[:24])
        token_id = rng.choice(choices)
        ids.append(token_id)
        data = data[len(contract.vocab.token_bytes[token_id]):]
    return ids


def output_bytes(contract: TokenContract, ids: list[int]) -> bytes:
    eos = contract.vocab.eos_token_id
    return b"".join(contract.vocab.token_bytes[t] for t in ids if t != eos)


def valid_at(contract: TokenContract, ids: list[int], schema: dict, position: int) -> set[bytes | None]:
    """Bytes of every token valid at ``position`` (None stands for end of sequence)."""
    batch = contract.analyze_batch([ids], [schema])
    row = batch.sequences[0].mask_index[position]
    valid = np.flatnonzero(batch.valid_mask(row))
    eos = contract.vocab.eos_token_id
    return {None if t == eos else contract.vocab.token_bytes[t] for t in valid}


def python_regex(rust_regex: str) -> str:
    """A contract regex (Rust syntax, ``\\x{...}`` escapes) as Python ``re`` reads it:
    the two dialects agree on everything else the contract writes."""
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", rust_regex)


def byte_vocabulary() -> TokenVocabulary:
    """One token per byte and an end of sequence: llguidance then judges text byte by byte."""
    return TokenVocabulary([bytes((b,)) for b in range(256)] + [None], eos_token_id=256, tokenizer_name="bytes")


def grammar_accepts(grammar: str, data: bytes) -> bool:
    """Does the llguidance grammar admit ``data`` as a complete output? Fed byte by byte."""
    from llguidance import LLMatcher

    matcher = LLMatcher(llguidance_tokenizer(_BYTES), LLMatcher.grammar_from_lark(grammar), log_level=0)
    assert not matcher.is_error(), matcher.get_error()
    return all(matcher.consume_token(b) for b in data) and matcher.consume_token(256)


_BYTES = byte_vocabulary()
