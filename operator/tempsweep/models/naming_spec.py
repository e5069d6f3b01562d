"""CleanupPolicy ``.spec.naming``: id characters and the job and chunk patterns, checked together.

The patterns are checked against the id characters (an ambiguous pattern is refused with the field
named, e.g. ``spec.naming.jobPattern: '-' right after {job_id} may also occur inside an id ...``),
and the chunk pattern against the job pattern. The rules themselves live in ``naming``.
"""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from tempsweep.models.base import WireModel
from tempsweep.models.idchars import DEFAULT_ID_CHARACTERS, IdCharacters
from tempsweep.models.naming import compile_chunk_pattern, compile_job_pattern


class NamingSpec(WireModel):
    """How temp files are named after their jobs and chunks (see the README's Safety section for examples)."""

    # declared first: the patterns are checked against it, and pydantic validates fields in this order
    id_characters: str = Field(
        default=DEFAULT_ID_CHARACTERS,
        description="Characters a job or chunk id may contain: single characters and ranges within a-z, A-Z "
        "or 0-9 (not a regex); a '-' first or last stands for itself. A name whose id would contain any "
        "other character is not that job's file; if it looks like one (e.g. job_4.2_x) it is kept and "
        "counted as a near miss.",
    )
    job_pattern: str = Field(
        default="job_{job_id}_",
        validate_default=True,
        description="A file belongs to a job when its name, or the name of a directory on its path, starts "
        "with this pattern; a directory is also the job's when its name is exactly the pattern up to "
        "{job_id} (job_41 for job_{job_id}_). Needs {job_id} once, followed by a character that "
        "idCharacters does not allow (else the end of the id is ambiguous and the pattern is refused).",
    )
    chunk_pattern: str = Field(
        default="job_{job_id}_chunk_{chunk_id}_",
        validate_default=True,
        description="A file belongs to a chunk when its name starts with this pattern. Needs {job_id} and "
        "{chunk_id}, each followed by a character idCharacters does not allow, and must start with "
        "jobPattern so that a chunk's file is always its job's file. ChunkCompletion deletes only files "
        "whose own name carries the chunk, never files in a directory named after it.",
    )

    @field_validator("id_characters")
    @classmethod
    def _id_characters(cls, value: str) -> str:
        IdCharacters.parse(value)
        return value

    @field_validator("job_pattern")
    @classmethod
    def _job_pattern(cls, value: str, info: ValidationInfo) -> str:
        ids = info.data.get("id_characters")
        if ids is not None:  # else idCharacters is wrong and says so itself
            compile_job_pattern(value, IdCharacters.parse(ids))
        return value

    @field_validator("chunk_pattern")
    @classmethod
    def _chunk_pattern(cls, value: str, info: ValidationInfo) -> str:
        ids = info.data.get("id_characters")
        if ids is not None:
            parsed = IdCharacters.parse(ids)
            job = info.data.get("job_pattern")
            compile_chunk_pattern(value, parsed, compile_job_pattern(job, parsed) if job is not None else None)
        return value
