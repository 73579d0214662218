"""Small helpers shared by the contract tests."""

from __future__ import annotations

import random

import numpy as np

from cliffaudit.contract import TokenContract


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
