"""``exclude`` lines as a policy gives them: refused when they cannot be compiled or would protect nothing.

The matching itself lives in ``tempsweep.engine.exclusion`` (pathspec's ``GitIgnoreSpec``); this is the
validation of what a user wrote, in the models so the CLI and the operator refuse the same lines. A
line that protects nothing is as dangerous as a missing one, and says so nowhere: a comment, a blank
entry, a segment no relative path has (``./cache``), the volume's own absolute path, or a ``!`` line
that nothing before it excluded.
"""

from __future__ import annotations

import re
from typing import Annotated

import pathspec
from pydantic import AfterValidator


def check_exclude_line(value: str) -> str:
    """One ``.gitignore`` line that matches something; refused rather than silently protecting nothing.

    pathspec raises on some lines (a trailing backslash, a lone ``!``, a reversed range) only when the
    exclusion list is compiled at run time, which crashed every run of the policy; and a comment or a blank
    line is valid in a .gitignore but protects nothing, which in a list of paths to keep is a mistake.
    """
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError(f"{value!r}: one pattern per entry, without a line break or other control character")
    if not value.strip():
        raise ValueError("an exclude pattern is empty: it would protect nothing")
    if value.startswith("#"):
        raise ValueError(
            f"{value!r} is a comment in .gitignore syntax and would protect nothing; "
            f"write '\\{value}' for a name that starts with '#'"
        )
    body = value[1:] if value.startswith("!") else value
    segments = body.strip("/").split("/")
    odd = next((segment for segment in segments if segment in {".", ".."}), None)
    if odd is not None:
        raise ValueError(
            f"{value!r} has a {odd!r} segment, which no path relative to the volume root has, so it would "
            "protect nothing: write 'keep', or '/keep' for the root's own"
        )
    if body.strip("/") and "" in segments:
        raise ValueError(f"{value!r} has an empty segment ('//'), so it would protect nothing")
    try:
        pathspec.GitIgnoreSpec.from_lines([value])
    except (ValueError, re.error) as exc:  # GitIgnorePatternError is a ValueError
        raise ValueError(f"{value!r} is not a valid .gitignore pattern ({exc})") from None
    return value


def check_exclude_list(patterns: list[str], volume_path: str) -> None:
    """ValueError naming ``exclude.N`` for a line that protects nothing in this list and on this volume."""
    volume = volume_path.rstrip("/")
    for index, pattern in enumerate(patterns):
        body = pattern[1:] if pattern.startswith("!") else pattern
        if pattern.startswith("!") and all(earlier.startswith("!") for earlier in patterns[:index]):
            raise ValueError(
                f"exclude.{index} {pattern!r} re-includes what an earlier line excluded, but no earlier line "
                f"excludes anything, so it protects nothing ('!' is not 'never delete'): to keep those "
                f"files write {body!r}"
            )
        if volume and (body.rstrip("/") == volume or body.startswith(volume + "/")):
            relative = "/" + body[len(volume) :].strip("/")
            raise ValueError(
                f"exclude.{index} {pattern!r} starts with the volume path, but patterns are matched "
                f"relative to the volume root, so it would protect nothing: write {relative!r}"
            )


ExcludePattern = Annotated[str, AfterValidator(check_exclude_line)]
