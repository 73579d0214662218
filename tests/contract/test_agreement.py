"""The token-level contract and strict validity agree, on sampled and mutated outputs.

Agreement: a token sequence that never leaves the contract and ends with
end-of-sequence is strictly valid, and a strictly valid output never leaves the
contract, whatever its tokenization, whitespace, key order or escapes. Where the
compiled schema states an approximation, a disagreement must go its stated way: a
contract that admits too much may call an invalid output valid, never the reverse.
A keyword whose agreement fails here is approximate or refused, never exact.
"""

from __future__ import annotations

import json
import random

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cliffaudit.contract import load_contract_schema, strict_validate_bytes
from cliffaudit.contract.schema import TOO_LITTLE, TOO_MUCH

from .conftest import COLOURS, ITEM_SCHEMA, RANKING_CANDIDATES, ranking_schema
from .helpers import output_bytes, random_segmentation
from .pydantic_models import CASES

RANKING = ranking_schema()
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
WHITESPACE = st.sampled_from(["", "", "", " ", "\n", "  ", "\t", "\r\n"])


def _spell(value: str, rng: random.Random) -> str:
    """A JSON string literal for ``value`` with random escapes."""
    out = []
    for ch in value:
        roll = rng.random()
        if ch in '"\\' or ord(ch) < 0x20:
            out.append(json.dumps(ch)[1:-1] if roll < 0.5 else f"\\u{ord(ch):04x}")
        elif roll < 0.1:
            out.append(f"\\u{ord(ch):04X}" if roll < 0.05 else f"\\u{ord(ch):04x}")
        elif ch == "/" and roll < 0.3:
            out.append("\\/")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _dump(value, rng: random.Random, ws) -> str:
    """Serialise with random whitespace and escapes (any strictly valid spelling)."""
    if isinstance(value, dict):
        members = [f"{ws()}{_spell(k, rng)}{ws()}:{ws()}{_dump(v, rng, ws)}{ws()}" for k, v in value.items()]
        return "{" + (",".join(members) if members else ws()) + "}"
    if isinstance(value, list):
        items = [f"{ws()}{_dump(v, rng, ws)}{ws()}" for v in value]
        return "[" + (",".join(items) if items else ws()) + "]"
    if isinstance(value, str):
        return _spell(value, rng)
    return json.dumps(value)


MUTATIONS = ["delete", "insert", "swap", "duplicate-code", "foreign-code", "float-int", "drop-key", "extra-key", "none"]


def _mutate(text: str, kind: str, rng: random.Random) -> str:
    if kind == "delete" and text:
        i = rng.randrange(len(text))
        return text[:i] + text[i + 1:]
    if kind == "insert":
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(list('{}[]",:0aA \\\n')) + text[i:]
    if kind == "swap" and len(text) > 1:
        i = rng.randrange(len(text) - 1)
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    if kind == "duplicate-code":
        return text.replace(RANKING_CANDIDATES[1], RANKING_CANDIDATES[0], 1)
    if kind == "foreign-code":
        return text.replace(RANKING_CANDIDATES[2], "ZZ99", 1)
    if kind == "float-int":
        return text.replace('"size": 7', '"size": 7.0')
    if kind == "drop-key":
        return text.replace('"size": 7, ', "")
    if kind == "extra-key":
        return text[:-1] + ', "extra": 1}' if text.endswith("}") else text
    return text


def _item(rng: random.Random) -> dict:
    value = {"colour": rng.choice(COLOURS), "size": 7}
    if rng.random() < 0.5:
        value["note"] = rng.choice(["", 'a "quoted" word', "tab\there", "slash/ and \\ back", "ünïcode ✓"])
    if rng.random() < 0.5:
        value["price"] = rng.choice([0, -2.5, 1e-3, 12.75e2])
    if rng.random() < 0.3:
        value["in_stock"] = rng.random() < 0.5
    if rng.random() < 0.3:
        value["tags"] = rng.sample(["a", "b", "c"], rng.randint(0, 3))
    keys = list(value)
    rng.shuffle(keys)
    return {k: value[k] for k in keys}


def _agrees(contract, ids, schema) -> None:
    seq = contract.analyze_batch([ids], [schema]).sequences[0]
    in_contract = seq.violation is None and seq.complete
    verdict = strict_validate_bytes(output_bytes(contract, ids), schema)
    if in_contract == verdict.valid:
        return
    directions = {k.direction for k in load_contract_schema(schema).approximations}
    stated = TOO_MUCH if in_contract else TOO_LITTLE
    assert stated in directions, (output_bytes(contract, ids), seq.violation, verdict.reason, directions)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_agreement_on_ranking_outputs(contract, tokenizer, seed, mutation, data):
    rng = random.Random(seed)
    order = rng.sample(RANKING_CANDIDATES, len(RANKING_CANDIDATES))
    text = _mutate(_dump({"ranking": order}, rng, lambda: data.draw(WHITESPACE)), mutation, rng)
    ids = random_segmentation(contract, text.encode(), rng) if rng.random() < 0.5 else \
        tokenizer.encode(text, add_special_tokens=False)
    _agrees(contract, ids + [tokenizer.eos_token_id], RANKING)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_agreement_on_item_outputs(contract, tokenizer, seed, mutation, data):
    rng = random.Random(seed)
    text = _mutate(_dump(_item(rng), rng, lambda: data.draw(WHITESPACE)), mutation, rng)
    ids = random_segmentation(contract, text.encode(), rng) if rng.random() < 0.5 else \
        tokenizer.encode(text, add_special_tokens=False)
    _agrees(contract, ids + [tokenizer.eos_token_id], ITEM_SCHEMA)


def _sample_in_contract(contract, schema, rng: random.Random, max_tokens: int = 120) -> list[int]:
    """Sample tokens uniformly from each position's valid set: a random 'model'
    that never leaves the contract. Ends with end-of-sequence or at max_tokens."""
    ids: list[int] = []
    eos = contract.vocab.eos_token_id
    matcher = contract.schema_matcher(schema).matcher.deep_copy()
    for _ in range(max_tokens):
        mask = np.frombuffer(contract._mask(matcher), dtype=np.uint8)
        valid = np.flatnonzero(np.unpackbits(mask, bitorder="little")[: contract.vocab.size])
        assert valid.size, f"dead end after {output_bytes(contract, ids)!r}"
        if eos in valid and rng.random() < 0.5:
            return ids + [eos]
        # Favour structure over whitespace so samples finish.
        non_ws = [t for t in valid if t != eos and contract.vocab.token_bytes[t].strip()]
        ids.append(int(rng.choice(non_ws if non_ws and rng.random() < 0.8 else list(valid))))
        if ids[-1] == eos:
            return ids
        assert matcher.consume_token(ids[-1])
    return ids


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(["ranking", "item"]))
def test_sampling_inside_the_contract_gives_strictly_valid_outputs(contract, seed, which):
    schema = RANKING if which == "ranking" else ITEM_SCHEMA
    ids = _sample_in_contract(contract, schema, random.Random(seed))
    seq = contract.analyze_batch([ids], [schema]).sequences[0]
    assert seq.violation is None
    if ids and ids[-1] == contract.vocab.eos_token_id:
        assert seq.complete
        verdict = strict_validate_bytes(output_bytes(contract, ids), schema)
        assert verdict.valid, (output_bytes(contract, ids), verdict.reason)


# ------------------------------------------------------------------ the schemas users have


def _value_mutations(value, rng: random.Random):
    """The document with one value broken the way a model breaks it: a wrong type, a
    number out of range, a string that misses its pattern, a member dropped or added."""
    if isinstance(value, dict) and value:
        key = rng.choice(list(value))
        roll = rng.random()
        if roll < 0.25:
            return {k: v for k, v in value.items() if k != key}
        if roll < 0.4:
            return {**value, "unexpected": rng.choice([1, "x", None])}
        return {**value, key: _value_mutations(value[key], rng)}
    if isinstance(value, list) and value:
        i = rng.randrange(len(value))
        return value[:i] + [_value_mutations(value[i], rng)] + value[i + 1:]
    if isinstance(value, bool) or value is None:
        return rng.choice([0, "true", not value if isinstance(value, bool) else 1])
    if isinstance(value, (int, float)):
        return rng.choice([value + 1000, -value - 1000, str(value), value + 0.5, 1e-3, 5.0])
    if isinstance(value, str):
        return rng.choice([value + "Ω", "", value[:1], 7, value.upper(), value + "1"])
    return value


TEXT_MUTATIONS = ["none", "none", "value", "trailing-comma", "fence", "truncate", "delete", "insert", "duplicate-key"]


def _user_text(examples, rng: random.Random, ws) -> str:
    value = rng.choice(examples)
    kind = rng.choice(TEXT_MUTATIONS)
    if kind == "value":
        value = _value_mutations(value, rng)
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)  # members in any order
        value = {k: value[k] for k in keys}
    text = _dump(value, rng, ws)
    if kind == "trailing-comma" and text.endswith("}"):
        return text[:-1] + ",}"
    if kind == "fence":
        return "```json\n" + text + "\n```"
    if kind == "truncate":
        return text[: rng.randrange(1, len(text) + 1)]
    if kind == "duplicate-key" and text.startswith("{") and len(text) > 2:
        first = text[1:].split(",")[0].rstrip("}")
        return "{" + first + "," + text[1:] if ":" in first else text
    if kind in ("delete", "insert"):
        return _mutate(text, kind, rng)
    return text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_agreement_on_the_schemas_users_have(contract, tokenizer, seed, data):
    """pydantic models and structured-output schemas (tests/contract/pydantic_models.py),
    each output spelled, ordered, tokenized and broken at random."""
    rng = random.Random(seed)
    for _, schema, examples in CASES:
        text = _user_text(examples, rng, lambda: data.draw(WHITESPACE))
        ids = random_segmentation(contract, text.encode(), rng) if rng.random() < 0.5 else \
            tokenizer.encode(text, add_special_tokens=False)
        _agrees(contract, ids + [tokenizer.eos_token_id], schema)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1))
def test_sampling_inside_a_users_contract_gives_strictly_valid_outputs(contract, seed):
    rng = random.Random(seed)
    for name, schema, _ in CASES:
        ids = _sample_in_contract(contract, schema, rng, max_tokens=80)
        if not ids or ids[-1] != contract.vocab.eos_token_id:
            continue
        verdict = strict_validate_bytes(output_bytes(contract, ids), schema)
        if not verdict.valid:  # only a contract that says it admits too much may get here
            assert TOO_MUCH in {k.direction for k in load_contract_schema(schema).approximations}, \
                (name, output_bytes(contract, ids), verdict.reason)
