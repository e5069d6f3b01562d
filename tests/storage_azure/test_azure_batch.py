"""Deletion through Blob Batch on Azurite: per-blob outcomes, refused batches, throttling.

How a batch request is made to fail for real: Azurite, like the service, accepts at most 256
sub-requests per batch. A storage built with ``batch_limit=300`` sends 300; Azurite refuses the
whole batch (``400 ExceedsMaxBatchRequestCount``, delivered as a single part of the batch reply),
and the storage must delete the same blobs one request each, with the same ETag conditions.
"""

from __future__ import annotations

from typing import Any

import pytest
from blob_helpers import Blobs, run_spec
from throttle_proxy import throttling_proxy

from tempsweep.engine import Outcome, StorageError, run_cleanup
from tempsweep.models import EffectivePolicy, RunPhase

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(90)]

HOURS_LATER = 48.0
OVER_THE_LIMIT = 300  # more sub-requests than a batch may hold: Azurite refuses the batch


def orphans(count: int) -> list[str]:
    return [f"tmp/part{index % 5}/job_{index}_out.bin" for index in range(count)]


def age_only(blobs: Blobs, **spec: Any) -> EffectivePolicy:
    return blobs.policy(jobs=False, limits={"batchSize": 1000, "parallelism": 1}, **spec)


def test_deletes_go_in_batches_of_at_most_256(blobs: Blobs) -> None:
    blobs.upload(orphans(520), data=b"x")
    ctx = blobs.context(age_only(blobs), hours_later=HOURS_LATER)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 520
    assert blobs.names() == set()
    deleter = ctx.storage.deleter  # type: ignore[attr-defined]
    assert (deleter.batch_requests, deleter.single_requests, deleter.refused_batches) == (3, 0, 0)


@pytest.mark.parametrize(
    "batch_limit",
    [
        pytest.param(256, id="batch"),
        pytest.param(OVER_THE_LIMIT, id="refused-batch-falls-back-to-single-deletes"),
    ],
)
def test_each_blob_gets_its_own_outcome(blobs: Blobs, batch_limit: int) -> None:
    names = orphans(280)
    blobs.upload(names, data=b"x")
    storage = blobs.storage(blobs.policy(), batch_limit=batch_limit)
    entries = list(storage.scan())
    changed, vanished, leased = names[10], names[20], names[30]
    client = blobs.container.client
    client.upload_blob(changed, b"new content", overwrite=True)
    client.delete_blob(vanished)
    client.get_blob_client(leased).acquire_lease(lease_duration=-1)

    results = {storage.prefix + result.entry.path: result for result in storage.delete(entries)}

    assert len(results) == len(entries)
    assert results[changed].outcome is Outcome.CHANGED
    assert results[vanished].outcome is Outcome.VANISHED
    assert results[leased].outcome is Outcome.FAILED
    assert "leased" in results[leased].detail
    others = set(names) - {changed, vanished, leased}
    assert {results[name].outcome for name in others} == {Outcome.DELETED}
    assert blobs.names() == {changed, leased}
    if batch_limit == OVER_THE_LIMIT:
        assert storage.deleter.refused_batches == 1
        assert storage.deleter.single_requests >= OVER_THE_LIMIT - 20
    else:
        assert storage.deleter.refused_batches == 0


def test_a_refused_batch_falls_back_to_single_deletes_through_the_engine(blobs: Blobs) -> None:
    blobs.upload(orphans(400), data=b"x")
    ctx = blobs.context(age_only(blobs), hours_later=HOURS_LATER, batch_limit=OVER_THE_LIMIT)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 400
    assert blobs.names() == set()
    deleter = ctx.storage.deleter  # type: ignore[attr-defined]
    # 300 refused and deleted one by one, then a batch of 100 that the service takes
    assert (deleter.batch_requests, deleter.refused_batches, deleter.single_requests) == (2, 1, 300)
    assert deleter.batching


def proxied(blobs: Blobs, port: int) -> str:
    return blobs.azurite.connection_string_via(port)


@pytest.mark.parametrize("retry_after", ["0", None], ids=["retry-after-header", "own-backoff"])
def test_throttled_listing_and_batches_are_retried(blobs: Blobs, retry_after: str | None) -> None:
    blobs.upload(orphans(300), data=b"x")
    with throttling_proxy(blobs.azurite.port, {"GET": 2, "POST": 2}, retry_after) as proxy:
        ctx = blobs.context(age_only(blobs), hours_later=HOURS_LATER, connection_string=proxied(blobs, proxy.port))
        status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 300
    assert proxy.throttled == 4
    assert ctx.storage.retrier.retries == 4  # type: ignore[attr-defined]
    assert blobs.names() == set()


def test_throttling_that_never_ends_is_a_clear_error(blobs: Blobs) -> None:
    blobs.upload(orphans(3), data=b"x")
    with throttling_proxy(blobs.azurite.port, {"GET": 1000}) as proxy:
        storage = blobs.storage(blobs.policy(), connection_string=proxied(blobs, proxy.port))
        with pytest.raises(StorageError, match=r"kept throttling requests \(HTTP 503 ServerBusy\)"):
            list(storage.scan())
    assert proxy.throttled == storage.retrier.backoff.attempts


def test_a_lost_batch_answer_is_retried_and_the_blobs_count_as_deleted(blobs: Blobs) -> None:
    blobs.upload(orphans(100), data=b"x")
    # Azurite deletes the first batch's blobs, but its answer never reaches the client
    with throttling_proxy(blobs.azurite.port, {}, hold={"POST": 1}, hold_seconds=5.0) as proxy:
        ctx = blobs.context(
            age_only(blobs),
            hours_later=HOURS_LATER,
            connection_string=proxied(blobs, proxy.port),
            batch_read_timeout=1.0,
        )
        status = run_cleanup(ctx, run_spec("Orphaned"))

    assert proxy.held == 1
    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 100 and status.error_count == 0
    assert blobs.names() == set()
