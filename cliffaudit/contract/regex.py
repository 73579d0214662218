"""The regular part of a contract: a regex over output text for outlines-core.

The regex encodes RFC 8259 exactly as ``json.loads`` reads it: any JSON
whitespace between tokens, string escapes including ``\\uXXXX``, and numbers
with optional fraction and exponent. outlines-core's own leaf patterns are
stricter (no ``\\u`` escapes, at most one space), which would make the token
contract refuse outputs that strict validation accepts, so the leaves are
written here.

Object members may come in any order; string enums are widened to "any
string". Both are then narrowed exactly by :mod:`cliffaudit.contract.walker`
(duplicate and required keys, enum membership, ``uniqueItems``), which keeps
the regex the same for every record that shares a shape, so one index serves
them all.
"""

from __future__ import annotations

from cliffaudit.contract.schema import ArrayNode, Node, ObjectNode, ScalarNode, StringNode

WHITESPACE = r"[ \t\n\r]*"
_STRING_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})'
STRING = f'"{_STRING_CHAR}*"'
INTEGER = r"-?(?:0|[1-9][0-9]*)"
NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
SCALARS = {"integer": INTEGER, "number": NUMBER, "boolean": r"(?:true|false)", "null": "null"}
_SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


_META = set("\\.+*?()|[]{}^$")


def _escape(ch: str) -> str:
    # Only regex metacharacters; Python's re.escape also escapes characters that
    # other regex dialects (outlines-core's Rust regex among them) reject escaped.
    return "\\" + ch if ch in _META else ch


def _hex_any_case(code: int) -> str:
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d for d in f"{code:04x}")


def literal_string(value: str) -> str:
    """Every JSON spelling of the string ``value``: each character literal where
    JSON allows it, or escaped (short form or ``\\uXXXX`` in either hex case)."""
    parts = []
    for ch in value:
        forms = [] if ch in '"\\' or ord(ch) < 0x20 else [_escape(ch)]
        if ch in _SHORT_ESCAPES:
            forms.append("\\\\" + _escape(_SHORT_ESCAPES[ch]))
        forms.append(r"\\u" + _hex_any_case(ord(ch)))
        parts.append(f"(?:{'|'.join(forms)})")
    return '"' + "".join(parts) + '"'


def _repeat(item: str, at_least: int, at_most: int | None) -> str:
    """``at_least..at_most`` items separated by commas, inside brackets."""
    more = f"(?:{WHITESPACE},{WHITESPACE}{item})"
    if at_most == 0:
        return ""
    lo = max(at_least - 1, 0)
    hi = "" if at_most is None else str(at_most - 1)
    body = f"{item}{more}{{{lo},{hi}}}"
    return body if at_least >= 1 else f"(?:{body})?"


def node_regex(node: Node) -> str:
    if isinstance(node, StringNode):
        return STRING
    if isinstance(node, ScalarNode):
        return SCALARS[node.type]
    if isinstance(node, ArrayNode):
        body = _repeat(node_regex(node.items), node.min_items, node.max_items)
        return rf"\[{WHITESPACE}{body}{WHITESPACE}\]"
    if isinstance(node, ObjectNode):
        if not node.properties:
            return rf"\{{{WHITESPACE}\}}"
        member = "(?:" + "|".join(
            f"{literal_string(key)}{WHITESPACE}:{WHITESPACE}{node_regex(sub)}" for key, sub in node.properties.items()
        ) + ")"
        # Count bounds are the walker's job (duplicates, required keys).
        body = f"{member}(?:{WHITESPACE},{WHITESPACE}{member})*"
        if not node.required:
            body = f"(?:{body})?"
        return rf"\{{{WHITESPACE}{body}{WHITESPACE}\}}"
    raise TypeError(f"not a contract node: {node!r}")


def contract_regex(root: Node) -> str:
    """The whole output: the root value, optionally wrapped in JSON whitespace."""
    return f"{WHITESPACE}{node_regex(root)}{WHITESPACE}"
