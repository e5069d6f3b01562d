"""Naming: id characters, unambiguous patterns, the directory rule and near misses.

A name parses exactly one way or not at all; a pattern under which that could fail is refused at
validation with the field named. The property tests generate random id alphabets, patterns, ids
and file-name tails and check that no accepted pattern ever reads a generated name differently.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep_helpers import policy_document
from tempsweep.models import InputError, parse_policy
from tempsweep.models.idchars import IdCharacters
from tempsweep.models.naming import Naming

DEFAULT = Naming.build("job_{job_id}_", "job_{job_id}_chunk_{chunk_id}_", "A-Za-z0-9-")


@pytest.mark.parametrize(
    ("segment", "job", "near_miss"),
    [
        ("job_42_image.jpg", "42", False),
        ("job_a-b_x", "a-b", False),
        ("job_42_chunk_7_image.jpg", "42", False),
        ("job_41", "41", False),
        ("job_41_frames", "41", False),
        ("job_4.2_image.jpg", None, True),
        ("job_41.log", None, True),
        ("job_", None, True),
        ("job__x", None, True),
        ("xjob_42_image.jpg", None, False),
        ("JOB_41", None, True),
        ("Job_41_frames.png", None, True),
        ("frames", None, False),
        ("image.jpg", None, False),
    ],
    ids=[
        "file-of-job",
        "id-with-dash",
        "chunk-file-is-its-jobs",
        "directory-form",
        "directory-starting-with-the-pattern",
        "forbidden-dot-in-id",
        "directory-form-plus-extension",
        "prefix-alone",
        "empty-id",
        "not-at-the-start",
        "upper-case-directory-form",
        "capitalised-prefix",
        "plain-directory",
        "plain-file",
    ],
)
def test_a_segment_names_one_job_or_none_and_near_misses_are_flagged(
    segment: str, job: str | None, near_miss: bool
) -> None:
    assert DEFAULT.job_of_segment(segment) == (job, near_miss)


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("job_42_chunk_7_image.jpg", {"job_id": "42", "chunk_id": "7"}),
        ("job_a-b_chunk_C-9_x", {"job_id": "a-b", "chunk_id": "C-9"}),
        ("job_42_image.jpg", None),
        ("job_42_chunk_7.jpg", None),
        ("xjob_42_chunk_7_image.jpg", None),
    ],
    ids=["digits", "letters-and-dashes", "job-without-chunk", "chunk-without-separator", "not-at-the-start"],
)
def test_a_file_belongs_to_a_chunk_when_its_name_starts_with_the_chunk_pattern(
    name: str, ids: dict[str, str] | None
) -> None:
    assert DEFAULT.chunk.ids(name) == ids


def test_a_pattern_starting_with_the_id_flags_names_that_contain_its_separator_as_near_misses() -> None:
    naming = Naming.build("{job_id}_", "{job_id}_{chunk_id}.", "0-9")
    assert naming.job_of_segment("41_a.txt") == ("41", False)
    assert naming.job_of_segment("4.1_a.txt") == (None, True)
    upper = Naming.build("{job_id}_out_", "{job_id}_out_{chunk_id}.", "0-9")
    assert upper.job_of_segment("41_OUT_a.txt") == (None, True), "a separator in another case is a near miss"
    assert naming.job_of_segment("readme.txt") == (None, False)
    assert naming.job_of_segment("41") == ("41", False), "a bare id is the directory form of {job_id}_"
    assert naming.job_of_segment("frames") == (None, False), "not an id under 0-9"


def _policy(naming: dict[str, Any]) -> None:
    parse_policy(policy_document("/data/tmp", naming=naming), source="policy.yaml")


@pytest.mark.parametrize(
    ("naming", "expected"),
    [
        (
            {"jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"},
            "spec.naming.jobPattern: '-' right after {job_id} may also occur inside an id",
        ),
        (
            {"idCharacters": "0-9c", "jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-c{chunk_id}c"},
            "spec.naming.chunkPattern: 'c' right after {chunk_id} may also occur inside an id",
        ),
        ({"idCharacters": "A-Za-z0-9_"}, "spec.naming.jobPattern: '_' right after {job_id}"),
        (
            {"jobPattern": "job_{job_id}", "chunkPattern": "job_{job_id}_chunk_{chunk_id}_"},
            "spec.naming.jobPattern: the pattern ends with {job_id}",
        ),
        ({"chunkPattern": "job_{job_id}_chunk_{chunk_id}"}, "spec.naming.chunkPattern: the pattern ends with"),
        ({"chunkPattern": "job_{job_id}_{chunk_id}"}, "spec.naming.chunkPattern: the pattern ends with"),
        ({"chunkPattern": "job_{job_id}{chunk_id}_"}, "spec.naming.chunkPattern: {chunk_id} directly follows"),
        (
            {"chunkPattern": "chunk_{chunk_id}_job_{job_id}_"},
            "spec.naming.chunkPattern: must start with the job pattern 'job_{job_id}_'",
        ),
        ({"chunkPattern": "job_{job_id}.chunk_{chunk_id}_"}, "spec.naming.chunkPattern: must start with"),
        ({"jobPattern": "job_{job_id}_{chunk_id}_"}, "spec.naming.jobPattern: {chunk_id} belongs in chunkPattern"),
        ({"jobPattern": "job_"}, "spec.naming.jobPattern: the pattern must contain {job_id}"),
        ({"idCharacters": "A-z"}, "spec.naming.idCharacters: range A-z is not within"),
        ({"idCharacters": "[0-9]"}, "spec.naming.idCharacters: '[' cannot be an id character"),
        ({"idCharacters": ""}, "spec.naming.idCharacters: must list at least one character"),
        ({"idCharacters": "0-9/"}, "spec.naming.idCharacters: '/' cannot be an id character"),
    ],
    ids=[
        "dash-separator-with-dash-in-ids",
        "letter-after-chunk-id-that-ids-may-contain",
        "default-pattern-with-underscore-in-ids",
        "job-pattern-ending-in-placeholder",
        "chunk-pattern-ending-in-placeholder",
        "chunk-pattern-ending-in-chunk-id",
        "adjacent-placeholders",
        "chunk-pattern-not-starting-with-job-pattern",
        "chunk-pattern-with-another-separator",
        "chunk-id-in-job-pattern",
        "no-job-id",
        "range-across-classes",
        "regex-brackets",
        "empty-id-characters",
        "slash-in-id-characters",
    ],
)
def test_an_ambiguous_or_inconsistent_naming_is_refused_naming_the_field(naming: dict[str, Any], expected: str) -> None:
    with pytest.raises(InputError) as raised:
        _policy(naming)
    assert str(raised.value).startswith(f"policy.yaml: {expected}"), str(raised.value)


def test_the_refusal_says_how_to_fix_it() -> None:
    with pytest.raises(InputError) as raised:
        _policy({"jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"})
    message = str(raised.value)
    assert "such as '_'" in message and "remove '-' from naming.idCharacters" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "naming",
    [
        {},
        {"jobPattern": "crawl-{job_id}.", "chunkPattern": "crawl-{job_id}.part-{chunk_id}."},
        {"idCharacters": "0-9", "jobPattern": "job-{job_id}-", "chunkPattern": "job-{job_id}-chunk-{chunk_id}-"},
        {"idCharacters": "a-f0-9-", "jobPattern": "{job_id}_", "chunkPattern": "{job_id}_{chunk_id}_"},
        {"idCharacters": "0-9", "jobPattern": "j{job_id}x", "chunkPattern": "j{job_id}xc{chunk_id}."},
    ],
    ids=[
        "defaults",
        "dot-separators",
        "dash-separators-with-digit-ids",
        "uuid-ids-leading-id",
        "letters-as-separators",
    ],
)
def test_an_unambiguous_naming_is_accepted(naming: dict[str, Any]) -> None:
    _policy(naming)


def test_changing_only_the_id_characters_revalidates_the_default_patterns() -> None:
    with pytest.raises(InputError, match=r"spec.naming.jobPattern: '_' right after \{job_id\}"):
        _policy({"idCharacters": "a-z_"})


@pytest.mark.parametrize(
    ("spec", "members", "non_members"),
    [
        ("A-Za-z0-9-", "aZ09-", "_./"),
        ("-0-9", "-05", "a_"),
        ("0-9-", "-05", "a_"),
        ("a-f0-9", "af09", "g-A"),
        ("0-9._", "0._", "-a"),
    ],
    ids=["default", "leading-dash", "trailing-dash", "hex", "dot-and-underscore"],
)
def test_id_characters_are_single_characters_and_ranges(spec: str, members: str, non_members: str) -> None:
    parsed = IdCharacters.parse(spec)
    assert set(members) <= parsed.chars
    assert not set(non_members) & parsed.chars


# --- properties --------------------------------------------------------------------------------------

ID_PARTS = ["a-z", "A-Z", "0-9", "-", "_", ".", "~"]
LITERAL_ALPHABET = "ab9-_.~+"


@st.composite
def namings(draw: st.DrawFn) -> tuple[str, str, str]:
    """A random id alphabet and random job and chunk templates (many of them ambiguous or inconsistent)."""
    parts = draw(st.lists(st.sampled_from(ID_PARTS), min_size=1, max_size=4, unique=True))
    ids = "".join(sorted(parts, key=lambda part: part == "-"))  # a '-' last stands for itself
    text = st.text(alphabet=LITERAL_ALPHABET, max_size=3)
    job = draw(text) + "{job_id}" + draw(text)
    if draw(st.integers(0, 5)) > 0:
        chunk = job + draw(text) + "{chunk_id}" + draw(text)
    else:  # sometimes a chunk pattern that does not start with the job pattern
        chunk = draw(text) + "{chunk_id}" + draw(text) + "{job_id}" + draw(text)
    return ids, job, chunk


def readings(template: str, chars: frozenset[str], name: str) -> list[dict[str, str]]:
    """Every way ``name`` can start with ``template`` (an exhaustive search, independent of the regexes)."""
    pieces = re.split(r"\{(job_id|chunk_id)\}", template)
    found: list[dict[str, str]] = []

    def walk(index: int, position: int, values: dict[str, str]) -> None:
        if index == len(pieces):
            found.append(dict(values))
            return
        if index % 2 == 0:
            if name.startswith(pieces[index], position):
                walk(index + 1, position + len(pieces[index]), values)
            return
        end = position
        while end < len(name) and name[end] in chars:
            end += 1
            walk(index + 1, end, {**values, pieces[index]: name[position:end]})

    walk(0, 0, {})
    return found


def _build(ids: str, job: str, chunk: str) -> Naming | None:
    try:
        return Naming.build(job, chunk, ids)
    except ValueError:
        return None


@settings(max_examples=600, deadline=None)
@given(naming=namings(), data=st.data())
def test_no_accepted_pattern_ever_misreads_a_name_made_from_it(naming: tuple[str, str, str], data: Any) -> None:
    built = _build(*naming)
    if built is None:
        return
    alphabet = "".join(sorted(built.ids.chars))
    valid_id = st.text(alphabet=alphabet, min_size=1, max_size=6)
    job_id, chunk_id = data.draw(valid_id), data.draw(valid_id)
    tail = data.draw(st.text(alphabet=LITERAL_ALPHABET + alphabet, max_size=6))

    job_name = built.job.prefix_for(job_id=job_id) + tail
    assert readings(built.job.template, built.ids.chars, job_name) == [{"job_id": job_id}], "exactly one reading"
    assert built.job.ids(job_name) == {"job_id": job_id}
    assert built.job_of_segment(job_name) == (job_id, False)

    chunk_name = built.chunk.prefix_for(job_id=job_id, chunk_id=chunk_id) + tail
    assert readings(built.chunk.template, built.ids.chars, chunk_name) == [{"job_id": job_id, "chunk_id": chunk_id}]
    assert built.chunk.ids(chunk_name) == {"job_id": job_id, "chunk_id": chunk_id}
    assert built.job_of_segment(chunk_name) == (job_id, False), "a chunk's file is its job's file"

    if built.job.leading:
        assert built.job_of_segment(built.job.leading + job_id) == (job_id, False), "the directory form"


@settings(max_examples=300, deadline=None)
@given(naming=namings(), data=st.data())
def test_a_name_made_from_the_pattern_with_a_bad_id_is_never_taken_for_a_file_without_a_job(
    naming: tuple[str, str, str], data: Any
) -> None:
    built = _build(*naming)
    if built is None:
        return
    outside = [char for char in LITERAL_ALPHABET + "!#%&" if char not in built.ids.chars]
    good = st.text(alphabet="".join(sorted(built.ids.chars)), max_size=3)
    bad_id = data.draw(good) + data.draw(st.sampled_from(outside)) + data.draw(good)
    tail = data.draw(st.text(alphabet=LITERAL_ALPHABET, max_size=4))

    job, near_miss = built.job_of_segment(built.job.prefix_for(job_id=bad_id) + tail)

    assert job != bad_id
    assert job is not None or near_miss, "parsed as some job, or kept as a near miss; never an orphan"
    if job is not None:
        assert built.ids.first_outside(job) is None


@pytest.mark.parametrize(
    ("template", "ids", "name"),
    [
        ("job-{job_id}-", "A-Za-z0-9-", "job-12-chunk-3-data"),
        ("job_{job_id}", "A-Za-z0-9-", "job_41abc"),
        ("job_{job_id}_", "A-Za-z0-9_", "job_41_a_x"),
        ("job_{job_id}{chunk_id}_", "0-9", "job_123_x"),
    ],
    ids=["issue-example", "ends-with-placeholder", "underscore-in-ids", "adjacent-placeholders"],
)
def test_what_validation_refuses_really_has_names_with_several_readings(template: str, ids: str, name: str) -> None:
    assert len(readings(template, IdCharacters.parse(ids).chars, name)) > 1
    with pytest.raises(ValueError):
        Naming.build(template if "chunk_id" not in template else "job_{job_id}_", template, ids)
