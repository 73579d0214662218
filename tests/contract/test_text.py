"""Regexes over JSON text for constraints over decoded strings: every spelling, nothing more.

The oracle is Python itself: ``json.loads`` decodes the text, ``re`` decides the
constraint. The contract's regexes are checked in Python's ``re`` (the two dialects
agree on what the contract writes, ``helpers.python_regex``) on many generated
strings, and in llguidance itself on a sample.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cliffaudit.contract import text

from .helpers import grammar_accepts, python_regex


def spellings(value: str, rng: random.Random) -> str:
    """The JSON text of ``value`` with random escapes: short, \\u in either case, pairs."""
    out = []
    for ch in value:
        code, roll = ord(ch), rng.random()
        if ch in '"\\' or code < 0x20:
            out.append(json.dumps(ch)[1:-1] if roll < 0.5 else f"\\u{code:04x}")
        elif code > 0xFFFF and roll < 0.4:
            high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
            out.append(f"\\u{high:04x}\\u{low:04X}")
        elif code <= 0xFFFF and roll < 0.15:
            out.append(f"\\u{code:04X}" if roll < 0.07 else f"\\u{code:04x}")
        elif ch == "/" and roll < 0.3:
            out.append("\\/")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@pytest.mark.parametrize("seed", range(5))
def test_hex_ranges_match_exactly_their_numerals(seed):
    rng = random.Random(seed)
    lo = rng.randrange(0x10000)
    hi = rng.randrange(lo, min(0x10000, lo + rng.choice([1, 40, 5000, 0x10000])))
    compiled = re.compile(text.hex_range(lo, hi))
    for value in list(range(max(0, lo - 40), min(0x10000, hi + 40))) + [rng.randrange(0x10000) for _ in range(400)]:
        spelled = "".join(rng.choice((c.lower(), c.upper())) for c in f"{value:04x}")
        assert bool(compiled.fullmatch(spelled)) == (lo <= value <= hi), (lo, hi, spelled)


CHARACTERS = st.characters(codec="utf-8", exclude_categories=("Cs",))  # strings JSON can carry


@settings(max_examples=300, deadline=None)
@given(value=st.text(CHARACTERS, max_size=12), other=st.text(CHARACTERS, min_size=1, max_size=12), seed=st.integers())
def test_a_literal_string_admits_every_spelling_and_nothing_else(value, other, seed):
    rng = random.Random(seed)
    compiled = re.compile(python_regex(text.literal_string(value)))
    assert compiled.fullmatch(spellings(value, rng))
    if other != value:
        assert not compiled.fullmatch(spellings(other, rng))


@settings(max_examples=200, deadline=None)
@given(value=st.text(CHARACTERS, max_size=10), low=st.integers(0, 6), extra=st.none() | st.integers(0, 6),
       seed=st.integers())
def test_lengths_count_characters_as_python_does(value, low, extra, seed):
    high = None if extra is None else low + extra
    spelled = spellings(value, random.Random(seed))
    assert json.loads(spelled) == value
    expected = low <= len(value) and (high is None or len(value) <= high)
    assert bool(re.fullmatch(python_regex(text.length_bounded(low, high)), spelled)) == expected


# Patterns as users write them (pydantic constr, OpenAPI, SchemaStore), each with strings
# that match and strings that do not.
PATTERNS = [
    r"^[A-Z]{2}[0-9]{2}$", r"^\d{3}-\d{4}$", r"[a-z]+@[a-z]+\.com", r"^(foo|bar)?baz$", r"colou?r", r"^\w+$",
    r"^[^@\s]+@[^@\s]+$", r"\s", r"^.{2,5}$", r"^[a-zA-Z0-9_-]*$", r"^(?:\+|-)?\d+(?:\.\d+)?$", r"^$", r"x$",
    r"^\S+$", r"[^a-z]", r"^[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}$", r"^é+$", r"^a|b$",
    r"^https?://", r"\.json$", r"^[\u4e00-\u9fff]+$", r"^😀{1,2}$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_patterns_have_search_semantics_over_every_spelling(pattern):
    rng = random.Random(pattern)
    compiled = re.compile(python_regex(text.pattern_text_regex(pattern)))
    samples = [rng.choice(["", "a", "ab", "AB12", "ab12", "123-4567", "x@y.com", "foo", "baz", "foobaz", "color",
                           "colour", "a b", "\n", "x\n", "x", "é", "éé", "😀", "😀😀", "中文", "https://a", "a.json",
                           "user@example", "12.5", "-3", "deadbeef-1234-5678-9abc-0123456789ab", "_-_", "ÄÖ"])
               + rng.choice(["", "", "x", "\n", " ", "Z"]) for _ in range(300)]
    hits = 0
    for value in samples:
        expected = re.search(pattern, value) is not None
        hits += expected
        assert bool(compiled.fullmatch(spellings(value, rng))) == expected, (pattern, value)
    assert 0 < hits < len(samples) or pattern in (r"\s", r"^$", r"^.{2,5}$")


def test_pythons_dollar_admits_a_final_newline_as_strict_validation_does():
    compiled = re.compile(python_regex(text.pattern_text_regex(r"^ab$")))
    assert re.search(r"^ab$", "ab\n") and compiled.fullmatch('"ab\\n"') and compiled.fullmatch('"ab\\u000A"')
    assert not compiled.fullmatch('"ab\\n\\n"')
    assert not re.compile(python_regex(text.pattern_text_regex(r"^ab\Z"))).fullmatch('"ab\\n"')


@pytest.mark.parametrize(("pattern", "fragment"), [
    (r"(a)\1", "backreference"), (r"a(?=b)", "lookahead"), (r"\bword", "anchor"), (r"(?i)abc", "flags"),
    (r"a^b", "anchor"),
])
def test_features_without_an_exact_form_are_named(pattern, fragment):
    with pytest.raises(text.PatternError, match=fragment):
        text.pattern_text_regex(pattern)


@pytest.mark.parametrize("pattern", [r"^(a+)+$", r"(x*)*y", r"(?:a|b{1,1000})+", "a" * 2001, r"a{20000}"])
def test_patterns_that_would_hang_a_backtracking_matcher_are_refused(pattern):
    with pytest.raises(text.CostlyPattern):
        text.pattern_text_regex(pattern)


@pytest.mark.parametrize(("value", "pattern"), [("AB12", r"^[A-Z]{2}[0-9]{2}$"), ("x\n", r"x$"), ("😀", r"^😀{1,2}$")])
def test_llguidance_reads_the_regexes_as_python_does(value, pattern):
    grammar = f'%llguidance {{"no_forcing": true}}\nstart: /{text.pattern_text_regex(pattern)}/\n'
    rng = random.Random(0)
    for _ in range(5):
        assert grammar_accepts(grammar, spellings(value, rng).encode())
    assert not grammar_accepts(grammar, spellings(value + "Q", rng).encode())
