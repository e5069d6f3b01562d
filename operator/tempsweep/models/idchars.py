"""The characters a job or chunk id may contain: a small set a user writes like ``A-Za-z0-9-``.

Not a regex on purpose: with a set of characters, whether a pattern is ambiguous is a question of
one character (can the text after ``{job_id}`` occur inside an id?), which validation can answer
for every pattern. The spec is a list of single characters and ranges; a range stays within
lower-case letters, upper-case letters or digits (``A-z`` would silently include ``[\\]^_``); a
``-`` that is not between two range ends stands for itself. Pure, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_ID_CHARACTERS = "A-Za-z0-9-"
#: characters no id may contain, whatever the policy says: '/' separates path segments, the brackets,
#: backslash and caret would make the spec read like a regex it is not, space and controls are invisible
FORBIDDEN = frozenset("/\\[]^")
#: the widest possible id alphabet: printable ASCII except space and FORBIDDEN
UNIVERSE = frozenset(chr(code) for code in range(0x21, 0x7F)) - FORBIDDEN
MAX_ID_LENGTH = 255
_RANGES = ("abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789")


def _in_one_range(low: str, high: str) -> bool:
    return any(low in chars and high in chars and chars.index(low) <= chars.index(high) for chars in _RANGES)


@dataclass(frozen=True)
class IdCharacters:
    """A parsed ``naming.idCharacters``: the spec as written and the set it stands for."""

    spec: str
    chars: frozenset[str]
    #: a regex matching one or more of these characters (internal: users never write regexes)
    run_regex: str

    @classmethod
    def parse(cls, spec: str) -> IdCharacters:
        """ValueError says which part of the spec is wrong."""
        if not spec:
            raise ValueError("must list at least one character, e.g. 'A-Za-z0-9-'")
        chars: set[str] = set()
        index = 0
        while index < len(spec):
            char = spec[index]
            if char not in UNIVERSE:
                raise ValueError(
                    f"{char!r} cannot be an id character: use printable ASCII except space, '/', '\\', "
                    "'[', ']' and '^' (write characters and ranges such as 'a-z', not a regex)"
                )
            if index + 2 < len(spec) and spec[index + 1] == "-":
                high = spec[index + 2]
                if not _in_one_range(char, high):
                    raise ValueError(
                        f"range {char}-{high} is not within a-z, A-Z or 0-9 (write other characters "
                        "one by one; a '-' first or last stands for itself)"
                    )
                chars.update(chr(code) for code in range(ord(char), ord(high) + 1))
                index += 3
                continue
            chars.add(char)
            index += 1
        ordered = "".join(sorted(chars))
        return cls(spec=spec, chars=frozenset(chars), run_regex=f"[{re.escape(ordered)}]+")

    def first_outside(self, value: str) -> str | None:
        """The first character of ``value`` that is not an id character (or '' for an empty value)."""
        if not value:
            return ""
        for char in value:
            if char not in self.chars:
                return char
        return None


def universe_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id under any policy, or None (the CleanupRun's own check)."""
    if not value:
        return "an id cannot be empty"
    if len(value) > MAX_ID_LENGTH:
        return f"an id has at most {MAX_ID_LENGTH} characters"
    for char in value:
        if char not in UNIVERSE:
            return (
                f"{value!r} is not an id: it contains {char!r}, and ids are printable ASCII without space, "
                "'/', '\\', '[', ']' or '^' (the policy's naming.idCharacters may allow fewer)"
            )
    return None
