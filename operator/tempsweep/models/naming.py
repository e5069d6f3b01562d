"""File-name patterns: which job and chunk a temp file belongs to.

A pattern such as ``job_{job_id}_chunk_{chunk_id}_`` is a literal prefix with placeholders; a
file belongs to the job (or chunk) when its name starts with the pattern. Placeholders match
``[A-Za-z0-9-]+`` so an underscore always ends an id. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID_PATTERN = r"[A-Za-z0-9-]+"
ID_RE = re.compile(rf"^{ID_PATTERN}$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN = {"job_id", "chunk_id"}


@dataclass(frozen=True)
class NamePattern:
    """A compiled naming pattern."""

    template: str
    regex: re.Pattern[str]

    def match(self, name: str) -> dict[str, str] | None:
        """The placeholder values when ``name`` starts with the pattern, else None."""
        found = self.regex.match(name)
        return found.groupdict() if found else None


def compile_pattern(template: str, *, require: tuple[str, ...] = ("job_id",)) -> NamePattern:
    """Compile a naming template; ValueError names the problem when it is not usable."""
    if not template:
        raise ValueError("a naming pattern cannot be empty")
    if "/" in template or "\x00" in template:
        raise ValueError("a naming pattern matches file names, so it cannot contain '/' or NUL")
    names = _PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - _KNOWN)
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}: only {{job_id}} and {{chunk_id}} are allowed"
        )
    for needed in require:
        if needed not in names:
            raise ValueError(f"the pattern must contain {{{needed}}}")
    if len(names) != len(set(names)):
        raise ValueError("each placeholder may appear only once")
    literal = _PLACEHOLDER.sub("", template)
    if "{" in literal or "}" in literal:
        raise ValueError("unbalanced '{' or '}' in the pattern")
    regex_parts: list[str] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        regex_parts.append(re.escape(template[position : match.start()]))
        regex_parts.append(f"(?P<{match.group(1)}>{ID_PATTERN})")
        position = match.end()
    regex_parts.append(re.escape(template[position:]))
    return NamePattern(template=template, regex=re.compile("^" + "".join(regex_parts)))


def is_plain_name(name: str) -> bool:
    """True for a file name that cannot address anything but one entry in one directory."""
    return bool(name) and name not in {".", ".."} and "/" not in name and "\x00" not in name
