"""The string formats strict validation checks, each defined once, as a regular expression.

Strict validation (``strict.py``) checks a format by ``re.fullmatch`` of the expression
below; the token-level contract admits the JSON text of exactly the strings it
matches (``text.pattern_text_regex``). One definition serves both, so the two agree
by construction, and the checked set does not depend on which optional packages the
environment happens to have (jsonschema checks ``date-time`` only when
``rfc3339-validator`` is installed; here it is always checked, by the rule below).

* ``date``: RFC 3339 full-date, a real calendar day (leap years included), years
  0001-9999: what jsonschema's own check (``date.fromisoformat`` of ``YYYY-MM-DD``)
  accepts.
* ``time``: RFC 3339 full-time with an offset, as jsonschema checks it with
  ``rfc3339-validator``: hours 00-23, minutes and seconds 00-59, an optional fraction,
  ``Z`` or ``+hh:mm``/``-hh:mm``; letters in either case.
* ``date-time``: a date, ``T``, a time.
* ``uuid``: 8-4-4-4-12 hex digits, either case (jsonschema: ``UUID()`` with hyphens
  at 8, 13, 18 and 23).
* ``ipv4``: four decimal octets 0-255 without leading zeros (``ipaddress.IPv4Address``).
* ``email``, ``idn-email``: a string holding ``@`` (jsonschema's check, no more).
* ``ipv6``: RFC 4291 text form as RFC 3986 spells it (what ``ipaddress.IPv6Address``
  accepts without a scope, jsonschema's check).
* ``uri``: RFC 3986 ``URI`` (a scheme, then an authority and path, a query, a
  fragment), as jsonschema checks it with ``rfc3987`` where that is installed.

``CHECKED_ELSEWHERE`` formats are checked by jsonschema's own functions (Python's
``ipaddress``, ``idna``, ``re``) and have no exact regular form here: the contract
admits any string for them, which admits too much (``contract.schema`` says so).
Every other format name is an annotation: strict validation ignores it, and so does
the contract, exactly.
"""

from __future__ import annotations

_YEAR = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
_DAY_OF = {
    "31": r"(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])",
    "30": r"(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)",
    "28": r"02-(?:0[1-9]|1[0-9]|2[0-8])",
}
DATE = rf"(?:{_YEAR}-(?:{_DAY_OF['31']}|{_DAY_OF['30']}|{_DAY_OF['28']})|{_LEAP_YEAR}-02-29)"
_HOUR, _SIXTY = r"(?:[01][0-9]|2[0-3])", r"[0-5][0-9]"
TIME = rf"{_HOUR}:{_SIXTY}:{_SIXTY}(?:\.[0-9]+)?(?:[Zz]|[+-]{_HOUR}:{_SIXTY})"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9][0-9]|[0-9])"
_HEX4 = "[0-9a-fA-F]{4}"
_IPV4 = rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}"
_H16 = "[0-9a-fA-F]{1,4}"
_LS32 = rf"(?:{_H16}:{_H16}|{_IPV4})"


def _groups(n: int) -> str:
    """n groups of ``h16:``"""
    return f"(?:{_H16}:){{{n}}}" if n else ""


def _before(n: int) -> str:
    """up to n+1 groups before ``::``: ``[ *n( h16 ":" ) h16 ]``"""
    return f"(?:(?:{_H16}:){{0,{n}}}{_H16})?"


IPV6 = "(?:" + "|".join([
    f"{_groups(6)}{_LS32}",
    f"::{_groups(5)}{_LS32}",
    f"{_before(0)}::{_groups(4)}{_LS32}",
    f"{_before(1)}::{_groups(3)}{_LS32}",
    f"{_before(2)}::{_groups(2)}{_LS32}",
    f"{_before(3)}::{_groups(1)}{_LS32}",
    f"{_before(4)}::{_LS32}",
    f"{_before(5)}::{_H16}",
    f"{_before(6)}::",
]) + ")"
_UNRESERVED, _SUB_DELIMS = r"A-Za-z0-9\-._~", r"!$&'()*+,;="
_PCT = "%[0-9a-fA-F]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_AUTHORITY = (rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"
              rf"(?:\[(?:{IPV6}|v[0-9a-fA-F]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+)\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*)"
              r"(?::[0-9]*)?")
_HIER_PART = (rf"(?://{_AUTHORITY}(?:/{_PCHAR}*)*|/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?|{_PCHAR}+(?:/{_PCHAR}*)*|)")
URI = rf"[A-Za-z][A-Za-z0-9+\-.]*:{_HIER_PART}(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"

REGEX_FORMATS: dict[str, str] = {
    "date": DATE,
    "time": TIME,
    "date-time": rf"{DATE}[Tt]{TIME}",
    "uuid": rf"{_HEX4}{_HEX4}-{_HEX4}-{_HEX4}-{_HEX4}-{_HEX4}{_HEX4}{_HEX4}",
    "ipv4": _IPV4,
    "ipv6": IPV6,
    "uri": URI,
    "email": r"[\s\S]*@[\s\S]*",
    "idn-email": r"[\s\S]*@[\s\S]*",
}
# Checked by jsonschema's functions; no exact regular form here.
CHECKED_ELSEWHERE = ("idn-hostname", "regex")
