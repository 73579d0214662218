"""Load a JSON Schema into the fragment the token-level contract holds exactly.

Every keyword is either honoured exactly or refused, naming the keyword and its
JSON-pointer path in the schema. Annotation keywords, which never change what
is valid, are accepted and have no effect. ``docs/contract.md`` lists the
fragment and why each limit exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Union

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from cliffaudit.errors import InputError

ANNOTATIONS = frozenset({"$schema", "$id", "$comment", "title", "description", "examples", "default", "deprecated",
                         "readOnly", "writeOnly"})
KEYWORDS_BY_TYPE = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems", "uniqueItems"}),
    "string": frozenset({"type", "enum", "const"}),
    "integer": frozenset({"type"}),
    "number": frozenset({"type"}),
    "boolean": frozenset({"type"}),
    "null": frozenset({"type"}),
}


class ContractSchemaError(InputError):
    """A schema the token-level contract cannot hold exactly; the message names where."""


@dataclass(frozen=True)
class StringNode:
    pointer: str
    # Allowed values, or None for any string. Checked outside the regex, so that
    # per-record candidate lists share one token index.
    enum: frozenset[str] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.pointer, self.enum)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class ScalarNode:
    pointer: str
    type: str  # integer, number, boolean or null


@dataclass(frozen=True)
class ArrayNode:
    pointer: str
    items: Node
    min_items: int = 0
    max_items: int | None = None
    unique_items: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.pointer, self.items, self.min_items, self.max_items,
                                                self.unique_items)))

    def __hash__(self) -> int:
        return self._hash


@dataclass(frozen=True)
class ObjectNode:
    pointer: str
    properties: dict[str, Node] = field(hash=False)
    required: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # Walker states hash their frames' nodes at every position: hash once.
        object.__setattr__(self, "_hash", hash((self.pointer, tuple(self.properties), self.required)))

    def __hash__(self) -> int:
        return self._hash


Node = Union[StringNode, ScalarNode, ArrayNode, ObjectNode]


def child_pointer(pointer: str, key: str) -> str:
    """RFC 6901 pointer of member ``key`` (``~`` and ``/`` escaped)."""
    return f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"


def _where(path: str) -> str:
    return path or "(root)"


def _build(schema: Any, path: str, pointer: str) -> Node:
    # ``path`` locates the keyword in the schema; ``pointer`` the value in an output.
    if not isinstance(schema, dict):
        raise ContractSchemaError(f"schema at {_where(path)} must be an object, got {type(schema).__name__}")
    kind = schema.get("type")
    if "const" in schema or "enum" in schema:
        kind = kind or "string"
    if kind is None:
        raise ContractSchemaError(f"schema at {_where(path)} needs a 'type' (one of {', '.join(KEYWORDS_BY_TYPE)})")
    if not isinstance(kind, str) or kind not in KEYWORDS_BY_TYPE:
        raise ContractSchemaError(f"unsupported keyword value type={kind!r} at {_where(path)}: "
                                  f"use a single type among {', '.join(KEYWORDS_BY_TYPE)}")
    for keyword in schema:
        if keyword not in ANNOTATIONS and keyword not in KEYWORDS_BY_TYPE[kind]:
            raise ContractSchemaError(f"unsupported keyword '{keyword}' at {path}/{keyword} "
                                      f"(for type {kind}; see docs/contract.md)")

    if kind == "object":
        if schema.get("additionalProperties", True) is not False:
            raise ContractSchemaError(f"unsupported keyword value: {path}/additionalProperties must be false "
                                      "(arbitrary extra members cannot be held by a token-level contract)")
        properties = {key: _build(sub, f"{path}/properties/{key}", child_pointer(pointer, key))
                      for key, sub in schema.get("properties", {}).items()}
        for key in properties:
            _check_plain_string(key, f"{path}/properties/{key}")
        required = frozenset(schema.get("required", ()))
        missing = required - properties.keys()
        if missing:
            raise ContractSchemaError(f"required key {sorted(missing)[0]!r} at {path}/required has no entry in "
                                      "properties (its value could be anything)")
        return ObjectNode(pointer, properties, required)

    if kind == "array":
        if "items" not in schema:
            raise ContractSchemaError(f"schema at {_where(path)} is an array without 'items' (its items could be anything)")
        items = _build(schema["items"], f"{path}/items", f"{pointer}/*")
        node = ArrayNode(pointer, items, schema.get("minItems", 0), schema.get("maxItems"),
                         bool(schema.get("uniqueItems", False)))
        if node.max_items is not None and node.max_items < node.min_items:
            raise ContractSchemaError(f"{path}/maxItems is below minItems: no output can satisfy it")
        if node.unique_items:
            if not (isinstance(items, StringNode) and items.enum is not None):
                raise ContractSchemaError(f"unsupported keyword use at {path}/uniqueItems: only arrays whose items "
                                          "are a string enum can be held exactly")
            if len(items.enum) < node.min_items:
                raise ContractSchemaError(f"{path}/minItems is {node.min_items} but only {len(items.enum)} "
                                          "distinct values exist: no output can satisfy it")
        return node

    if kind == "string":
        values = [schema["const"]] if "const" in schema else schema.get("enum")
        if values is None:
            return StringNode(pointer)
        keyword = "const" if "const" in schema else "enum"
        for value in values:
            if not isinstance(value, str):
                raise ContractSchemaError(f"unsupported keyword value at {path}/{keyword}: only string values, got {value!r}")
            _check_plain_string(value, f"{path}/{keyword}")
        if not values:
            raise ContractSchemaError(f"{path}/enum is empty: no output can satisfy it")
        return StringNode(pointer, frozenset(values))

    return ScalarNode(pointer, kind)


def _check_plain_string(value: str, path: str) -> None:
    # Characters outside the Basic Multilingual Plane would need surrogate-pair
    # escapes to be matched exactly; no realistic key or label needs them.
    if any(ord(ch) > 0xFFFF or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ContractSchemaError(f"{path}: {value!r} holds a character outside the Basic Multilingual Plane")


@lru_cache(maxsize=4096)
def _load_cached(schema_json: str) -> Node:
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/" + "/".join(str(part) for part in exc.absolute_path)
        raise ContractSchemaError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise ContractSchemaError("the contract's root must be an object schema ('type': 'object')")
    return _build(schema, "", "")


def load_contract_schema(schema: dict) -> Node:
    """The contract tree of ``schema``; raises ContractSchemaError naming the keyword and path."""
    return _load_cached(json.dumps(schema, sort_keys=True))
