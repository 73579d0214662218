"""Plain words for what a page shows: a class label's gloss, a metric's name, a token or an
output text made visible. No torch.

A class label is a JSON-pointer pattern and a role (``cliffaudit.contract.labels``):
``root open``, ``/ranking/* value``, ``end of sequence``. The gloss says which character
of the answer the class decides and what breaks there, so a reader who has never seen
the contract can tell a fenced answer (``root open``) from a wrong enum value.
"""

from __future__ import annotations

from markupsafe import Markup, escape

# What the audit counts a sample under when no contract position broke (audit.NOT_ENDED, NOT_STRICT).
_SPECIAL = {
    "end of sequence": "the end of the answer once its JSON is complete; trailing text (an explanation, a "
                       "closing ``` fence) breaks here",
    "(no end-of-sequence)": "samples cut off at --max-new-tokens before they ended",
    "(fails strict validation)": "samples the token-level contract kept but strict validation refused",
}

_ROLES = {
    "open": "the character that opens {where} ([ or {{): a value of another type breaks here",
    "key": "a member name of {where}: a missing, misspelt or extra key breaks here",
    "colon": "the : after the name of {where}",
    "value": "{where}: a value outside the schema (a wrong type, a value not in its enum) breaks here",
    "separator": "the , between the members or items of {where}, or its end: too few or too many items break here",
    "close": "the character that closes {where} (}} or ])",
    "whitespace": "tokens of whitespace alone inside {where}; they decide nothing",
}


def _where(pointer: str, role: str) -> str:
    """The place a pointer names, in words: the answer itself, a field, each item of a list."""
    if pointer in ("", "root"):
        return "the answer" if role in ("open", "close", "whitespace") else "the answer's top-level object"
    parts = pointer.strip("/").split("/")
    if parts[-1] == "*":
        parent = "/".join(parts[:-1]) or "the answer"
        return f"each item (or member) of {parent}"
    field = "/".join(parts)
    return f"the field {field}" if role in ("open", "close", "separator", "whitespace", "key", "colon") \
        else f"the value of {field}"


def class_gloss(label: str) -> str:
    """One plain-words line for a class label; the label itself when it is not one the
    contract writes."""
    if label in _SPECIAL:
        return _SPECIAL[label]
    pointer, _, role = label.rpartition(" ")
    if role not in _ROLES or not pointer:
        return ""
    if pointer == "root" and role == "open":
        return "the first character of the answer; answers that open with a ```json fence or with prose break here"
    return _ROLES[role].format(where=_where(pointer, role))


def lambda_words(value: float | None, end: float) -> str:
    """A lambda as the page prints it: "none", "> 3" past the audited grid's end (where the
    audit says nothing, e.g. a class's closed-form cliff of 31.3), else 3 decimals."""
    if value is None:
        return "none"
    return f"> {end:g}" if value > end else f"{value:.3f}"


METRIC_NAMES = {"ndcg_at_1": "NDCG@1", "exact_match": "exact match"}


def metric_name(key: str) -> str:
    return METRIC_NAMES.get(key, key.replace("_", " "))


_INVISIBLE = {" ": "␣", "\n": "⏎\n", "\t": "⇥", "\r": "␍"}


def _escaped_control(ch: str) -> str:
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def visible_token(token: str) -> str:
    """A token shown so that a reader sees it: whitespace as a symbol, a control or other
    unprintable character as its escape (``\\x05``), an empty token as ∅ (a highlighted
    space, newline or control character would otherwise be an empty box)."""
    if not token:
        return "∅"
    if token.isprintable() and token.strip():
        return token
    return "".join(_INVISIBLE.get(ch) or (ch if ch.isprintable() else _escaped_control(ch)) for ch in token)


def visible_text(text: str) -> Markup:
    """Output text for a <pre>: escaped, with each unprintable character other than a line
    break or tab shown as its escape in a marked span instead of a box."""
    if all(ch.isprintable() or ch in "\n\t" for ch in text):
        return escape(text)
    pieces = []
    for ch in text:
        if ch.isprintable() or ch in "\n\t":
            pieces.append(escape(ch))
        else:
            pieces.append(Markup('<span class="control" title="an unprintable character, U+{:04X}">{}</span>')
                          .format(ord(ch), _escaped_control(ch)))
    return Markup("").join(pieces)


def breakable(label: str) -> Markup:
    """A class label that wraps only after a '/' or a space, never mid-word."""
    return Markup("/<wbr>").join(escape(part) for part in label.split("/"))
