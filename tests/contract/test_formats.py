"""The formats strict validation checks: each regex against the library check it stands for,
and strict validation and the contract against each other."""

from __future__ import annotations

import datetime
import ipaddress
import itertools
import random
import re
import uuid

import pytest

from cliffaudit.contract import strict_validate, text
from cliffaudit.contract.formats import REGEX_FORMATS

from .helpers import python_regex
from .test_text import spellings


def _is_date(value: str) -> bool:  # jsonschema's own check: YYYY-MM-DD and date.fromisoformat
    try:
        return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", value, re.ASCII) and datetime.date.fromisoformat(value))
    except ValueError:
        return False


def test_date_is_a_real_calendar_day():
    years = ["0000", "0001", "0004", "0100", "0400", "1900", "2000", "2023", "2024", "9999"]
    dates = [f"{y}-{m:02d}-{d:02d}" for y in years for m in range(0, 14) for d in range(0, 33)]
    compiled = re.compile(REGEX_FORMATS["date"])
    for value in dates + ["2024-1-01", "2024-01-1", "20240101", "2024-01-01T", "2024–01–01"]:
        assert bool(compiled.fullmatch(value)) == _is_date(value), value


def _is_uuid(value: str) -> bool:  # jsonschema's own check
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return all(value[i] == "-" for i in (8, 13, 18, 23))


def test_uuid_and_ipv4_match_the_library_checks():
    rng = random.Random(0)
    samples = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50)]
    samples += [s.upper() for s in samples[:10]] + [s.replace("-", "") for s in samples[:5]]
    samples += ["{" + samples[0] + "}", "urn:uuid:" + samples[1], samples[2][:-1] + "g", samples[3] + "0"]
    for value in samples:
        assert bool(re.fullmatch(REGEX_FORMATS["uuid"], value)) == _is_uuid(value), value

    def is_ipv4(value):
        try:
            ipaddress.IPv4Address(value)
            return True
        except ValueError:
            return False

    octets = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300", "01", "001", "-1", ""]
    for parts in itertools.product(octets, repeat=2):
        for value in (f"{parts[0]}.{parts[1]}.1.2", f"1.2.{parts[0]}.{parts[1]}", f"{parts[0]}.{parts[1]}.3"):
            assert bool(re.fullmatch(REGEX_FORMATS["ipv4"], value)) == is_ipv4(value), value


@pytest.mark.parametrize(("value", "valid"), [
    ("10:00:00Z", True), ("23:59:59.123+05:30", True), ("10:00:00z", True), ("24:00:00Z", False),
    ("10:60:00Z", False), ("10:00:00", False), ("10:00Z", False), ("10:00:00+24:00", False),
])
def test_time_is_rfc3339_with_an_offset(value, valid):
    assert bool(re.fullmatch(REGEX_FORMATS["time"], value)) is valid
    assert bool(re.fullmatch(REGEX_FORMATS["date-time"], "2024-02-29T" + value)) is valid
    assert bool(re.fullmatch(REGEX_FORMATS["date-time"], "2023-02-29T" + value)) is False


@pytest.mark.parametrize("name", sorted(REGEX_FORMATS))
def test_strict_validation_and_the_contract_read_a_format_alike(name):
    rng = random.Random(name)
    values = ["2024-02-29", "2023-02-29", "2024-02-29T10:00:00Z", "2024-02-29t10:00:00.5-01:00", "10:00:00Z",
              "a@b", "@", "no at", "1.2.3.4", "1.2.3.256", "123e4567-e89b-12d3-a456-426614174000", "", "x",
              "::1", "fe80::1:2", "1::2::3", "https://a.b/c?d#e", "a b:c"]
    compiled = re.compile(python_regex(text.pattern_text_regex(REGEX_FORMATS[name], anchored=True, longest=None)))
    schema = {"type": "string", "format": name}
    for value in values:
        spelled = spellings(value, rng)
        assert bool(compiled.fullmatch(spelled)) == strict_validate(spelled, schema).valid, (name, value)


def test_the_checked_formats_do_not_depend_on_installed_packages():
    from cliffaudit.contract.strict import FORMAT_CHECKER

    assert set(REGEX_FORMATS) <= set(FORMAT_CHECKER.checkers)
    assert "hostname" not in FORMAT_CHECKER.checkers  # checked nowhere: an annotation on both sides
    assert not strict_validate('"2024-13-01T00:00:00Z"', {"format": "date-time"}).valid  # checked without extras
    assert not strict_validate('"not a uri"', {"format": "uri"}).valid
    assert strict_validate('"not a hostname!"', {"format": "hostname"}).valid


def test_ipv6_is_what_the_library_accepts():
    def is_ipv6(value):
        try:
            return not ipaddress.IPv6Address(value).scope_id
        except ValueError:
            return False

    rng = random.Random(6)
    compiled = re.compile(REGEX_FORMATS["ipv6"])
    for _ in range(5000):
        groups = [format(rng.randrange(1 << 16), "x")[: rng.randint(1, 5)] for _ in range(rng.randint(1, 9))]
        value = ":".join(groups)
        if rng.random() < 0.6:
            cut = rng.randint(0, len(groups))
            value = ":".join(groups[:cut]) + "::" + ":".join(groups[cut:])
        if rng.random() < 0.2:
            value += rng.choice([":1.2.3.4", ".5", ":01.2.3.4", "%eth0", ":"])
        value = value.upper() if rng.random() < 0.1 else value
        assert bool(compiled.fullmatch(value)) == is_ipv6(value), value


@pytest.mark.parametrize(("value", "valid"), [
    ("http://example.com/a/b?x=1#top", True), ("https://user:pw@[2001:db8::1]:8443/p", True), ("mailto:a@b.c", True),
    ("urn:isbn:0451450523", True), ("file:///etc/hosts", True), ("http://e.com/%41", True), ("a:", True),
    ("example.com", False), ("/relative/path", False), ("http://a b", False), ("1http://x", False),
    ("http://[1::2::3]/", False), ("http://e.com/%zz", False), ("", False),
])
def test_uri_is_rfc_3986(value, valid):
    assert bool(re.fullmatch(REGEX_FORMATS["uri"], value)) is valid
