"""Reading manifest files strictly: what PyYAML would silently accept but a user never means.

- A key written twice in one mapping: PyYAML keeps the last, so a search dimension (or any
  field) disappears without a word. Each duplicate is reported at its field path.
- Anchors and aliases: an alias is a reference, so a few lines can expand into a tree of billions
  of nodes ("billion laughs") that validation would then walk. Manifests have no use for them.
- Size: a file is read only up to `MAX_MANIFEST_BYTES`, so memory stays bounded whatever is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# etcd's default request limit is 1.5 MiB, and the apiserver refuses a bigger object anyway; a
# spec itself is limited much lower (MAX_SPEC_BYTES in validation.py).
MAX_MANIFEST_BYTES = 3 * 512 * 1024
MAX_DUPLICATES_SHOWN = 20


class ManifestError(yaml.YAMLError):
    """A file that is not read at all: too big, or using aliases."""


@dataclass(frozen=True)
class Duplicate:
    """A key written twice in one mapping: where (keys from the document root) and on which line."""

    loc: tuple[str | int, ...]
    line: int


@dataclass
class Document:
    value: Any
    duplicates: list[Duplicate] = field(default_factory=list)


# libyaml's loader where PyYAML was built with it: parsing a megabyte takes a second, not thirty.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _key(loader: yaml.SafeLoader, node: yaml.Node) -> str | int:
    value = loader.construct_object(node, deep=True)
    return value if isinstance(value, str | int) else repr(value)


def _check(loader: yaml.SafeLoader, root: yaml.Node) -> list[Duplicate]:
    """The keys repeated in `root`'s mappings; raises ManifestError on an alias, which shows as
    a node met twice (the composer hands out the anchored node again)."""
    found: list[Duplicate] = []
    seen_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, tuple[str | int, ...]]] = [(root, ())]
    while pending:
        node, loc = pending.pop()
        if not isinstance(node, yaml.ScalarNode):
            if id(node) in seen_nodes:
                raise ManifestError(
                    f"the value on line {node.start_mark.line + 1} is used again by an alias: YAML"
                    " aliases are not supported; write the value out"
                )
            seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: set[str | int] = set()
            for key_node, value_node in node.value:
                key = _key(loader, key_node)
                if key in keys and len(found) < MAX_DUPLICATES_SHOWN:
                    found.append(Duplicate((*loc, key), key_node.start_mark.line + 1))
                keys.add(key)
                pending.append((value_node, (*loc, key)))
        elif isinstance(node, yaml.SequenceNode):
            pending += [(item, (*loc, index)) for index, item in enumerate(node.value)]
    return sorted(found, key=lambda d: d.line)


def parse_documents(text: str) -> list[Document]:
    """Every non-empty YAML document of `text`, with the keys each repeats."""
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes; the apiserver would refuse it too")
    loader = _Loader(text)
    documents: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            duplicates = _check(loader, node)
            value = loader.construct_document(node)
            if value is not None:
                documents.append(Document(value, duplicates))
    finally:
        loader.dispose()
    return documents


def read_documents(path: Path) -> list[Document]:
    """The documents of a file, read up to the size limit (a bigger file is refused unread)."""
    with path.open("rb") as stream:
        data = stream.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes; the apiserver would refuse it too")
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ManifestError(f"not UTF-8 text: {exc}") from exc
    return parse_documents(text)
