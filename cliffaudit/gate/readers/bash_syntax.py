"""Bash's syntax, as far as a launch script needs it: words with their quoting and
expansions, operators, heredocs, and the compound commands (``if``, ``case``, ``for``,
``while``, functions, groups) parsed into a small tree that ``shell`` interprets.

Quoting is kept per part of a word, because it decides what bash does with a value:
``$ARGS`` is split into words, ``"$ARGS"`` is not; ``'$X'`` is not expanded at all.
Nothing here runs anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cliffaudit.gate.errors import GateInputError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMETERS = set("@*#?$!-0123456789")
_OPERATORS = (";;&", ";;", ";&", "&&", "||", "&>>", "&>", ">>", "<<<", "<<-", "<<", "<&", ">&", ">|", "<>",
              ";", "&", "|", "(", ")", "<", ">")
_REDIRECTIONS = {"&>>", "&>", ">>", "<<<", "<<-", "<<", "<&", ">&", ">|", "<>", "<", ">"}
_FD_REDIRECTION = re.compile(r"\d+(?=>>|>&|>\||>|<&|<<|<>|<)")
_METACHARACTERS = set(" \t\n;&|()<>")
# Parameter operators, longest first: ${X:-d}, ${X%%p}, ${X^^}, ...
_PARAMETER_OPERATORS = (":-", ":=", ":+", ":?", "-", "=", "+", "?", "%%", "%", "##", "#", "//", "/", "^^", "^",
                        ",,", ",", ":")


@dataclass(frozen=True)
class Part:
    """A piece of a word. ``kind``: "lit" (text), "param" (``$NAME``, ``${NAME...}``),
    "cmd" (``$(...)`` or backquotes: its source) or "arith" (``$((...))``: its source)."""

    kind: str
    text: str
    quoted: bool
    operator: str = ""  # of a parameter: ":-", "%", "#len", "[@]", ...
    argument: Word | None = None  # the operator's word: a default, a pattern
    index: str | None = None  # ${NAME[index]}


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]
    line: int
    source: str  # as written

    def literal(self) -> str | None:
        """The text when the word is plain unquoted text (a keyword, a name), else None."""
        if all(p.kind == "lit" and not p.quoted for p in self.parts):
            return "".join(p.text for p in self.parts)
        return None

    def is_quoted(self) -> bool:
        return any(p.quoted for p in self.parts)


@dataclass
class HereDoc:
    delimiter: str
    quoted: bool  # a quoted delimiter: the body is not expanded
    strip_tabs: bool
    body: str = ""
    line: int = 0  # the body's first line


@dataclass(frozen=True)
class Operator:
    text: str
    line: int
    heredoc: HereDoc | None = None


Token = Word | Operator


# ----------------------------------------------------------------------------- tree


@dataclass
class Redirect:
    operator: str
    target: Word | None
    heredoc: HereDoc | None = None


@dataclass
class Assignment:
    name: str
    append: bool
    value: Word | None  # a scalar
    items: list[Word] | None  # an array literal
    line: int


@dataclass
class Simple:
    assignments: list[Assignment]  # before the command word: `A=1 B=(x y)`
    words: list[Word]
    redirects: list[Redirect]
    line: int
    declared: list[Assignment] = field(default_factory=list)  # `export A=1`, `declare -a B=(x)`


@dataclass
class If:
    branches: list[tuple[list, list]]  # (condition, body)
    orelse: list | None
    line: int


@dataclass
class Loop:
    """``for NAME in WORDS`` (``words`` None: ``for NAME`` over "$@"), ``for ((...))``
    (``name`` None), ``while`` and ``until`` (``condition`` set)."""

    name: str | None
    words: list[Word] | None
    condition: list | None
    body: list
    line: int


@dataclass
class Case:
    word: Word
    arms: list[tuple[list[Word], list]]
    line: int


@dataclass
class Group:
    body: list
    subshell: bool
    line: int


@dataclass
class Function:
    name: str
    body: list
    line: int


@dataclass
class AndOr:
    first: object
    rest: list[tuple[str, object]]
    line: int


@dataclass
class Pipeline:
    commands: list
    line: int


@dataclass
class Arithmetic:
    source: str
    line: int


@dataclass
class Test:
    """``[[ ... ]]``: a condition; read for nothing."""

    line: int


# ----------------------------------------------------------------------------- lexer


class _Lexer:
    def __init__(self, text: str, where: str):
        self.text = text
        self.where = where  # the file, for errors
        self.i = 0
        self.line = 1
        self.pending: list[HereDoc] = []
        self.tokens: list[Token] = []
        self.spaced: list[bool] = []  # whether whitespace precedes each token

    def error(self, message: str, line: int | None = None) -> GateInputError:
        return GateInputError(f"{self.where}:{line or self.line}: cannot read the script: {message}")

    def peek(self, offset: int = 0) -> str:
        j = self.i + offset
        return self.text[j] if j < len(self.text) else ""

    def advance(self) -> str:
        ch = self.text[self.i]
        self.i += 1
        if ch == "\n":
            self.line += 1
        return ch

    def run(self) -> tuple[list[Token], list[bool]]:
        spaced = True
        while self.i < len(self.text):
            ch = self.peek()
            if ch in " \t":
                self.advance()
                spaced = True
            elif ch == "\\" and self.peek(1) == "\n":
                self.advance()
                self.advance()
                spaced = True
            elif ch == "#" and spaced:
                while self.i < len(self.text) and self.peek() != "\n":
                    self.advance()
            elif ch == "\n":
                line = self.line
                self.advance()
                self._emit(Operator("\n", line), True)
                self._read_heredocs()
                spaced = True
            elif ch == "(" and self.peek(1) == "(" and spaced and self._starts_command():
                self._emit(self._arithmetic_command(), spaced)
                spaced = False
            else:
                operator = self._operator()
                if operator is not None:
                    self._emit(operator, spaced)
                    spaced = operator.text not in _REDIRECTIONS
                    if operator.text in {"<<", "<<-"}:
                        self._heredoc_delimiter(operator)
                else:
                    self._emit(self._word(), spaced)
                    spaced = False
        if self.pending:
            self._read_heredocs()
        return self.tokens, self.spaced

    def _emit(self, token: Token, spaced: bool) -> None:
        self.tokens.append(token)
        self.spaced.append(spaced)

    def _starts_command(self) -> bool:
        last = self.tokens[-1] if self.tokens else None
        return last is None or (isinstance(last, Operator) and last.text not in _REDIRECTIONS) or \
            (isinstance(last, Word) and last.literal() in {"then", "do", "else", "{", "!", "in", "for", "if", "elif",
                                                           "while", "until"})

    def _operator(self) -> Operator | None:
        fd = _FD_REDIRECTION.match(self.text, self.i)
        start = fd.end() if fd else self.i
        for operator in _OPERATORS:
            if self.text.startswith(operator, start):
                if fd and operator not in _REDIRECTIONS:
                    return None
                line = self.line
                for _ in range(start - self.i + len(operator)):
                    self.advance()
                return Operator(operator, line, HereDoc("", False, operator == "<<-")
                                if operator in {"<<", "<<-"} else None)
        return None

    def _heredoc_delimiter(self, operator: Operator) -> None:
        while self.peek() in {" ", "\t"}:
            self.advance()
        word = self._word()
        delimiter = "".join(p.text if p.kind == "lit" else p.text for p in word.parts)
        operator.heredoc.delimiter = delimiter
        operator.heredoc.quoted = word.is_quoted()
        self.pending.append(operator.heredoc)
        self._emit(word, True)

    def _read_heredocs(self) -> None:
        for heredoc in self.pending:
            heredoc.line = self.line
            body = []
            while self.i < len(self.text):
                end = self.text.find("\n", self.i)
                end = len(self.text) if end < 0 else end
                raw = self.text[self.i:end]
                for _ in range(end - self.i + (1 if end < len(self.text) else 0)):
                    self.advance()
                candidate = raw.lstrip("\t") if heredoc.strip_tabs else raw
                if candidate == heredoc.delimiter:
                    break
                body.append(candidate)
            heredoc.body = "\n".join(body) + ("\n" if body else "")
        self.pending = []

    def _arithmetic_command(self) -> Word:
        line = self.line
        self.advance()
        self.advance()
        source = self._until_closing(")", "(", line, "((")
        if self.peek() != ")":
            raise self.error("(( without ))", line)
        self.advance()
        return Word((Part("arith", source, False, operator="command"),), line, f"(({source}))")

    # -------------------------------------------------------------- words

    def _word(self) -> Word:
        line, start = self.line, self.i
        parts: list[Part] = []
        while self.i < len(self.text) and self.peek() not in _METACHARACTERS:
            ch = self.peek()
            if ch == "'":
                self.advance()
                parts.append(Part("lit", self._until("'", line), True))
            elif ch == "$" and self.peek(1) == "'":
                self.advance()
                self.advance()
                parts.append(Part("lit", _ansi_c(self._until_unescaped("'", line)), True))
            elif ch == '"':
                self.advance()
                parts.extend(self._double_quoted(line))
            elif ch == "\\":
                self.advance()
                if self.i < len(self.text):
                    escaped = self.advance()
                    if escaped != "\n":
                        parts.append(Part("lit", escaped, True))
            elif ch == "$":
                parts.append(self._dollar(False, line))
            elif ch == "`":
                self.advance()
                parts.append(Part("cmd", self._until_unescaped("`", line), False))
            else:
                parts.append(Part("lit", self.advance(), False))
        if not parts and self.i == start:
            raise self.error(f"unexpected {self.peek()!r}")
        return Word(_merge_literals(parts), line, self.text[start:self.i])

    def _until(self, end: str, line: int) -> str:
        j = self.text.find(end, self.i)
        if j < 0:
            raise self.error("a quote opened here never closes", line)
        text = self.text[self.i:j]
        while self.i <= j:
            self.advance()
        return text

    def _until_unescaped(self, end: str, line: int) -> str:
        out = []
        while self.i < len(self.text):
            ch = self.advance()
            if ch == "\\" and self.i < len(self.text):
                out.append(ch + self.advance())
            elif ch == end:
                return "".join(out)
            else:
                out.append(ch)
        raise self.error(f"{end} opened here never closes", line)

    def _double_quoted(self, line: int) -> list[Part]:
        parts: list[Part] = []
        while True:
            if self.i >= len(self.text):
                raise self.error("a double quote opened here never closes", line)
            ch = self.peek()
            if ch == '"':
                self.advance()
                return parts or [Part("lit", "", True)]
            if ch == "\\":
                self.advance()
                nxt = self.advance() if self.i < len(self.text) else ""
                if nxt in {"$", "`", '"', "\\"}:
                    parts.append(Part("lit", nxt, True))
                elif nxt != "\n":
                    parts.append(Part("lit", "\\" + nxt, True))
            elif ch == "$":
                parts.append(self._dollar(True, line))
            elif ch == "`":
                self.advance()
                parts.append(Part("cmd", self._until_unescaped("`", line), True))
            else:
                parts.append(Part("lit", self.advance(), True))

    def _dollar(self, quoted: bool, line: int) -> Part:
        self.advance()  # $
        ch = self.peek()
        if ch == "(" and self.peek(1) == "(":
            self.advance()
            self.advance()
            source = self._until_closing(")", "(", line, "$((")
            if self.peek() != ")":
                raise self.error("$(( without ))", line)
            self.advance()
            return Part("arith", source, quoted)
        if ch == "(":
            self.advance()
            return Part("cmd", self._until_closing(")", "(", line, "$("), quoted)
        if ch == "{":
            self.advance()
            return self._braced(self._until_closing("}", "{", line, "${"), quoted, line)
        match = _NAME.match(self.text, self.i)
        if match:
            for _ in range(match.end() - self.i):
                self.advance()
            return Part("param", match.group(0), quoted)
        if ch and ch in _SPECIAL_PARAMETERS:
            self.advance()
            return Part("param", ch, quoted)
        return Part("lit", "$", quoted)

    def _until_closing(self, close: str, open_: str, line: int, opener: str) -> str:
        """Source up to the matching ``close`` (consumed), past nested pairs and quotes."""
        quotes = {"'", '"'} if close == "}" else {"'", '"', "`"}
        depth, start = 1, self.i
        while self.i < len(self.text):
            ch = self.peek()
            if ch == "\\":
                self.advance()
                if self.i < len(self.text):
                    self.advance()
                continue
            if ch in quotes:
                self.advance()
                if ch == "'":
                    self._until("'", line)
                else:
                    self._until_unescaped(ch, line)
                continue
            self.advance()
            if ch == open_:
                depth += 1
            elif ch == close:
                depth -= 1
                if depth == 0:
                    return self.text[start:self.i - 1]
        raise self.error(f"{opener} opened here never closes", line)

    def _braced(self, inner: str, quoted: bool, line: int) -> Part:
        if inner.startswith("#") and len(inner) > 1:
            return Part("param", inner[1:], quoted, operator="#len")
        if inner.startswith("!"):
            return Part("param", inner[1:], quoted, operator="!")
        match = _NAME.match(inner)
        if match:
            name, rest = match.group(0), inner[match.end():]
        elif inner[:1] and (inner[0] in _SPECIAL_PARAMETERS):
            digits = re.match(r"\d+", inner)
            name = digits.group(0) if digits else inner[0]
            rest = inner[len(name):]
        else:
            raise self.error(f"bad substitution ${{{inner}}}", line)
        index = None
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise self.error(f"bad substitution ${{{inner}}}", line)
            index, rest = rest[1:close], rest[close + 1:]
        if not rest:
            operator = "[@]" if index == "@" else "[*]" if index == "*" else ""
            return Part("param", name, quoted, operator=operator, index=None if operator else index)
        for operator in _PARAMETER_OPERATORS:
            if rest.startswith(operator):
                argument = parse_word(rest[len(operator):], line, self.where)
                return Part("param", name, quoted, operator=operator, argument=argument, index=index)
        raise self.error(f"bad substitution ${{{inner}}}", line)


def _merge_literals(parts: list[Part]) -> tuple[Part, ...]:
    merged: list[Part] = []
    for part in parts:
        if merged and part.kind == "lit" and merged[-1].kind == "lit" and merged[-1].quoted == part.quoted:
            merged[-1] = Part("lit", merged[-1].text + part.text, part.quoted)
        else:
            merged.append(part)
    return tuple(merged)


def _ansi_c(text: str) -> str:
    try:
        return text.replace("\\'", "'").encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeError:  # non-Latin-1 text, a bad escape: as written
        return text


def parse_word(text: str, line: int, where: str) -> Word:
    """``text`` read as one word, quotes and expansions included, whitespace kept (the
    argument of ``${X:-a b}``, a pattern)."""
    lexer = _Lexer(text, where)
    lexer.line = line
    parts: list[Part] = []
    while lexer.i < len(text):
        ch = lexer.peek()
        if ch in _METACHARACTERS:
            parts.append(Part("lit", lexer.advance(), False))
        else:
            parts.extend(lexer._word().parts)
    return Word(_merge_literals(parts), line, text)


def tokenize(text: str, where: str) -> tuple[list[Token], list[bool]]:
    return _Lexer(text, where).run()


# ----------------------------------------------------------------------------- parser

_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?)=")
_SEPARATORS = {";", "&", "\n"}


class _Parser:
    def __init__(self, tokens: list[Token], spaced: list[bool], where: str):
        self.tokens = tokens
        self.spaced = spaced
        self.where = where
        self.k = 0

    def error(self, message: str, line: int | None = None) -> GateInputError:
        if line is None:
            token = self.current()
            line = token.line if token is not None else (self.tokens[-1].line if self.tokens else 1)
        return GateInputError(f"{self.where}:{line}: cannot read the script: {message}")

    def current(self) -> Token | None:
        return self.tokens[self.k] if self.k < len(self.tokens) else None

    def keyword(self) -> str | None:
        token = self.current()
        return token.literal() if isinstance(token, Word) else None

    def operator(self) -> str | None:
        token = self.current()
        return token.text if isinstance(token, Operator) else None

    def expect_keyword(self, word: str, opened: int) -> None:
        if self.keyword() != word:
            raise self.error(f"expected '{word}' (for the command opened on line {opened})")
        self.k += 1

    def skip_separators(self) -> None:
        while self.operator() in _SEPARATORS:
            self.k += 1

    def parse_list(self, end_words: tuple[str, ...] = (), end_operators: tuple[str, ...] = ()) -> list:
        items = []
        while True:
            self.skip_separators()
            token = self.current()
            if token is None or self.keyword() in end_words or self.operator() in end_operators:
                return items
            if self.operator() in {")", ";;", ";&", ";;&"} or self.keyword() in {"then", "do", "done", "fi",
                                                                                 "elif", "else", "esac", "}"}:
                raise self.error(f"unexpected {self.keyword() or self.operator()!r}")
            items.append(self.parse_and_or())

    def parse_and_or(self):
        line = self.current().line
        first = self.parse_pipeline()
        rest = []
        while self.operator() in {"&&", "||"}:
            operator = self.operator()
            self.k += 1
            while self.operator() == "\n":
                self.k += 1
            rest.append((operator, self.parse_pipeline()))
        return AndOr(first, rest, line) if rest else first

    def parse_pipeline(self):
        line = self.current().line
        if self.keyword() == "!":
            self.k += 1
        commands = [self.parse_command()]
        while self.operator() in {"|", "|&"}:
            self.k += 1
            while self.operator() == "\n":
                self.k += 1
            commands.append(self.parse_command())
        return Pipeline(commands, line) if len(commands) > 1 else commands[0]

    def parse_command(self):
        token = self.current()
        if token is None:
            raise self.error("a command is missing at the end")
        word = self.keyword()
        line = token.line
        if word == "if":
            return self._trailing(self.parse_if())
        if word in {"while", "until"}:
            self.k += 1
            condition = self.parse_list(("do",))
            self.expect_keyword("do", line)
            body = self.parse_list(("done",))
            self.expect_keyword("done", line)
            return self._trailing(Loop(None, None, condition, body, line))
        if word in {"for", "select"}:
            return self._trailing(self.parse_for())
        if word == "case":
            return self._trailing(self.parse_case())
        if word == "{":
            self.k += 1
            body = self.parse_list(("}",))
            self.expect_keyword("}", line)
            return self._trailing(Group(body, False, line))
        if word == "[[":
            while self.keyword() != "]]":
                if self.current() is None:
                    raise self.error("[[ without ]]", line)
                self.k += 1
            self.k += 1
            return Test(line)
        if word == "function":
            self.k += 1
            name = self.keyword()
            if name is None:
                raise self.error("function without a name", line)
            self.k += 1
            if self.operator() == "(":
                self._empty_parentheses(line)
            return self._function(name, line)
        if self.operator() == "(":
            self.k += 1
            body = self.parse_list((), (")",))
            if self.operator() != ")":
                raise self.error("( without )", line)
            self.k += 1
            return self._trailing(Group(body, True, line))
        if isinstance(token, Word) and token.parts and token.parts[0].operator == "command":
            self.k += 1
            return Arithmetic(token.parts[0].text, line)
        if word is not None and _NAME.fullmatch(word) and self._next_operator() == "(":
            self.k += 1
            self._empty_parentheses(line)
            return self._function(word, line)
        return self.parse_simple()

    def _next_operator(self) -> str | None:
        token = self.tokens[self.k + 1] if self.k + 1 < len(self.tokens) else None
        return token.text if isinstance(token, Operator) else None

    def _empty_parentheses(self, line: int) -> None:
        self.k += 1
        if self.operator() != ")":
            raise self.error("expected () after a function name", line)
        self.k += 1

    def _function(self, name: str, line: int) -> Function:
        while self.operator() == "\n":
            self.k += 1
        body = self.parse_command()
        return Function(name, [body], line)

    def _trailing(self, node):
        """Redirections after a compound command (``done < file``, ``} > log``) change nothing read here."""
        while self.operator() in _REDIRECTIONS:
            self.k += 1
            if isinstance(self.current(), Word):
                self.k += 1
        return node

    def parse_if(self) -> If:
        line = self.current().line
        branches = []
        self.k += 1
        while True:
            condition = self.parse_list(("then",))
            self.expect_keyword("then", line)
            body = self.parse_list(("elif", "else", "fi"))
            branches.append((condition, body))
            if self.keyword() == "elif":
                self.k += 1
                continue
            orelse = None
            if self.keyword() == "else":
                self.k += 1
                orelse = self.parse_list(("fi",))
            self.expect_keyword("fi", line)
            return If(branches, orelse, line)

    def parse_for(self) -> Loop:
        line = self.current().line
        self.k += 1
        token = self.current()
        if isinstance(token, Word) and token.parts and token.parts[0].operator == "command":
            self.k += 1
            name, words = None, []
        else:
            name = self.keyword()
            if name is None or not _NAME.fullmatch(name):
                raise self.error("for without a variable name", line)
            self.k += 1
            while self.operator() == "\n":
                self.k += 1
            words = None
            if self.keyword() == "in":
                self.k += 1
                words = []
                while isinstance(self.current(), Word):
                    words.append(self.current())
                    self.k += 1
        self.skip_separators()
        self.expect_keyword("do", line)
        body = self.parse_list(("done",))
        self.expect_keyword("done", line)
        return Loop(name, words, None, body, line)

    def parse_case(self) -> Case:
        line = self.current().line
        self.k += 1
        word = self.current()
        if not isinstance(word, Word):
            raise self.error("case without a word", line)
        self.k += 1
        self.skip_separators()
        self.expect_keyword("in", line)
        arms = []
        while True:
            self.skip_separators()
            if self.keyword() == "esac":
                self.k += 1
                return Case(word, arms, line)
            if self.current() is None:
                raise self.error("case without esac", line)
            if self.operator() == "(":
                self.k += 1
            patterns = []
            while True:
                pattern = self.current()
                if not isinstance(pattern, Word):
                    raise self.error("a case pattern is missing", line)
                patterns.append(pattern)
                self.k += 1
                if self.operator() == "|":
                    self.k += 1
                    continue
                break
            if self.operator() != ")":
                raise self.error("a case pattern without )", line)
            self.k += 1
            body = self.parse_list(("esac",), (";;", ";&", ";;&"))
            arms.append((patterns, body))
            if self.operator() in {";;", ";&", ";;&"}:
                self.k += 1

    def parse_simple(self) -> Simple:
        line = self.current().line
        assignments: list[Assignment] = []
        declared: list[Assignment] = []
        words: list[Word] = []
        redirects: list[Redirect] = []
        while True:
            token = self.current()
            if isinstance(token, Operator):
                if token.text in _REDIRECTIONS:
                    self.k += 1
                    target = self.current() if isinstance(self.current(), Word) else None
                    if target is not None:
                        self.k += 1
                    redirects.append(Redirect(token.text, target, token.heredoc))
                    continue
                break
            if token is None:
                break
            assignment = self._assignment(token) if not words or _declares(words[0]) else None
            if assignment is not None:
                (declared if words else assignments).append(assignment)
            else:
                words.append(token)
                self.k += 1
        if not assignments and not words and not redirects:
            raise self.error(f"unexpected {self.operator()!r}")
        return Simple(assignments, words, redirects, line, declared)

    def _assignment(self, token: Word) -> Assignment | None:
        first = token.parts[0] if token.parts else None
        if first is None or first.kind != "lit" or first.quoted:
            return None
        match = _ASSIGNMENT.match(first.text)
        if not match:
            return None
        name, append = match.group(1), bool(match.group(2))
        remainder = first.text[match.end():]
        value_parts = ((Part("lit", remainder, False),) if remainder else ()) + token.parts[1:]
        if not value_parts and self._next_operator() == "(" and not self.spaced[self.k + 1]:
            self.k += 2  # NAME=( ... ): the array's words, over lines, up to )
            items = []
            while self.operator() != ")":
                item = self.current()
                if item is None:
                    raise self.error(f"the array {name}=( opened here never closes", token.line)
                if isinstance(item, Word):
                    items.append(item)
                elif item.text != "\n":
                    raise self.error(f"unexpected {item.text!r} in the array {name}", item.line)
                self.k += 1
            self.k += 1
            return Assignment(name, append, None, items, token.line)
        self.k += 1
        return Assignment(name, append, Word(value_parts, token.line, token.source[match.end():]), None, token.line)


_DECLARATIONS = {"export", "local", "declare", "readonly", "typeset"}


def _declares(word: Word) -> bool:
    return word.literal() in _DECLARATIONS


def parse(text: str, where: str) -> list:
    tokens, spaced = tokenize(text, where)
    parser = _Parser(tokens, spaced, where)
    items = parser.parse_list()
    if parser.current() is not None:
        raise parser.error(f"unexpected {parser.keyword() or parser.operator()!r}")
    return items


__all__ = ["AndOr", "Arithmetic", "Assignment", "Case", "Function", "Group", "HereDoc", "If", "Loop", "Part",
           "Pipeline", "Redirect", "Simple", "Test", "Word", "parse", "parse_word"]
