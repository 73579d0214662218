"""Strict validity of a finished output: the one definition every stage shares.

An output is strictly valid when ``json.loads`` accepts it as one JSON document
with no duplicate object keys and no NaN/Infinity literals, and the document
validates against the record's JSON Schema under Draft 2020-12 with the formats of
``formats.py`` checked, where ``integer`` means a value written as a JSON integer
(``3``, not ``3.0``: JSON Schema counts both as integers, most consumers do not),
wherever the schema says ``integer`` (through ``$ref``, ``anyOf`` and the rest).
Duplicate keys and NaN are refused because Python's json module accepts them while
most consumers (and the token-level contract) do not.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import best_match

from cliffaudit.contract.formats import CHECKED_ELSEWHERE, REGEX_FORMATS

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


def _format_checker() -> FormatChecker:
    """Exactly the formats of ``formats.py``, whatever optional packages are installed."""
    checker = FormatChecker(formats=())
    for name, expression in REGEX_FORMATS.items():
        compiled = re.compile(expression)
        checker.checks(name)(lambda instance, compiled=compiled: not isinstance(instance, str)
                             or compiled.fullmatch(instance) is not None)
    for name in CHECKED_ELSEWHERE:
        if name in FormatChecker.checkers:  # jsonschema's own function, e.g. ipaddress for ipv6
            checker.checkers[name] = FormatChecker.checkers[name]
    return checker


FORMAT_CHECKER = _format_checker()
# A JSON integer is what json.loads reads as an int: 3, not 3.0 or 3e0.
StrictValidator = validators.extend(Draft202012Validator, type_checker=Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda checker, instance: isinstance(instance, int) and not isinstance(instance, bool)))


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    return StrictValidator(schema, format_checker=FORMAT_CHECKER)


def validator_for(schema: dict) -> Draft202012Validator:
    """A cached strict Draft 2020-12 validator for ``schema`` (formats of ``formats.py``,
    integers written as integers)."""
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
