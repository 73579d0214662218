"""Strict validity of a finished output."""

from __future__ import annotations

import pytest

from cliffaudit.contract import strict_validate, strict_validate_bytes

from .conftest import ITEM_SCHEMA


@pytest.mark.parametrize(
    ("text", "valid", "fragment"),
    [
        ('{"colour": "red", "size": 3}', True, None),
        (' \n{"size": 3, "colour": "r\\u0065d"}\t', True, None),
        ('{"colour": "red", "size": 3.0}', False, "integer at /size written with a fraction"),
        ('{"colour": "red", "size": 3e0}', False, "integer at /size"),
        ('{"colour": "red", "size": 3, "size": 4}', False, "duplicate key 'size'"),
        ('{"colour": "red", "size": 3, "price": NaN}', False, "non-standard JSON literal NaN"),
        ('{"colour": "blue", "size": 3}', False, "schema violation at /colour"),
        ('{"colour": "red"}', False, "'size' is a required property"),
        ('{"colour": "red", "size": 3} {}', False, "not JSON"),
        ('{"colour": "red", "size": 3, "tags": ["a", 1]}', False, "schema violation at /tags/1"),
    ],
)
def test_strict_validate(text, valid, fragment):
    verdict = strict_validate(text, ITEM_SCHEMA)
    assert verdict.valid is valid and bool(verdict) is valid
    if fragment:
        assert fragment in verdict.reason
    else:
        assert verdict.reason is None and verdict.value["colour"] == "red"


def test_strict_validate_bytes_requires_utf8():
    verdict = strict_validate_bytes(b'{"colour": "red", "size": 3, "note": "\xff"}', ITEM_SCHEMA)
    assert not verdict.valid and "not UTF-8" in verdict.reason
    assert strict_validate_bytes('{"colour": "red", "size": 3, "note": "ü"}'.encode(), ITEM_SCHEMA).valid
