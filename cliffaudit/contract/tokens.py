"""The token-level contract: for every position of a generated output, the set of
tokens that keep it a valid prefix of some contract-satisfying output, the
position's equivalence class, and the first violation.

Valid set = (tokens the outlines-core index allows from its regex state)
          ∩ (tokens the walker accepts from its state).
The index holds the regular part, shared by every record of one shape; the
walker holds the rest (keys, enums, uniqueItems) per record. Both parts are
exact, so the intersection is exact (docs/contract.md).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
from outlines_core import Index, Vocabulary

from cliffaudit.contract import walker as walk
from cliffaudit.contract.regex import contract_regex
from cliffaudit.contract.schema import Node, load_contract_schema
from cliffaudit.contract.vocabulary import TokenVocabulary, vocabulary_from_tokenizer


@dataclass(frozen=True)
class Violation:
    position: int
    token_id: int
    token: str
    reason: str

    def __str__(self) -> str:
        return f"position {self.position}, token {self.token}: {self.reason}"


@dataclass
class SequenceContract:
    """One output, position by position. Positions run up to and including the
    end-of-sequence or the first violation; past a violation the output has no
    contract state, so later positions are not part of it."""

    labels: list[str]  # the class of the decision each generated token makes
    mask_index: np.ndarray  # int32 row into the batch's packed masks, one per labelled position
    violation: Violation | None
    complete: bool  # ended with an end-of-sequence the contract allows


@dataclass
class ContractBatch:
    """What the audit needs for one batch: per sample, per position, a class label
    and a row of ``packed_masks`` (bit v set: token v keeps the contract)."""

    sequences: list[SequenceContract]
    packed_masks: np.ndarray  # uint8 [n_masks, ceil(vocab_size / 8)], np.packbits bit order "little"
    vocab_size: int

    def valid_mask(self, row: int) -> np.ndarray:
        return unpack_mask(self.packed_masks[row], self.vocab_size)


def unpack_mask(packed: np.ndarray, vocab_size: int) -> np.ndarray:
    return np.unpackbits(packed, bitorder="little")[:vocab_size].astype(bool)


@dataclass(frozen=True)
class _AllowedTokens:
    """What the regex allows from one index state."""

    ids: np.ndarray  # sorted
    mask: np.ndarray  # bool [vocab]


@dataclass(frozen=True)
class _SortedTokens:
    """Token ids sorted by their bytes: tokens that share a prefix are neighbours."""

    keys: list[bytes]
    ids: list[int]


def _sorted_tokens(vocab: TokenVocabulary, ids) -> _SortedTokens:
    pairs = sorted((vocab.token_bytes[t], t) for t in ids)
    return _SortedTokens([p[0] for p in pairs], [p[1] for p in pairs])


def _accepted(state: walk.WalkerState, tokens: _SortedTokens) -> list[int]:
    """The ids among ``tokens`` whose every byte the walker accepts from ``state``.

    One walk through the byte trie the sorted tokens form: a prefix shared by many
    tokens is walked once, and a refused byte refuses its whole subtree unwalked.
    The same verdicts as walking each token alone (the walker is pure), at a cost
    set by the prefixes the walker accepts rather than by the vocabulary's size.
    Inside a constrained string only the bytes that can go on are tried at all.
    """
    keys, ids = tokens.keys, tokens.ids
    accepted: list[int] = []
    # Ranges of keys that share their first `depth` bytes, with the state after them.
    pending = [(0, len(keys), 0, state)]
    while pending:
        lo, hi, depth, current = pending.pop()
        while lo < hi and len(keys[lo]) == depth:  # sorted first: tokens that end here
            accepted.append(ids[lo])
            lo += 1
        if lo >= hi:
            continue
        prefix = keys[lo][:depth]
        only = current.next_bytes()
        if only is None:
            groups = []
            while lo < hi:
                byte = keys[lo][depth]
                end = hi if byte == 255 else bisect.bisect_left(keys, prefix + bytes((byte + 1,)), lo, hi)
                groups.append((byte, lo, end))
                lo = end
        else:
            groups = []
            for byte in only:
                start = bisect.bisect_left(keys, prefix + bytes((byte,)), lo, hi)
                if start < hi and keys[start][depth] == byte:
                    end = hi if byte == 255 else bisect.bisect_left(keys, prefix + bytes((byte + 1,)), start, hi)
                    groups.append((byte, start, end))
        for byte, start, end in groups:
            try:
                after, _ = walk.step(current, byte)
            except walk.ContractViolation:
                continue
            pending.append((start, end, depth + 1, after))
    return accepted


_VOCABULARY_CACHE: dict[str, Vocabulary] = {}


def _outlines_vocabulary(vocab: TokenVocabulary) -> Vocabulary:
    if vocab.fingerprint in _VOCABULARY_CACHE:
        return _VOCABULARY_CACHE[vocab.fingerprint]
    by_bytes: dict[bytes, list[int]] = {}
    for token_id, data in enumerate(vocab.token_bytes):
        if data and token_id != vocab.eos_token_id:
            by_bytes.setdefault(data, []).append(token_id)
    return _VOCABULARY_CACHE.setdefault(vocab.fingerprint, Vocabulary(vocab.eos_token_id, by_bytes))


_INDEX_CACHE: dict[tuple[str, str], Index] = {}


def index_for(regex: str, vocab: TokenVocabulary) -> Index:
    """The outlines-core index of ``regex`` over ``vocab``, built once per (shape, tokenizer)."""
    key = (regex, vocab.fingerprint)
    if key not in _INDEX_CACHE:
        _INDEX_CACHE[key] = Index(regex, _outlines_vocabulary(vocab))
    return _INDEX_CACHE[key]


def index_builds() -> int:
    """How many distinct indexes this process has built (for tests and benchmarks)."""
    return len(_INDEX_CACHE)


class TokenContract:
    """Token-level contract for one tokenizer, reused across schemas and batches."""

    # Outside a string, only a token holding one of these bytes can trip a walker
    # check: a quote (opens or closes a checked string), a comma (needs an unused
    # key or value left), a closing brace (needs required keys). Inside a free string
    # bytes only append, until a quote closes it or a backslash starts an escape.
    _CHECKED_BYTES = b'",}'
    _FREE_STRING_BYTES = b'"\\'

    def __init__(self, vocab: TokenVocabulary):
        self.vocab = vocab
        self._checked = vocab.ids_containing(self._CHECKED_BYTES)
        self._free_string_checked = vocab.ids_containing(self._FREE_STRING_BYTES)
        walked = [t for t, data in enumerate(vocab.token_bytes) if data and t != vocab.eos_token_id]
        self._every_token = _sorted_tokens(vocab, walked)
        # Inside a constrained string a token with no quote and no backslash only types
        # plain bytes: it keeps the contract exactly when it is a prefix of what some
        # allowed value has left, found by lookup; only the others need a walk.
        self._plain_ids: dict[bytes, list[int]] = {}
        for t in walked:
            if not self._free_string_checked[t]:
                self._plain_ids.setdefault(vocab.token_bytes[t], []).append(t)
        self._longest_plain = max(map(len, self._plain_ids), default=0)
        self._plain_prefixes: dict[frozenset[bytes], np.ndarray] = {}
        self._allowed_cache: dict[tuple[int, int], _AllowedTokens] = {}
        self._suspects_cache: dict[tuple[int, int, str], tuple[_SortedTokens, np.ndarray]] = {}
        self._mask_cache: dict[tuple, int] = {}
        self._mask_rows: dict[bytes, int] = {}
        self._masks: list[np.ndarray] = []

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TokenContract:
        return cls(vocabulary_from_tokenizer(tokenizer))

    # ----------------------------------------------------------------- valid sets

    def _allowed(self, index: Index, state: int) -> _AllowedTokens:
        key = (id(index), state)
        found = self._allowed_cache.get(key)
        if found is None:
            ids = np.fromiter(index.get_allowed_tokens(state), dtype=np.int64)
            mask = np.zeros(self.vocab.size, dtype=bool)
            mask[ids] = True
            found = self._allowed_cache[key] = _AllowedTokens(ids, mask)
        return found

    def _suspects(self, index: Index, regex_state: int, kind: str) -> tuple[_SortedTokens, np.ndarray]:
        """The allowed tokens a walker check can trip from this kind of state: sorted, and
        the allowed tokens it cannot trip, as a mask."""
        key = (id(index), regex_state, kind)
        found = self._suspects_cache.get(key)
        if found is None:
            allowed = self._allowed(index, regex_state)
            trippable = self._checked if kind == "structure" else self._free_string_checked
            suspect = allowed.mask & trippable
            suspect[self.vocab.eos_token_id] = False
            found = (_sorted_tokens(self.vocab, np.flatnonzero(suspect).tolist()), allowed.mask & ~suspect)
            self._suspects_cache[key] = found
        return found

    def valid_mask(self, index: Index, regex_state: int, walker_state: walk.WalkerState) -> np.ndarray:
        """Bool [vocab]: the tokens that keep the output inside the contract."""
        allowed = self._allowed(index, regex_state)
        rests = walker_state.value_rests()
        if rests is not None:
            # In a constrained string: tokens of plain bytes by lookup (a prefix of what
            # some value has left); tokens with a quote or a backslash by a walk of those
            # the regex allows, tried only along the bytes that can go on.
            valid = np.zeros(self.vocab.size, dtype=bool)
            valid[self._plain_prefix_ids(rests)] = True
            valid &= allowed.mask
            quoted, _ = self._suspects(index, regex_state, "free string")
            valid[_accepted(walker_state, quoted)] = True
            return valid
        if walker_state.pending_escape:
            # After a backslash the walker refuses all but a few bytes at once: the whole
            # vocabulary's trie is walked.
            valid = np.zeros(self.vocab.size, dtype=bool)
            valid[_accepted(walker_state, self._every_token)] = True
            return valid & allowed.mask
        # Elsewhere most allowed tokens pass: only those a walker check can trip are walked.
        suspects, unchecked = self._suspects(index, regex_state, "free string" if walker_state.in_free_string
                                             else "structure")
        valid = unchecked.copy()
        valid[_accepted(walker_state, suspects)] = True
        return valid

    def _plain_prefix_ids(self, rests: frozenset[bytes]) -> np.ndarray:
        """Ids of the plain tokens (no quote, no backslash) that are a prefix of one of ``rests``."""
        found = self._plain_prefixes.get(rests)
        if found is None:
            found = np.array(sorted({t for rest in rests for end in range(1, min(len(rest), self._longest_plain) + 1)
                                     for t in self._plain_ids.get(rest[:end], ())}), dtype=np.int64)
            self._plain_prefixes[rests] = found
        return found

    def valid_token_ids(self, index: Index, regex_state: int, walker_state: walk.WalkerState) -> np.ndarray:
        """Sorted ids of every token that keeps the output inside the contract."""
        return np.flatnonzero(self.valid_mask(index, regex_state, walker_state))

    def _mask_row(self, index: Index, regex_state: int, walker_state: walk.WalkerState) -> int:
        key = (id(index), regex_state, walker_state)
        row = self._mask_cache.get(key)
        if row is None:
            packed = np.packbits(self.valid_mask(index, regex_state, walker_state), bitorder="little")
            row = self._mask_rows.setdefault(packed.tobytes(), len(self._masks))
            if row == len(self._masks):
                self._masks.append(packed)
            self._mask_cache[key] = row
        return row

    # ----------------------------------------------------------------- sequences

    def _analyze(self, token_ids, root: Node, index: Index) -> tuple[list[str], list[int], Violation | None, bool]:
        regex_state = index.get_initial_state()
        state = walk.initial_state(root)
        labels: list[str] = []
        rows: list[int] = []
        eos = self.vocab.eos_token_id
        for position, token_id in enumerate(int(t) for t in token_ids):
            rows.append(self._mask_row(index, regex_state, state))
            if token_id == eos:
                labels.append(walk.END_OF_SEQUENCE)
                if index.is_final_state(regex_state) and state.done:
                    return labels, rows, None, True
                reason = f"end of sequence before the output is complete (expected {walk.expected_label(state)})"
                return labels, rows, self._violation(position, token_id, reason), False
            data = self.vocab.token_bytes[token_id] if 0 <= token_id < self.vocab.size else None
            next_state = None if data is None else index.get_next_state(regex_state, token_id)
            if next_state is None:
                labels.append(self._token_label(state, data))
                reason = (f"not allowed here (expected {walk.expected_label(state)})"
                          if data is not None else "a special token inside the output")
                return labels, rows, self._violation(position, token_id, reason), False
            try:
                next_walker, first = walk.step_bytes(state, data)
            except walk.ContractViolation as exc:
                labels.append(self._token_label(state, data))
                return labels, rows, self._violation(position, token_id, str(exc)), False
            # The token's label is its first decision; an all-whitespace token makes none.
            labels.append(first if first is not None else walk.whitespace_label(state))
            state = next_walker
            regex_state = next_state
        return labels, rows, None, False

    def _token_label(self, state: walk.WalkerState, data: bytes | None) -> str:
        if not data:
            return walk.expected_label(state)
        # The first decision the token makes: walk its bytes until one is labelled.
        current = state
        for byte in data:
            try:
                current, lbl = walk.step(current, byte)
            except walk.ContractViolation:
                return walk.expected_label(current)
            if lbl is not None:
                return lbl
        return walk.whitespace_label(state)

    def _violation(self, position: int, token_id: int, reason: str) -> Violation:
        return Violation(position, token_id, self.vocab.describe(token_id), reason)

    def analyze_batch(self, sequences, schemas) -> ContractBatch:
        """Labels, valid-token masks and first violations for a batch of outputs.

        ``sequences``: generated token ids per sample (prompt excluded); anything
        after the first end-of-sequence is ignored. ``schemas``: one JSON Schema
        per sample (records of one shape share one index).
        """
        if len(sequences) != len(schemas):
            raise ValueError(f"{len(sequences)} sequences but {len(schemas)} schemas")
        results: list[SequenceContract] = []
        used_rows: dict[int, int] = {}
        resolved: dict[int, tuple[Node, Index]] = {}  # samples of one record share its schema object
        for token_ids, schema in zip(sequences, schemas):
            if id(schema) not in resolved:
                root = load_contract_schema(schema)
                resolved[id(schema)] = root, index_for(contract_regex(root), self.vocab)
            root, index = resolved[id(schema)]
            labels, rows, violation, complete = self._analyze(token_ids, root, index)
            local = [used_rows.setdefault(r, len(used_rows)) for r in rows]
            results.append(SequenceContract(labels, np.array(local, dtype=np.int32), violation, complete))
        order = sorted(used_rows, key=used_rows.get)
        width = (self.vocab.size + 7) // 8
        packed = np.stack([self._masks[r] for r in order]) if order else np.zeros((0, width), dtype=np.uint8)
        return ContractBatch(results, packed, self.vocab.size)
