"""The bytes each token id writes, read from a local Hugging Face tokenizer.

The contract works on bytes: a byte-level BPE token can hold half of a UTF-8
character, and JSON structure is ASCII, so bytes are the one representation
where every token has an exact meaning.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

import numpy as np


def _byte_level_alphabet() -> dict[str, int]:
    """Inverse of the byte-to-printable-character map of byte-level BPE: printable
    Latin-1 bytes stand for themselves, the rest are shifted past U+0100."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    alphabet = {chr(b): b for b in printable}
    shifted = 0
    for b in range(256):
        if b not in printable:
            alphabet[chr(256 + shifted)] = b
            shifted += 1
    return alphabet


def _decoder_kinds(tokenizer) -> set[str]:
    spec = json.loads(tokenizer.backend_tokenizer.to_str()).get("decoder") or {}
    kinds = {spec.get("type")}
    kinds.update(part.get("type") for part in spec.get("decoders", []) or [])
    return {k for k in kinds if k}


@dataclass
class TokenVocabulary:
    """Token id -> bytes (None for special tokens, which never write output)."""

    token_bytes: list[bytes | None]
    eos_token_id: int
    tokenizer_name: str = ""

    @property
    def size(self) -> int:
        return len(self.token_bytes)

    @cached_property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(str(self.eos_token_id).encode())
        for data in self.token_bytes:
            digest.update(b"\x00" if data is None else b"\x01" + len(data).to_bytes(4, "little") + data)
        return digest.hexdigest()

    def ids_containing(self, byte_values: bytes) -> np.ndarray:
        """Boolean mask of tokens holding any of ``byte_values``."""
        return np.array([bool(data) and any(b in data for b in byte_values) for data in self.token_bytes])

    def output_bytes(self, token_ids) -> bytes:
        """The bytes a run of token ids writes (special tokens write none; whether one may
        appear at all is the contract's question, not this one's)."""
        return b"".join(self.token_bytes[t] or b"" for t in token_ids)

    def describe(self, token_id: int) -> str:
        data = self.token_bytes[token_id] if 0 <= token_id < self.size else None
        if token_id == self.eos_token_id:
            return f"end of sequence (id {token_id})"
        shown = "<special>" if data is None else repr(data.decode("utf-8", "backslashreplace"))
        return f"{shown} (id {token_id})"


def vocabulary_from_tokenizer(tokenizer) -> TokenVocabulary:
    """Read token bytes from a fast Hugging Face tokenizer (byte-level BPE, or
    SentencePiece-style metaspace with byte fallback)."""
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError("the token-level contract needs a fast tokenizer (tokenizer.json)")
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos_token: the contract cannot tell when an output ends")
    kinds = _decoder_kinds(tokenizer)
    special_ids = set(tokenizer.all_special_ids)
    added = {token_id: tok.content for token_id, tok in tokenizer.added_tokens_decoder.items()}
    size = len(tokenizer)
    id_to_token = tokenizer.convert_ids_to_tokens(list(range(size)))

    if "ByteLevel" in kinds:
        alphabet = _byte_level_alphabet()

        def to_bytes(token: str) -> bytes:
            return bytes(alphabet[ch] for ch in token)
    elif "Metaspace" in kinds or "ByteFallback" in kinds or "Replace" in kinds:
        def to_bytes(token: str) -> bytes:
            if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
                return bytes([int(token[3:5], 16)])
            return token.replace("\u2581", " ").encode()
    else:
        raise ValueError(f"cannot map tokens to bytes for a tokenizer with decoder {sorted(kinds) or 'none'}")

    token_bytes: list[bytes | None] = []
    for token_id, token in enumerate(id_to_token):
        if token_id in special_ids or token is None:
            token_bytes.append(None)
        elif token_id in added:  # added tokens hold their text as written
            token_bytes.append(added[token_id].encode() or None)
        else:
            token_bytes.append(to_bytes(token) or None)
    return TokenVocabulary(token_bytes, tokenizer.eos_token_id, getattr(tokenizer, "name_or_path", ""))
