"""A byte-level walk through a JSON output that knows where it is in the contract.

The walker does two jobs the regex cannot:

* **Labels.** Each byte gets the equivalence-class label of the decision it
  makes: a JSON-pointer pattern (array indices become ``*``) plus a role, e.g.
  ``root open``, ``root key``, ``/ranking colon``, ``/ranking open``,
  ``/ranking/* value``, ``/ranking separator``, ``/ranking close``,
  ``root close``. Whitespace makes no decision and gets no byte label.
* **Non-regular checks**, exactly: object keys unseen and required keys present,
  string ``enum``/``const`` membership (escapes decoded, prefixes checked as they
  grow), ``uniqueItems`` over string enums, and that every prefix can still be
  completed under these rules.

It assumes the regular part (syntax, types, item counts) is enforced by the
outlines-core index and only raises :class:`ContractViolation` for what it
checks itself, or for bytes it cannot place at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from cliffaudit.contract.schema import ArrayNode, Node, ObjectNode, ScalarNode, StringNode, child_pointer

END_OF_SEQUENCE = "end of sequence"
WHITESPACE_BYTES = frozenset(b" \t\n\r")
_SCALAR_BYTES = frozenset(b"0123456789+-.eEtruefalsn")
_SHORT_ESCAPES = {ord('"'): '"', ord("\\"): "\\", ord("/"): "/", ord("b"): "\b", ord("f"): "\f",
                  ord("n"): "\n", ord("r"): "\r", ord("t"): "\t"}
_HEX = frozenset(b"0123456789abcdefABCDEF")


class ContractViolation(ValueError):
    """The output left the contract; the message says why.

    The valid-set search raises and discards thousands of these per batch, so a
    costly message may be passed as a function and its arguments, built on demand."""

    def __init__(self, message, *args, **kwargs):
        super().__init__(message)
        self._format = (message, args, kwargs) if callable(message) else None

    def __str__(self) -> str:
        if self._format is None:
            return super().__str__()
        function, args, kwargs = self._format
        return function(*args, **kwargs)


def label(pointer: str, role: str) -> str:
    return f"{pointer or 'root'} {role}"


# Frames are immutable so a walker state can be shared, hashed and branched for free.
@dataclass(frozen=True, slots=True)
class _Object:
    node: ObjectNode
    phase: str  # first | key | colon | value | after
    seen: frozenset[str] = frozenset()
    key: str | None = None


@dataclass(frozen=True, slots=True)
class _Array:
    node: ArrayNode
    phase: str  # first | value | after
    count: int = 0
    used: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _String:
    label: str
    allowed: frozenset[bytes] | None  # None: any string
    is_key: bool
    decoded: bytes = b""  # UTF-8 of the value so far, escapes decoded (constrained strings only)
    escape: str = ""  # a pending escape: "", "\\", "\\u", "\\u0", ...


@dataclass(frozen=True, slots=True)
class _Scalar:
    pointer: str


@dataclass(frozen=True, slots=True)
class WalkerState:
    """Where the output is: a stack of open frames below the root value."""

    root: Node
    stack: tuple = ()
    started: bool = False
    done: bool = False

    @property
    def in_constrained_string(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1], _String) and self.stack[-1].allowed is not None

    @property
    def in_free_string(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1], _String) and self.stack[-1].allowed is None

    @property
    def pending_escape(self) -> bool:
        return bool(self.stack) and isinstance(self.stack[-1], _String) and bool(self.stack[-1].escape)

    def next_bytes(self) -> bytes | None:
        """Inside a constrained string with no pending escape: every byte the walker can
        accept next (a still-possible value's next byte, the closing quote of a complete
        one, a backslash); None elsewhere."""
        top = self._open_constrained_string()
        return None if top is None else _next_bytes(top.allowed, top.decoded)

    def value_rests(self) -> frozenset[bytes] | None:
        """Inside a constrained string with no pending escape: what each still-possible
        value has left to type (b"" for one that is complete); None elsewhere. A byte
        other than a quote or a backslash is accepted exactly when it goes on one of them."""
        top = self._open_constrained_string()
        return None if top is None else _rests(top.allowed, top.decoded)

    def _open_constrained_string(self) -> _String | None:
        top = self.stack[-1] if self.stack else None
        if not isinstance(top, _String) or top.allowed is None or top.escape:
            return None
        return top

    def container_pointer(self) -> str:
        for frame in reversed(self.stack):
            if isinstance(frame, (_Object, _Array)):
                return frame.node.pointer
        return ""


def initial_state(root: Node) -> WalkerState:
    return WalkerState(root)


def _with_stack(state: WalkerState, stack: tuple) -> WalkerState:
    # Direct construction: dataclasses.replace was the walker's largest cost.
    return WalkerState(state.root, stack, state.started, state.done)


# --------------------------------------------------------------------------- stepping


def step(state: WalkerState, byte: int) -> tuple[WalkerState, str | None]:
    """Consume one byte: the new state and the byte's label (None for whitespace)."""
    if not state.stack:
        if state.done:
            if byte in WHITESPACE_BYTES:
                return state, None
            raise ContractViolation(f"text after the end of the output: {chr(byte)!r}")
        if byte in WHITESPACE_BYTES:
            return state, None
        new_stack, lbl = _start_value(state.root, (), byte, parent_used=None)
        return WalkerState(state.root, new_stack, True, state.done), lbl

    top = state.stack[-1]
    below = state.stack[:-1]
    if isinstance(top, _String):
        return _step_string(state, top, below, byte)
    if isinstance(top, _Scalar):
        if byte in _SCALAR_BYTES:
            return state, label(top.pointer, "value")
        # The scalar ended; the byte belongs to the container around it.
        return step(_complete_value(_with_stack(state, below), None), byte)
    if isinstance(top, _Object):
        return _step_object(state, top, below, byte)
    return _step_array(state, top, below, byte)


def _start_value(node: Node, below: tuple, byte: int, parent_used: frozenset[str] | None) -> tuple[tuple, str]:
    if byte == ord("{") and isinstance(node, ObjectNode):
        return below + (_Object(node, "first"),), label(node.pointer, "open")
    if byte == ord("[") and isinstance(node, ArrayNode):
        return below + (_Array(node, "first"),), label(node.pointer, "open")
    if byte == ord('"') and isinstance(node, StringNode):
        allowed = None
        if node.enum is not None:
            allowed = _unused_values(node.enum, parent_used or frozenset())
            if not allowed:
                raise ContractViolation(f"no value left for {node.pointer}: every allowed value is already used")
        lbl = label(node.pointer, "value")
        return below + (_String(lbl, allowed, is_key=False),), lbl
    if isinstance(node, ScalarNode) and byte in _SCALAR_BYTES:
        return below + (_Scalar(node.pointer),), label(node.pointer, "value")
    raise ContractViolation(f"{chr(byte)!r} cannot start the value at {node.pointer or 'root'}")


def _complete_value(state: WalkerState, string_value: str | None) -> WalkerState:
    """The innermost open value just ended; advance its container."""
    if not state.stack:
        return WalkerState(state.root, state.stack, state.started, True)
    parent, below = state.stack[-1], state.stack[:-1]
    if isinstance(parent, _Object):
        return _with_stack(state, below + (_Object(parent.node, "after", parent.seen, None),))
    used = parent.used | {string_value} if parent.node.unique_items and string_value is not None else parent.used
    return _with_stack(state, below + (_Array(parent.node, "after", parent.count + 1, used),))


def _step_object(state: WalkerState, top: _Object, below: tuple, byte: int) -> tuple[WalkerState, str | None]:
    node = top.node
    if top.phase == "value":
        if byte in WHITESPACE_BYTES:
            return state, None
        stack, lbl = _start_value(node.properties[top.key], state.stack, byte, None)
        return _with_stack(state, stack), lbl
    if byte in WHITESPACE_BYTES:
        return state, None
    if top.phase in ("first", "key") and byte == ord('"'):
        allowed = frozenset(k.encode() for k in node.properties if k not in top.seen)
        lbl = label(node.pointer, "key")
        return _with_stack(state, state.stack + (_String(lbl, allowed, True),)), lbl
    if top.phase == "colon" and byte == ord(":"):
        return _with_stack(state, below + (_Object(node, "value", top.seen, top.key),)), label(child_pointer(node.pointer, top.key), "colon")
    if top.phase == "after" and byte == ord(","):
        if len(top.seen) == len(node.properties):
            raise ContractViolation(f"',' at {node.pointer or 'root'}: every key is already present")
        return _with_stack(state, below + (_Object(node, "key", top.seen, top.key),)), label(node.pointer, "separator")
    if top.phase in ("first", "after") and byte == ord("}"):
        missing = node.required - top.seen
        if missing:
            raise ContractViolation(f"'}}' at {node.pointer or 'root'} before required key {sorted(missing)[0]!r}")
        return _complete_value(_with_stack(state, below), None), label(node.pointer, "close")
    raise ContractViolation(f"{chr(byte)!r} is out of place in the object at {node.pointer or 'root'}")


def _step_array(state: WalkerState, top: _Array, below: tuple, byte: int) -> tuple[WalkerState, str | None]:
    node = top.node
    if byte in WHITESPACE_BYTES:
        return state, None
    if top.phase == "after" and byte == ord(","):
        if node.unique_items and top.count >= len(node.items.enum):
            raise ContractViolation(f"',' at {node.pointer}: every allowed value is already used")
        return _with_stack(state, below + (_Array(node, "value", top.count, top.used),)), label(node.pointer, "separator")
    if top.phase in ("first", "after") and byte == ord("]"):
        if top.count < node.min_items:
            raise ContractViolation(f"']' at {node.pointer} after {top.count} of at least {node.min_items} items")
        return _complete_value(_with_stack(state, below), None), label(node.pointer, "close")
    if top.phase in ("first", "value"):
        moved = _Array(node, "value", top.count, top.used)
        stack, lbl = _start_value(node.items, below + (moved,), byte, top.used if node.unique_items else None)
        return _with_stack(state, stack), lbl
    raise ContractViolation(f"{chr(byte)!r} is out of place in the array at {node.pointer}")


_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_SINGLE_BYTES = [bytes((b,)) for b in range(256)]


def _step_string(state: WalkerState, top: _String, below: tuple, byte: int) -> tuple[WalkerState, str | None]:
    if not top.escape and byte != _QUOTE and byte != _BACKSLASH:
        # The common case, kept short: one more plain byte of the value. A free
        # string's state does not change (its text is not kept, see below).
        if top.allowed is None:
            return state, top.label
        moved = _String(top.label, top.allowed, top.is_key, top.decoded + _SINGLE_BYTES[byte])
        if moved.decoded not in _prefixes(top.allowed):
            raise ContractViolation(_not_allowed_message, moved, partial=True)
        return WalkerState(state.root, below + (moved,), state.started, state.done), top.label
    if not top.escape and byte == _QUOTE:
        if top.allowed is not None and top.decoded not in top.allowed:
            raise ContractViolation(_not_allowed_message, top)
        value = top.decoded.decode("utf-8", "replace")
        popped = _with_stack(state, below)
        if top.is_key:
            parent = below[-1]
            popped = _with_stack(state, below[:-1] + (_Object(parent.node, "colon", parent.seen | {value}, value),))
            return popped, top.label
        return _complete_value(popped, value), top.label

    escape, decoded = top.escape, top.decoded
    if escape == "":
        if byte == ord("\\"):
            escape = "\\"
        else:
            decoded += bytes([byte])
    elif escape == "\\":
        if byte == ord("u"):
            escape = "\\u"
        elif byte in _SHORT_ESCAPES:
            escape, decoded = "", decoded + _SHORT_ESCAPES[byte].encode()
        else:
            raise ContractViolation(f"invalid escape '\\{chr(byte)}' in a string")
    else:  # inside \uXXXX
        if byte not in _HEX:
            raise ContractViolation("invalid \\u escape in a string")
        escape += chr(byte)
        if len(escape) == 6:
            code = int(escape[2:], 16)
            escape = ""
            # A lone surrogate half cannot spell any value the contract allows.
            decoded += chr(code).encode("utf-8", "surrogatepass")
    if top.allowed is None:
        # Nothing checks a free string's text; kept, it would make every position
        # inside one a state of its own, and a valid set to compute afresh.
        decoded = b""
    moved = _String(top.label, top.allowed, top.is_key, decoded, escape)
    if top.allowed is not None and not _still_possible(moved):
        raise ContractViolation(_not_allowed_message, moved, partial=True)
    return _with_stack(state, below + (moved,)), top.label


@lru_cache(maxsize=1 << 16)
def _next_bytes(values: frozenset[bytes], decoded: bytes) -> bytes:
    found = {rest[0] if rest else _QUOTE for rest in _rests(values, decoded)}
    return bytes(sorted(found | {_BACKSLASH}))


@lru_cache(maxsize=1 << 16)
def _rests(values: frozenset[bytes], decoded: bytes) -> frozenset[bytes]:
    return frozenset(v[len(decoded):] for v in values if v.startswith(decoded))


@lru_cache(maxsize=1 << 16)
def _unused_values(enum: frozenset[str], used: frozenset[str]) -> frozenset[bytes]:
    return frozenset(v.encode() for v in enum - used)


@lru_cache(maxsize=1 << 16)
def _prefixes(values: frozenset[bytes]) -> frozenset[bytes]:
    """Every prefix of every value, the empty one and the values themselves included."""
    return frozenset(v[:end] for v in values for end in range(len(v) + 1))


def _still_possible(frame: _String) -> bool:
    if not frame.escape:
        return frame.decoded in _prefixes(frame.allowed)
    # A pending escape must still be able to spell the next character of some value.
    if frame.escape == "\\":
        return any(_rests(frame.allowed, frame.decoded))  # some value goes on
    next_chars = _next_characters(frame.allowed, frame.decoded)
    typed = frame.escape[2:].lower()
    return any(f"{ord(ch):04x}".startswith(typed) for ch in next_chars)


@lru_cache(maxsize=1 << 16)
def _next_characters(values: frozenset[bytes], decoded: bytes) -> frozenset[str]:
    """The characters that can come next after ``decoded`` in some of ``values``."""
    found = {rest.decode("utf-8", "ignore")[:1] for rest in _rests(values, decoded)}
    found.discard("")
    return frozenset(found)


def _not_allowed_message(frame: _String, partial: bool = False) -> str:
    value = frame.decoded.decode("utf-8", "replace") + frame.escape
    options = sorted(v.decode() for v in frame.allowed)
    shown = ", ".join(repr(o) for o in options[:8]) + (" ..." if len(options) > 8 else "")
    kind = "key" if frame.is_key else "value"
    what = f"no allowed {kind} starts with {value!r}" if partial else f"{value!r} is not an allowed {kind}"
    return f"{what} (allowed: {shown or 'none left'})"


# --------------------------------------------------------------------------- whole tokens


def step_bytes(state: WalkerState, data: bytes) -> tuple[WalkerState, str | None]:
    """Consume a token's bytes: the new state and the label of its first decision."""
    first = None
    for byte in data:
        state, lbl = step(state, byte)
        if first is None:
            first = lbl
    return state, first


def whitespace_label(state: WalkerState) -> str:
    return label(state.container_pointer(), "whitespace")


def expected_label(state: WalkerState) -> str:
    """The label of the decision this state asks for, for a token that cannot be placed."""
    if not state.stack:
        return END_OF_SEQUENCE if state.done else label("", "open")
    top = state.stack[-1]
    if isinstance(top, _String):
        return top.label
    if isinstance(top, _Scalar):
        return label(top.pointer, "value")
    if isinstance(top, _Object):
        node = top.node
        if top.phase in ("first", "key"):
            return label(node.pointer, "key")
        if top.phase == "colon":
            return label(child_pointer(node.pointer, top.key), "colon")
        if top.phase == "value":
            return _value_label(node.properties[top.key])
        return label(node.pointer, "separator")
    if top.phase == "after":
        return label(top.node.pointer, "separator")
    return _value_label(top.node.items)


def _value_label(node: Node) -> str:
    return label(node.pointer, "open" if isinstance(node, (ObjectNode, ArrayNode)) else "value")
