"""Strict validity of a finished output."""

from __future__ import annotations

import pytest

from cliffaudit.contract import strict_validate, strict_validate_bytes, strict_validate_output, vocabulary_from_tokenizer

from .conftest import ITEM_SCHEMA


@pytest.mark.parametrize(
    ("text", "valid", "fragment"),
    [
        ('{"colour": "red", "size": 3}', True, None),
        (' \n{"size": 3, "colour": "r\\u0065d"}\t', True, None),
        ('{"colour": "red", "size": 3.0}', False, "schema violation at /size: 3.0 is not of type 'integer'"),
        ('{"colour": "red", "size": 3e0}', False, "schema violation at /size"),
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



def test_a_sampled_output_is_valid_only_when_it_ended(tokenizer):
    """``strict_validate_output`` reads the token ids a model wrote: it must end with
    end-of-sequence, and the bytes before it are judged as strict_validate judges text."""
    vocab = vocabulary_from_tokenizer(tokenizer)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    good = tokenizer.encode('{"colour": "red", "size": 3}', add_special_tokens=False)
    bad = tokenizer.encode('{"colour": "red", "size": 3.0}', add_special_tokens=False)

    verdict = strict_validate_output([*good, eos], vocab, ITEM_SCHEMA)
    assert verdict.valid and verdict.value == {"colour": "red", "size": 3}
    cut = strict_validate_output(good, vocab, ITEM_SCHEMA)  # a complete document, but the model never stopped
    assert not cut.valid and "no end of sequence" in cut.reason
    assert not strict_validate_output([], vocab, ITEM_SCHEMA).valid
    assert "/size: 3.0 is not of type 'integer'" in strict_validate_output([*bad, eos], vocab, ITEM_SCHEMA).reason
    # A special token inside is a break, as the token-level contract says, even where a
    # decode that skips special tokens would show a valid document.
    with_pad = [*good[:1], pad, *good[1:], eos]
    assert tokenizer.decode(with_pad[:-1], skip_special_tokens=True) == '{"colour": "red", "size": 3}'
    inside = strict_validate_output(with_pad, vocab, ITEM_SCHEMA)
    assert not inside.valid and "a special token inside the output" in inside.reason and "at position 1" in inside.reason


def test_an_integer_is_written_as_one_wherever_the_schema_says_integer():
    """Through $ref, anyOf and additionalProperties too, not only properties and items."""
    schema = {"$defs": {"n": {"type": "integer"}}, "type": "object",
              "properties": {"a": {"$ref": "#/$defs/n"}, "b": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
              "additionalProperties": {"type": "integer"}}
    assert strict_validate('{"a": 1, "b": null, "c": -0}', schema).valid
    for text in ('{"a": 1.0}', '{"b": 2e0}', '{"c": 3.0}'):
        assert not strict_validate(text, schema).valid, text
    assert strict_validate('{"a": 1, "b": 1}', {"anyOf": [{"type": "integer"}, {"type": "object"}]}).valid
    assert strict_validate("2.0", {"type": "number"}).valid
