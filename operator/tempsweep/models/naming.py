"""File-name patterns: which job and chunk a temp file belongs to, parsed one way or not at all.

A pattern such as ``job_{job_id}_chunk_{chunk_id}_`` is literal text with placeholders; a name
belongs to the job (or chunk) when it starts with the pattern. An id is a non-empty run of the
policy's id characters (``naming.idCharacters``, default ``A-Za-z0-9-``). A pattern is accepted
only when the text after every placeholder starts with a character an id cannot contain: then the
id ends at the first such character and every name parses exactly one way. A pattern where an id
could run on into the following text (``job-{job_id}-`` while ids may contain ``-``, or a pattern
ending with a placeholder) is refused, because it would read ``job-12-chunk-3-x`` as job
``12-chunk-3``. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tempsweep.models.idchars import IdCharacters

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KNOWN = ("job_id", "chunk_id")
#: separators suggested when a pattern is ambiguous, in order of preference
_SEPARATORS = "_.~+=@,"


@dataclass(frozen=True)
class NamePattern:
    """A compiled, unambiguous naming pattern."""

    template: str
    #: the literal text before the first placeholder (``job_`` in ``job_{job_id}_``)
    leading: str
    #: the literal text after the first placeholder up to the next one or the end (``_`` in ``job_{job_id}_``)
    following: str
    regex: re.Pattern[str]

    def match(self, name: str) -> re.Match[str] | None:
        """The match when ``name`` starts with the pattern (groups ``job_id``, ``chunk_id``), else None."""
        return self.regex.match(name)

    def prefix_for(self, **values: str) -> str:
        """The literal prefix for given ids, e.g. ``job_42_chunk_7_`` (the naming tests build names with it)."""
        return self.template.format(**values)

    def ids(self, name: str) -> dict[str, str] | None:
        """The placeholder values when ``name`` starts with the pattern, else None."""
        found = self.regex.match(name)
        return found.groupdict() if found else None


def _pieces(template: str, require: tuple[str, ...], allow: tuple[str, ...]) -> list[str]:
    """The template split into literal text (even positions) and placeholder names (odd positions)."""
    if not template:
        raise ValueError("a naming pattern cannot be empty")
    if "/" in template or "\x00" in template:
        raise ValueError("a naming pattern matches file names, so it cannot contain '/' or NUL")
    names = _PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - set(_KNOWN))
    if unknown:
        raise ValueError(
            f"unknown placeholder {{{unknown[0]}}}: only {{job_id}} and {{chunk_id}} are allowed"
        )
    for needed in require:
        if needed not in names:
            raise ValueError(f"the pattern must contain {{{needed}}}")
    for name in names:
        if name not in allow:
            raise ValueError(f"{{{name}}} belongs in chunkPattern, not here")
    if len(names) != len(set(names)):
        raise ValueError("each placeholder may appear only once")
    literal = _PLACEHOLDER.sub("", template)
    if "{" in literal or "}" in literal:
        raise ValueError("unbalanced '{' or '}' in the pattern")
    return _PLACEHOLDER.split(template)


def _suggest(ids: IdCharacters) -> str:
    free = [char for char in _SEPARATORS if char not in ids.chars]
    return f"such as {free[0]!r}" if free else "(every usual separator is an id character here)"


def _check_boundaries(pieces: list[str], ids: IdCharacters) -> None:
    """Refuse a placeholder whose end cannot be told from the text that follows it."""
    for index in range(1, len(pieces), 2):
        placeholder = "{" + pieces[index] + "}"
        after = pieces[index + 1]
        if index + 2 < len(pieces) and not after:
            nxt = "{" + pieces[index + 2] + "}"
            raise ValueError(
                f"{nxt} directly follows {placeholder}, so where one id ends and the next begins is "
                f"ambiguous: put a character ids cannot contain between them, {_suggest(ids)}"
            )
        if not after:
            raise ValueError(
                f"the pattern ends with {placeholder}, so the rest of a file name would run on into the id: "
                f"end the pattern with a character ids cannot contain, {_suggest(ids)}"
            )
        if after[0] in ids.chars:
            raise ValueError(
                f"{after[0]!r} right after {placeholder} may also occur inside an id "
                f"(naming.idCharacters is {ids.spec!r}), so where the id ends is ambiguous: follow "
                f"{placeholder} with a character ids cannot contain, {_suggest(ids)}, or remove "
                f"{after[0]!r} from naming.idCharacters"
            )


def compile_pattern(
    template: str,
    ids: IdCharacters,
    *,
    require: tuple[str, ...] = ("job_id",),
    allow: tuple[str, ...] = _KNOWN,
) -> NamePattern:
    """Compile a naming template; ValueError says what is wrong and how to fix it."""
    pieces = _pieces(template, require, allow)
    _check_boundaries(pieces, ids)
    regex_parts = [re.escape(pieces[0])]
    for index in range(1, len(pieces), 2):
        regex_parts.append(f"(?P<{pieces[index]}>{ids.run_regex})")
        regex_parts.append(re.escape(pieces[index + 1]))
    return NamePattern(
        template=template,
        leading=pieces[0],
        following=pieces[2],
        regex=re.compile("".join(regex_parts), re.DOTALL),
    )


def compile_job_pattern(template: str, ids: IdCharacters) -> NamePattern:
    """The job pattern: ``{job_id}`` once, no ``{chunk_id}``."""
    return compile_pattern(template, ids, require=("job_id",), allow=("job_id",))


def compile_chunk_pattern(template: str, ids: IdCharacters, job: NamePattern | None) -> NamePattern:
    """The chunk pattern; it must start with the job pattern, so a chunk's file is always its job's file.

    Starting with the job pattern is exactly the condition under which every name the chunk pattern
    matches also parses under the job pattern as the same job: the job pattern's text after
    ``{job_id}`` holds no placeholder, and the job id ends at the same character in both.
    """
    pattern = compile_pattern(template, ids, require=("job_id", "chunk_id"))
    if job is not None and not template.startswith(job.template):
        raise ValueError(
            f"must start with the job pattern {job.template!r}, so that every chunk's file is also its "
            f"job's file (e.g. {job.template + 'chunk_{chunk_id}_'!r})"
        )
    return pattern


@dataclass(frozen=True)
class Naming:
    """How a policy names files: id characters, the job and chunk patterns, and the directory rule.

    A path segment (a directory or the file name) *names a job* when it starts with the job
    pattern (``job_41_frames``), or when it is exactly the pattern's directory form: the pattern up
    to and including ``{job_id}`` (``job_41`` for ``job_{job_id}_``, a bare id such as ``41`` for
    ``{job_id}_``). A segment that does neither but looks like it tried is a *near miss*: it
    starts with the pattern's leading text (``job_4.1``, ``job_41.log``), or, for a pattern that
    starts with ``{job_id}``, it contains the text after ``{job_id}`` after at least one
    character (``4.1_x`` for ``{job_id}_``); letter case is ignored for this (``JOB_41/``,
    ``Job_41_x``). Near misses are never deleted by job rules.
    """

    ids: IdCharacters
    job: NamePattern
    chunk: NamePattern
    directory: re.Pattern[str]
    relaxed: re.Pattern[str] | None = None

    @classmethod
    def build(cls, job_template: str, chunk_template: str, id_characters: str) -> Naming:
        ids = IdCharacters.parse(id_characters)
        job = compile_job_pattern(job_template, ids)
        chunk = compile_chunk_pattern(chunk_template, ids, job)
        # With leading text, ``job_41`` is job 41's directory. Without it (``{job_id}_``), a segment made only
        # of id characters (``41/``) may be a job's directory too: it is read as that job's, so a running job's
        # directory protects its files; a plain directory such as ``cache/`` then names a job the table does
        # not know, which leaves its old files orphans exactly as before.
        directory = re.compile(re.escape(job.leading) + f"(?P<job_id>{ids.run_regex})", re.DOTALL)
        relaxed = (
            None if job.leading else re.compile(".+?" + re.escape(job.following), re.DOTALL | re.IGNORECASE)
        )
        return cls(ids=ids, job=job, chunk=chunk, directory=directory, relaxed=relaxed)

    def job_of_segment(self, segment: str) -> tuple[str | None, bool]:
        """The job a path segment names, and whether the segment is a near miss (then the id is None)."""
        found = self.job.regex.match(segment)
        if found is not None:
            return found.group("job_id"), False
        exact = self.directory.fullmatch(segment)
        if exact is not None:
            return exact.group("job_id"), False
        if self.job.leading:
            # in any case: ``JOB_41`` or ``Job_41_x`` was meant for a job, and a job's file must never be
            # taken for a stray one because its writer spelled the prefix differently
            return None, segment.casefold().startswith(self.job.leading.casefold())
        assert self.relaxed is not None
        return None, self.relaxed.match(segment) is not None

    def id_problem(self, value: str) -> str | None:
        """Why ``value`` cannot be an id under this naming, or None when it can."""
        outside = self.ids.first_outside(value)
        if outside is None:
            return None
        return f"{value!r} contains {outside!r}, which naming.idCharacters ({self.ids.spec!r}) does not allow"


def is_plain_name(name: str) -> bool:
    """True for a file name that cannot address anything but one entry in one directory."""
    return bool(name) and name not in {".", ".."} and "/" not in name and "\x00" not in name


__all__ = [
    "IdCharacters",
    "NamePattern",
    "Naming",
    "compile_chunk_pattern",
    "compile_job_pattern",
    "compile_pattern",
    "is_plain_name",
]
