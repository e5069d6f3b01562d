"""Every cleanup scenario on a real Azurite container, through the engine, as on a volume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from blob_helpers import Blobs, jobs, newest_upload, run_spec

from tempsweep.engine import FileEntry, Progress, compute_stats, run_cleanup
from tempsweep.jobs import MemoryJobSource
from tempsweep.models import EffectivePolicy, RunPhase
from tempsweep.storage.azure_blob import AzureBlobStorage

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(60)]

ACTIVE = [
    "tmp/run1/job_active-1_chunk_1_a.json",
    "tmp/run1/job_active-1_chunk_1_b.json",
    "tmp/run1/job_active-1_chunk_2_a.json",
]
FINISHED = ["tmp/job_done-2_out.bin"]
FAILED = ["tmp/job_failed-3_x.bin", "tmp/deep/er/job_failed-3_y.bin"]
FAILED_RECENTLY = ["tmp/job_fresh-4_z.bin"]
UNKNOWN = ["tmp/job_ghost-5_q.bin"]
NO_JOB = ["tmp/loose.txt"]
EXCLUDED = ["tmp/job_ghost-5_keep.lock"]
# names a careless filter would match, outside the prefix
OUTSIDE = ["job_ghost-5_root.bin", "other/job_ghost-5_q.bin", "tmpx/job_ghost-5_q.bin", "tmp.bak/loose.txt"]
EVERYTHING = ACTIVE + FINISHED + FAILED + FAILED_RECENTLY + UNKNOWN + NO_JOB + EXCLUDED + OUTSIDE
ORPHANS = FINISHED + FAILED + UNKNOWN + NO_JOB
HOURS_LATER = 48.0  # every blob is two days old at the planning instant


@pytest.fixture
def crawl(blobs: Blobs) -> Blobs:
    blobs.upload(EVERYTHING)
    return blobs


def job_table(blobs: Blobs, hours_later: float = HOURS_LATER) -> MemoryJobSource:
    now = newest_upload(blobs.container) + timedelta(hours=hours_later)
    return jobs(
        ("active-1", "running", 0.5),
        ("done-2", "completed", 30.0),
        ("failed-3", "failed", 3.0),
        ("fresh-4", "failed", 10 / 60),
        now=now,
    )


def policy(blobs: Blobs, **spec: Any) -> EffectivePolicy:
    return blobs.policy(exclude=["*.lock"], **spec)


def test_orphaned_deletes_only_orphans_under_the_prefix(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert crawl.names() == set(EVERYTHING) - set(ORPHANS)
    assert status.files_deleted == len(ORPHANS)
    assert status.bytes_freed == 100 * len(ORPHANS)
    assert status.deleted_by_reason == {
        "OrphanFinishedJob": 1,
        "OrphanFailedJob": 2,
        "OrphanUnknownJob": 1,
        "OrphanNoJobId": 1,
    }
    assert status.files_scanned == len(EVERYTHING) - len(OUTSIDE) - len(EXCLUDED)
    assert status.job_queries <= 2


def test_young_blobs_are_not_orphans(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=1.0, job_source=job_table(crawl, 1.0))
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED
    assert status.files_deleted == 0
    assert crawl.names() == set(EVERYTHING)


@pytest.mark.parametrize(
    ("completed", "gone"),
    [
        pytest.param(["a.json"], ACTIVE[:1], id="listed-files"),
        pytest.param(None, ACTIVE[:2], id="whole-chunk"),
    ],
)
def test_chunk_completion_deletes_the_chunks_files(crawl: Blobs, completed: list[str] | None, gone: list[str]) -> None:
    ctx = crawl.context(policy(crawl), job_source=job_table(crawl))
    fields: dict[str, Any] = {"jobId": "active-1", "chunkId": "1"}
    if completed is not None:
        fields["completedFiles"] = completed
    status = run_cleanup(ctx, run_spec("ChunkCompletion", **fields))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert crawl.names() == set(EVERYTHING) - set(gone)
    assert status.deleted_by_reason == {"ChunkCompleted": len(gone)}


def test_crash_recovery_deletes_a_failed_job_in_virtual_folders(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("CrashRecovery", jobId="failed-3"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert crawl.names() == set(EVERYTHING) - set(FAILED)
    assert status.deleted_by_reason == {"FailedJob": 2}


def test_crash_recovery_keeps_a_job_that_failed_recently(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("CrashRecovery", jobId="fresh-4"))

    assert status.files_deleted == 0
    assert "failed less than" in status.message
    assert crawl.names() == set(EVERYTHING)


def test_crash_recovery_of_all_failed_jobs(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("CrashRecovery"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert crawl.names() == set(EVERYTHING) - set(FAILED)


def test_emergency_with_capacity_frees_space_in_order_and_spares_active_jobs(crawl: Blobs) -> None:
    # 10 blobs of 100 bytes under the prefix (the excluded one counts: it takes space) in 1000 bytes
    pol = policy(crawl, capacity="1000")
    ctx = crawl.context(pol, hours_later=HOURS_LATER, job_source=job_table(crawl))
    stats = compute_stats(ctx)
    assert stats.usage_percent == 100.0
    assert stats.health.value == "Critical"
    assert stats.cleanup_needed

    status = run_cleanup(ctx, run_spec("Emergency"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    remaining_under_prefix = [name for name in crawl.names() if name.startswith("tmp/")]
    # below 95 - 10 = 85 %: at most 8 of the 10 blobs may remain; orphans go first, so exactly 2 go
    assert len(remaining_under_prefix) == 8
    assert status.storage_after_percent == 80.0
    assert set(ACTIVE) | set(FAILED_RECENTLY) | set(EXCLUDED) | set(OUTSIDE) <= crawl.names()
    assert set(status.deleted_by_reason) == {"EmergencyOrphan"}


def test_emergency_that_cannot_be_relieved_says_so(blobs: Blobs) -> None:
    blobs.upload(ACTIVE)
    ctx = blobs.context(policy(blobs, capacity="300"), hours_later=HOURS_LATER, job_source=job_table(blobs))
    status = run_cleanup(ctx, run_spec("Emergency"))

    assert status.phase is RunPhase.FAILED
    assert "could not bring usage below" in status.message
    assert blobs.names() == set(ACTIVE)


def test_emergency_success_is_a_new_listing_not_the_deleted_sizes_subtracted(crawl: Blobs) -> None:
    """A job uploading while the emergency deletes: the new listing sees its blob, the run does not claim
    a relief it did not get, and the message gives the measured figures."""
    ctx = crawl.context(policy(crawl, capacity="1000"), hours_later=HOURS_LATER, job_source=job_table(crawl))

    def writer(progress: Progress) -> None:
        crawl.upload(["tmp/written-meanwhile.bin"])

    ctx.progress = writer
    status = run_cleanup(ctx, run_spec("Emergency"))

    assert status.files_deleted == 2 and status.bytes_freed == 200
    assert status.storage_after_percent == 90.0  # 10 - 2 + 1 blobs of 100 bytes, not 80 %
    assert status.phase is RunPhase.FAILED
    assert "100B freed (measured)" in status.message and "more must go" in status.message


def test_scheduled_runs_the_emergency_check_orphans_and_crash_recovery_in_one_record(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl), hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("Scheduled"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.trigger.value == "Scheduled"
    assert crawl.names() == set(EVERYTHING) - set(ORPHANS)
    assert status.files_deleted == len(ORPHANS)


@pytest.mark.parametrize("where", ["run", "policy"])
def test_dry_run_deletes_nothing_and_reports_what_would_go(crawl: Blobs, where: str) -> None:
    pol = policy(crawl, dryRun=True) if where == "policy" else policy(crawl)
    ctx = crawl.context(pol, hours_later=HOURS_LATER, job_source=job_table(crawl))
    status = run_cleanup(ctx, run_spec("Orphaned", **({"dryRun": True} if where == "run" else {})))

    assert status.dry_run
    assert crawl.names() == set(EVERYTHING)
    assert status.files_deleted == 0
    assert status.would_delete_count == len(ORPHANS)
    assert sorted(status.would_delete) == sorted(name.removeprefix("tmp/") for name in ORPHANS)


@pytest.mark.parametrize("include", [False, True], ids=["archive-skipped", "archive-included"])
def test_archive_tier_blobs_are_skipped_unless_included_and_counted(crawl: Blobs, include: bool) -> None:
    archived = UNKNOWN + NO_JOB
    for name in archived:
        crawl.container.client.get_blob_client(name).set_standard_blob_tier("Archive")
    pol = policy(
        crawl,
        storage={
            "azureBlob": {
                "container": crawl.name,
                "prefix": "tmp/",
                "capacity": "1Gi",
                "connectionString": crawl.azurite.connection_string,
                "includeArchiveTier": include,
            }
        },
    )
    ctx = crawl.context(pol, hours_later=HOURS_LATER, job_source=job_table(crawl))

    stats = compute_stats(ctx)
    assert stats.archived_blobs_count == 2
    assert stats.archived_blobs_size_bytes == 200

    status = run_cleanup(ctx, run_spec("Orphaned"))
    assert status.phase is RunPhase.SUCCEEDED, status.message
    expected_gone = set(ORPHANS) if include else set(ORPHANS) - set(archived)
    assert crawl.names() == set(EVERYTHING) - expected_gone


class RewritingStorage:
    """The real storage, but one blob is rewritten by 'someone else' right after the scan lists it."""

    def __init__(self, inner: AzureBlobStorage, blobs: Blobs, victim: str) -> None:
        self.inner = inner
        self.description = inner.description
        self.blobs = blobs
        self.victim = victim

    def scan(self) -> Iterator[FileEntry]:
        for entry in self.inner.scan():
            if self.inner.prefix + entry.path == self.victim:
                self.blobs.container.client.upload_blob(self.victim, b"rewritten", overwrite=True)
            yield entry

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_blob_rewritten_after_planning_is_not_deleted(crawl: Blobs) -> None:
    pol = policy(crawl)
    victim = UNKNOWN[0]
    storage = RewritingStorage(crawl.storage(pol), crawl, victim)
    ctx = crawl.context(pol, hours_later=HOURS_LATER, job_source=job_table(crawl), storage=storage)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.files_skipped == 1
    assert status.files_deleted == len(ORPHANS) - 1
    assert victim in crawl.names()
    assert crawl.container.client.download_blob(victim).readall() == b"rewritten"


def test_stats_count_blobs_orphans_and_usage_against_the_capacity(crawl: Blobs) -> None:
    ctx = crawl.context(policy(crawl, capacity="2000"), hours_later=HOURS_LATER, job_source=job_table(crawl))
    stats = compute_stats(ctx)

    assert stats.temp_files_count == 9  # under the prefix, the excluded lock file not counted
    assert stats.temp_files_size_bytes == 900
    assert stats.usage_percent == 50.0  # 10 blobs of 100 bytes (the lock file takes space too)
    assert stats.orphaned_files_count == len(ORPHANS)
    assert stats.active_jobs_count == 1
    assert stats.failed_jobs_count == 2
    assert stats.archived_blobs_count == 0
