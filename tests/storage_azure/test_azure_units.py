"""The pure parts of the Azure backend, without Azurite: answers to outcomes, backoff, redaction.

Throttling *inside* a batch reply (a 503 on some sub-requests, 202 on the rest) cannot be produced
by Azurite or by a proxy without rewriting multipart bodies, so it is exercised here with a
stand-in container client that answers like the service does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from tempsweep.engine import FileEntry, Outcome, StorageError
from tempsweep.models.policy import AzureBlobStorage as AzureBlobSpec
from tempsweep.storage.azure_batch import REFUSALS_BEFORE_SINGLES, BatchDeleter, Target, outcome_of
from tempsweep.storage.azure_blob import AzureBlobStorage, _secrets_of, folder_prefix, unsafe_name
from tempsweep.storage.azure_errors import Backoff, Retrier, redact


@pytest.mark.parametrize(
    ("status", "code", "outcome"),
    [
        pytest.param(202, "", Outcome.DELETED, id="accepted"),
        pytest.param(404, "BlobNotFound", Outcome.VANISHED, id="gone"),
        pytest.param(412, "ConditionNotMet", Outcome.CHANGED, id="etag-differs"),
        pytest.param(412, "LeaseIdMissing", Outcome.FAILED, id="leased"),
        pytest.param(404, "ContainerNotFound", Outcome.FAILED, id="container-gone"),
        pytest.param(403, "AuthorizationPermissionMismatch", Outcome.FAILED, id="forbidden"),
        pytest.param(409, "BlobImmutableDueToPolicy", Outcome.FAILED, id="immutable"),
        pytest.param(429, "", None, id="throttled-429"),
        pytest.param(503, "ServerBusy", None, id="throttled-503"),
    ],
)
def test_answers_become_outcomes(status: int, code: str, outcome: Outcome | None) -> None:
    meaning = outcome_of(status, code)
    assert (meaning[0] if meaning else None) is outcome


def test_backoff_is_bounded() -> None:
    backoff = Backoff(attempts=5, first_delay=0.5, max_delay=4.0, max_retry_after=10.0, max_overload_delay=30.0)
    assert [backoff.delay(attempt) for attempt in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert [backoff.delay(attempt, overloaded=True) for attempt in range(5)] == [5.0, 10.0, 20.0, 30.0, 30.0]
    assert backoff.delay(0, retry_after=3.0) == 3.0
    assert backoff.delay(0, retry_after=3600.0) == 10.0


@pytest.mark.parametrize(("prefix", "folder"), [("", ""), ("tmp", "tmp/"), ("tmp/", "tmp/"), ("a/b", "a/b/")])
def test_a_prefix_is_a_virtual_folder(prefix: str, folder: str) -> None:
    assert folder_prefix(prefix) == folder


@pytest.mark.parametrize("path", ["../x", "a/../../x", "a/./b", "a//b", "a\\..\\b", "a/\x00b", "/x", "dir./x", "x."])
def test_names_a_url_could_resolve_elsewhere_are_unsafe(path: str) -> None:
    assert unsafe_name(path) is not None


@pytest.mark.parametrize(
    "path", ["x", "a/b/c.bin", "job_1_chunk_2_x.json", "sp ace/ünï.txt", "a..b", ".hidden", "a.b/c"]
)
def test_ordinary_names_are_safe(path: str) -> None:
    assert unsafe_name(path) is None


def test_redaction_removes_keys_connection_strings_and_sas_signatures() -> None:
    key = "c2VjcmV0LWtleS1vZi10aGUtYWNjb3VudA=="
    conn = f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={key};EndpointSuffix=core.windows.net"
    text = f"failed with {conn} and {key} at https://acct.blob.core.windows.net/c?sv=2024&sig=abcDEF%2B123&se=x"
    cleaned = redact(text, _secrets_of(conn))
    assert key not in cleaned and conn not in cleaned and "abcDEF" not in cleaned


@dataclass
class Part:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


class BusyService:
    """Answers batches like the service under load: for some rounds, every ``every``-th blob is throttled."""

    container_name = "c"

    def __init__(self, throttled_rounds: int, every: int = 2) -> None:
        self.throttled_rounds = throttled_rounds
        self.every = every
        self.batches: list[list[str]] = []

    def delete_blobs(self, *specs: dict[str, Any], raise_on_any_failure: bool, **options: Any) -> list[Part]:
        assert not raise_on_any_failure
        names = [spec["name"] for spec in specs]
        assert all(spec["etag"] and spec["match_condition"] for spec in specs)
        self.batches.append(names)
        if len(self.batches) <= self.throttled_rounds:
            busy = Part(503, {"x-ms-error-code": "ServerBusy", "Retry-After": "1"})
            return [busy if i % self.every == self.every - 1 else Part(202) for i in range(len(names))]
        return [Part(202) for _ in names]


def targets(count: int) -> list[Target]:
    return [Target(FileEntry(f"f{i}", 1, 0.0, f"etag{i}"), f"tmp/f{i}", f"etag{i}") for i in range(count)]


def test_throttled_sub_requests_are_sent_again_and_only_they() -> None:
    service = BusyService(throttled_rounds=1)
    sleeps: list[float] = []
    deleter = BatchDeleter(service, Retrier(Backoff(), sleep=sleeps.append), str, prefix="tmp/")

    results = deleter.delete(targets(10))

    assert [len(batch) for batch in service.batches] == [10, 5]
    assert {result.outcome for result in results} == {Outcome.DELETED}
    assert len(results) == 10 and sleeps == [1.0]  # the service's Retry-After


def test_throttling_without_end_fails_the_blobs_after_bounded_attempts() -> None:
    service = BusyService(throttled_rounds=100, every=1)
    sleeps: list[float] = []
    deleter = BatchDeleter(service, Retrier(Backoff(attempts=3), sleep=sleeps.append), str, prefix="tmp/")

    results = deleter.delete(targets(4))

    assert len(service.batches) == 3 and len(sleeps) == 2
    assert [result.outcome for result in results] == [Outcome.FAILED] * 4
    assert all("still throttled after 3 attempts" in result.detail for result in results)


def test_nothing_outside_the_prefix_is_ever_sent() -> None:
    service = BusyService(throttled_rounds=0)
    deleter = BatchDeleter(service, Retrier(Backoff()), str, prefix="tmp/")
    stray = Target(FileEntry("x", 1, 0.0, "e"), "other/x", "e")

    results = deleter.delete([stray, *targets(2)])

    assert service.batches == [["tmp/f0", "tmp/f1"]]
    assert results[0].outcome is Outcome.FAILED and "outside the prefix" in results[0].detail


def blob_spec(**fields: Any) -> AzureBlobSpec:
    return AzureBlobSpec.model_validate({"container": "temp", "prefix": "crawl", "capacity": "1Gi", **fields})


CONN = (
    "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0;"
    "EndpointSuffix=core.windows.net"
)


def test_a_secret_reference_needs_the_operator_to_read_it() -> None:
    spec = blob_spec(connectionStringSecretRef={"name": "storage", "key": "conn"})
    with pytest.raises(StorageError, match=r"connectionStringSecretRef \(storage/conn\) is read by the operator"):
        AzureBlobStorage.from_spec(spec, connection_string=None)

    storage = AzureBlobStorage.from_spec(spec, connection_string=CONN)  # what the operator does
    assert storage.description == "azure blob https://acct.blob.core.windows.net/temp/crawl/"


def test_account_url_uses_default_azure_credential_without_calling_out() -> None:
    spec = blob_spec(accountUrl="https://acct.blob.core.windows.net")
    storage = AzureBlobStorage.from_spec(spec, connection_string=None)
    assert type(storage._credential).__name__ == "DefaultAzureCredential"
    assert storage.endpoint == "https://acct.blob.core.windows.net"
    storage.close()


def test_a_malformed_connection_string_is_not_echoed() -> None:
    secretish = "AccountName=acct;AccountKey=c2VjcmV0c2VjcmV0c2VjcmV0"  # no endpoint: malformed
    with pytest.raises(StorageError) as raised:
        AzureBlobStorage.from_spec(blob_spec(connectionString="x"), connection_string=secretish + ";;;===")
    assert "c2VjcmV0" not in str(raised.value)
    assert "the connection string is not valid" in str(raised.value)


@pytest.mark.parametrize("prefix", ["a/../b", "./tmp", "tmp//x"])
def test_a_prefix_a_url_could_resolve_elsewhere_is_refused(prefix: str) -> None:
    with pytest.raises(StorageError, match="spec.storage.azureBlob.prefix"):
        AzureBlobStorage.from_spec(blob_spec(prefix=prefix, connectionString=CONN), connection_string=CONN)


class RefusingService:
    """Refuses every batch request as a whole (as a service without Blob Batch would), deletes singly."""

    container_name = "c"

    def __init__(self) -> None:
        self.batches = 0
        self.singles: list[str] = []

    def delete_blobs(self, *specs: dict[str, Any], **options: Any) -> list[Part]:
        self.batches += 1
        raise HttpResponseError(message="batch not supported", response=None)

    def delete_blob(self, name: str, **conditions: Any) -> None:
        assert conditions["etag"] and conditions["match_condition"]
        self.singles.append(name)


def test_after_repeated_refusals_batches_are_no_longer_tried() -> None:
    service = RefusingService()
    deleter = BatchDeleter(service, Retrier(Backoff()), str, prefix="tmp/", batch_limit=2)

    results = deleter.delete(targets(10))

    assert {result.outcome for result in results} == {Outcome.DELETED}
    assert service.batches == REFUSALS_BEFORE_SINGLES == 3
    assert len(service.singles) == 10
    assert not deleter.batching
