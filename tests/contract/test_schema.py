"""A schema compiled for the contract: every keyword exact, approximate (with a direction),
ignored, or refused with its place; llguidance takes every grammar written."""

from __future__ import annotations

import json

import pytest

from cliffaudit.contract import ContractSchemaError, TokenContract, load_contract_schema
from cliffaudit.contract.schema import APPROXIMATE, EXACT, IGNORED, MAX_RULES, TOO_LITTLE, TOO_MUCH

from .conftest import ITEM_SCHEMA, ranking_schema
from .helpers import byte_vocabulary
from .pydantic_models import CASES


def obj(properties, **extra):
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def statuses(schema) -> dict[str, tuple]:
    return {k.pointer: (k.status, k.direction) for k in load_contract_schema(schema).keywords}


def test_the_ranking_contract_is_exact():
    compiled = load_contract_schema(ranking_schema(["A1", "B2"]))
    assert compiled.exact and not compiled.approximations
    assert statuses(ranking_schema(["A1", "B2"]))["/properties/ranking/uniqueItems"] == (EXACT, None)


@pytest.mark.parametrize(("schema", "pointer"), [
    (obj({"a": {"type": "string", "pattern": "^x+$"}}), "/properties/a/pattern"),
    (obj({"a": {"type": "string", "format": "date-time"}}), "/properties/a/format"),
    (obj({"a": {"type": "string", "minLength": 1, "maxLength": 3}}), "/properties/a/maxLength"),
    (obj({"a": {"type": "integer", "minimum": 0, "maximum": 9}}), "/properties/a/maximum"),
    (obj({"a": {"type": "integer", "multipleOf": 5}}), "/properties/a/multipleOf"),
    (obj({"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}}), "/properties/a/anyOf"),
    (obj({"a": {"type": ["string", "null"]}}), "/properties/a/type"),
    (obj({"a": {"$ref": "#/$defs/x"}}, **{"$defs": {"x": {"type": "boolean"}}}), "/properties/a/$ref"),
    (obj({"a": {"enum": ["x", None, True, ["y"], {"k": False}]}}), "/properties/a/enum"),
    (obj({"a": {"type": "integer", "enum": [1, 2, -3]}}), "/properties/a/enum"),  # an IntEnum
    (obj({"a": {"const": {"nested": ["p", None]}}}), "/properties/a/const"),
    (obj({"a": {"type": "array", "prefixItems": [{"type": "integer"}], "items": False}}), "/properties/a/prefixItems"),
    (obj({"a": {"type": "object", "properties": {"b": {"type": "integer"}}, "minProperties": 1,
                "additionalProperties": False}}), "/properties/a/minProperties"),
    (obj({"a": {"type": "array", "items": {"enum": [1, 2, 3], "type": "integer"}, "uniqueItems": True}}),
     "/properties/a/uniqueItems"),
    (obj({"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}}), "/properties/a/oneOf"),
    ({"type": "array", "items": {"type": "string"}}, "/items"),  # a root that is not an object
])
def test_exact_keywords(schema, pointer):
    found = statuses(schema)
    assert found[pointer] == (EXACT, None), found
    assert load_contract_schema(schema).exact, [k.describe() for k in load_contract_schema(schema).approximations]


@pytest.mark.parametrize(("schema", "pointer", "direction"), [
    (obj({"a": {"type": "number", "minimum": 0}}), "/properties/a/minimum", TOO_LITTLE),
    (obj({"a": {"type": "string", "format": "idn-hostname"}}), "/properties/a/format", TOO_MUCH),
    (obj({"a": {"type": "string", "pattern": "(a)\\1"}}), "/properties/a/pattern", TOO_MUCH),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, "/additionalProperties", TOO_MUCH),
    (obj({"a": {"type": "array", "items": {"type": "string"}, "uniqueItems": True}}), "/properties/a/uniqueItems",
     TOO_MUCH),
    (obj({"a": {"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 2}]}}), "/properties/a/oneOf", TOO_MUCH),
    (obj({"a": {"enum": [1.5, 2]}}), "/properties/a/enum", TOO_LITTLE),
    # Constraints the grammar cannot hold are left out: the contract admits what they exclude.
    (obj({"a": {"type": "string", "not": {"const": "x"}}}), "/properties/a/not", TOO_MUCH),
    (obj({"a": {"if": {"type": "string"}, "then": {"maxLength": 2}}}), "/properties/a/if", TOO_MUCH),
    (obj({"a": {"type": "object", "dependentRequired": {"x": ["y"]}}}), "/properties/a/dependentRequired", TOO_MUCH),
    (obj({"a": {"allOf": [{"type": "object", "properties": {"x": {"type": "string"}}, "additionalProperties": False},
                          {"properties": {"y": {"type": "string"}}}]}}), "/properties/a/allOf", TOO_MUCH),
    # Any number equal to 1 is valid (1.0, 10e-1, ...): exponent spellings are not regular.
    (obj({"a": {"enum": ["x", 1]}}), "/properties/a/enum", TOO_LITTLE),
])
def test_approximate_keywords_say_which_way(schema, pointer, direction):
    found = statuses(schema)
    assert found[pointer] == (APPROXIMATE, direction), found
    assert not load_contract_schema(schema).exact


def test_annotations_and_unknown_keywords_are_ignored_as_strict_validation_ignores_them():
    schema = {**ITEM_SCHEMA, "title": "item", "x-internal": 3, "nullable": True, "dependencies": {"a": ["b"]},
              "$schema": "https://json-schema.org/draft/2020-12/schema"}
    found = statuses(schema)
    assert found["/title"] == (IGNORED, None) and found["/x-internal"] == (IGNORED, None)
    assert found["/nullable"] == (IGNORED, None)
    assert found["/dependencies"] == (IGNORED, None)  # draft 7's, not a Draft 2020-12 keyword
    assert load_contract_schema(schema).exact


def test_a_discriminated_union_is_exact():
    """pydantic writes oneOf for it; the constant discriminator makes the branches disjoint."""
    owner = next(s for n, s, _ in CASES if n == "discriminated union")
    found = {k.keyword: k for k in load_contract_schema(owner).keywords if k.keyword == "oneOf"}
    assert found["oneOf"].status == EXACT


def test_approximations_touch_only_the_classes_they_can_misjudge():
    compiled = load_contract_schema({"type": "object", "properties": {"n": {"type": "number", "minimum": 0},
                                                                      "m": {"type": "object"}}})
    assert compiled.approximation_for("/n value") is not None  # the bounded number
    assert compiled.approximation_for("/n colon") is None
    assert compiled.approximation_for("root key") is not None  # a repeated undeclared key
    assert compiled.approximation_for("/m/* key") is not None  # inside an arbitrary object
    assert compiled.approximation_for("/m/*/* key") is not None
    assert compiled.approximation_for("/m/* value") is None
    assert compiled.approximation_for("root close") is None


@pytest.mark.parametrize(("schema", "message"), [
    (obj({"a": {"type": "string", "$dynamicRef": "#node"}}), "unsupported keyword '$dynamicRef' at /properties/a"),
    (obj({"a": {"$ref": "https://example.com/s.json"}}), "remote $ref 'https://example.com/s.json' at /properties/a/$ref"),
    (obj({"a": {"$ref": "#/$defs/missing"}}), "points at nothing"),
    ({"$ref": "#"}, "refers back to itself"),
    ({"anyOf": [{"$ref": "#"}, {"type": "string"}]}, "refers back to itself"),
    (obj({"a": {"type": "string"}}, required=["b"]), "required key 'b' at /required has no entry in properties"),
    (obj({"a": {"type": "array", "minItems": 3, "maxItems": 2}}), "maxItems is below minItems"),
    (obj({"a": {"type": "array", "minItems": 100000}}), "minItems is above 65535"),
    (obj({"a": {"type": "string", "pattern": "^(a+)+$"}}), "pattern at /properties/a/pattern: nested unbounded"),
    (obj({"a": {"type": "array", "items": {"enum": ["x"]}, "minItems": 2, "uniqueItems": True}}),
     "only 1 distinct values exist"),
    (obj({"a": {"type": "strin"}}), "not a valid JSON Schema at /properties/a/type"),
    (obj({"a": {"type": "array", "items": {"type": "string"}, "minItems": -1}}), "not a valid JSON Schema"),
    (False, "no value can satisfy it"),
])
def test_refused_schemas_name_the_keyword_and_its_place(schema, message):
    with pytest.raises(ContractSchemaError) as info:
        load_contract_schema(schema)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def _nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = obj({"a": schema}, required=["a"])
    return schema


def test_size_and_recursion_bombs_are_refused_without_blowing_up(monkeypatch):
    from jsonschema import Draft202012Validator

    load_contract_schema(_nested(64))  # the deepest that loads
    # Deeper is refused before the meta-schema check, whose recursion would run to the interpreter's limit.
    monkeypatch.setattr(Draft202012Validator, "check_schema", lambda schema: pytest.fail("meta-schema checked"))
    with pytest.raises(ContractSchemaError, match="deeper than 64"):
        load_contract_schema(_nested(65))
    with pytest.raises(ContractSchemaError, match="deeper than"):
        load_contract_schema(_nested(200))
    monkeypatch.undo()
    with pytest.raises(ContractSchemaError):
        load_contract_schema(_nested(3000))  # deeper than Python's own recursion limit
    defs = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]} for i in range(40)}
    defs["d40"] = {"type": "string"}
    with pytest.raises(ContractSchemaError, match="multiply"):
        load_contract_schema({"$defs": defs, "$ref": "#/$defs/d0"})
    with pytest.raises(ContractSchemaError, match=f"more than {MAX_RULES}"):
        load_contract_schema(obj({f"k{i}": {"type": "string"} for i in range(MAX_RULES)}))
    with pytest.raises(ContractSchemaError, match="larger than"):
        load_contract_schema(obj({"a": {"enum": ["x" * 1000] * 3000}}))


@pytest.mark.parametrize("name", [name for name, _, _ in CASES])
def test_every_user_schema_compiles_into_a_grammar_llguidance_takes(name):
    schema = next(s for n, s, _ in CASES if n == name)
    TokenContract(byte_vocabulary()).schema_matcher(schema)  # raises if llguidance refuses the grammar


def test_records_of_one_schema_share_one_compiled_grammar():
    contract = TokenContract(byte_vocabulary())
    first = contract.schema_matcher(ranking_schema(["A1", "B2"]))
    assert contract.schema_matcher(json.loads(json.dumps(ranking_schema(["A1", "B2"])))) is first
    assert contract.schema_matcher(ranking_schema(["C3", "D4"])) is not first
