"""An in-memory storage provider: the engine's tests and demos without a disk.

Behaves like a volume: each file has a version token that changes when it is rewritten, so the
re-check-before-delete rule can be exercised.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tempsweep.engine.ports import DeleteResult, FileEntry, Outcome, Usage


@dataclass
class _Stored:
    size: int
    mtime: float
    version: int
    archived: bool = False


class MemoryStorage:
    """A dict of path -> file, with an optional filesystem size."""

    def __init__(self, *, filesystem_bytes: int | None = None, description: str = "memory") -> None:
        self.description = description
        self._files: dict[str, _Stored] = {}
        self._filesystem_bytes = filesystem_bytes
        self._versions = itertools.count(1)
        self._lock = threading.Lock()
        self.deleted: list[str] = []

    def put(self, path: str, size: int, mtime: float, *, archived: bool = False) -> None:
        """Create or rewrite a file (a rewrite gets a new version, like a new mtime on disk)."""
        with self._lock:
            self._files[path] = _Stored(size, mtime, next(self._versions), archived)

    def paths(self) -> set[str]:
        with self._lock:
            return set(self._files)

    def scan(self) -> Iterator[FileEntry]:
        with self._lock:
            snapshot = sorted(self._files.items())
        for path, stored in snapshot:
            yield FileEntry(path, stored.size, stored.mtime, stored.version, stored.archived)

    def scan_errors(self) -> list[str]:
        return []

    def filesystem_usage(self) -> Usage | None:
        if self._filesystem_bytes is None:
            return None
        with self._lock:
            used = sum(stored.size for stored in self._files.values())
        return Usage(used=used, total=self._filesystem_bytes)

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        results = []
        with self._lock:
            for entry in entries:
                stored = self._files.get(entry.path)
                if stored is None:
                    results.append(DeleteResult(entry, Outcome.VANISHED))
                elif stored.version != entry.token:
                    results.append(DeleteResult(entry, Outcome.CHANGED, "changed since it was planned"))
                else:
                    del self._files[entry.path]
                    self.deleted.append(entry.path)
                    results.append(DeleteResult(entry, Outcome.DELETED))
        return results
