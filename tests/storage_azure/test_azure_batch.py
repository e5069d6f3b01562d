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
from tempsweep.storage.azure_batch import REFUSALS_BEFORE_SINGLES

pytestmark = [pytest.mark.azurite, pytest.mark.timeout(90)]

HOURS_LATER = 48.0
OVER_THE_LIMIT = 300  # more sub-requests than a batch may hold: Azurite refuses the batch


def orphans(count: int) -> list[str]:
    return [f"tmp/part{index % 5}/job_{index}_out.bin" for index in range(count)]


def age_only(blobs: Blobs, **spec: Any) -> EffectivePolicy:
    return blobs.policy(jobs=False, limits={"batchSize": 1000, "parallelism": 1}, **spec)


def test_deletes_go_in_batches_of_at_most_256(blobs: Blobs) -> None:
    blobs.upload(orphans(600), data=b"x")
    ctx = blobs.context(age_only(blobs), hours_later=HOURS_LATER)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 600
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


def test_refused_batches_fall_back_to_single_deletes_through_the_engine(blobs: Blobs) -> None:
    blobs.upload(orphans(1000), data=b"x")
    ctx = blobs.context(age_only(blobs), hours_later=HOURS_LATER, batch_limit=OVER_THE_LIMIT)
    status = run_cleanup(ctx, run_spec("Orphaned"))

    assert status.phase is RunPhase.SUCCEEDED, status.message
    assert status.files_deleted == 1000
    assert blobs.names() == set()
    deleter = ctx.storage.deleter  # type: ignore[attr-defined]
    # 300, 300, 300 refused; after that many refusals in a row the last 100 go one by one at once
    assert deleter.refused_batches == REFUSALS_BEFORE_SINGLES == 3
    assert deleter.batch_requests == 3
    assert deleter.single_requests == 1000
    assert not deleter.batching


def proxied(blobs: Blobs, port: int) -> str:
    return str(blobs.azurite.connection_string).replace(f":{blobs.azurite.port}/", f":{port}/")


@pytest.mark.parametrize("retry_after", ["0", None], ids=["retry-after-header", "own-backoff"])
def test_throttled_listing_and_batches_are_retried(blobs: Blobs, retry_after: str | None) -> None:
    blobs.upload(orphans(300), data=b"x")
    with throttling_proxy(blobs.azurite.port, {"GET": 2, "POST": 2}, retry_after) as proxy:
        ctx = blobs.context(
            age_only(blobs), hours_later=HOURS_LATER, connection_string=proxied(blobs, proxy.port)
        )
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
