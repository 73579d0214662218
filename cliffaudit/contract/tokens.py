"""The token-level contract: for every position of a generated output, the set of
tokens that keep it a valid prefix of some contract-satisfying output, the
position's equivalence class, and the first violation.

The valid set is llguidance's token mask for the schema's grammar (``schema.py``):
the tokens after which some completion inside the grammar still exists, end of
sequence included exactly when the output so far is complete. The grammar is exact
for every keyword ``schema.py`` calls exact, so the set is too; where a keyword is
approximate, the report says which classes it touches.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from cliffaudit.contract.labels import END_OF_SEQUENCE, Labeller, NotJson
from cliffaudit.contract.schema import ContractSchema, load_contract_schema
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


class _SchemaMatcher:
    """One schema's compiled grammar, ready to be copied for each output."""

    def __init__(self, compiled: ContractSchema, matcher):
        self.compiled = compiled
        self.matcher = matcher
        self.labeller = Labeller(compiled)


_TOKENIZERS: dict[str, object] = {}


def llguidance_tokenizer(vocab: TokenVocabulary):
    """llguidance's view of the vocabulary: each token's bytes; special tokens, and tokens
    that write nothing, can never keep the contract. Built once per vocabulary."""
    if vocab.fingerprint in _TOKENIZERS:
        return _TOKENIZERS[vocab.fingerprint]
    from llguidance import LLTokenizer, TokenizerWrapper

    class _Tokens:
        eos_token_id = vocab.eos_token_id
        bos_token_id = None
        tokens = [data if data else f"<|cliffaudit special {i}|>".encode() for i, data in enumerate(vocab.token_bytes)]
        special_token_ids = [i for i, data in enumerate(vocab.token_bytes) if not data]

        def __call__(self, text):  # tokenizing is for forced tokens, which the grammars turn off
            raise NotImplementedError("the contract's grammars never force tokens")

    return _TOKENIZERS.setdefault(vocab.fingerprint, LLTokenizer(TokenizerWrapper(_Tokens()), slices=None))


class TokenContract:
    """Token-level contract for one tokenizer, reused across schemas and batches."""

    def __init__(self, vocab: TokenVocabulary):
        self.vocab = vocab
        self._tokenizer = llguidance_tokenizer(vocab)
        self._schemas: dict[str, _SchemaMatcher] = {}
        self._mask_words = np.zeros((vocab.size + 31) // 32, dtype=np.int32)
        self._mask_bytes = (vocab.size + 7) // 8

    @classmethod
    def from_tokenizer(cls, tokenizer) -> TokenContract:
        return cls(vocabulary_from_tokenizer(tokenizer))

    def schema_matcher(self, schema: dict) -> _SchemaMatcher:
        key = json.dumps(schema, sort_keys=True)
        found = self._schemas.get(key)
        if found is None:
            from llguidance import LLMatcher

            compiled = load_contract_schema(schema)
            matcher = LLMatcher(self._tokenizer, LLMatcher.grammar_from_lark(compiled.grammar), log_level=0)
            if matcher.is_error():  # a grammar schema.py wrote that llguidance refuses: our bug, not the user's
                raise RuntimeError(f"llguidance refused the contract grammar: {matcher.get_error()}")
            found = self._schemas[key] = _SchemaMatcher(compiled, matcher)
        return found

    # ----------------------------------------------------------------- sequences

    def _mask(self, matcher) -> bytes:
        matcher.unsafe_compute_mask_ptr(self._mask_words.ctypes.data, self._mask_words.nbytes)
        return self._mask_words.view(np.uint8)[: self._mask_bytes].tobytes()

    def _analyze(self, token_ids, schema: _SchemaMatcher, rows_of: dict[bytes, int]):
        matcher = schema.matcher.deep_copy()
        labeller = schema.labeller
        state = labeller.initial()
        labels: list[str] = []
        rows: list[int] = []
        eos = self.vocab.eos_token_id
        for position, token_id in enumerate(int(t) for t in token_ids):
            mask = self._mask(matcher)
            rows.append(rows_of.setdefault(mask, len(rows_of)))
            allowed = 0 <= token_id < self.vocab.size and bool(mask[token_id >> 3] >> (token_id & 7) & 1)
            if token_id == eos:
                labels.append(END_OF_SEQUENCE)
                if allowed:
                    return labels, rows, None, True
                reason = f"end of sequence before the output is complete (expected {labeller.expected(state)})"
                return labels, rows, self._violation(position, token_id, reason), False
            data = self.vocab.token_bytes[token_id] if 0 <= token_id < self.vocab.size else None
            if not allowed:
                labels.append(labeller.token_label(state, data))
                reason = (f"not allowed here (expected {labeller.expected(state)}; {self._examples(mask)})" if data
                          else "a special token inside the output")
                return labels, rows, self._violation(position, token_id, reason), False
            if not matcher.consume_token(token_id):  # the mask said yes: llguidance disagrees with itself
                raise RuntimeError(f"llguidance refused a token its own mask allowed: {matcher.get_error()}")
            try:
                state, first = labeller.step_bytes(state, data)
            except NotJson as exc:  # the grammar admits only JSON: a labeller bug
                raise RuntimeError(f"the labeller could not read a valid prefix: {exc}") from None
            # The token's label is its first decision; an all-whitespace token makes none.
            labels.append(first if first is not None else labeller.whitespace(state))
        return labels, rows, None, False

    def _examples(self, mask: bytes, most: int = 6) -> str:
        """A few of the tokens that were allowed, the shortest first: what the output could have said."""
        ids = np.flatnonzero(np.unpackbits(np.frombuffer(mask, dtype=np.uint8), bitorder="little")[: self.vocab.size])
        texts = {self.vocab.token_bytes[t].decode("utf-8", "replace") for t in ids
                 if self.vocab.token_bytes[t] and self.vocab.token_bytes[t].strip()}
        if not texts:
            return "only whitespace or the end was allowed" if len(ids) else "nothing was allowed"
        shown = sorted(texts, key=lambda t: (len(t), t))[:most]
        return "allowed: " + ", ".join(repr(t) for t in sorted(shown)) + (" ..." if len(texts) > most else "")

    def _violation(self, position: int, token_id: int, reason: str) -> Violation:
        return Violation(position, token_id, self.vocab.describe(token_id), reason)

    def analyze_batch(self, sequences, schemas) -> ContractBatch:
        """Labels, valid-token masks and first violations for a batch of outputs.

        ``sequences``: generated token ids per sample (prompt excluded); anything
        after the first end-of-sequence is ignored. ``schemas``: one JSON Schema
        per sample (samples of one record share its compiled grammar).
        """
        if len(sequences) != len(schemas):
            raise ValueError(f"{len(sequences)} sequences but {len(schemas)} schemas")
        rows_of: dict[bytes, int] = {}
        results: list[SequenceContract] = []
        resolved: dict[int, _SchemaMatcher] = {}  # samples of one record share its schema object
        for token_ids, schema in zip(sequences, schemas):
            if id(schema) not in resolved:
                resolved[id(schema)] = self.schema_matcher(schema)
            labels, rows, violation, complete = self._analyze(token_ids, resolved[id(schema)], rows_of)
            results.append(SequenceContract(labels, np.array(rows, dtype=np.int32), violation, complete))
        width = self._mask_bytes
        packed = (np.frombuffer(b"".join(rows_of), dtype=np.uint8).reshape(len(rows_of), width) if rows_of
                  else np.zeros((0, width), dtype=np.uint8))
        return ContractBatch(results, packed, self.vocab.size)
