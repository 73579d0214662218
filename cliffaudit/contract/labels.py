"""Equivalence classes of output positions: what decision each generated token makes.

A position's class is a JSON-pointer pattern of where it writes (array items and
members outside ``properties`` become ``*``) and a role: ``root open``,
``root key``, ``/ranking colon``, ``/ranking open``, ``/ranking/* value``,
``/ranking separator``, ``/ranking close``, ``root close``, ``end of sequence``. A
token's class is that of the first byte in it that decides something; an
all-whitespace token decides nothing and is labelled ``<container> whitespace``.

The labeller reads JSON syntax only; which tokens keep the contract is the grammar's
question (``tokens.py``). It runs over the valid prefix of an output, so it never
needs to recover from an error: a byte it cannot place gets the label of what the
position expects.
"""

from __future__ import annotations

from dataclasses import dataclass

from cliffaudit.contract.schema import ContractSchema, child_pointer

END_OF_SEQUENCE = "end of sequence"
_WHITESPACE = frozenset(b" \t\n\r")
_HEX = frozenset("0123456789abcdefABCDEF")
_SCALAR = frozenset(b"0123456789+-.eEtruefalsn")
_SHORT = {ord('"'): b'"', ord("\\"): b"\\", ord("/"): b"/", ord("b"): b"\b", ord("f"): b"\f", ord("n"): b"\n",
          ord("r"): b"\r", ord("t"): b"\t"}


def label(pointer: str, role: str) -> str:
    return f"{pointer or 'root'} {role}"


class NotJson(ValueError):
    """A byte JSON syntax has no place for here."""


# Frames, immutable so that a state can be shared and copied for free.
@dataclass(frozen=True, slots=True)
class _Object:
    pointer: str
    phase: str  # first | key | colon | value | after
    key: str = ""


@dataclass(frozen=True, slots=True)
class _Array:
    pointer: str
    phase: str  # first | value | after


@dataclass(frozen=True, slots=True)
class _String:
    label: str
    is_key: bool
    escape: str = ""  # a pending escape: "", "\\", "\\u", "\\u0", ...
    decoded: bytes = b""  # a key's bytes so far, escapes decoded


@dataclass(frozen=True, slots=True)
class _Scalar:
    pointer: str


@dataclass(frozen=True, slots=True)
class LabelState:
    stack: tuple = ()
    done: bool = False


class Labeller:
    """Labels for one schema: it knows the declared member names (others are ``*``) and
    where an object or array may stand (``open`` rather than ``value``)."""

    def __init__(self, contract: ContractSchema):
        self.contract = contract
        self._kind_cache: dict[str, tuple[bool, bool]] = {}

    def initial(self) -> LabelState:
        return LabelState()

    # ------------------------------------------------------------------ reading bytes

    def step(self, state: LabelState, byte: int) -> tuple[LabelState, str | None]:
        """Consume one byte: the new state and the byte's label (None for whitespace)."""
        stack = state.stack
        if not stack:
            if byte in _WHITESPACE:
                return state, None
            if state.done:
                raise NotJson("text after the end of the output")
            return self._start_value("", (), byte)
        top = stack[-1]
        below = stack[:-1]
        if isinstance(top, _String):
            return self._step_string(top, below, byte)
        if isinstance(top, _Scalar):
            if byte in _SCALAR:
                return state, label(top.pointer, "value")
            return self.step(self._complete(below), byte)
        if byte in _WHITESPACE:
            return state, None
        if isinstance(top, _Object):
            if top.phase == "value":
                return self._start_value(self._member_pointer(top.pointer, top.key), stack, byte)
            if top.phase in ("first", "key") and byte == ord('"'):
                lbl = label(top.pointer, "key")
                return LabelState(stack + (_String(lbl, True),)), lbl
            if top.phase == "colon" and byte == ord(":"):
                return (LabelState(below + (_Object(top.pointer, "value", top.key),)),
                        label(self._member_pointer(top.pointer, top.key), "colon"))
            if top.phase == "after" and byte == ord(","):
                return LabelState(below + (_Object(top.pointer, "key"),)), label(top.pointer, "separator")
            if top.phase in ("first", "after") and byte == ord("}"):
                return self._complete(below), label(top.pointer, "close")
            raise NotJson(f"{chr(byte)!r} is out of place in the object at {top.pointer or 'root'}")
        if top.phase == "after" and byte == ord(","):
            return LabelState(below + (_Array(top.pointer, "value"),)), label(top.pointer, "separator")
        if top.phase in ("first", "after") and byte == ord("]"):
            return self._complete(below), label(top.pointer, "close")
        if top.phase in ("first", "value"):
            return self._start_value(top.pointer + "/*", below + (_Array(top.pointer, "value"),), byte)
        raise NotJson(f"{chr(byte)!r} is out of place in the array at {top.pointer}")

    def _member_pointer(self, pointer: str, key: str) -> str:
        return child_pointer(pointer, key) if key in self.contract.property_names else pointer + "/*"

    def _start_value(self, pointer: str, stack: tuple, byte: int) -> tuple[LabelState, str]:
        # A value of a kind the schema has no place for here is labelled as the decision
        # the position expects: a fence where an object must open is a "root open" break.
        container, scalar = self._kinds(pointer)
        if not (container or scalar):  # nothing known of this place: the byte decides
            container = scalar = True
        if byte == ord("{") or byte == ord("["):
            lbl = label(pointer, "open" if container or not scalar else "value")
            frame = _Object(pointer, "first") if byte == ord("{") else _Array(pointer, "first")
            return LabelState(stack + (frame,)), lbl
        lbl = label(pointer, "value" if scalar or not container else "open")
        if byte == ord('"'):
            return LabelState(stack + (_String(lbl, False),)), lbl
        if byte in _SCALAR:
            return LabelState(stack + (_Scalar(pointer),)), lbl
        raise NotJson(f"{chr(byte)!r} cannot start a value at {pointer or 'root'}")

    def _kinds(self, pointer: str) -> tuple[bool, bool]:
        found = self._kind_cache.get(pointer)
        if found is None:
            found = self._kind_cache[pointer] = (self.contract.container_at(pointer), self.contract.scalar_at(pointer))
        return found

    def _complete(self, below: tuple) -> LabelState:
        """The innermost value ended: its container moves on."""
        if not below:
            return LabelState((), True)
        parent = below[-1]
        moved = _Object(parent.pointer, "after") if isinstance(parent, _Object) else _Array(parent.pointer, "after")
        return LabelState(below[:-1] + (moved,))

    def _step_string(self, top: _String, below: tuple, byte: int) -> tuple[LabelState, str]:
        if not top.escape:
            if byte == ord('"'):
                if top.is_key:
                    parent = below[-1]
                    key = top.decoded.decode("utf-8", "replace")
                    return LabelState(below[:-1] + (_Object(parent.pointer, "colon", key),)), top.label
                return self._complete(below), top.label
            if byte == ord("\\"):
                return LabelState(below + (_String(top.label, top.is_key, "\\", top.decoded),)), top.label
            if not top.is_key:
                return LabelState(below + (top,)), top.label
            return LabelState(below + (_String(top.label, True, "", top.decoded + bytes((byte,))),)), top.label
        escape, decoded = top.escape + chr(byte), top.decoded
        if (len(escape) > 2 and chr(byte) not in _HEX) or (len(escape) == 2 and byte not in _SHORT and byte != ord("u")):
            raise NotJson(f"invalid escape {escape!r} in a string")
        if escape == "\\u" or (escape.startswith("\\u") and len(escape) < 6):
            return LabelState(below + (_String(top.label, top.is_key, escape, decoded),)), top.label
        if escape.startswith("\\u"):
            decoded += chr(int(escape[2:], 16)).encode("utf-8", "surrogatepass") if top.is_key else b""
        elif top.is_key:
            decoded += _SHORT.get(byte, b"")
        return LabelState(below + (_String(top.label, top.is_key, "", decoded),)), top.label

    # ------------------------------------------------------------------ tokens

    def step_bytes(self, state: LabelState, data: bytes) -> tuple[LabelState, str | None]:
        """Consume a token's bytes: the new state and the label of its first decision."""
        first = None
        for byte in data:
            state, lbl = self.step(state, byte)
            if first is None:
                first = lbl
        return state, first

    def token_label(self, state: LabelState, data: bytes | None) -> str:
        """The class of a token that breaks the contract here: the first decision it
        would make, or, where JSON has no place for it, the decision expected here."""
        if not data:
            return self.expected(state)
        current = state
        for byte in data:
            try:
                current, lbl = self.step(current, byte)
            except NotJson:
                return self.expected(current)
            if lbl is not None:
                return lbl
        return self.whitespace(state)

    def whitespace(self, state: LabelState) -> str:
        for frame in reversed(state.stack):
            if isinstance(frame, (_Object, _Array)):
                return label(frame.pointer, "whitespace")
        return label("", "whitespace")

    def expected(self, state: LabelState) -> str:
        """The label of the decision this state asks for."""
        if not state.stack:
            return END_OF_SEQUENCE if state.done else self._value_label("")
        top = state.stack[-1]
        if isinstance(top, _String):
            return top.label
        if isinstance(top, _Scalar):
            return label(top.pointer, "value")
        if isinstance(top, _Object):
            if top.phase in ("first", "key"):
                return label(top.pointer, "key")
            if top.phase == "colon":
                return label(self._member_pointer(top.pointer, top.key), "colon")
            if top.phase == "value":
                return self._value_label(self._member_pointer(top.pointer, top.key))
            return label(top.pointer, "separator")
        if top.phase == "after":
            return label(top.pointer, "separator")
        return self._value_label(top.pointer + "/*")

    def _value_label(self, pointer: str) -> str:
        return label(pointer, "open" if self._kinds(pointer)[0] else "value")
