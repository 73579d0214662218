"""Strict validity of a finished output: the one definition every stage shares.

An output is strictly valid when ``json.loads`` accepts it as one JSON document
with no duplicate object keys and no NaN/Infinity literals, and the document
validates against the record's JSON Schema under Draft 2020-12 with formats
checked, and an integer-typed value is written as a JSON integer (``3``, not
``3.0``; JSON Schema counts both as integers, most consumers do not). Duplicate keys and NaN are refused because Python's json module
accepts them while most consumers (and the token-level contract) do not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

if TYPE_CHECKING:
    from cliffaudit.contract.vocabulary import TokenVocabulary


@dataclass(frozen=True)
class StrictVerdict:
    valid: bool
    reason: str | None = None  # why not, for reports; None when valid
    value: Any = None  # the parsed document when it parsed

    def __bool__(self) -> bool:
        return self.valid


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _DuplicateKey(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON literal {name}")


def parse_json_strict(text: str) -> Any:
    """``json.loads`` that refuses duplicate keys and NaN/Infinity; raises ValueError."""
    return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validator_for(schema: dict) -> Draft202012Validator:
    """A cached Draft 2020-12 validator with format checking for ``schema``."""
    return _validator(json.dumps(schema, sort_keys=True))


def _integer_written_as_float(value: Any, schema: Any, pointer: str = "") -> str | None:
    """Pointer of an integer-typed value written with a fraction or exponent (``3.0``):
    JSON Schema calls it an integer, but it is not one a consumer's int parser takes."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "integer" and isinstance(value, float):
        return pointer or "/"
    if isinstance(value, dict):
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                found = _integer_written_as_float(value[key], sub, f"{pointer}/{key}")
                if found:
                    return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found = _integer_written_as_float(item, schema["items"], f"{pointer}/{i}")
            if found:
                return found
    return None


def strict_validate(text: str, schema: dict) -> StrictVerdict:
    """Decide strict validity of ``text`` against ``schema``."""
    try:
        value = parse_json_strict(text)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        return StrictVerdict(False, f"not JSON: {exc}")
    error = best_match(validator_for(schema).iter_errors(value))
    if error is not None:
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        return StrictVerdict(False, f"schema violation at {where}: {error.message}", value)
    where = _integer_written_as_float(value, schema)
    if where is not None:
        return StrictVerdict(False, f"integer at {where} written with a fraction or exponent", value)
    return StrictVerdict(True, None, value)


def strict_validate_bytes(data: bytes, schema: dict) -> StrictVerdict:
    """Strict validity of raw output bytes: they must be UTF-8 first."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return StrictVerdict(False, f"not UTF-8: {exc.reason} at byte {exc.start}")
    return strict_validate(text, schema)


def strict_validate_output(token_ids: list[int], vocab: TokenVocabulary, schema: dict) -> StrictVerdict:
    """Strict validity of one sampled output, as the token ids a model wrote.

    It must end with end-of-sequence: an output cut off at the length limit is
    unfinished, whatever its prefix parses to. No special token may come before it:
    a role or padding token inside the JSON is a format break (a chat parser sees a
    new turn), as the token-level contract says, even though a decode with
    ``skip_special_tokens=True`` would hide it. The bytes before it must then pass
    :func:`strict_validate_bytes`.
    """
    if not token_ids or token_ids[-1] != vocab.eos_token_id:
        return StrictVerdict(False, f"no end of sequence within {len(token_ids)} tokens")
    for position, token_id in enumerate(token_ids[:-1]):
        if not 0 <= token_id < vocab.size or vocab.token_bytes[token_id] is None:
            return StrictVerdict(False, f"a special token inside the output: {vocab.describe(token_id)} "
                                        f"at position {position}")
    return strict_validate_bytes(vocab.output_bytes(token_ids[:-1]), schema)
