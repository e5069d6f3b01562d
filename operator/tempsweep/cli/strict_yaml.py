"""Reading a manifest file strictly: bounded size, no duplicate keys, no anchors or aliases.

A manifest drives deletions, so anything YAML would let through silently is refused with one line
naming the file, the line and the field:

* files larger than ``MAX_MANIFEST_BYTES`` are refused before parsing (the size of the largest object
  etcd stores by default; nothing the API server would accept is larger);
* a key given twice in one mapping (at any depth) is refused: otherwise the last one wins, and a second
  ``dryRun: false`` further down undoes the first;
* anchors and aliases (``&a`` / ``*a``) and merge keys (``<<``) are refused, not bounded: expanding
  aliases is the "billion laughs" attack (a 106 KB file took minutes and 10 GB), and Kubernetes
  manifests have no need for them (kubectl's own JSON is alias-free); refusing is simpler to state and
  to check than a bound that still lets some sharing through;
* nesting deeper than ``MAX_DEPTH`` is refused (PyYAML composes recursively).

PyYAML's SafeLoader does the parsing; the checks hook into its composer, so each node is checked once,
before anything is constructed from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

#: etcd's default request size limit (--max-request-bytes, 1.5 MiB): the largest object it stores
MAX_MANIFEST_BYTES = 3 * 2**19
MAX_DEPTH = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


class ManifestError(ValueError):
    """The manifest is refused; the message names the line and field, the caller adds the file."""


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "somewhere"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader whose composer refuses aliases, anchors and excessive depth."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            raise ManifestError(f"{_where(event.start_mark)}: YAML aliases (*{event.anchor}) are not accepted")
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise ManifestError(f"{_where(event.start_mark)}: YAML anchors (&{anchor}) are not accepted")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ManifestError(f"{_where(event.start_mark)}: nested more than {MAX_DEPTH} levels deep")
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        return node


def _check_keys(node: Node, path: str) -> None:
    """Every mapping key is a plain scalar, given once; ``path`` is the field path in wire spelling."""
    stack: list[tuple[Node, str]] = [(node, path)]
    while stack:
        current, where = stack.pop()
        if isinstance(current, SequenceNode):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(current.value))
        elif isinstance(current, MappingNode):
            seen: dict[str, Any] = {}
            for key, value in current.value:
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    what = "merge keys (<<)" if isinstance(key, ScalarNode) else "keys that are not plain values"
                    raise ManifestError(f"{_where(key.start_mark)}: {where or 'top level'}: {what} are not accepted")
                field = f"{where}.{key.value}" if where else str(key.value)
                if key.value in seen:
                    first = seen[key.value].line + 1
                    raise ManifestError(
                        f"{_where(key.start_mark)}: {field}: duplicate key (first given at line {first})"
                    )
                seen[key.value] = key.start_mark
                stack.append((value, field))


def load_manifest(path: str) -> Any:
    """The single YAML document in ``path``; ManifestError (message without the file name) when refused."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        raise ManifestError("no such file") from None
    except OSError as exc:
        raise ManifestError(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"larger than {MAX_MANIFEST_BYTES} bytes (1.5 MiB, etcd's object size limit); refused unread"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"cannot be read: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    loader = _StrictLoader(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _check_keys(node, "")
            document = loader.construct_document(node)
            if document is not None:
                documents.append(document)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at {_where(mark)}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ManifestError(f"not valid YAML{where}: {problem}") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer of more digits than Python converts
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"not valid YAML: {exc}") from None
    finally:
        loader.dispose()
    if len(documents) != 1:
        raise ManifestError(f"expected exactly one YAML document, found {len(documents)}")
    return documents[0]
