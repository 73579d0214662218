"""YAML read with limits, for every YAML cliffaudit reads: the gate's training configs
and the commands' ``--config`` files. No torch.

A YAML file can be small and still expand without bound: aliases of aliases ("billion
laughs") repeat one node exponentially, and every walk over the loaded data (flattening
keys, finding lines) pays for each repeat; a deep nesting exhausts Python's recursion;
an alias to its own ancestor makes a structure that never ends. So the text is capped,
nodes are counted as they are composed, an alias counting every node it repeats, and
the nesting depth is capped, before anything is constructed. Each limit is far above a
real training config (verl's full generated config has about 1,500 nodes and nests 6
deep) and refuses in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from cliffaudit.errors import InputError

MAX_CHARACTERS = 1 << 20
MAX_NODES = 50_000  # every node an alias repeats counts again
MAX_DEPTH = 64

__all__ = ["MAX_CHARACTERS", "MAX_DEPTH", "MAX_NODES", "Document", "YAMLInputError", "compose_all", "load", "read"]


class YAMLInputError(InputError):
    """Not YAML, or YAML past a limit; the message is one line without the file name."""


@dataclass(frozen=True)
class Document:
    """One composed YAML document: its node tree, for lines, and its data."""

    root: Node
    data: object


if yaml.__with_libyaml__:  # libyaml parses; the limits live in the composer, which stays Python
    from yaml._yaml import CParser as _Parser
else:  # pragma: no cover - PyYAML built without libyaml: its pure-Python parser
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):
        def __init__(self, text: str):
            Reader.__init__(self, text)
            Scanner.__init__(self)
            Parser.__init__(self)


class _LimitedLoader(Composer, _Parser, SafeConstructor, Resolver):
    """PyYAML's safe loader, composing with a count of expanded nodes and of depth."""

    def __init__(self, text: str):
        _Parser.__init__(self, text)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self.expanded = 0
        self.depth = 0
        self.sizes: dict[int, int] = {}  # id(node) -> its size with aliases expanded, once composed

    def _grow(self, count: int) -> None:
        self.expanded += count
        if self.expanded > MAX_NODES:
            raise YAMLInputError(f"YAML expands to more than {MAX_NODES:,} nodes (aliases count every node they "
                                 f"repeat); not a config")

    def compose_node(self, parent, index):
        if self.check_event(AliasEvent):
            anchor = self.peek_event().anchor
            target = self.anchors.get(anchor)
            if target is not None:
                size = self.sizes.get(id(target))
                if size is None:  # the anchor's node is still open: the alias is inside it
                    raise YAMLInputError(f"YAML alias *{anchor} refers to a node that contains it; not a config")
                self._grow(size)
            return super().compose_node(parent, index)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise YAMLInputError(f"YAML nests deeper than {MAX_DEPTH} levels; not a config")
        self._grow(1)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        self.sizes[id(node)] = 1 + sum(self.sizes[id(child)] for child in _children(node))
        return node


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def compose_all(text: str) -> list[Document]:
    """Every document of ``text``, composed within the limits and constructed safely."""
    if len(text) > MAX_CHARACTERS:
        raise YAMLInputError(f"larger than {MAX_CHARACTERS:,} characters; not a config")
    loader = _LimitedLoader(text)
    try:
        documents = []
        while loader.check_node():
            root = loader.get_node()
            documents.append(Document(root, loader.construct_document(root)))
        return documents
    except yaml.YAMLError as exc:
        raise YAMLInputError(f"not YAML ({' '.join(str(exc).split())[:300]})") from None
    finally:
        loader.dispose()


def load(text: str) -> object:
    """The one document of ``text`` (None when empty), within the limits."""
    documents = compose_all(text)
    if len(documents) > 1:
        raise YAMLInputError(f"holds {len(documents)} YAML documents, expected one")
    return documents[0].data if documents else None


def read(path) -> str:
    """A YAML file's text, refused past the size limit before it is read whole (OSError and
    UnicodeDecodeError are the caller's to report)."""
    with open(path, encoding="utf-8") as handle:
        text = handle.read(MAX_CHARACTERS + 1)
    if len(text) > MAX_CHARACTERS:
        raise YAMLInputError(f"larger than {MAX_CHARACTERS:,} characters; not a config")
    return text
