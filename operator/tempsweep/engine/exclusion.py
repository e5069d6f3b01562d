"""``exclude`` with ``.gitignore`` semantics, matched the same way for volumes and Azure Blob prefixes.

The matching itself is ``pathspec``'s ``GitIgnoreSpec`` (a well-kept implementation of git's rules:
``*`` stops at '/', ``**`` spans directories, a leading or inner '/' anchors a pattern to the root,
a trailing '/' matches directories only, ``!`` re-includes, the last matching pattern wins). What
this module adds is git's rule for directories, which a path-by-path matcher cannot give on its own:
a file below an excluded directory is excluded, and a later ``!`` pattern cannot bring it back (git
never looks inside an excluded directory). That is also the safe reading: whatever a user wrote to
protect a directory keeps protecting everything in it.

The engine only sees relative paths with '/' separators, so the same rules hold for a blob name
after the prefix (its "directories" are the virtual folders of its name) and for a file on a volume,
where ``excludes_directory`` also lets the walk skip an excluded directory without listing it.
"""

from __future__ import annotations

from collections.abc import Iterable

import pathspec


class ExclusionMatcher:
    """Does a relative path fall under one of the ``exclude`` patterns?"""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._spec = pathspec.GitIgnoreSpec.from_lines(self.patterns)
        self._directories: dict[str, bool] = {}  # verdicts of recent parent directories

    def excludes_directory(self, path: str) -> bool:
        """True when the directory ``path`` (relative, no trailing '/') or one above it is excluded."""
        known = self._directories.get(path)
        if known is not None:
            return known
        if len(self._directories) > 4096:  # a depth-first scan needs only its current branch
            self._directories.clear()
        verdict = False
        prefix = ""
        for part in path.split("/"):
            prefix = f"{prefix}/{part}" if prefix else part
            cached = self._directories.get(prefix)
            if cached is None:
                cached = verdict or self._spec.match_file(prefix + "/")
                self._directories[prefix] = cached
            verdict = cached
        return verdict

    def excludes(self, path: str) -> bool:
        """True when the file ``path`` is excluded, itself or through a directory above it."""
        parent = path.rpartition("/")[0]
        return (bool(parent) and self.excludes_directory(parent)) or self._spec.match_file(path)


def exclusion_matcher(patterns: Iterable[str]) -> ExclusionMatcher | None:
    """The matcher for a policy's ``exclude`` list, or None when it is empty."""
    matcher = ExclusionMatcher(patterns)
    return matcher if matcher.patterns else None
