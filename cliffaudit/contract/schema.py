"""A JSON Schema, compiled into the grammar of its valid outputs for llguidance.

llguidance (the engine behind vLLM's, SGLang's and llama.cpp's structured outputs)
computes, for a grammar and a tokenizer, the exact set of tokens after which the text
can still be completed inside the grammar, over the whole vocabulary in tens of
microseconds. Its own JSON Schema compiler fixes object members to their declared
order and refuses some escape spellings (``docs/contract.md``), while JSON objects are
unordered and ``json.loads`` reads every spelling. So the schema is compiled here, into
llguidance's Lark dialect, with:

* objects whose members come in any order, each at most once, required ones present:
  one rule per object, parameterised by the set of members already written (a 64-bit
  mask; llguidance expands it lazily), so no permutation is ever listed;
* keys, string ``enum``/``const`` values and ``format``/``pattern``/length-constrained
  strings as regexes over every JSON spelling (``text.py``);
* ``uniqueItems`` over an enum of scalars as a mask of the values already used;
* item counts (``minItems``/``maxItems``, ``prefixItems`` positions) as a counter;
* ``$ref`` as a rule of its own (recursion included), ``anyOf``/``oneOf`` as
  alternatives, ``allOf`` merged where the merge is exact;
* numbers with bounds, and nothing else, through llguidance's own JSON compiler.

Every keyword is recorded as *exact*, *approximate* (with the direction: the contract
admits too much, so invalid mass counts as valid and ``p`` and ``b`` are overstated,
or too little), *ignored* (an annotation, or a keyword strict validation ignores as
well), or refused: :class:`ContractSchemaError` names the keyword and its JSON
pointer. Remote ``$ref``s are refused: nothing is fetched.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from cliffaudit.contract import text
from cliffaudit.contract.formats import CHECKED_ELSEWHERE, REGEX_FORMATS
from cliffaudit.errors import InputError

EXACT, APPROXIMATE, IGNORED = "exact", "approximate", "ignored"
TOO_MUCH, TOO_LITTLE = "admits too much", "admits too little"

ANNOTATIONS = frozenset({
    "$schema", "$id", "$anchor", "$comment", "$vocabulary", "$dynamicAnchor", "title", "description", "examples",
    "default", "deprecated", "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema",
    "discriminator",  # OpenAPI and pydantic: a hint beside oneOf, no validation of its own
})
CONTAINERS = frozenset({"$defs", "definitions"})  # hold subschemas for $ref; validate nothing themselves
# Draft 2020-12 keywords the grammar does not hold. Each only ever narrows what is valid,
# so the contract holds the schema without it and admits too much, where it applies.
IGNORED_CONSTRAINTS = frozenset({
    "not", "if", "then", "else", "dependentRequired", "dependentSchemas", "contains", "minContains", "maxContains",
    "unevaluatedItems", "unevaluatedProperties",
})
REFUSED = frozenset({"$dynamicRef"})  # a reference resolved at validation time: nothing to compile
APPROXIMATED = "$cliffaudit approximated"  # set on a schema merged here with an approximation (never a user's key)
OBJECT_KEYWORDS = frozenset({"properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                             "minProperties", "maxProperties"})
ARRAY_KEYWORDS = frozenset({"items", "prefixItems", "minItems", "maxItems", "uniqueItems"})
STRING_KEYWORDS = frozenset({"minLength", "maxLength", "pattern", "format"})
NUMBER_KEYWORDS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})
# What Draft 2020-12 validation reads; any other key is ignored by strict validation too.
KNOWN = (ANNOTATIONS | CONTAINERS | REFUSED | IGNORED_CONSTRAINTS | OBJECT_KEYWORDS | ARRAY_KEYWORDS | STRING_KEYWORDS
         | NUMBER_KEYWORDS | {"type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", APPROXIMATED})
TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")

# Bounds on what a schema may ask for (the schema is the user's input).
MAX_SCHEMA_BYTES = 2_000_000
MAX_DEPTH = 64  # nesting of subschemas inside one another, $ref targets counted where they are used
MAX_RULES = 50_000
MAX_COUNT = 65_535  # an item count the grammar's 16-bit counter holds
MAX_MEMBER_BITS = 64  # object members (or unique enum values) one llguidance parameter holds


class ContractSchemaError(InputError):
    """A schema the token-level contract cannot hold; the message names the keyword and where."""


@dataclass(frozen=True)
class KeywordStatus:
    """How the contract holds one keyword at one place of the schema."""

    pointer: str  # JSON pointer of the keyword in the schema
    keyword: str
    status: str  # exact | approximate | ignored
    direction: str | None = None  # for approximate: admits too much | admits too little
    note: str = ""
    output: str = ""  # output pointer pattern of the values it constrains ("" is the root; "/**" a subtree)
    roles: tuple[str, ...] = ()  # the decisions it touches there (key, value, close, ...); () for all

    def touches(self, class_label: str) -> bool:
        """Is a position of class ``class_label`` (``"/a/* value"``) one this keyword's
        approximation can misjudge?"""
        pointer, _, role = class_label.rpartition(" ")
        pointer = "" if pointer == "root" else pointer
        if self.roles and role not in self.roles:
            return False
        if self.output.endswith("/**"):
            base = self.output[:-3]
            return pointer == base or pointer.startswith(base + "/")
        return pointer == self.output

    def describe(self) -> str:
        how = f"{self.status}, {self.direction}" if self.direction else self.status
        return f"{self.pointer or '/'} {self.keyword}: {how}" + (f" ({self.note})" if self.note else "")


@dataclass(frozen=True)
class ContractSchema:
    """A schema compiled for the token-level contract."""

    grammar: str  # llguidance Lark
    keywords: tuple[KeywordStatus, ...]
    property_names: frozenset[str] = field(default_factory=frozenset)  # every declared member name
    containers: tuple[str, ...] = ()  # output pointer patterns where an object or an array may stand
    scalars: tuple[str, ...] = ()  # and where a string, number, boolean or null may

    def container_at(self, pointer: str) -> bool:
        """May the value at output ``pointer`` be an object or an array? (Labels say "open"
        for the decision that starts one, "value" for a scalar.)"""
        return any(_matches(pattern, pointer) for pattern in self.containers)

    def scalar_at(self, pointer: str) -> bool:
        return any(_matches(pattern, pointer) for pattern in self.scalars)

    @property
    def approximations(self) -> tuple[KeywordStatus, ...]:
        return tuple(k for k in self.keywords if k.status == APPROXIMATE)

    @property
    def exact(self) -> bool:
        return not self.approximations

    def approximation_for(self, class_label: str) -> KeywordStatus | None:
        """The first approximation that can misjudge positions of class ``class_label``."""
        for status in self.approximations:
            if status.touches(class_label):
                return status
        return None


def _matches(pattern: str, pointer: str) -> bool:
    if pattern.endswith("/**"):
        base = pattern[:-3]
        return pointer == base or pointer.startswith(base + "/")
    return pattern == pointer


def child_pointer(pointer: str, key: str) -> str:
    """RFC 6901 pointer of member ``key`` (``~`` and ``/`` escaped)."""
    return f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"


def _where(path: str) -> str:
    return path or "(root)"


def _json_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@dataclass
class _Site:
    """Where a compiled value sits in the output: in the root document (target None) or
    inside the $ref target ``target``, at ``pointer`` relative to where it is used."""

    target: str | None
    pointer: str

    def child(self, key: str) -> _Site:
        return _Site(self.target, child_pointer(self.pointer, key))

    def item(self) -> _Site:
        return _Site(self.target, self.pointer + "/*")


class _Compiler:
    def __init__(self, root: Any):
        self.root = root
        self.lines: list[str] = []
        self.count = 0
        self.statuses: list[tuple[KeywordStatus, _Site]] = []
        self.ref_rules: dict[str, str] = {}
        self.ref_uses: dict[str, list[_Site]] = {}
        self.property_names: set[str] = set()
        self.shared: dict[str, str] = {}
        self.kinds: list[tuple[_Site, bool, bool]] = []  # where values sit; may one be a container, a scalar
        self.work = 0  # subschemas visited and merged: bounded, whatever $ref and allOf multiply
        self.unguarded: set[str] = set()  # $ref targets entered since the last object member or array item

    # ------------------------------------------------------------------ bookkeeping

    def name(self, kind: str = "n") -> str:
        self.count += 1
        if self.count > MAX_RULES:
            raise ContractSchemaError(f"the schema compiles to more than {MAX_RULES} grammar rules")
        return f"{kind}{self.count}"

    def spend(self, path: str) -> None:
        self.work += 1
        if self.work > 4 * MAX_RULES:
            raise ContractSchemaError(f"the schema expands to more than {4 * MAX_RULES} subschemas (at "
                                      f"{_where(path)}): $ref and allOf multiply it")

    def rule(self, body: str, kind: str = "n") -> str:
        name = self.name(kind)
        self.lines.append(f"{name}: {body}")
        return name

    def terminal(self, regexes: list[str]) -> str:
        """A terminal matching every regex of ``regexes`` (their intersection)."""
        body = " & ".join(f"/{rx}/" for rx in regexes)
        if body in self.shared:
            return self.shared[body]
        name = self.name("T")
        self.lines.append(f"{name}: {body}")
        self.shared[body] = name
        return name

    def note(self, path: str, keyword: str, site: _Site, status: str = EXACT, direction: str | None = None,
             note: str = "", subtree: bool = False, roles: tuple[str, ...] = ()) -> None:
        output = site.pointer + ("/**" if subtree else "")
        self.statuses.append((KeywordStatus(f"{path}/{keyword}", keyword, status, direction, note, output, roles),
                              _Site(site.target, output)))

    # ------------------------------------------------------------------ resolving

    def resolve(self, ref: Any, path: str) -> tuple[str, Any]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise ContractSchemaError(f"remote $ref {ref!r} at {path}/$ref: only references inside the schema "
                                      "('#/$defs/...') are followed; nothing is fetched")
        target: Any = self.root
        pointer = ref[1:]
        if pointer and not pointer.startswith("/"):
            raise ContractSchemaError(f"$ref {ref!r} at {path}/$ref: anchors are not supported, use a JSON pointer")
        for part in pointer.split("/")[1:] if pointer else []:
            part = part.replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(part)] if isinstance(target, list) else target[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise ContractSchemaError(f"$ref {ref!r} at {path}/$ref points at nothing in the schema") from None
        return pointer, target

    def expand(self, schema: Any, path: str, depth: int) -> Any:
        """``schema`` with a sibling-free ``$ref`` left to the caller, and ``allOf`` (and a
        ``$ref`` beside other keywords) merged into one schema where that is exact."""
        if not isinstance(schema, dict):
            return schema
        self.spend(path)
        if depth > MAX_DEPTH:
            raise ContractSchemaError(f"the schema nests deeper than {MAX_DEPTH} at {_where(path)}")
        if "$ref" in schema and set(schema) - ANNOTATIONS - CONTAINERS - {"$ref"}:
            _, target = self.resolve(schema["$ref"], path)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {"allOf": [rest, target]}
        if "allOf" not in schema:
            return schema
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        parts = []
        for i, sub in enumerate(schema["allOf"]):
            seen = 0
            while isinstance(sub, dict) and "$ref" in sub and not set(sub) - ANNOTATIONS - {"$ref"}:
                _, sub = self.resolve(sub["$ref"], f"{path}/allOf/{i}")
                seen += 1
                if seen > MAX_DEPTH:
                    raise ContractSchemaError(f"$ref at {path}/allOf/{i} refers to itself")
            parts.append((f"{path}/allOf/{i}", self.expand(sub, f"{path}/allOf/{i}", depth + 1)))
        for where, sub in parts:
            merged = _merge(merged, sub, where)
        return merged

    # ------------------------------------------------------------------ values

    def value(self, schema: Any, path: str, site: _Site, depth: int = 0) -> str:
        """The nonterminal of the JSON values ``schema`` admits."""
        if depth > MAX_DEPTH:
            raise ContractSchemaError(f"the schema nests deeper than {MAX_DEPTH} at {_where(path)}")
        self.spend(path)
        if schema is True or schema == {}:
            return self.any_value(path, site)
        if schema is False:
            raise ContractSchemaError(f"schema at {_where(path)} is false: no value can satisfy it")
        if not isinstance(schema, dict):
            raise ContractSchemaError(f"schema at {_where(path)} must be an object, got {type(schema).__name__}")
        _check_keywords(schema, path)
        for keyword in schema:
            if keyword in ANNOTATIONS:
                self.note(path, keyword, site, IGNORED, note="annotation")
            elif keyword not in KNOWN:
                self.note(path, keyword, site, IGNORED, note="not a Draft 2020-12 keyword: strict validation "
                                                              "ignores it too")
        if set(schema) - ANNOTATIONS - CONTAINERS == {"$ref"}:
            return self.reference(schema["$ref"], path, site, depth)
        schema = self.expand(schema, path, depth)
        _check_keywords(schema, path)  # what allOf brought in
        for keyword in IGNORED_CONSTRAINTS & set(schema):
            self.note(path, keyword, site, APPROXIMATE, TOO_MUCH, "not held: the contract admits what it would "
                      "exclude", subtree=True)
        if APPROXIMATED in schema:
            self.note(path, "allOf", site, APPROXIMATE, TOO_MUCH, schema[APPROXIMATED], subtree=True)
        if "anyOf" in schema or "oneOf" in schema:
            return self.alternatives(schema, path, site, depth)
        return self.typed(schema, path, site, depth)

    def reference(self, ref: Any, path: str, site: _Site, depth: int) -> str:
        pointer, target = self.resolve(ref, path)
        if pointer in self.unguarded:
            # {"$ref": "#"}, or anyOf of itself: strict validation would recurse forever.
            raise ContractSchemaError(f"$ref {ref!r} at {path}/$ref refers back to itself before any object member "
                                      "or array item: no value ends it")
        self.note(path, "$ref", site)
        self.ref_uses.setdefault(pointer, []).append(site)
        if pointer not in self.ref_rules:
            name = self.name("r")
            self.ref_rules[pointer] = name
            self.unguarded.add(pointer)
            body = self.value(target, pointer, _Site(pointer, ""), depth + 1)
            self.unguarded.discard(pointer)
            self.lines.append(f"{name}: {body}")
        return self.ref_rules[pointer]

    def guarded(self, schema: Any, path: str, site: _Site, depth: int) -> str:
        """The value of an object member or array item: text is written before it, so a
        $ref back to an enclosing target is a real recursion."""
        saved, self.unguarded = self.unguarded, set()
        try:
            return self.value(schema, path, site, depth + 1)
        finally:
            self.unguarded = saved

    def alternatives(self, schema: dict, path: str, site: _Site, depth: int) -> str:
        if "anyOf" in schema and "oneOf" in schema:
            raise ContractSchemaError(f"unsupported keyword use at {_where(path)}: anyOf beside oneOf")
        keyword = "anyOf" if "anyOf" in schema else "oneOf"
        rest = {k: v for k, v in schema.items() if k != keyword}
        branches = schema[keyword]
        merged = []
        for i, branch in enumerate(branches):
            where = f"{path}/{keyword}/{i}"
            if set(rest) - ANNOTATIONS - CONTAINERS:
                merged.append((where, {"allOf": [rest, branch]}))
            else:
                merged.append((where, branch))
        if keyword == "oneOf" and not _pairwise_disjoint([self._flat(b, w) for w, b in merged]):
            self.note(path, keyword, site, APPROXIMATE, TOO_MUCH,
                      "read as anyOf: the branches may overlap, and an output matching two of them counts as valid",
                      subtree=True)
        else:
            self.note(path, keyword, site)
        names = [self.value(branch, where, site, depth + 1) for where, branch in merged]
        return self.rule(" | ".join(dict.fromkeys(names)))

    def _flat(self, schema: Any, path: str) -> Any:
        """A branch with its $ref and allOf resolved, for the disjointness check."""
        for _ in range(MAX_DEPTH):
            if isinstance(schema, dict) and set(schema) - ANNOTATIONS == {"$ref"}:
                _, schema = self.resolve(schema["$ref"], path)
            else:
                break
        try:
            return self.expand(schema, path, 0)
        except ContractSchemaError:
            return schema

    def typed(self, schema: dict, path: str, site: _Site, depth: int) -> str:
        types = _types(schema, path)
        for keyword in ("enum", "const"):
            if keyword in schema:
                return self.constants(schema, keyword, path, site, depth)
        self.kinds.append((site, bool({"object", "array"} & set(types)), bool(set(types) - {"object", "array"})))
        alternatives = []
        for kind in types:
            if kind == "integer" and "number" in types:
                continue  # number admits every integer
            alternatives.append(self.of_type(kind, schema, path, site, depth))
        if "type" in schema:
            self.note(path, "type", site)
        for kind, keywords in (("string", STRING_KEYWORDS), ("number", NUMBER_KEYWORDS), ("array", ARRAY_KEYWORDS),
                               ("object", OBJECT_KEYWORDS)):
            allowed = kind in types or (kind == "number" and "integer" in types)
            for keyword in keywords & set(schema):
                if not allowed:
                    self.note(path, keyword, site, IGNORED, note=f"applies to {kind}s, which the type excludes")
        return alternatives[0] if len(alternatives) == 1 else self.rule(" | ".join(alternatives))

    def of_type(self, kind: str, schema: dict, path: str, site: _Site, depth: int) -> str:
        if kind == "null":
            return self.literal_rule('"null"')
        if kind == "boolean":
            return self.literal_rule('"true" | "false"')
        if kind in ("integer", "number"):
            return self.number(kind, schema, path, site)
        if kind == "string":
            return self.string(schema, path, site)
        if kind == "array":
            return self.array(schema, path, site, depth)
        return self.object(schema, path, site, depth)

    def literal_rule(self, body: str) -> str:
        if body not in self.shared:
            self.shared[body] = self.rule(body)
        return self.shared[body]

    # ------------------------------------------------------------------ scalars

    def number(self, kind: str, schema: dict, path: str, site: _Site) -> str:
        bounds = {k: schema[k] for k in NUMBER_KEYWORDS & set(schema)}
        if not bounds:
            return self.terminal([text.INTEGER if kind == "integer" else text.NUMBER])
        for keyword, value in bounds.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ContractSchemaError(f"{path}/{keyword} must be a finite number")
            if kind == "number":
                self.note(path, keyword, site, APPROXIMATE, TOO_LITTLE,
                          "llguidance's bounded numbers have no exponent (1e-3 is refused, 0.001 admitted)",
                          roles=("value",))
            else:
                self.note(path, keyword, site)
        # llguidance's own compiler holds numeric bounds (digit-range regexes); a
        # number's other spellings are the approximation noted above.
        return self.rule("%json " + json.dumps({"type": kind, **bounds}))

    def string(self, schema: dict, path: str, site: _Site) -> str:
        regexes = []
        if "minLength" in schema or "maxLength" in schema:
            low = _count(schema.get("minLength", 0), f"{path}/minLength")
            high = _count(schema.get("maxLength"), f"{path}/maxLength")
            if low > MAX_COUNT:
                raise ContractSchemaError(f"{path}/minLength is above {MAX_COUNT}")
            if high is not None and high < low:
                raise ContractSchemaError(f"{path}/maxLength is below minLength: no string can satisfy it")
            if high is not None and high > MAX_COUNT:
                self.note(path, "maxLength", site, APPROXIMATE, TOO_MUCH, f"lengths above {MAX_COUNT} are not held",
                          roles=("value",))
                high = None
            if low or high is not None:
                regexes.append(text.length_bounded(low, high))
            for keyword in ("minLength", "maxLength"):
                if keyword in schema:
                    self.note(path, keyword, site)
        if "pattern" in schema:
            try:
                regexes.append(text.pattern_text_regex(schema["pattern"]))
                self.note(path, "pattern", site)
            except text.CostlyPattern as exc:
                raise ContractSchemaError(f"pattern at {path}/pattern: {exc}") from None
            except text.PatternError as exc:
                self.note(path, "pattern", site, APPROXIMATE, TOO_MUCH, f"not enforced: it uses {exc}",
                          roles=("value",))
        if "format" in schema:
            name = schema["format"]
            if name in REGEX_FORMATS:
                regexes.append(text.pattern_text_regex(REGEX_FORMATS[name], anchored=True, longest=None))
                self.note(path, "format", site)
            elif name in CHECKED_ELSEWHERE:
                self.note(path, "format", site, APPROXIMATE, TOO_MUCH,
                          f"strict validation checks {name!r} with jsonschema's function; any string is admitted",
                          roles=("value",))
            else:
                self.note(path, "format", site, IGNORED, note=f"strict validation does not check {name!r} either")
        return self.terminal(regexes or [text.STRING])

    def constants(self, schema: dict, keyword: str, path: str, site: _Site, depth: int) -> str:
        values = [schema["const"]] if keyword == "const" else schema["enum"]
        if not isinstance(values, list):
            raise ContractSchemaError(f"{path}/enum must be a list")
        rest = {k: v for k, v in schema.items() if k not in ("enum", "const") and k not in ANNOTATIONS}
        if rest:  # the other keywords filter the values: exactly the ones strict validation keeps
            from cliffaudit.contract.strict import StrictValidator

            check = StrictValidator(rest)
            values = [v for v in values if check.is_valid(v)]
        if keyword == "enum" and "const" in schema:
            values = [v for v in values if _json_equal(v, schema["const"])]
        if not values:
            raise ContractSchemaError(f"{path}/{keyword}: no value satisfies the schema")
        integers_only = "integer" in _types(schema, path) and "number" not in _types(schema, path)
        self.kinds.append((site, any(isinstance(v, (list, dict)) for v in values),
                           any(not isinstance(v, (list, dict)) for v in values)))
        alternatives = []
        approximate = False
        for value in values:
            body, exact = self.constant(value, path, site, depth, integers_only)
            approximate |= not exact
            alternatives.append(body)
        if approximate:
            self.note(path, keyword, site, APPROXIMATE, TOO_LITTLE,
                      "a number is admitted only as written in the schema, with trailing zeros (5e0 is refused for 5)",
                      roles=("value",))
        else:
            self.note(path, keyword, site)
        return self.rule(" | ".join(dict.fromkeys(alternatives)))

    def constant(self, value: Any, path: str, site: _Site, depth: int, integers_only: bool) -> tuple[str, bool]:
        """The grammar of every JSON spelling of ``value``; and whether that is all of them."""
        if value is None:
            return '"null"', True
        if isinstance(value, bool):
            return ('"true"' if value else '"false"'), True
        if isinstance(value, str):
            return self.terminal([text.literal_string(value)]), True
        if isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                raise ContractSchemaError(f"{path}: a non-finite number cannot be written in JSON")
            if float(value).is_integer() and abs(value) < 2 ** 53:
                digits = str(abs(int(value)))
                sign = "-" if value < 0 else ("-?" if value == 0 else "")
                if integers_only:
                    return self.terminal([f"{sign}{digits}"]), True
                # An integral value in a number: 5, 5.0, 5.00, ... and 5e0-style forms
                # are all 5; the exponent forms are left out (the approximation).
                return self.terminal([rf"{sign}{digits}(?:\.0+)?"]), False
            spelled = repr(float(value))
            zeros = "" if "e" in spelled else "0*"  # 1.5 may be written 1.50, not 1.5e0
            return self.terminal([spelled.replace(".", r"\.").replace("+", r"\+") + zeros]), False
        if isinstance(value, list):
            items = [self.constant(v, path, site, depth, integers_only) for v in value]
            inner = ' WS? "," WS? '.join(body for body, _ in items)
            body = f'"[" WS? {inner} WS? "]"' if items else '"[" WS? "]"'
            return self.rule(body), all(exact for _, exact in items)
        if isinstance(value, dict):
            schema = {"type": "object", "properties": {k: {"const": v} for k, v in value.items()},
                      "required": list(value), "additionalProperties": False}
            return self.object(schema, path, site, depth + 1), True
        raise ContractSchemaError(f"{path}: {value!r} is not a JSON value")

    # ------------------------------------------------------------------ containers

    def any_value(self, path: str, site: _Site) -> str:
        self.kinds.append((_Site(site.target, site.pointer + "/**"), True, True))
        self.note(path, "(any value)", site, APPROXIMATE, TOO_MUCH,
                  "an arbitrary JSON value: a repeated key inside it is admitted", subtree=True, roles=("key",))
        if "any" not in self.shared:
            self.shared["any"] = "any_value"
            self.lines.extend([
                'any_value: any_object | any_array | STRING | NUMBER | "true" | "false" | "null"',
                'any_object: "{" WS? ("}" | any_member WS? ("," WS? any_member WS?)* "}")',
                'any_member: STRING WS? ":" WS? any_value',
                'any_array: "[" WS? ("]" | any_value WS? ("," WS? any_value WS?)* "]")',
            ])
        return "any_value"

    def array(self, schema: dict, path: str, site: _Site, depth: int) -> str:
        prefix = schema.get("prefixItems", [])
        items = schema.get("items", True)
        low = _count(schema.get("minItems", 0), f"{path}/minItems")
        high = _count(schema.get("maxItems"), f"{path}/maxItems")
        if items is False:
            high = len(prefix) if high is None else min(high, len(prefix))
        if low > MAX_COUNT:
            raise ContractSchemaError(f"{path}/minItems is above {MAX_COUNT}")
        if high is not None and high < low:
            raise ContractSchemaError(f"{path}/maxItems is below minItems: no array can satisfy it")
        for keyword in ("prefixItems", "items", "minItems", "maxItems"):
            if keyword in schema:
                self.note(path, keyword, site)
        if high is not None and high > MAX_COUNT:
            self.note(path, "maxItems", site, APPROXIMATE, TOO_MUCH, f"counts above {MAX_COUNT} are not held",
                      roles=("separator", "close"))
            high = None
        if schema.get("uniqueItems") and (high is None or high > 1):
            unique = self.unique_values(prefix, items, path)
            if unique is not None:
                self.note(path, "uniqueItems", site)
                return self.unique_array(unique, low, high, site)
            self.note(path, "uniqueItems", site, APPROXIMATE, TOO_MUCH,
                      "held only over an enum of scalar values: repeated items are admitted", subtree=True)
        elif "uniqueItems" in schema:
            self.note(path, "uniqueItems", site)
        item_rules = [self.guarded(sub, f"{path}/prefixItems/{i}", site.item(), depth)
                      for i, sub in enumerate(prefix) if high is None or i < high]
        rest = None if items is False else self.guarded(items, f"{path}/items", site.item(), depth)
        if not prefix and low == 0 and high is None:
            return self.rule(f'"[" WS? ("]" | {rest} WS? ("," WS? {rest} WS?)* "]")')
        # One counter (the parameter's low 16 bits) says how many items are written.
        first, following = self.name("a"), self.name("a")
        count = "[0:16]"

        def item_choices(separator: str) -> list[str]:
            choices = []
            for i, rule in enumerate(item_rules):
                choices.append(f'{separator}{rule} WS? {following}::incr({count}) %if eq({count}, {i})')
            if rest is not None:
                at_most = f"lt({count}, {high})" if high is not None else "true"
                start = f"ge({count}, {len(item_rules)})" if item_rules else "true"
                choices.append(f"{separator}{rest} WS? {following}::incr({count}) %if and({start}, {at_most})"
                               if item_rules else f"{separator}{rest} WS? {following}::incr({count}) %if {at_most}")
            return choices

        close = f'"]" %if ge({count}, {low})' if low else '"]" %if true'
        self.lines.append(f"{first}::_ : " + "\n    | ".join([close] + item_choices("")))
        self.lines.append(f"{following}::_ : " + "\n    | ".join([close] + item_choices('"," WS? ')))
        return self.rule(f'"[" WS? {first}::0x0')

    def unique_values(self, prefix: list, items: Any, path: str) -> list | None:
        """The values of a unique array whose items are an enum (or const) of at most 64
        scalars, resolved; None when the items are anything else."""
        if prefix or not isinstance(items, dict):
            return None
        flat = self._flat(items, f"{path}/items")
        if not isinstance(flat, dict) or set(flat) - ANNOTATIONS - {"enum", "const", "type"}:
            return None
        values = [flat["const"]] if "const" in flat else flat.get("enum")
        if not isinstance(values, list) or not values or len(values) > MAX_MEMBER_BITS:
            return None
        if any(isinstance(v, (list, dict)) for v in values):
            return None
        if "type" in flat:
            from cliffaudit.contract.strict import StrictValidator

            check = StrictValidator({"type": flat["type"]})
            values = [v for v in values if check.is_valid(v)]
        distinct: list = []
        for v in values:
            if not any(_json_equal(v, d) for d in distinct):
                distinct.append(v)
        return distinct

    def unique_array(self, values: list, low: int, high: int | None, site: _Site) -> str:
        if low > len(values):
            raise ContractSchemaError(f"minItems is {low} but only {len(values)} distinct values exist: no array "
                                      "can satisfy it")
        self.kinds.append((site.item(), False, True))
        first, following = self.name("u"), self.name("u")
        spelled = [self.constant(v, "", site, 0, isinstance(v, int))[0] for v in values]

        def choices(separator: str) -> list[str]:
            room = f"bit_count_lt(_, {high})" if high is not None else "true"
            return [f"{separator}{body} WS? {following}::set_bit({j}) %if and(bit_clear({j}), {room})"
                    for j, body in enumerate(spelled)]

        close = f'"]" %if bit_count_ge(_, {low})' if low else '"]" %if true'
        self.lines.append(f"{first}::_ : " + "\n    | ".join([close] + choices("")))
        self.lines.append(f"{following}::_ : " + "\n    | ".join([close] + choices('"," WS? ')))
        return self.rule(f'"[" WS? {first}::0x0')

    def object(self, schema: dict, path: str, site: _Site, depth: int) -> str:
        properties = schema.get("properties", {})
        required = list(dict.fromkeys(schema.get("required", [])))
        extra = schema.get("additionalProperties", True)
        patterns = schema.get("patternProperties", {})
        names_schema = schema.get("propertyNames")
        for keyword in ("properties", "required", "additionalProperties", "patternProperties", "propertyNames",
                        "minProperties", "maxProperties"):
            if keyword in schema:
                self.note(path, keyword, site)
        key_ok = self.key_filter(names_schema, path)
        declared: dict[str, tuple[str, Any]] = {}
        for key, sub in properties.items():
            if sub is False or not key_ok(key):
                continue
            matching = [s for p, s in patterns.items() if _search(p, key)]  # these apply to it as well
            declared[key] = (f"{path}/properties/{child_pointer('', key)[1:]}",
                             {"allOf": [sub, *matching]} if matching else sub)
        for key in required:
            if key in declared:
                continue
            if key in properties or not key_ok(key):
                raise ContractSchemaError(f"required key {key!r} at {path}/required can never be present")
            matching = [s for p, s in patterns.items() if _search(p, key)]
            if matching:
                declared[key] = (f"{path}/patternProperties", {"allOf": matching} if len(matching) > 1 else matching[0])
            elif extra is False:
                raise ContractSchemaError(f"required key {key!r} at {path}/required has no entry in properties and "
                                          "additionalProperties is false: no object can satisfy it")
            else:
                declared[key] = (f"{path}/additionalProperties", extra)
        self.property_names.update(declared)
        order = [k for k in declared if k in required] + [k for k in declared if k not in required]
        n_required = sum(1 for k in order if k in required)
        members = []
        for key in order:
            where, sub = declared[key]
            value = self.guarded(sub, where, site.child(key), depth)
            key_terminal = self.terminal([text.literal_string(key)])
            members.append(self.rule(f'{key_terminal} WS? ":" WS? {value}'))
        extra_member = self.extra_members(declared, extra, patterns, names_schema, path, site, depth)
        low = _count(schema.get("minProperties", 0), f"{path}/minProperties")
        high = _count(schema.get("maxProperties"), f"{path}/maxProperties")
        if extra_member and (low or high is not None):
            self.note(path, "minProperties" if low else "maxProperties", site, APPROXIMATE, TOO_MUCH,
                      "counts beside additional members are not held", roles=("key", "separator", "close"))
            low, high = 0, None
        if len(members) > MAX_MEMBER_BITS:
            self.note(path, "properties", site, APPROXIMATE, TOO_MUCH,
                      f"more than {MAX_MEMBER_BITS} members: a repeated or missing required key is admitted",
                      roles=("key", "separator", "close"))
            choices = members + ([extra_member] if extra_member else [])
            member = self.rule(" | ".join(choices))
            return self.rule(f'"{{" WS? ("}}" | {member} WS? ("," WS? {member} WS?)* "}}")')
        if not members:
            if extra_member is None:
                return self.literal_rule('"{" WS? "}"')
            return self.rule(f'"{{" WS? ("}}" | {extra_member} WS? ("," WS? {extra_member} WS?)* "}}")')
        first, following = self.name("o"), self.name("o")
        done = [f"is_ones([0:{n_required}])"] if n_required else []
        if low:
            done.append(f"bit_count_ge(_, {low})")
        close_if = _and(done) if done else "true"
        room = f"bit_count_lt(_, {high})" if high is not None else None

        def choices(separator: str) -> list[str]:
            out = []
            for j, rule in enumerate(members):
                condition = _and([f"bit_clear({j})"] + ([room] if room else []))
                out.append(f"{separator}{rule} WS? {following}::set_bit({j}) %if {condition}")
            if extra_member:
                out.append(f"{separator}{extra_member} WS? {following}::_ %if true")
            return out

        self.lines.append(f"{first}::_ : " + "\n    | ".join([f'"}}" %if {close_if}'] + choices("")))
        self.lines.append(f"{following}::_ : " + "\n    | ".join([f'"}}" %if {close_if}'] + choices('"," WS? ')))
        return self.rule(f'"{{" WS? {first}::0x0')

    def key_filter(self, names_schema: Any, path: str):
        if names_schema is None:
            return lambda key: True
        from cliffaudit.contract.strict import StrictValidator

        check = StrictValidator(names_schema if isinstance(names_schema, (dict, bool)) else {})
        return check.is_valid

    def extra_members(self, declared: dict, extra: Any, patterns: dict, names_schema: Any, path: str, site: _Site,
                      depth: int) -> str | None:
        """The rule of one member outside ``properties`` (patternProperties and
        additionalProperties), or None when none may appear."""
        if extra is False and not patterns:
            return None
        excluded = [text.literal_string(k) for k in declared]
        name_regexes = self.names_regexes(names_schema, path)
        choices = []
        pattern_texts = []
        for i, (pattern, sub) in enumerate(patterns.items()):
            try:
                key_regex = text.pattern_text_regex(pattern)
            except text.PatternError as exc:
                raise ContractSchemaError(f"patternProperties at {path}/patternProperties: {pattern!r}: {exc}") from None
            pattern_texts.append(key_regex)
            terminal = self.key_terminal([key_regex, *name_regexes], excluded)
            value = self.guarded(sub, f"{path}/patternProperties/{i}", site.item(), depth)
            choices.append(f'{terminal} WS? ":" WS? {value}')
        if len(patterns) > 1:
            self.note(path, "patternProperties", site, APPROXIMATE, TOO_MUCH,
                      "a key matching two patterns needs only one pattern's value schema here", subtree=True)
        if extra is not False:
            terminal = self.key_terminal([text.STRING, *name_regexes], excluded + pattern_texts)
            value = self.guarded(extra, f"{path}/additionalProperties", site.item(), depth)
            choices.append(f'{terminal} WS? ":" WS? {value}')
        if not choices:
            return None
        self.note(path, "additionalProperties" if extra is not False else "patternProperties", site, APPROXIMATE,
                  TOO_MUCH, "a repeated key among members outside 'properties' is admitted (no grammar can hold "
                            "that); a declared key is never repeated", roles=("key",))
        return self.rule(" | ".join(choices))

    def names_regexes(self, names_schema: Any, path: str) -> list[str]:
        if names_schema is None or names_schema is True:
            return []
        if not isinstance(names_schema, dict) or set(names_schema) - ANNOTATIONS - STRING_KEYWORDS - {
                "type", "enum", "const"}:
            raise ContractSchemaError(f"unsupported keyword use at {path}/propertyNames: only string keywords "
                                      "(enum, const, pattern, format, minLength, maxLength)")
        regexes = []
        if "enum" in names_schema or "const" in names_schema:
            values = [names_schema["const"]] if "const" in names_schema else names_schema["enum"]
            regexes.append("(?:" + "|".join(text.literal_string(v) for v in values if isinstance(v, str)) + ")")
        if "pattern" in names_schema:
            try:
                regexes.append(text.pattern_text_regex(names_schema["pattern"]))
            except text.PatternError as exc:
                raise ContractSchemaError(f"propertyNames at {path}/propertyNames/pattern: {exc}") from None
        if "minLength" in names_schema or "maxLength" in names_schema:
            regexes.append(text.length_bounded(names_schema.get("minLength", 0), names_schema.get("maxLength")))
        if names_schema.get("format") in REGEX_FORMATS:
            regexes.append(text.pattern_text_regex(REGEX_FORMATS[names_schema["format"]], anchored=True, longest=None))
        return regexes

    def key_terminal(self, regexes: list[str], excluded: list[str]) -> str:
        body = " & ".join(f"/{rx}/" for rx in regexes)
        if excluded:
            body += " & ~(" + " | ".join(f"/{rx}/" for rx in excluded) + ")"
        if body not in self.shared:
            name = self.name("K")
            self.lines.append(f"{name}: {body}")
            self.shared[body] = name
        return self.shared[body]

    # ------------------------------------------------------------------ the whole grammar

    def grammar(self) -> str:
        root = self.value(self.root, "", _Site(None, ""))
        head = [
            '%llguidance {"no_forcing": true}',
            f"start: WS? {root} WS?",
            f"WS: /{text.WHITESPACE}/",
            f"STRING: /{text.STRING}/",
            f"NUMBER: /{text.NUMBER}/",
        ]
        return "\n".join(head + self.lines) + "\n"

    def resolved_statuses(self) -> tuple[KeywordStatus, ...]:
        """Each status at its output pointers in the document: one inside a $ref target is
        placed at every use of the target (a recursive use reaches any depth)."""
        out: list[KeywordStatus] = []
        for status, site in self.statuses:
            for pointer in self._places(site, set()):
                out.append(KeywordStatus(status.pointer, status.keyword, status.status, status.direction,
                                         status.note, pointer, status.roles))
        return tuple(dict.fromkeys(out))

    def resolved_kinds(self, which: int) -> tuple[str, ...]:
        """Output pointer patterns where a container (``which`` 1) or a scalar (2) may stand."""
        return tuple(dict.fromkeys(p for entry in self.kinds if entry[which] for p in self._places(entry[0], set())))

    def _places(self, site: _Site, visiting: set) -> list[str]:
        if site.target is None:
            return [site.pointer]
        if site.target in visiting:
            return [site.pointer + "/**"]  # recursion: any depth below
        places = []
        for use in self.ref_uses.get(site.target, []):
            for base in self._places(use, visiting | {site.target}):
                if base.endswith("/**"):
                    places.append(base)
                else:
                    places.append(base + site.pointer)
        return places


def _count(value: Any, where: str) -> int | None:
    """A count keyword's value as an int (JSON Schema accepts 3.0 for 3); None stays None."""
    if value is None:
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or value > 2 ** 53:
            raise ContractSchemaError(f"{where} is too large to hold")
        value = int(value)
    return value


def _check_keywords(schema: dict, path: str) -> None:
    for keyword in schema:
        if keyword in REFUSED:
            raise ContractSchemaError(f"unsupported keyword '{keyword}' at {path}/{keyword} (docs/contract.md lists "
                                      "what the contract holds)")


def _and(conditions: list[str]) -> str:
    if len(conditions) == 1:
        return conditions[0]
    return f"and({conditions[0]}, {_and(conditions[1:])})"


def _search(pattern: str, key: str) -> bool:
    import re

    try:
        return re.search(pattern, key) is not None
    except re.error:
        return False


def _types(schema: dict, path: str) -> list[str]:
    kind = schema.get("type")
    if kind is None:  # every type; keywords of the others do not apply to it
        return list(TYPES)
    kinds = [kind] if isinstance(kind, str) else kind
    if not isinstance(kinds, list) or not kinds or any(k not in TYPES for k in kinds):
        raise ContractSchemaError(f"unsupported keyword value type={kind!r} at {path}/type")
    return [k for k in TYPES if k in kinds]


def _merge(a: dict, b: Any, where: str) -> dict:
    """The schema both ``a`` and ``b`` describe, where that is one schema exactly."""
    if b is True:
        return a
    if not isinstance(b, dict):
        raise ContractSchemaError(f"allOf at {where}: only object schemas can be merged")
    members = ("properties", "additionalProperties", "patternProperties")
    if any(k in a for k in members) and any(k in b for k in members) and \
            {"additionalProperties", "patternProperties"} & (set(a) | set(b)):
        # Each side's additionalProperties speaks of its own properties only, and no one
        # object rule says both: dropped, so members one side forbids are admitted.
        a = {k: v for k, v in a.items() if k not in members[1:]}
        b = {k: v for k, v in b.items() if k not in members[1:]}
        a[APPROXIMATED] = ("allOf of objects with their own additionalProperties or patternProperties: members "
                           "one side forbids are admitted")
    out = dict(a)
    for key, value in b.items():
        if key in ANNOTATIONS or key in CONTAINERS or key not in KNOWN or key in IGNORED_CONSTRAINTS:
            out.setdefault(key, value)  # validates nothing here, or is not held anyway (noted where compiled)
        elif key == APPROXIMATED:
            out[key] = out.get(key) or value
        elif key not in out:
            out[key] = value
        elif key == "type":
            left = [out[key]] if isinstance(out[key], str) else list(out[key])
            right = [value] if isinstance(value, str) else list(value)
            both = [t for t in TYPES if (t in left or (t == "integer" and "number" in left))
                    and (t in right or (t == "integer" and "number" in right))]
            if not both:
                raise ContractSchemaError(f"allOf at {where}: the types {left} and {right} exclude each other")
            out[key] = both
        elif key == "required":
            out[key] = list(dict.fromkeys(list(out[key]) + list(value)))
        elif key == "properties":
            merged = dict(out[key])
            for name, sub in value.items():
                merged[name] = {"allOf": [merged[name], sub]} if name in merged else sub
            out[key] = merged
        elif key in ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"):
            out[key] = max(out[key], value)
        elif key in ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"):
            out[key] = min(out[key], value)
        elif key == "uniqueItems":
            out[key] = bool(out[key]) or bool(value)
        elif _json_equal(out[key], value):
            continue
        else:
            raise ContractSchemaError(f"unsupported keyword use at {where}/{key}: allOf cannot merge two different "
                                      f"'{key}' exactly")
    return out


def _pairwise_disjoint(branches: list) -> bool:
    """Can no value satisfy two of the branches? Checked by sufficient conditions: their
    types exclude each other, or a required member holds constants that do
    (a discriminated union)."""
    signatures = [_signature(b) for b in branches]
    for i in range(len(signatures)):
        for j in range(i + 1, len(signatures)):
            if not _disjoint(signatures[i], signatures[j]):
                return False
    return True


def _signature(schema: Any) -> tuple[set, dict]:
    if not isinstance(schema, dict):
        return set(TYPES), {}
    kinds = schema.get("type")
    types = set(TYPES) if kinds is None else ({kinds} if isinstance(kinds, str) else set(kinds))
    if "integer" in types:
        types.add("number")
    constants = {}
    for key in schema.get("required", []):
        sub = schema.get("properties", {}).get(key)
        if isinstance(sub, dict) and ("const" in sub or "enum" in sub):
            constants[key] = [sub["const"]] if "const" in sub else list(sub["enum"])
    return types, constants


def _disjoint(a: tuple[set, dict], b: tuple[set, dict]) -> bool:
    if not (a[0] & b[0]):
        return True
    for key in a[1].keys() & b[1].keys():
        if not any(_json_equal(x, y) for x in a[1][key] for y in b[1][key]):
            return True
    return False


def _json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether JSON data nests deeper than ``limit`` containers (iterative: a hostile schema
    must not cost a recursion to the interpreter's limit, as the meta-schema check would)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


# A subschema sits two JSON levels below its parent at most ("properties" -> name, "$defs" ->
# name), so a schema within MAX_DEPTH subschemas nests within this many JSON containers.
MAX_JSON_DEPTH = 2 * MAX_DEPTH + 2


@lru_cache(maxsize=4096)
def _load_cached(schema_json: str) -> ContractSchema:
    schema = json.loads(schema_json)
    if _json_depth_exceeds(schema, MAX_JSON_DEPTH):
        raise ContractSchemaError(f"the schema nests deeper than {MAX_DEPTH}")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/" + "/".join(str(part) for part in exc.absolute_path)
        raise ContractSchemaError(f"not a valid JSON Schema at {where}: {exc.message}") from None
    except RecursionError:
        raise ContractSchemaError(f"the schema nests deeper than {MAX_DEPTH}") from None
    compiler = _Compiler(schema)
    try:
        grammar = compiler.grammar()
    except RecursionError:
        raise ContractSchemaError(f"the schema nests deeper than {MAX_DEPTH}") from None
    return ContractSchema(grammar, compiler.resolved_statuses(), frozenset(compiler.property_names),
                          compiler.resolved_kinds(1), compiler.resolved_kinds(2))


def load_contract_schema(schema: Any) -> ContractSchema:
    """The contract grammar of ``schema`` with each keyword's status; raises
    :class:`ContractSchemaError` naming the first refused keyword and its pointer."""
    try:
        schema_json = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        raise ContractSchemaError("the schema is not JSON data, or nests too deep") from None
    if len(schema_json) > MAX_SCHEMA_BYTES:
        raise ContractSchemaError(f"the schema is larger than {MAX_SCHEMA_BYTES:,} bytes")
    return _load_cached(schema_json)
