"""Loading a schema into the contract fragment: exact, or refused with the place."""

from __future__ import annotations

import pytest

from cliffaudit.contract import ContractSchemaError, load_contract_schema
from cliffaudit.contract.regex import contract_regex
from cliffaudit.contract.schema import ArrayNode, ObjectNode, StringNode

from .conftest import ITEM_SCHEMA, ranking_schema


def obj(properties, **extra):
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def test_ranking_schema_loads_with_record_enum():
    root = load_contract_schema(ranking_schema(["A1", "B2"]))
    assert isinstance(root, ObjectNode) and root.required == {"ranking"}
    ranking = root.properties["ranking"]
    assert isinstance(ranking, ArrayNode) and ranking.unique_items and ranking.min_items == ranking.max_items == 2
    assert isinstance(ranking.items, StringNode) and ranking.items.enum == {"A1", "B2"}
    assert ranking.items.pointer == "/ranking/*"


def test_records_of_one_shape_share_one_regex():
    assert contract_regex(load_contract_schema(ranking_schema(["A1", "B2"]))) == \
        contract_regex(load_contract_schema(ranking_schema(["C3", "D4"])))
    assert contract_regex(load_contract_schema(ranking_schema(["A1", "B2"]))) != \
        contract_regex(load_contract_schema(ranking_schema(["A1", "B2", "C3"])))


def test_annotations_are_accepted():
    schema = {**ITEM_SCHEMA, "title": "item", "description": "a product", "$schema":
              "https://json-schema.org/draft/2020-12/schema"}
    assert isinstance(load_contract_schema(schema), ObjectNode)


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (obj({"a": {"type": "string", "pattern": "^x"}}), "unsupported keyword 'pattern' at /properties/a/pattern"),
        (obj({"a": {"type": "integer", "minimum": 0}}), "unsupported keyword 'minimum' at /properties/a/minimum"),
        (obj({"a": {"type": "string", "format": "date"}}), "unsupported keyword 'format' at /properties/a/format"),
        (obj({"a": {"anyOf": [{"type": "string"}]}}), "needs a 'type'"),
        (obj({"a": {"type": ["string", "null"]}}), "unsupported keyword value type=['string', 'null']"),
        (obj({"a": {"$ref": "#/$defs/x"}}), "needs a 'type'"),
        ({"type": "object", "properties": {}}, "/additionalProperties must be false"),
        (obj({"a": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}}),
         "/properties/a/uniqueItems: only arrays whose items are a string enum"),
        (obj({"a": {"type": "array"}}), "array without 'items'"),
        (obj({"a": {"enum": [1, 2]}}), "only string values"),
        (obj({"a": {"type": "array", "items": {"enum": ["x"]}, "minItems": 2, "uniqueItems": True}}),
         "only 1 distinct values exist"),
        (obj({"a": {"type": "string"}}, required=["b"]), "required key 'b' at /required has no entry"),
        ({"type": "array", "items": {"type": "string"}}, "root must be an object"),
        (obj({"a": {"type": "strin"}}), "not a valid JSON Schema at /properties/a/type"),
        (obj({"a": {"type": "array", "items": {"type": "string"}, "minItems": -1}}), "not a valid JSON Schema"),
    ],
)
def test_unsupported_or_invalid_schemas_are_refused_with_place(schema, message):
    with pytest.raises(ContractSchemaError) as info:
        load_contract_schema(schema)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
