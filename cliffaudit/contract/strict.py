"""Strict validity of a finished output: the one definition every stage shares.

An output is strictly valid when ``json.loads`` accepts it as one JSON document
with no duplicate object keys and no NaN/Infinity literals, and the document
validates against the record's JSON Schema under Draft 2020-12 with formats
checked. Duplicate keys and NaN are refused because Python's json module
accepts them while most consumers (and the token-level contract) do not.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match


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
    return StrictVerdict(True, None, value)
