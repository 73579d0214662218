"""Read a launch script the way bash would run it, far enough to know every command
line it can hand a trainer, and what each setting on it comes from.

Nothing is run. The script is parsed (``bash_syntax``) and interpreted over *every*
path bash could take: each branch of an ``if`` or ``case`` counts (the gate does not
guess which condition holds), a ``for`` loop's variable takes every value of its list,
``&&``/``||`` may or may not run their right side. So a variable holds a set of
possible values, and a trainer command whose words use several yields one launch per
combination; the gate judges each. ``source``/``.`` and ``bash FILE`` are followed
when the file is there, ``eval`` and ``bash -c`` read their text as script, functions
run where they are called with the call's arguments.

What cannot be known is carried as a *doubt* with its reason and line, never guessed:
``read``/``mapfile`` input, command substitutions (except the few path idioms
``$(dirname ...)``, ``$(cd X && pwd)``, ``$(realpath X)`` that locate the script
itself), a script's own arguments (``$1``; ``"$@"`` is noted as forwarded). A setting
that needs a doubtful value, or an argument that could be any setting, is refused by
the readers with the doubt's line. A file that is sourced but absent, or ``eval`` of
unknown text, is refused here. Variables a script does not set come from the
environment the gate runs in, as in bash.
"""

from __future__ import annotations

import ast
import itertools
import operator
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cliffaudit.gate.errors import GateInputError
from cliffaudit.gate.readers import bash_syntax as syntax

MAX_VALUES = 32  # possible values of one variable before it counts as unknown
MAX_COMBINATIONS = 256  # launches one command line may expand to
MAX_STEPS = 200_000  # commands interpreted, over every path and call
MAX_DEPTH = 16  # nested sources, calls and evals
MAX_SCRIPT = 1 << 20  # characters of one file
_SHELLS = {"bash", "sh", "dash", "zsh"}
# A Hydra override names a dotted key; `+` adds a key, `++` forces it, `~` deletes it.
_OVERRIDE = re.compile(r"^(\+{0,2}|~)([A-Za-z_][\w\-]*(?:\.[\w\-@]+)+)(?:=(.*))?$", re.DOTALL)
_NUMBER = re.compile(r"^-?\d+(\.\d*)?([eE][-+]?\d+)?$|^-\.\d+$")
_HYDRA_SHORT = {"-cn": "--config-name", "-cp": "--config-path", "-cd": "--config-dir"}


@dataclass(frozen=True)
class Arg:
    """One word of a command after expansion."""

    text: str
    written: str  # the word as written in the script
    line: int
    file: Path
    doubt: str | None = None  # why its text cannot be known; None when it is
    via: tuple[tuple[str, str], ...] = ()  # (variable, value) it went through
    known_prefix: str | None = None  # the text before its first doubtful part, when it has one

    @property
    def resolved(self) -> bool:
        return self.doubt is None


@dataclass(frozen=True)
class Launch:
    """One command line the script may run, with every word resolved as far as it can be."""

    args: tuple[Arg, ...]  # the command word first
    line: int
    file: Path
    forwards_arguments: bool = False  # "$@": arguments given to the script at launch


@dataclass(frozen=True)
class Setting:
    """One setting on a command line: a Hydra override or a ``--flag``."""

    key: str  # dotted key, or the flag with its dashes
    written: str | None  # the value as written; None for a bare flag
    value: Arg | None  # None for a bare flag
    line: int
    file: Path


# ----------------------------------------------------------------------------- values


@dataclass(frozen=True)
class _Value:
    """One possible value of a variable: text, or array items, or a doubt; neither: unset."""

    text: str | None = None
    items: tuple[Arg, ...] | None = None
    doubt: str | None = None
    via: tuple[tuple[str, str], ...] = ()

    @property
    def unset(self) -> bool:
        return self.text is None and self.items is None and self.doubt is None


_UNSET = _Value()


@dataclass
class _State:
    variables: dict[str, tuple[_Value, ...]]
    functions: dict[str, syntax.Function]
    positionals: tuple[Arg, ...] | None  # None: the script's own arguments, unknown to the gate
    dead: bool = False  # the path ended (exit, return, break)

    def copy(self) -> _State:
        return _State(dict(self.variables), dict(self.functions), self.positionals)


def _merge(states: list[_State]) -> _State:
    """The state after branches: each variable may hold any value any live branch left."""
    live = [s for s in states if not s.dead]
    if not live:
        dead = states[0].copy()
        dead.dead = True
        return dead
    if len(live) == 1:
        return live[0]
    names = set().union(*(s.variables for s in live))
    variables = {}
    for name in names:
        values = []
        for state in live:
            for value in state.variables.get(name, (_UNSET,)):
                if value not in values:
                    values.append(value)
        variables[name] = _capped(name, tuple(values))
    functions = {}
    for state in live:
        functions.update(state.functions)
    positionals = live[0].positionals if all(s.positionals == live[0].positionals for s in live) else None
    return _State(variables, functions, positionals)


def _capped(name: str, values: tuple[_Value, ...]) -> tuple[_Value, ...]:
    if len(values) <= MAX_VALUES:
        return values
    return (_Value(doubt=f"${name} may take more than {MAX_VALUES} values"),)


# ----------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class _Chunk:
    text: str
    split: bool  # an unquoted expansion: bash splits it into words
    doubt: str | None = None
    via: tuple[tuple[str, str], ...] = ()
    quoted: bool = False
    new_field: bool = False  # an array element after the first: a word of its own
    vanishes: bool = False  # an unset variable: nothing, where nothing else is in its word
    item: Arg | None = None  # an array element keeps where it was written


class _Interpreter:
    def __init__(self, path: Path, environ: Mapping[str, str]):
        self.top = path
        self.environ = environ
        self.files: list[Path] = [path]
        self.launches: list[Launch] = []
        self.steps = 0
        self.depth = 0
        self.frames: list[list[_State]] = []  # per function call: the states `return` left
        self.locals: list[set[str]] = []  # per function call: the names it declared local
        self.loops: list[list[_State]] = []  # per loop: the states `break`/`continue` left
        self.called: set[str] = set()
        self.defined: dict[str, syntax.Function] = {}  # every function the script defines, on any path

    @property
    def file(self) -> Path:
        return self.files[-1]

    def where(self, line: int) -> str:
        return f"{self.file}:{line}"

    # ------------------------------------------------------------------ running

    def run_text(self, text: str, state: _State, file: Path, first_line: int = 1) -> _State:
        if len(text) > MAX_SCRIPT:
            raise GateInputError(f"{file}: larger than {MAX_SCRIPT:,} characters; not a launch script")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GateInputError(f"{self.where(first_line)}: sources, calls or evals nest deeper than {MAX_DEPTH}")
        self.files.append(file)
        try:
            tree = syntax.parse(text if first_line == 1 else "\n" * (first_line - 1) + text, str(file))
            return self.run(tree, state)
        finally:
            self.files.pop()
            self.depth -= 1

    def run(self, nodes: list, state: _State) -> _State:
        for node in nodes:
            if state.dead:
                break
            state = self.execute(node, state)
        return state

    def execute(self, node, state: _State) -> _State:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise GateInputError(f"{self.where(node.line)}: the script takes more than {MAX_STEPS:,} steps to read")
        if isinstance(node, syntax.Simple):
            return self.simple(node, state)
        if isinstance(node, syntax.If):
            outcomes = []
            current = state
            for condition, body in node.branches:
                current = self.run(condition, current)
                outcomes.append(self.run(body, current.copy()))
            outcomes.append(self.run(node.orelse, current.copy()) if node.orelse is not None else current)
            return _merge(outcomes)
        if isinstance(node, syntax.Case):
            self.expand_words([node.word], state, split=False)  # expansions with side effects (${X:=d})
            outcomes = [self.run(body, state.copy()) for _, body in node.arms]
            exhaustive = any(p.literal() == "*" for patterns, _ in node.arms for p in patterns)
            return _merge(outcomes if exhaustive else [*outcomes, state])
        if isinstance(node, syntax.Loop):
            return self.loop(node, state)
        if isinstance(node, syntax.Group):
            after = self.run(node.body, state.copy())
            return state if node.subshell else after  # ( ... ) is a subshell: its assignments and exit stay there
        if isinstance(node, syntax.Function):
            state = state.copy()
            state.functions[node.name] = self.defined[node.name] = node
            return state
        if isinstance(node, syntax.AndOr):
            state = self.execute(node.first, state)
            for _, right in node.rest:
                if state.dead:
                    break
                state = _merge([state, self.execute(right, state.copy())])
            return state
        if isinstance(node, syntax.Pipeline):
            for command in node.commands:  # each side of a pipe runs in a subshell
                self.execute(command, state.copy())
            return state
        if isinstance(node, syntax.Arithmetic):
            return self.arithmetic_command(node, state)
        return state  # [[ ... ]]

    def loop(self, node: syntax.Loop, state: _State) -> _State:
        self.loops.append([])
        try:
            body_state = state.copy()
            if node.condition is not None:
                body_state = self.run(node.condition, body_state)
            elif node.name is not None:
                if node.words is None:
                    values = self._positional_values(state, node.line)
                else:
                    values = tuple(dict.fromkeys(
                        _Value(text=a.text) if a.resolved else _Value(doubt=a.doubt)
                        for alternative in self.expand_words(node.words, state) for a in alternative))
                if not values:
                    return state
                body_state.variables[node.name] = _capped(node.name, values)
            after = self.run(node.body, body_state)
            return _merge([state, after, *self.loops[-1]])
        finally:
            self.loops.pop()

    def _positional_values(self, state: _State, line: int) -> tuple[_Value, ...]:
        if state.positionals is None:
            return (_Value(doubt=f"an argument given to the script ({self.where(line)})"),)
        return tuple(_Value(text=a.text) if a.resolved else _Value(doubt=a.doubt) for a in state.positionals)

    def arithmetic_command(self, node: syntax.Arithmetic, state: _State) -> _State:
        assigned = re.findall(r"([A-Za-z_]\w*)\s*(?:[-+*/%]?=(?!=)|\+\+|--)|(?:\+\+|--)\s*([A-Za-z_]\w*)", node.source)
        names = {a or b for a, b in assigned}
        if not names:
            return state
        state = state.copy()
        for name in names:
            state.variables[name] = (_Value(doubt=f"${name} is set by arithmetic at {self.where(node.line)}"),)
        return state

    # ------------------------------------------------------------------ simple commands

    def simple(self, node: syntax.Simple, state: _State) -> _State:
        if not node.words:
            state = state.copy()
            for assignment in node.assignments:
                self.assign(assignment, state)
            return state
        alternatives = self.expand_words(node.words, state, line=node.line)
        heredoc = next((r.heredoc for r in node.redirects if r.heredoc is not None), None)
        outcomes = [self.command(node, list(args), state, heredoc) for args in alternatives]
        return _merge(outcomes) if outcomes else state

    def command(self, node: syntax.Simple, args: list[Arg], state: _State,
                heredoc: syntax.HereDoc | None) -> _State:
        if not args:
            return state
        name = os.path.basename(args[0].text) if args[0].resolved else None
        line = node.line
        if name in syntax._DECLARATIONS:
            state = state.copy()
            for assignment in node.declared:
                self.assign(assignment, state)
            if name in {"local", "declare", "typeset"} and self.locals:  # declare in a function is local too
                self.locals[-1].update(a.name for a in node.declared)
                self.locals[-1].update(a.text for a in args[1:] if a.resolved and not a.text.startswith("-"))
            if name in {"local", "declare", "typeset"} and any(a.text.startswith("-") and "n" in a.text[1:]
                                                               for a in args[1:]):
                for arg in args[1:]:  # a nameref points wherever its value says
                    if not arg.text.startswith("-"):
                        state.variables[arg.text] = (_Value(doubt=f"${arg.text} is a nameref ({self.where(line)})"),)
            return state
        if name == "unset":
            state = state.copy()
            functions = any(a.text == "-f" for a in args[1:])
            for arg in args[1:]:
                if not arg.text.startswith("-"):
                    (state.functions if functions else state.variables).pop(arg.text, None)
            return state
        if name in {"read", "mapfile", "readarray"}:
            return self.read_input(name, args, state, line)
        if name == "printf" and len(args) > 2 and args[1].text == "-v":
            state = state.copy()
            state.variables[args[2].text] = (_Value(doubt=f"${args[2].text} is set by printf -v at "
                                                          f"{self.where(line)}"),)
            return state
        if name in {"source", "."}:
            if len(args) < 2:
                return state
            return self.follow(args[1], args[2:], state, line, subshell=False)
        if name == "eval":
            return self.eval(args[1:], state, line)
        if name in _SHELLS:
            return self.shell(args, state, line, heredoc)
        if name in {"exit", "return", "break", "continue"}:
            dead = state.copy()
            dead.dead = True
            if name == "return" and self.frames:
                self.frames[-1].append(state)
            elif name in {"break", "continue"} and self.loops:
                self.loops[-1].append(state)
            return dead
        if name == "exec" and len(args) > 1:
            after = self.command(node, args[1:], state, heredoc)
            dead = after.copy()
            dead.dead = True
            return dead
        if name == "set" and len(args) > 1 and args[1].text == "--":
            state = state.copy()
            state.positionals = tuple(args[2:])
            return state
        if name == "shift":
            state = state.copy()
            count = int(args[1].text) if len(args) > 1 and args[1].text.isdigit() else 1
            state.positionals = None if state.positionals is None else state.positionals[count:]
            return state
        if name == "let":
            return self.arithmetic_command(syntax.Arithmetic(" ".join(a.text for a in args[1:]), line), state)
        if name in state.functions:
            return self.call(state.functions[name], args, state, line)
        self.record(args, line)
        return state

    def record(self, args: list[Arg], line: int) -> None:
        if any(_is_setting(a) for a in args[1:]):
            forwards = any(_forwarded(a) for a in args)
            kept = tuple(a for a in args if not _forwarded(a))
            launch = Launch(kept, line, self.file, forwards)
            if launch not in self.launches:
                self.launches.append(launch)

    def assign(self, assignment: syntax.Assignment, state: _State) -> None:
        name = assignment.name
        if assignment.items is not None:
            values = [_Value(items=tuple(alternative))
                      for alternative in self.expand_words(assignment.items, state, line=assignment.line)]
        else:
            values = [_joined(chunks) for chunks in self.expand_chunks(assignment.value, state)]
        if assignment.append:
            values = [_appended(old, new, name, assignment, self.file)
                      for old in state.variables.get(name, (_UNSET,)) for new in values]
        state.variables[name] = _capped(name, tuple(dict.fromkeys(values)))

    def read_input(self, name: str, args: list[Arg], state: _State, line: int) -> _State:
        """``read``/``mapfile``: the variables they set hold input the gate cannot see."""
        state = state.copy()
        targets, position = [], 1
        while position < len(args):
            text = args[position].text
            if text in _INPUT_OPTIONS["read" if name == "read" else "mapfile"]:
                if text == "-a" and position + 1 < len(args):
                    targets.append(args[position + 1].text)
                position += 2
                continue
            if not text.startswith("-"):
                targets.append(text)
            position += 1
        for target in targets or (["REPLY"] if name == "read" else ["MAPFILE"]):
            state.variables[target] = (_Value(doubt=f"${target} is read from input by `{name}` at "
                                                    f"{self.where(line)}"),)
        return state

    def follow(self, target: Arg, arguments: list[Arg], state: _State, line: int, subshell: bool) -> _State:
        """``source FILE``, ``. FILE`` or ``bash FILE``: read FILE when it is there."""
        verb = "runs" if subshell else "sources"
        if not target.resolved:
            raise GateInputError(f"{self.where(line)}: {verb} {target.written}, which cannot be resolved "
                                 f"({target.doubt}); the gate cannot see what it sets")
        path = Path(os.path.expanduser(target.text))
        if not path.is_absolute():
            path = self.file.resolve().parent / path
        if not path.is_file():
            raise GateInputError(f"{self.where(line)}: {verb} {target.text}, which is not beside the script "
                                 f"({path} does not exist); the gate cannot see what it sets: put it there")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(MAX_SCRIPT + 1)
        except (OSError, UnicodeDecodeError) as exc:
            raise GateInputError(f"{self.where(line)}: cannot read {path}: {exc}") from None
        inner = state.copy()
        if arguments or subshell:
            inner.positionals = _positionals(arguments)
        self.frames.append([])  # `return` in a sourced file ends the file, not the script
        try:
            after = _merge([self.run_text(text, inner, path), *self.frames[-1]])
        finally:
            self.frames.pop()
        if subshell:
            return state
        if arguments and not after.dead:
            after = after.copy()
            after.positionals = state.positionals
        return after

    def eval(self, args: list[Arg], state: _State, line: int) -> _State:
        doubtful = next((a for a in args if not a.resolved), None)
        if doubtful is not None:
            raise GateInputError(f"{self.where(line)}: eval of {doubtful.written}, which cannot be resolved "
                                 f"({doubtful.doubt}); the gate cannot see what it runs")
        return self.run_text(" ".join(a.text for a in args), state, self.file, line)

    def shell(self, args: list[Arg], state: _State, line: int, heredoc: syntax.HereDoc | None) -> _State:
        """``bash -c TEXT``, ``bash FILE`` and ``bash <<EOF``: what the child shell runs counts."""
        rest = list(args[1:])
        while rest and rest[0].resolved and rest[0].text.startswith("-") and rest[0].text not in {"-c", "--"}:
            rest.pop(0)  # -e, -x, -l, ...
        if rest and rest[0].text == "--":
            rest.pop(0)
        if rest and rest[0].text == "-c":
            if len(rest) < 2:
                return state
            script = rest[1]
            if not script.resolved:
                raise GateInputError(f"{self.where(line)}: {args[0].text} -c {script.written}, which cannot be "
                                     f"resolved ({script.doubt}); the gate cannot see what it runs")
            inner = state.copy()
            inner.positionals = _positionals(rest[3:])
            self.run_text(script.text, inner, self.file, line)
            return state
        if rest:
            return self.follow(rest[0], rest[1:], state, line, subshell=True)
        if heredoc is not None:  # the child reads the body; its variables are this script's
            self.run_text(heredoc.body, state.copy(), self.file, heredoc.line)
        return state

    def call(self, function: syntax.Function, args: list[Arg], state: _State, line: int) -> _State:
        self.called.add(function.name)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GateInputError(f"{self.where(line)}: calls nest deeper than {MAX_DEPTH} ({function.name})")
        self.frames.append([])
        self.locals.append(set())
        try:
            inner = state.copy()
            inner.positionals = _positionals(args[1:])
            after = self.run(function.body, inner)
            merged = _merge([after, *self.frames[-1]])
        finally:
            self.frames.pop()
            local = self.locals.pop()
            self.depth -= 1
        if merged.dead:
            return merged
        merged = merged.copy()
        merged.positionals = state.positionals
        for name in local:  # the caller's values come back
            if name in state.variables:
                merged.variables[name] = state.variables[name]
            else:
                merged.variables.pop(name, None)
        return merged

    def uncalled_functions(self, state: _State) -> None:
        """Launches in functions the script defines but never calls by name still count: a
        trap, a dispatcher or a variable may call them."""
        for name, function in list(self.defined.items()):
            if name not in self.called:
                self.called.add(name)
                inner = state.copy()
                inner.positionals = None
                self.frames.append([])
                try:
                    self.run(function.body, inner)
                finally:
                    self.frames.pop()

    # ------------------------------------------------------------------ expansion

    def expand_words(self, words: list[syntax.Word], state: _State, split: bool = True,
                     line: int | None = None) -> list[list[Arg]]:
        """Every combination of the words' possible values, each a list of arguments."""
        per_word = [self.expand_word(word, state, split) for word in words]
        count = 1
        for alternatives in per_word:
            count *= len(alternatives)
        if count > MAX_COMBINATIONS:
            raise GateInputError(f"{self.where(line or words[0].line)}: this command line may take more than "
                                 f"{MAX_COMBINATIONS} forms (variables set in branches and loops); the gate cannot "
                                 f"judge them all")
        return [[arg for args in combination for arg in args] for combination in itertools.product(*per_word)]

    def expand_word(self, word: syntax.Word, state: _State, split: bool = True) -> list[list[Arg]]:
        results = []
        for chunks in self.expand_chunks(word, state):
            args = _fields(chunks, word, self.file, split)
            if args not in results:
                results.append(args)
        return results

    def expand_chunks(self, word: syntax.Word, state: _State) -> list[tuple[_Chunk, ...]]:
        per_part = [self.expand_part(part, word, state) for part in word.parts]
        combinations = 1
        for alternatives in per_part:
            combinations *= len(alternatives)
        if combinations > MAX_COMBINATIONS:
            raise GateInputError(f"{self.where(word.line)}: {word.source} may take more than {MAX_COMBINATIONS} "
                                 f"values; the gate cannot judge them all")
        return [tuple(c for chunks in combination for c in chunks) for combination in itertools.product(*per_part)]

    def expand_part(self, part: syntax.Part, word: syntax.Word, state: _State) -> list[tuple[_Chunk, ...]]:
        if part.kind == "lit":
            return [(_Chunk(part.text, False, quoted=part.quoted),)]
        if part.kind == "cmd":
            return [(self.command_substitution(part, word, state),)]
        if part.kind == "arith":
            return [(self.arithmetic(part, word, state),)]
        return self.parameter(part, word, state)

    def parameter(self, part: syntax.Part, word: syntax.Word, state: _State) -> list[tuple[_Chunk, ...]]:
        name, split, quoted = part.text, not part.quoted, part.quoted
        if name in {"@", "*"}:
            if state.positionals is None:
                return [(_Chunk("", split, doubt=_FORWARDED, quoted=quoted),)]
            # "$@" keeps each argument a word; unquoted, each is a word before it is split again
            together = name == "*" and quoted
            return [tuple(_Chunk(a.text if not together or i == 0 else " " + a.text, split, a.doubt, a.via, quoted,
                                 new_field=i > 0 and not together) for i, a in enumerate(state.positionals))]
        if name == "#" and not part.operator:
            if state.positionals is None:
                return [(_Chunk("", split, doubt="the number of the script's arguments", quoted=quoted),)]
            return [(_Chunk(str(len(state.positionals)), split, quoted=quoted),)]
        if name in {"?", "$", "!", "-"}:
            return [(_Chunk("", split, doubt=f"${name} is known only when the script runs", quoted=quoted),)]
        if name == "0" or (name == "BASH_SOURCE" and part.index in {None, "0"}):
            path = str((self.top if name == "0" else self.file).resolve())
            return [(_Chunk(path, split, quoted=quoted),)]
        if name.isdigit():
            values = self._positional(state, int(name), word.line)
        else:
            values = state.variables.get(name)
            if values is None:
                found = self.environ.get(name)
                values = (_UNSET,) if found is None else (_Value(text=found, via=((name, found),)),)
            else:
                values = tuple(_with_via(v, name) for v in values)
        results = []
        for value in values:
            for chunks in self.operate(part, value, word, state):
                if chunks not in results:
                    results.append(chunks)
        return results

    def _positional(self, state: _State, index: int, line: int) -> tuple[_Value, ...]:
        if state.positionals is None:
            return (_Value(doubt=f"${index} is an argument given to the script"),)
        if index == 0 or index > len(state.positionals):
            return (_UNSET,)
        arg = state.positionals[index - 1]
        return (_Value(text=arg.text, via=arg.via) if arg.resolved else _Value(doubt=arg.doubt),)

    def operate(self, part: syntax.Part, value: _Value, word: syntax.Word, state: _State) -> list[tuple[_Chunk, ...]]:
        """``${NAME<operator>argument}`` of one possible value."""
        op, split, quoted, name = part.operator, not part.quoted, part.quoted, part.text
        if value.doubt is not None:
            return [(_Chunk(_source(part), split, doubt=value.doubt, via=value.via, quoted=quoted),)]
        if op in {"[@]", "[*]"}:
            items = value.items if value.items is not None else (() if value.unset else (
                Arg(value.text, word.source, word.line, self.file, via=value.via),))
            if op == "[*]" and quoted:
                return [(_Chunk(" ".join(i.text for i in items), False, _first_doubt(items), value.via, True),)]
            return [tuple(_Chunk(i.text, split, i.doubt, i.via or value.via, quoted, new_field=k > 0, item=i)
                          for k, i in enumerate(items))]
        text = value.text
        if value.items is not None:
            position = part.index if part.index is not None else "0"
            if not position.isdigit():
                return [(_Chunk(_source(part), split, doubt=f"${{{name}[{position}]}} has an index the gate does not "
                                                          f"evaluate", quoted=quoted),)]
            items = value.items
            text = items[int(position)].text if int(position) < len(items) else None
            if text is not None and items[int(position)].doubt:
                return [(_Chunk(_source(part), split, doubt=items[int(position)].doubt, quoted=quoted),)]
        elif part.index not in {None, "0"} and text is not None:
            text = None
        if op == "#len":
            return [(_Chunk(str(len(value.items) if value.items is not None and part.index in {"@", "*"}
                                else len(text or "")), split, quoted=quoted),)]
        unset, empty = text is None, not text
        if op in {":-", "-", ":=", "="}:
            if unset or (op.startswith(":") and empty):
                alternatives = self.expand_chunks(part.argument, state)
                if op in {":=", "="} and not name.isdigit():
                    state.variables[name] = tuple(dict.fromkeys(_joined(a) for a in alternatives))
                return [tuple(replace(c, split=c.split and split, quoted=c.quoted or quoted) for c in a)
                        for a in alternatives]
            return [(_Chunk(text, split, via=value.via, quoted=quoted),)]
        if op in {":+", "+"}:
            if unset or (op == ":+" and empty):
                return [(_Chunk("", split, quoted=quoted),)]
            return [tuple(replace(c, split=c.split and split, quoted=c.quoted or quoted) for c in a)
                    for a in self.expand_chunks(part.argument, state)]
        if unset:
            if op in {":?", "?"}:
                return [(_Chunk("", split, doubt=f"${name} is not set (the script stops there)", quoted=quoted),)]
            return [(_Chunk("", split, doubt=f"${name} is not set", quoted=quoted, vanishes=True),)]
        if op in {":?", "?", ""}:
            return [(_Chunk(text, split, via=value.via, quoted=quoted),)]
        if op in {"%", "%%", "#", "##", "^^", ",,", "^", ","}:
            results = []
            for pattern_chunks in self.expand_chunks(part.argument, state) if part.argument else [()]:
                pattern = _joined(pattern_chunks) if pattern_chunks else _Value(text="")
                if pattern.doubt is not None:
                    results.append((_Chunk(_source(part), split, doubt=pattern.doubt, quoted=quoted),))
                else:
                    results.append((_Chunk(_transform(text, op, pattern.text or ""), split, via=value.via,
                                           quoted=quoted),))
            return results
        return [(_Chunk(_source(part), split, doubt=f"${{{name}{op}...}} is not evaluated by the gate",
                        quoted=quoted),)]

    def command_substitution(self, part: syntax.Part, word: syntax.Word, state: _State) -> _Chunk:
        split, quoted = not part.quoted, part.quoted
        path = self.path_idiom(part.text, word.line, state)
        if path is not None:
            return _Chunk(path, split, quoted=quoted)
        self.run_text(part.text, state.copy(), self.file, word.line)  # a launch inside it still runs
        command = " ".join(part.text.split())
        return _Chunk(_source(part), split, doubt=f"$({command}) at {self.where(word.line)} runs a command",
                      quoted=quoted)

    def path_idiom(self, source: str, line: int, state: _State) -> str | None:
        """``$(dirname X)``, ``$(cd X && pwd)``, ``$(realpath X)``, ``$(readlink -f X)``,
        ``$(basename X)``: where the script and its files are. Any other command: None."""
        try:
            tree = syntax.parse(source, str(self.file))
        except GateInputError:
            return None
        if len(tree) != 1:
            return None
        node = tree[0]
        if isinstance(node, syntax.AndOr) and len(node.rest) == 1 and node.rest[0][0] == "&&":
            first, second = node.first, node.rest[0][1]
            if (isinstance(first, syntax.Simple) and isinstance(second, syntax.Simple) and first.words
                    and first.words[0].literal() == "cd" and [w.literal() for w in second.words][:1] == ["pwd"]):
                target = self._single_path(first.words[1:], state)
                return os.path.normpath(target) if target and os.path.isabs(target) else None
            return None
        if not isinstance(node, syntax.Simple) or not node.words or node.assignments:
            return None
        verb = node.words[0].literal()
        rest = node.words[1:]
        if verb == "readlink":
            if not rest or rest[0].literal() not in {"-f", "-m", "-e"}:
                return None
            verb, rest = "realpath", rest[1:]
        if verb not in {"dirname", "basename", "realpath"}:
            return None
        target = self._single_path(rest, state)
        if target is None:
            return None
        if verb == "dirname":
            return os.path.dirname(target.rstrip("/")) or "."
        if verb == "basename":
            return os.path.basename(target.rstrip("/"))
        return os.path.normpath(target) if os.path.isabs(target) else None

    def _single_path(self, words: list[syntax.Word], state: _State) -> str | None:
        words = [w for w in words if w.literal() not in {"--", "-P", "-L"}]
        if len(words) != 1:
            return None
        alternatives = self.expand_word(words[0], state, split=False)
        if len(alternatives) != 1 or len(alternatives[0]) != 1 or not alternatives[0][0].resolved:
            return None
        return alternatives[0][0].text

    def arithmetic(self, part: syntax.Part, word: syntax.Word, state: _State) -> _Chunk:
        split, quoted = not part.quoted, part.quoted

        def number(match: re.Match) -> str:
            name = match.group(1) or match.group(2) or match.group(3)
            values = state.variables.get(name) or ((_Value(text=self.environ[name]),) if name in self.environ
                                                   else (_UNSET,))
            if len(values) != 1 or values[0].text is None or not re.fullmatch(r"-?\d+", values[0].text.strip()):
                raise _NotArithmetic
            return f"({values[0].text.strip()})"

        try:
            source = re.sub(r"\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)|\b([A-Za-z_]\w*)\b", number, part.text)
            return _Chunk(str(_integer(ast.parse(source.strip(), mode="eval").body)), split, quoted=quoted)
        except (_NotArithmetic, SyntaxError, ZeroDivisionError, RecursionError):
            return _Chunk(_source(part), split, doubt=f"$(({' '.join(part.text.split())})) at "
                                                    f"{self.where(word.line)} is not plain integer arithmetic",
                          quoted=quoted)


_FORWARDED = '"$@": the arguments given to the script at launch'
# Options that take a value: read's, and mapfile's (readarray's).
_INPUT_OPTIONS = {"read": {"-a", "-d", "-i", "-n", "-N", "-p", "-t", "-u"},
                  "mapfile": {"-d", "-n", "-O", "-s", "-u", "-C", "-c"}}


def _forwarded(arg: Arg) -> bool:
    """The script's own arguments passed on whole ("$@" at the top level)."""
    return arg.doubt == _FORWARDED and arg.text == ""


def _positionals(args) -> tuple[Arg, ...] | None:
    """A call's arguments; unknown as a whole where they pass on the script's own ("$@")."""
    return None if any(a.doubt == _FORWARDED for a in args) else tuple(args)


def _appended(old: _Value, new: _Value, name: str, assignment: syntax.Assignment, file: Path) -> _Value:
    """``NAME+=VALUE`` and ``NAME+=(ITEMS)`` of one old and one new possible value."""
    if old.doubt is not None or new.doubt is not None:
        return _Value(doubt=old.doubt or new.doubt)
    if new.items is not None:
        base = old.items if old.items is not None else (
            (Arg(old.text, f"${name}", assignment.line, file, via=old.via),) if old.text is not None else ())
        return _Value(items=base + new.items)
    if old.items is not None:
        return _Value(doubt=f"${name}+= appends text to an array ({file}:{assignment.line})")
    return _Value(text=(old.text or "") + (new.text or ""), via=old.via + new.via)


class _NotArithmetic(Exception):
    pass


_ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Mod: operator.mod}


def _integer(node) -> int:
    """Bash integer arithmetic on a parsed expression: + - * / % and parentheses only."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _integer(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _integer(node.left), _integer(node.right)
        if isinstance(node.op, ast.Div):
            return int(left / right) if right else _raise(ZeroDivisionError())
        if type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](left, right)
    raise _NotArithmetic


def _raise(exc: Exception):
    raise exc


def _source(part: syntax.Part) -> str:
    """An expansion as written, to stand for a value that cannot be known."""
    if part.kind == "cmd":
        return f"$({part.text})"
    if part.kind == "arith":
        return f"$(({part.text}))"
    if not part.operator and part.index is None and part.text.isidentifier():
        return f"${part.text}"
    index = f"[{part.index}]" if part.index is not None else ""
    operator = "" if part.operator in {"[@]", "[*]", "#len"} else part.operator
    argument = part.argument.source if part.argument is not None else ""
    suffix = "[@]" if part.operator == "[@]" else "[*]" if part.operator == "[*]" else ""
    return f"${{{'#' if part.operator == '#len' else ''}{part.text}{index}{suffix}{operator}{argument}}}"


def _with_via(value: _Value, name: str) -> _Value:
    if value.text is not None:
        return replace(value, via=((name, value.text),))
    return value


def _first_doubt(items) -> str | None:
    return next((i.doubt for i in items if i.doubt), None)


def _joined(chunks: tuple[_Chunk, ...]) -> _Value:
    """The value an assignment stores: its chunks joined, not split."""
    doubt = next((c.doubt for c in chunks if c.doubt and not c.vanishes), None)
    if doubt is None and any(c.vanishes for c in chunks):
        doubt = next(c.doubt for c in chunks if c.vanishes)
    via = tuple(v for c in chunks for v in c.via)
    if doubt is not None:
        return _Value(doubt=doubt, via=via)
    return _Value(text="".join(c.text for c in chunks), via=via)


def _fields(chunks: tuple[_Chunk, ...], word: syntax.Word, file: Path, split: bool) -> list[Arg]:
    """The words bash makes of one expanded word: unquoted expansions split on whitespace,
    array elements apart, and nothing left of a word that was only unset or empty expansions."""
    fields: list[list[_Chunk]] = [[]]
    for chunk in chunks:
        if chunk.new_field:
            fields.append([])
        if split and chunk.split and chunk.doubt is None and re.search(r"\s", chunk.text):
            pieces = re.split(r"\s+", chunk.text)
            for k, piece in enumerate(pieces):
                if k > 0:
                    fields.append([])
                if piece:
                    fields[-1].append(replace(chunk, text=piece))
                elif k == 0:
                    fields[-1].append(replace(chunk, text="", vanishes=True))
        else:
            fields[-1].append(chunk)
    args = []
    for parts in fields:
        if not parts or all((c.vanishes or (c.split and not c.text and c.doubt is None)) and not c.quoted
                            for c in parts):
            continue
        items = [c.item for c in parts if c.item is not None]
        doubt = next((c.doubt for c in parts if c.doubt), None)
        text = "".join(c.text for c in parts)
        via = tuple(dict.fromkeys(v for c in parts for v in c.via))
        known = None
        if doubt is not None:
            known = "".join(itertools.takewhile(lambda t: t is not None,
                                                (c.text if c.doubt is None else None for c in parts)))
        if len(items) == 1 and len(parts) == 1:  # an array element: where and as it was written
            item = items[0]
            args.append(replace(item, text=text, doubt=doubt, via=via or item.via, known_prefix=known))
        else:
            args.append(Arg(text, word.source, word.line, file, doubt, via, known))
    return args


def _transform(text: str, op: str, pattern: str) -> str:
    import fnmatch

    if op in {"^^", "^"}:
        return text.upper() if op == "^^" else text[:1].upper() + text[1:]
    if op in {",,", ","}:
        return text.lower() if op == ",," else text[:1].lower() + text[1:]
    candidates = range(len(text) + 1)
    if op in {"#", "##"}:
        ends = candidates if op == "#" else reversed(candidates)
        for end in ends:
            if fnmatch.fnmatchcase(text[:end], pattern):
                return text[end:]
        return text
    starts = reversed(candidates) if op == "%" else candidates
    for start in starts:
        if fnmatch.fnmatchcase(text[start:], pattern):
            return text[:start]
    return text


# ----------------------------------------------------------------------------- settings


def _is_setting(arg: Arg) -> bool:
    text = arg.text if arg.resolved else (arg.known_prefix or "")
    return bool(_OVERRIDE.match(text)) or (text.startswith("--") and len(text) > 2) or text in _HYDRA_SHORT


def settings_of(args: tuple[Arg, ...] | list[Arg]) -> tuple[list[Setting], list[Arg]]:
    """The Hydra overrides and ``--flags`` among a command's arguments (the command word
    excluded), and the arguments that could be any setting: a word whose beginning is
    unknown (``$EXTRA``, ``"$(cat overrides.txt)"``)."""
    settings: list[Setting] = []
    opaque: list[Arg] = []
    position = 0
    while position < len(args):
        arg = args[position]
        text = arg.text if arg.resolved else (arg.known_prefix or "")
        if not arg.resolved and not (_OVERRIDE.match(text) and "=" in text) and not text.startswith("--"):
            opaque.append(arg)
            position += 1
            continue
        text = arg.text
        override = _OVERRIDE.match(text)
        if override and (override.group(3) is not None or override.group(1) == "~"):
            prefix, key, written = override.groups()
            if prefix == "~":
                settings.append(Setting(key, "~", replace(arg, text="null"), arg.line, arg.file))
            else:
                value = replace(arg, text=written) if arg.resolved else replace(
                    arg, text=written, known_prefix=None)
                settings.append(Setting(key, _written_value(arg.written, key), value, arg.line, arg.file))
        elif text in _HYDRA_SHORT or (text.startswith("--") and len(text) > 2):
            key, written, value = _HYDRA_SHORT.get(text, text), None, None
            if "=" in text and text.startswith("--"):
                key, written = text.split("=", 1)
                value = replace(arg, text=written)
                written = _written_value(arg.written, key)
            elif position + 1 < len(args) and _looks_like_value(args[position + 1]):
                value = args[position + 1]
                written = value.written
                position += 1
            settings.append(Setting(key, written, value, arg.line, arg.file))
        position += 1
    return settings, opaque


def _written_value(written: str, key: str) -> str:
    """``KEY=VALUE`` as written -> VALUE as written (quotes and all)."""
    index = written.find(key)
    rest = written[index + len(key):] if index >= 0 else written
    return rest.split("=", 1)[1] if "=" in rest else rest


def _looks_like_value(arg: Arg) -> bool:
    """Whether the word after ``--flag`` is its value rather than the next argument."""
    if not arg.resolved:
        return not (arg.known_prefix or "").startswith("-")
    text = arg.text
    if text.startswith("--") or text in _HYDRA_SHORT:
        return False
    if text.startswith("-") and not _NUMBER.match(text):
        return False
    return not (_OVERRIDE.match(text) and "=" in text)


# ----------------------------------------------------------------------------- entry points


@dataclass
class Script:
    """What a launch script may run: its command lines that pass settings."""

    launches: list[Launch] = field(default_factory=list)


def read_script(path: Path, text: str, environ: Mapping[str, str]) -> Script:
    """Every command line with settings that the script at ``path`` may run."""
    interpreter = _Interpreter(Path(path), environ)
    state = _State({}, {}, None)
    final = interpreter.run_text(text, state, Path(path))
    interpreter.uncalled_functions(final if not final.dead else _State({}, dict(interpreter.defined), None))
    return Script(interpreter.launches)


def read_words(words: list[tuple[str, int]], file: Path) -> tuple[list[Setting], list[Arg]]:
    """Settings of a command line given as words (a YAML list of arguments), no shell involved."""
    return settings_of([Arg(text, text, line, file) for text, line in words])


def looks_like_script(text: str) -> bool:
    """A launch script rather than a YAML/JSON/TOML document."""
    first = text.lstrip().splitlines()[0] if text.strip() else ""
    return first.startswith("#!") or bool(re.search(r"(^|\s)(python3?|torchrun|accelerate|uv|ray|deepspeed)\s", text)
                                           and re.search(r"\\\s*$", text, re.MULTILINE))


__all__ = ["Arg", "Launch", "Script", "Setting", "looks_like_script", "read_script", "read_words", "settings_of"]
