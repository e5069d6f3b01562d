"""Safety on blobs: nothing outside the prefix, nothing changed or in use, clear messages on failures."""

from __future__ import annotations

import pytest
from blob_helpers import Blobs, jobs, newest_upload, run_spec

from support.azurite_server import ACCOUNT_KEY
from support.probing import free_port
from tempsweep.engine import FileEntry, Outcome, Progress, StorageError, compute_stats, run_cleanup
from tempsweep.models import RunPhase

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(90)]

HOURS_LATER = 48.0


def assert_no_secret(text: str, connection_string: str) -> None:
    assert ACCOUNT_KEY not in text
    assert ACCOUNT_KEY[:20] not in text
    assert connection_string not in text
    assert "AccountKey" not in text


@pytest.mark.parametrize("prefix", ["tmp", "tmp/"], ids=["prefix-without-slash", "prefix-with-slash"])
def test_blobs_outside_the_prefix_are_never_touched_even_when_names_match(blobs: Blobs, prefix: str) -> None:
    inside = ["tmp/job_1_a.bin", "tmp/x/job_1_b.bin", "tmp/loose.txt"]
    outside = [
        "tmp",  # a blob named exactly like the folder
        "tmpx/job_1_a.bin",
        "tmp.bak/loose.txt",
        "job_1_a.bin",
        "other/tmp/job_1_a.bin",
        "TMP/job_1_a.bin",
    ]
    blobs.upload(inside + outside)
    pol = blobs.policy(prefix=prefix, jobs=False)  # age-only: every old blob in scope goes
    status = run_cleanup(blobs.context(pol, hours_later=HOURS_LATER), run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == len(inside)
    assert blobs.names() == set(outside)


def test_delete_refuses_paths_that_would_leave_the_prefix(blobs: Blobs) -> None:
    blobs.upload(["tmp/a.bin", "secret/keep.bin"])
    storage = blobs.storage(blobs.policy())
    etag = blobs.container.client.get_blob_client("secret/keep.bin").get_blob_properties().etag
    forged = [
        FileEntry("../secret/keep.bin", 1, 0.0, etag),
        FileEntry("./../secret/keep.bin", 1, 0.0, etag),
        FileEntry("a//../../secret/keep.bin", 1, 0.0, etag),
        FileEntry("a\\..\\..\\secret\\keep.bin", 1, 0.0, etag),
        FileEntry("", 1, 0.0, etag),
    ]
    results = storage.delete(forged)

    assert [result.outcome for result in results] == [Outcome.FAILED] * len(forged)
    assert storage.deleter.batch_requests == 0 and storage.deleter.single_requests == 0
    assert blobs.names() == {"tmp/a.bin", "secret/keep.bin"}


def test_names_a_url_could_resolve_elsewhere_are_skipped_and_reported(blobs: Blobs) -> None:
    blobs.upload(["tmp/a//b.bin", "tmp/ok.bin", "tmp/dir/"])
    storage = blobs.storage(blobs.policy())

    paths = [entry.path for entry in storage.scan()]
    assert paths == ["ok.bin"]  # 'dir/' is a folder marker, 'a//b.bin' is unsafe
    errors = storage.scan_errors()
    assert len(errors) == 1 and errors[0].startswith("tmp/a//b.bin: skipped")

    status = run_cleanup(blobs.context(blobs.policy(jobs=False), hours_later=HOURS_LATER), run_spec("Orphaned"))
    assert status.files_deleted == 1
    assert any("tmp/a//b.bin" in error for error in status.errors)
    assert blobs.names() == {"tmp/a//b.bin", "tmp/dir/"}


def test_a_leased_blob_is_left_alone_and_reported(blobs: Blobs) -> None:
    blobs.upload([f"tmp/job_9_{index}.bin" for index in range(10)])
    blobs.container.client.get_blob_client("tmp/job_9_3.bin").acquire_lease(lease_duration=-1)
    status = run_cleanup(blobs.context(blobs.policy(jobs=False), hours_later=HOURS_LATER), run_spec("Orphaned"))

    assert status.phase is RunPhase.FAILED  # an error was met
    assert status.files_deleted == 9
    assert status.errors == ["job_9_3.bin: not deleted: the blob is leased by another client (in use)"]
    assert blobs.names() == {"tmp/job_9_3.bin"}


def wrong_key(connection_string: str) -> str:
    return connection_string.replace(ACCOUNT_KEY, "A" * 86 + "==")


def test_a_wrong_key_is_a_clear_error_and_deletes_nothing(blobs: Blobs) -> None:
    blobs.upload(["tmp/job_1_a.bin", "tmp/loose.txt"])
    pol = blobs.policy(jobs=False)
    bad = wrong_key(blobs.azurite.connection_string)
    ctx = blobs.context(pol, hours_later=HOURS_LATER, connection_string=bad)

    with pytest.raises(StorageError) as raised:
        compute_stats(ctx)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    for message in (str(raised.value), status.message):
        assert "HTTP 403" in message
        assert "check the account key or connection string" in message
        assert f"container {blobs.name!r}" in message
        assert_no_secret(message, bad)
    assert status.phase is RunPhase.FAILED
    assert status.files_deleted == 0
    assert blobs.names() == {"tmp/job_1_a.bin", "tmp/loose.txt"}


def test_a_missing_container_is_a_clear_error(blobs: Blobs) -> None:
    pol = blobs.policy(
        jobs=False,
        storage={
            "azureBlob": {
                "container": "no-such-container",
                "capacity": "1Gi",
                "connectionString": blobs.azurite.connection_string,
            }
        },
    )
    ctx = blobs.context(pol)

    with pytest.raises(StorageError, match="'no-such-container'.*the container does not exist"):
        compute_stats(ctx)
    status = run_cleanup(ctx, run_spec("Orphaned"))
    assert status.phase is RunPhase.FAILED
    assert "the container does not exist" in status.message
    assert_no_secret(status.message, blobs.azurite.connection_string)


def test_an_unreachable_endpoint_is_a_clear_error(blobs: Blobs) -> None:
    blobs.upload(["tmp/loose.txt"])
    dead = blobs.azurite.connection_string_via(free_port())
    ctx = blobs.context(blobs.policy(jobs=False), hours_later=HOURS_LATER, connection_string=dead)

    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.FAILED
    assert "is unreachable" in status.message and "Connection refused" in status.message
    assert_no_secret(status.message, dead)
    assert blobs.names() == {"tmp/loose.txt"}


@pytest.mark.parametrize(
    ("orphan_count", "listing_done_when_stopped"),
    [
        # the engine resolves jobs 1000 names at a time: with fewer blobs the listing is over first
        pytest.param(400, True, id="stopped-during-deletions"),
        pytest.param(1400, False, id="stopped-during-listing"),
    ],
)
def test_azurite_stopped_mid_run_fails_clearly_and_deletes_only_what_was_planned(
    blobs: Blobs, orphan_count: int, listing_done_when_stopped: bool
) -> None:
    orphans = [f"tmp/d{index % 7}/job_gone-{index}_f.bin" for index in range(orphan_count)]
    active = [f"tmp/d{index % 7}/job_live-1_f{index}.bin" for index in range(60)]
    blobs.upload(orphans + active, data=b"x")
    pol = blobs.policy(limits={"batchSize": 40, "parallelism": 2})
    source = jobs(("live-1", "running", 0.1), now=newest_upload(blobs.container))
    stopped: list[bool] = []

    def stop_azurite_after_first_deletions(progress: Progress) -> None:
        if progress.files_deleted and not stopped:
            blobs.azurite.stop()
            stopped.append(True)

    ctx = blobs.context(pol, hours_later=HOURS_LATER, job_source=source, page_size=200)
    ctx.progress = stop_azurite_after_first_deletions
    status = run_cleanup(ctx, run_spec("Orphaned"))
    blobs.azurite.start()

    assert stopped, "the run finished before Azurite could be stopped"
    assert status.phase is RunPhase.FAILED
    if listing_done_when_stopped:
        assert status.error_count > 0
        assert all("is unreachable ([Errno 111] Connection refused)" in error for error in status.errors)
    else:
        assert "listing failed" in status.message and "is unreachable" in status.message
    assert_no_secret(status.message + "".join(status.errors), blobs.azurite.connection_string)
    remaining = blobs.names()
    assert set(active) <= remaining  # nothing of the running job
    gone = set(orphans) - remaining
    assert 0 < status.files_deleted <= len(gone) < len(orphans)
