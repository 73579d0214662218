"""Regular expressions over JSON *text* for constraints stated over *decoded* strings.

A JSON Schema constrains a string's decoded value (``pattern``, ``format``,
``maxLength``, ``enum``), but a model writes JSON text, where every character may
also be spelled as an escape: ``"A"``, ``"\\u0041"`` and ``"\\u0041"`` with either hex
case are the same string, and a character outside the Basic Multilingual Plane may be
written as a surrogate pair ``\\ud83d\\ude00``. ``json.loads`` accepts every spelling,
so the token-level contract must too. This module turns a set of characters into the
regex of all its spellings (:func:`spell`), and a Python regular expression into the
regex of the JSON text of every string it matches (:func:`pattern_text_regex`), with
``re.search`` semantics, as strict validation (jsonschema) applies it.

The regexes are written for llguidance's lexer (Rust ``regex`` syntax, over UTF-8
bytes). Characters are written as ``\\x{...}`` escapes, never raw, so the text can go
inside a Lark ``/.../`` unchanged.

One spelling is refused on purpose: an escape of a lone surrogate half
(``\\ud800`` not followed by a low half). It decodes to no character a consumer can
use, and admitting it would make "one character" ambiguous under a length or a
pattern. Strings constrained by length, pattern or format therefore admit slightly
too little (such strings only); a plain string admits every escape.
"""

from __future__ import annotations

import re
import sys
from functools import lru_cache

from cliffaudit.errors import InputError

MAX_CODE_POINT = 0x10FFFF
Ranges = tuple[tuple[int, int], ...]  # sorted, disjoint, inclusive

# What JSON may write literally inside a string: not a quote, a backslash or a control
# character, and never a surrogate (UTF-8 cannot hold one).
_LITERAL_OK: Ranges = ((0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, MAX_CODE_POINT))
_SHORT_ESCAPES = {0x22: '"', 0x5C: "\\\\", 0x2F: r"\x{2F}", 0x08: "b", 0x0C: "f", 0x0A: "n", 0x0D: "r", 0x09: "t"}
_SURROGATES: Ranges = ((0xD800, 0xDFFF),)
ALL: Ranges = ((0, MAX_CODE_POINT),)
# Any character of a JSON string, as json.loads reads it: every escape, lone surrogates too.
STRING_CHAR = r'(?:[^"\\\x00-\x1f]|\\["\\bfnrt]|\\\x{2F}|\\u[0-9a-fA-F]{4})'
STRING = f'"{STRING_CHAR}*"'
INTEGER = r"-?(?:0|[1-9][0-9]*)"
NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
WHITESPACE = r"[\x20\x0A\x0D\x09]+"
_HEX = "0123456789abcdef"

# Bounds on what a pattern may ask for (a pattern is the user's input).
MAX_REPEAT = 10_000
MAX_PATTERN_LENGTH = 2_000


class PatternError(InputError):
    """A pattern the contract cannot hold exactly; the message says which feature."""


class CostlyPattern(PatternError):
    """A pattern too costly to hold or to check: refused as bad input, not approximated."""


# --------------------------------------------------------------------------- code point sets


def normalise(ranges) -> Ranges:
    out: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return tuple((lo, hi) for lo, hi in out)


def complement(ranges: Ranges) -> Ranges:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return tuple(out)


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo <= hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return tuple(out)


def minus(a: Ranges, b: Ranges) -> Ranges:
    return intersect(a, complement(b))


@lru_cache(maxsize=None)
def _every_character() -> str:
    return "".join(map(chr, range(MAX_CODE_POINT + 1)))


@lru_cache(maxsize=None)
def category(pattern: str) -> Ranges:
    """The code points Python's ``re`` matches with ``pattern`` (``\\d``, ``\\w``, ``\\s``),
    Unicode semantics as strict validation uses them; found by ``re`` itself."""
    return tuple((m.start(), m.end() - 1) for m in re.finditer(f"(?:{pattern})+", _every_character()))


# --------------------------------------------------------------------------- spelling


def _hex_digit(d: int) -> str:
    ch = _HEX[d]
    return f"[{ch}{ch.upper()}]" if ch.isalpha() else ch


def _hex_class(lo: int, hi: int) -> str:
    if lo == hi:
        return _hex_digit(lo)
    chars = "".join(_HEX[d] + (_HEX[d].upper() if _HEX[d].isalpha() else "") for d in range(lo, hi + 1))
    return f"[{chars}]"


def hex_range(lo: int, hi: int, width: int = 4) -> str:
    """Regex of the ``width``-digit hex numerals (either case) from ``lo`` to ``hi``."""
    if width == 0:
        return ""
    base = 16 ** (width - 1)
    lo_digit, lo_rest = divmod(lo, base)
    hi_digit, hi_rest = divmod(hi, base)
    if lo_digit == hi_digit:
        return _hex_digit(lo_digit) + hex_range(lo_rest, hi_rest, width - 1)
    parts = []
    if lo_rest != 0:
        parts.append(_hex_digit(lo_digit) + hex_range(lo_rest, base - 1, width - 1))
        lo_digit += 1
    last = None
    if hi_rest != base - 1:
        last = _hex_digit(hi_digit) + hex_range(0, hi_rest, width - 1)
        hi_digit -= 1
    if lo_digit <= hi_digit:
        rest = f"[0-9a-fA-F]{{{width - 1}}}" if width > 1 else ""
        parts.append(_hex_class(lo_digit, hi_digit) + rest)
    if last:
        parts.append(last)
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def _char_class(ranges: Ranges) -> str:
    body = "".join(rf"\x{{{lo:X}}}" if lo == hi else rf"\x{{{lo:X}}}-\x{{{hi:X}}}" for lo, hi in ranges)
    return f"[{body}]"


def _surrogate_pairs(ranges: Ranges) -> list[str]:
    """Escaped surrogate pairs of the code points above the BMP in ``ranges``."""
    parts = []
    for lo, hi in intersect(ranges, ((0x10000, MAX_CODE_POINT),)):
        lo, hi = lo - 0x10000, hi - 0x10000
        high_lo, low_lo = divmod(lo, 0x400)
        high_hi, low_hi = divmod(hi, 0x400)
        if high_lo == high_hi:
            parts.append(rf"\\u{hex_range(0xD800 + high_lo, 0xD800 + high_lo)}\\u{hex_range(0xDC00 + low_lo, 0xDC00 + low_hi)}")
            continue
        parts.append(rf"\\u{hex_range(0xD800 + high_lo, 0xD800 + high_lo)}\\u{hex_range(0xDC00 + low_lo, 0xDFFF)}")
        if high_hi - high_lo > 1:
            parts.append(rf"\\u{hex_range(0xD800 + high_lo + 1, 0xD800 + high_hi - 1)}\\u{hex_range(0xDC00, 0xDFFF)}")
        parts.append(rf"\\u{hex_range(0xD800 + high_hi, 0xD800 + high_hi)}\\u{hex_range(0xDC00, 0xDC00 + low_hi)}")
    return parts


@lru_cache(maxsize=4096)
def spell(ranges: Ranges) -> str:
    """Regex of every JSON spelling of one character from ``ranges``: literal where JSON
    allows it, a short escape, ``\\uXXXX`` in either hex case, or a surrogate pair."""
    ranges = minus(normalise(ranges), _SURROGATES)
    parts = []
    literal = intersect(ranges, _LITERAL_OK)
    if literal:
        parts.append(_char_class(literal))
    for code, escape in _SHORT_ESCAPES.items():
        if intersect(ranges, ((code, code),)):
            parts.append("\\\\" + escape)
    for lo, hi in intersect(ranges, ((0, 0xFFFF),)):
        parts.append(rf"\\u{hex_range(lo, hi)}")
    parts.extend(_surrogate_pairs(ranges))
    if not parts:
        return "[^\\x00-\\x{10FFFF}]"  # matches nothing: an empty class
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def literal_string(value: str) -> str:
    """Regex of every JSON spelling of the string ``value``, quotes included."""
    return '"' + "".join(spell(((ord(ch), ord(ch)),)) for ch in value) + '"'


def length_bounded(min_length: int, max_length: int | None) -> str:
    """Regex of JSON strings of ``min_length`` to ``max_length`` characters, counted as
    Python (and jsonschema) counts them: code points, a surrogate pair being one."""
    upper = "" if max_length is None else str(max_length)
    return f'"(?:{spell(ALL)}){{{min_length},{upper}}}"'


# --------------------------------------------------------------------------- patterns


def pattern_text_regex(pattern: str, *, anchored: bool = False, longest: int | None = MAX_PATTERN_LENGTH) -> str:
    """Regex of the JSON text (quotes included) of every string ``s`` with
    ``re.search(pattern, s)``; with ``anchored``, ``re.fullmatch`` instead (formats).

    Supported: literals, classes (ranges, negation, ``\\d \\w \\s`` with Python's
    Unicode meaning), ``.``, groups, alternation, greedy and lazy repeats, and ``^``,
    ``$``, ``\\A``, ``\\Z`` at the ends of the pattern or of a top-level alternative.
    Refused (:class:`PatternError`): flags, backreferences, lookarounds, word
    boundaries, anchors elsewhere, repeats over ``MAX_REPEAT``."""
    if longest is not None and len(pattern) > longest:  # a user's pattern; the formats' own are longer
        raise CostlyPattern(f"pattern longer than {longest} characters")
    try:
        from re import _parser as sre_parse  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons
        import sre_parse  # type: ignore[no-redef]
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise PatternError(f"not a regular expression: {exc}") from None
    if parsed.state.flags & ~(re.UNICODE | getattr(re, "TEMPLATE", 0)):
        raise PatternError("inline flags such as (?i) are not supported")
    _check_nesting(list(parsed), depth=0)
    branches = _top_branches(list(parsed))
    alternatives = []
    for branch in branches:
        starts = bool(branch) and branch[0][0] is _AT and branch[0][1] in _BEGINNINGS
        ends = bool(branch) and branch[-1][0] is _AT and branch[-1][1] in _ENDINGS
        end_kind = branch[-1][1] if ends else None
        body = branch[1 if starts else 0: len(branch) - (1 if ends else 0)]
        text = _sequence(body)
        if not anchored:  # re.search: anything may come before and after an unanchored end
            if not starts:
                text = f"(?:{STRING_CHAR})*{text}"
            if not ends:
                text = f"{text}(?:{STRING_CHAR})*"
            elif end_kind is _AT_END:  # Python's $ also matches before a final newline
                text = f"{text}(?:{spell(((0x0A, 0x0A),))})?"
        alternatives.append(text)
    return '"(?:' + "|".join(alternatives) + ')"'


def _op(name: str):
    from re import _constants as constants  # Python 3.11+

    return getattr(constants, name)


_AT = _op("AT")
_BEGINNINGS = {_op("AT_BEGINNING"), _op("AT_BEGINNING_STRING")}
_AT_END = _op("AT_END")
_ENDINGS = {_AT_END, _op("AT_END_STRING")}
_MAXREPEAT = _op("MAXREPEAT")


def _top_branches(items: list) -> list[list]:
    if len(items) == 1 and items[0][0] is _op("BRANCH"):
        return [list(alternative) for alternative in items[0][1][1]]
    return [items]


def _check_nesting(items: list, depth: int) -> None:
    """Refuse what makes a backtracking matcher (Python's ``re``, which strict validation
    uses) take exponential time on a failing string: an unbounded repeat inside another
    whose iterations can split the same text in many ways, as ``(a+)+`` or ``(\\s*\\w+)*``.
    An inner repeat is safe when a required part of the outer repeat's body that it
    cannot match delimits it, as the ``.`` in ``(\\w+\\.)*`` does."""
    for op, arg in items:
        if op in (_op("MAX_REPEAT"), _op("MIN_REPEAT")):
            lo, hi, inner = arg
            if _unbounded(hi):
                _check_body(list(inner))
            _check_nesting(list(inner), depth + 1)
        elif op is _op("SUBPATTERN"):
            _check_nesting(list(arg[3]), depth)
        elif op is _op("BRANCH"):
            for alternative in arg[1]:
                _check_nesting(list(alternative), depth)


def _unbounded(hi) -> bool:
    return hi is _MAXREPEAT or hi > 64


def _check_body(body: list) -> None:
    """The body of an unbounded repeat: each unbounded repeat in it needs a delimiter."""
    if len(body) == 1 and body[0][0] is _op("SUBPATTERN"):
        return _check_body(list(body[0][1][3]))
    if len(body) == 1 and body[0][0] is _op("BRANCH"):
        for alternative in body[0][1][1]:
            _check_body(list(alternative))
        return None
    for i, (op, arg) in enumerate(body):
        if op in (_op("MAX_REPEAT"), _op("MIN_REPEAT")) and _unbounded(arg[1]):
            repeated = _first_chars(list(arg[2]))
            others = body[i + 1:] + body[:i]  # what follows it, this iteration and the next
            if not any(_required(o) and not intersect(_first_chars([o]), repeated) for o in others):
                raise CostlyPattern("nested unbounded repeats (such as (a+)+) make backtracking matchers, strict "
                                    "validation's among them, take exponential time")
        elif op in (_op("SUBPATTERN"), _op("BRANCH"), _op("MAX_REPEAT"), _op("MIN_REPEAT")):
            if _has_unbounded(list(arg[3]) if op is _op("SUBPATTERN") else [(op, arg)]):
                raise CostlyPattern("nested unbounded repeats (such as (a+)+) make backtracking matchers, strict "
                                    "validation's among them, take exponential time")


def _has_unbounded(items: list) -> bool:
    for op, arg in items:
        if op in (_op("MAX_REPEAT"), _op("MIN_REPEAT")):
            if _unbounded(arg[1]) or _has_unbounded(list(arg[2])):
                return True
        elif op is _op("SUBPATTERN") and _has_unbounded(list(arg[3])):
            return True
        elif op is _op("BRANCH") and any(_has_unbounded(list(a)) for a in arg[1]):
            return True
    return False


def _required(item) -> bool:
    op, arg = item
    return str(op) in ("LITERAL", "NOT_LITERAL", "ANY", "IN")


def _first_chars(items: list) -> Ranges:
    """The characters the first of ``items`` can start with; every character where that
    is not a plain character or class (conservative: a delimiter is then not proven)."""
    if not items:
        return ALL
    op, arg = items[0]
    name = str(op)
    if name == "LITERAL":
        return ((arg, arg),)
    if name == "NOT_LITERAL":
        return complement(((arg, arg),))
    if name == "IN":
        return _class_ranges(arg)
    if name in ("MAX_REPEAT", "MIN_REPEAT") and arg[0] >= 1:
        return _first_chars(list(arg[2]))
    if name == "SUBPATTERN":
        return _first_chars(list(arg[3]))
    if name == "BRANCH":
        return normalise(r for alternative in arg[1] for r in _first_chars(list(alternative)))
    return ALL


def _sequence(items) -> str:
    return "".join(_item(op, arg) for op, arg in items)


def _item(op, arg) -> str:
    name = str(op)
    if name == "LITERAL":
        return spell(((arg, arg),))
    if name == "NOT_LITERAL":
        return spell(complement(((arg, arg),)))
    if name == "ANY":
        return spell(complement(((0x0A, 0x0A),)))
    if name == "IN":
        return spell(_class_ranges(arg))
    if name == "BRANCH":
        return "(?:" + "|".join(_sequence(alternative) for alternative in arg[1]) + ")"
    if name == "SUBPATTERN":
        _, add_flags, del_flags, inner = arg
        if add_flags or del_flags:
            raise PatternError("inline flags such as (?i:...) are not supported")
        return f"(?:{_sequence(inner)})"
    if name in ("MAX_REPEAT", "MIN_REPEAT"):
        lo, hi, inner = arg
        if lo > MAX_REPEAT or (hi is not _MAXREPEAT and hi > MAX_REPEAT):
            raise CostlyPattern(f"a repeat count above {MAX_REPEAT}")
        upper = "" if hi is _MAXREPEAT else str(hi)
        return f"(?:{_sequence(inner)}){{{lo},{upper}}}"
    if name == "AT":
        raise PatternError("an anchor (^, $, \\A, \\Z, \\b) inside the pattern; only at its ends")
    if name in ("GROUPREF", "GROUPREF_EXISTS"):
        raise PatternError("a backreference")
    if name in ("ASSERT", "ASSERT_NOT"):
        raise PatternError("a lookahead or lookbehind")
    if name in ("ATOMIC_GROUP", "POSSESSIVE_REPEAT"):
        raise PatternError("an atomic group or possessive repeat")
    raise PatternError(f"the regex feature {name}")


_CATEGORIES = {
    "CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S", "CATEGORY_WORD": r"\w", "CATEGORY_NOT_WORD": r"\W",
}


def _class_ranges(items) -> Ranges:
    negate = False
    found: list[tuple[int, int]] = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            found.append((arg, arg))
        elif name == "RANGE":
            found.append(arg)
        elif name == "CATEGORY":
            if str(arg) not in _CATEGORIES:
                raise PatternError(f"the character class {arg}")
            found.extend(category(_CATEGORIES[str(arg)]))
        else:
            raise PatternError(f"the class item {name}")
    ranges = normalise(found)
    return complement(ranges) if negate else ranges


if sys.maxunicode != MAX_CODE_POINT:  # pragma: no cover - narrow builds are gone since 3.3
    raise ImportError("cliffaudit needs a Python with full Unicode strings")
