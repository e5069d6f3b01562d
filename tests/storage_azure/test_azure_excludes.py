"""``exclude`` on Azurite: blob names after the prefix follow the same .gitignore rules as volume paths."""

from __future__ import annotations

import pytest
from blob_helpers import Blobs, run_spec

from exclude_cases import CASES, FILES
from tempsweep.engine import run_cleanup
from tempsweep.models import RunPhase

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]


@pytest.mark.parametrize(("patterns", "kept"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_exclude_follows_gitignore_on_blob_names(blobs: Blobs, patterns: list[str], kept: set[str]) -> None:
    blobs.upload(f"tmp/{path}" for path in FILES)
    blobs.upload(["keep/outside-the-prefix.tmp"])  # never considered, excluded or not

    policy = blobs.policy(jobs=False, exclude=patterns)
    status = run_cleanup(blobs.context(policy, hours_later=48.0), run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert blobs.names() == {f"tmp/{path}" for path in kept} | {"keep/outside-the-prefix.tmp"}
    assert status.files_deleted == len(FILES) - len(kept)
