"""The directory rule on a real Azurite container: virtual folders name jobs exactly like directories."""

from __future__ import annotations

from datetime import timedelta

import pytest
from blob_helpers import Blobs, jobs, newest_upload, run_spec

from tempsweep.engine import run_cleanup
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import RunPhase

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]

RUNNING = ["tmp/job_active-1/frames/0001.png", "tmp/renders/job_active-1_out/a.exr"]
FINISHED = ["tmp/job_done-2/frames/0001.png"]
FAILED = ["tmp/job_failed-3/out/y.bin"]
BOTH = ["tmp/job_active-1/job_failed-3_z.bin"]  # a failed job's file in a running job's folder
NEAR_MISS = ["tmp/job_bad.1/frames/0001.png"]
EVERYTHING = RUNNING + FINISHED + FAILED + BOTH + NEAR_MISS
HOURS_LATER = 48.0


def _table(blobs: Blobs) -> MemoryJobSource:
    now = newest_upload(blobs.container) + timedelta(hours=HOURS_LATER)
    return jobs(("active-1", "running", 0.5), ("done-2", "completed", 30.0), ("failed-3", "failed", 3.0), now=now)


def test_orphaned_keeps_a_running_jobs_folder_and_near_misses(blobs: Blobs) -> None:
    blobs.upload(EVERYTHING)
    ctx = blobs.context(blobs.policy(), hours_later=HOURS_LATER, job_source=_table(blobs))

    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert blobs.names() == set(RUNNING + BOTH + NEAR_MISS)
    assert status.deleted_by_reason == {"OrphanFinishedJob": 1, "OrphanFailedJob": 1}
    assert (status.near_miss_files, status.near_miss_examples) == (1, ["job_bad.1/frames/0001.png"])


def test_crash_recovery_deletes_a_failed_jobs_folder_but_not_its_file_in_a_running_jobs_folder(blobs: Blobs) -> None:
    blobs.upload(EVERYTHING)
    ctx = blobs.context(blobs.policy(), hours_later=HOURS_LATER, job_source=_table(blobs))

    status = run_cleanup(ctx, run_spec("CrashRecovery", jobId="failed-3"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert blobs.names() == set(EVERYTHING) - set(FAILED)
    assert status.deleted_by_reason == {"FailedJob": 1}
