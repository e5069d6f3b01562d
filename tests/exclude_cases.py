"""The ``exclude`` cases every backend must honour the same way (.gitignore semantics).

Paths are relative to the volume root or the blob prefix; every file is old enough for an
age-only Orphaned run to delete it, so what survives is exactly what the patterns protect.
"""

from __future__ import annotations

FILES = [
    "keep/a.tmp",
    "keep/sub/b.tmp",
    "x/keep/c.tmp",
    "keeper/d.tmp",
    "cache/e.tmp",
    "sub/cache",
    "a/keep.tmp",
    "a/b/c/keep.tmp",
    "b/keep.tmp",
    "top/f.tmp",
    "sub/top/g.tmp",
    "important.tmp",
    "logs/keep.log",
    "logs/h.log",
    "plain.bin",
]

_ALL_TMP = {path for path in FILES if path.endswith(".tmp")}

#: (id, patterns, the files they keep)
CASES: list[tuple[str, list[str], set[str]]] = [
    ("directory-name-protects-its-subtree", ["keep"], {"keep/a.tmp", "keep/sub/b.tmp", "x/keep/c.tmp"}),
    ("trailing-slash-matches-directories-only", ["cache/"], {"cache/e.tmp"}),
    ("double-star-spans-directories", ["a/**/keep.tmp"], {"a/keep.tmp", "a/b/c/keep.tmp"}),
    ("leading-slash-anchors-to-the-root", ["/top"], {"top/f.tmp"}),
    ("negation-re-includes-a-file", ["*.tmp", "!important.tmp"], _ALL_TMP - {"important.tmp"}),
    ("negation-cannot-reach-into-an-excluded-directory", ["logs/", "!logs/keep.log"], {"logs/keep.log", "logs/h.log"}),
]
