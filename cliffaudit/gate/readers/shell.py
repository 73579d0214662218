"""Read a training launch script the way bash would hand it to the trainer, enough
to find the settings the gate needs.

What it understands: ``NAME=value`` assignments (with ``export``), ``$NAME``,
``${NAME}`` and ``${NAME:-default}`` expansions, line continuations, bash
arrays of flags, Hydra overrides (``a.b.c=value``, ``+a.b=value``) and
``--flag value`` / ``--flag=value``. Heredoc bodies are skipped (they are
usage text or files written elsewhere, not arguments).

What it does not do: run anything. Command substitutions and arithmetic stay
unresolved, and a value that needs one is reported as unresolved rather than
guessed. Variables a script does not assign are looked up in the environment
the gate runs in, as bash would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

# `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:=default}`; the default may
# not itself hold braces or `$`, so nested defaults resolve innermost first.
_BRACED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-=])([^{}$]*))?\}")
_BARE = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=(.*)$", re.DOTALL)
# A Hydra override names a dotted key; `+` adds a key, `++` forces it.
_OVERRIDE = re.compile(r"^\+{0,2}([A-Za-z_][\w\-]*(?:\.[\w\-]+)+)=(.*)$", re.DOTALL)
_HEREDOC = re.compile(r"<<-?\s*(\S+)")
_DECLARATIONS = {"export", "local", "declare", "readonly", "typeset"}
_NUMBER = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$|^-\.\d+$")


@dataclass(frozen=True)
class Expanded:
    """A word after variable expansion."""

    text: str
    variables: tuple[str, ...]  # the variables it used, in order, to say where a value came from
    resolved: bool  # False when an expansion was left as written ($(...), $((...)), unset variables)


@dataclass(frozen=True)
class ScriptSetting:
    """One setting passed on a command line in the script."""

    key: str  # dotted Hydra key, or the flag with its dashes ("--tis-clip")
    written: str | None  # the value as written; None for a bare flag
    value: Expanded | None
    line: int


@dataclass
class Script:
    """What a launch script passes to its trainer."""

    settings: list[ScriptSetting] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # its assignments, expanded
    forwards_arguments: bool = False  # "$@": launch-time arguments the gate cannot see


def expand(word: str, resolve: Callable[[str], str | None]) -> Expanded:
    """Expand ``$NAME`` forms in ``word``, with ``resolve(name)`` giving a variable's
    value or None when it is unset; anything else is kept as written."""
    used: list[str] = []
    resolved = True

    def braced(match: re.Match) -> str:
        nonlocal resolved
        name, operator, default = match.group(1), match.group(2), match.group(3)
        value = resolve(name)
        used.append(name)
        if operator and operator.startswith(":") and value == "":
            value = None  # `:-` also replaces an empty value
        if value is None and operator:
            return default or ""
        if value is None:
            resolved = False
            return match.group(0)
        return value

    previous = None
    while previous != word:  # innermost `${...}` first, until nothing changes
        previous = word
        word = _BRACED.sub(braced, word)

    def bare(match: re.Match) -> str:
        nonlocal resolved
        name = match.group(1)
        used.append(name)
        value = resolve(name)
        if value is not None:
            return value
        resolved = False
        return match.group(0)

    word = _BARE.sub(bare, word)
    if "$(" in word or "${" in word or "`" in word:
        resolved = False
    return Expanded(word, tuple(dict.fromkeys(used)), resolved)


@dataclass
class _Command:
    """One command as bash reads it: its words and the physical lines it spans."""

    words: list[str]
    lines: list[tuple[int, str]]  # (line number, text)
    _cursor: int = 0

    def line_of(self, key: str) -> int:
        """The line that sets ``key``: settings come in order, so search onwards from
        the previous one (a continued command spans many lines)."""
        pattern = re.compile(re.escape(key) + r"(?![\w\-])")
        for offset in range(self._cursor, len(self.lines)):
            if pattern.search(self.lines[offset][1]):
                self._cursor = offset
                return self.lines[offset][0]
        return self.lines[self._cursor][0]


def _commands(text: str) -> Iterator[_Command]:
    """The script's commands: continuations joined, quotes that span lines kept
    together, comments and heredoc bodies dropped."""
    buffer, lines, heredoc_end = "", [], None
    for number, line in enumerate(text.splitlines(), 1):
        if heredoc_end is not None:
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        lines.append((number, line))
        if line.rstrip().endswith("\\") and not line.lstrip().startswith("#"):
            buffer += line.rstrip()[:-1] + " "
            continue
        buffer += line + "\n"
        try:
            words = shlex.split(buffer, comments=True)
        except ValueError:
            continue  # a quote is still open: the command goes on on the next line
        heredoc_end = _heredoc_terminator(words)
        yield _Command(words, lines)
        buffer, lines = "", []
    if buffer:
        yield _Command(buffer.split(), lines)


def _heredoc_terminator(words: list[str]) -> str | None:
    """The word that ends a heredoc this command opens (``<<EOF``, ``<< 'EOF'``)."""
    for index, word in enumerate(words):
        if word in {"<<", "<<-"} and index + 1 < len(words):
            return words[index + 1]
        match = _HEREDOC.match(word)
        if match:
            return match.group(1)
    return None


def _array_elements(words: list[str]) -> list[str]:
    """The words of an array literal up to its closing parenthesis (which shlex
    leaves glued to the last element: `(--flag 1)` gives "1)")."""
    elements = []
    for word in words:
        if word.endswith(")"):
            if word[:-1]:
                elements.append(word[:-1])
            return elements
        if word:
            elements.append(word)
    return elements  # the array goes on on the next lines, read as commands of their own


def _without_array_close(word: str) -> str:
    """`1.1)` -> `1.1` where a multi-line array closes on its last element's line."""
    return word[:-1] if word.endswith(")") and word.count(")") > word.count("(") else word


def _looks_like_value(word: str) -> bool:
    """Whether the word after ``--flag`` is its value rather than the next argument."""
    if word in {")", "(", "|", "||", "&&", ";", "&"}:
        return False
    if word.startswith("--"):
        return False
    if word.startswith("-") and not _NUMBER.match(word):
        return False
    return not _OVERRIDE.match(word)


def read_script(text: str, environ: Mapping[str, str]) -> Script:
    """Every assignment, Hydra override and flag in a launch script, in order."""
    script = Script()

    def lookup(name: str) -> str | None:
        # The script's own assignments so far, then the environment, as in bash.
        return script.variables[name] if name in script.variables else environ.get(name)

    for command in _commands(text):
        arguments = _take_assignments(command.words, script, lookup)
        _take_settings(arguments, command, script, lookup)
    return script


def _take_assignments(words: list[str], script: Script, lookup: Callable[[str], str | None]) -> list[str]:
    """Record the command's leading ``NAME=value`` words; return the words after them."""
    index = 0
    while index < len(words) and words[index] in _DECLARATIONS:
        index += 1
        while index < len(words) and words[index].startswith("-"):
            index += 1  # `declare -x NAME=...`
    while index < len(words):  # `A=1 B=2 command`
        match = _ASSIGNMENT.match(words[index])
        if not match:
            break
        name, append, value = match.groups()
        index += 1
        if value.startswith("("):
            # An array (`ARGS=(--flag 1)`, `ARGS+=(...)`): its elements are read as the
            # arguments they will be when the array is expanded on a command line.
            return _array_elements([value[1:], *words[index:]])
        expanded = expand(value, lookup).text
        script.variables[name] = (script.variables.get(name, "") + expanded) if append else expanded
    return words[index:]


def _take_settings(words: list[str], command: _Command, script: Script,
                   lookup: Callable[[str], str | None]) -> None:
    """Record the Hydra overrides and ``--flags`` among a command's arguments."""
    position = 0
    while position < len(words):
        word = words[position]
        if "$@" in word or "${@}" in word:
            script.forwards_arguments = True
        override = _OVERRIDE.match(word)
        if override:
            key, written = override.groups()
            script.settings.append(ScriptSetting(key, written, expand(written, lookup), command.line_of(key)))
        elif word.startswith("--") and len(word) > 2:
            if "=" in word:
                key, written = word.split("=", 1)
            elif position + 1 < len(words) and _looks_like_value(words[position + 1]):
                key, written = word, _without_array_close(words[position + 1])
                position += 1
            else:
                key, written = word, None
            value = None if written is None else expand(written, lookup)
            script.settings.append(ScriptSetting(key, written, value, command.line_of(key)))
        position += 1


def looks_like_script(text: str) -> bool:
    """A launch script rather than a YAML/JSON/TOML document."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.startswith("#!") or bool(re.search(r"(^|\s)(python3?|torchrun|accelerate|uv|ray|deepspeed)\s", text)
                                           and re.search(r"\\\s*$", text, re.MULTILINE))


__all__ = ["Expanded", "Script", "ScriptSetting", "expand", "looks_like_script", "read_script"]
