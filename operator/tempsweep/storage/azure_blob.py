"""An Azure Blob Storage container (or a virtual folder in it) as tempsweep storage.

Blob names play the role of file paths: the part after the policy's ``prefix`` is the path, '/'
separates virtual folders, ``last_modified`` is the age and the ETag is the version token.

* The prefix is a virtual folder: ``tmp`` means ``tmp/``, so ``tmpfiles/...`` or ``tmp.lock``
  are never considered. Only blobs listed under it are ever planned, and every delete checks again
  that the name it sends starts with the prefix.
* Listing is paged (``page_size`` names per request, 5000 at most) and streamed: one page in
  memory at a time. A page that fails transiently is fetched again from its continuation token.
* Names a URL could resolve to something else (``.``/``..``/empty segments, segments ending in a
  dot, backslashes, control characters) are skipped and reported as scan errors: such a delete
  could land on another blob. (The ETag condition on every delete would refuse that too.)
  Folder markers (names ending in '/', directories of hierarchical-namespace accounts) are skipped.
* Blobs in the Archive tier are flagged ``archived``; the engine skips them unless the policy sets
  ``includeArchiveTier`` and counts them separately.
* Deletion is conditional on the scanned ETag and goes through Blob Batch (``azure_batch``).
* There is no filesystem: usage comes from the policy's ``capacity``.

Credentials: a connection string (offline, or from the secret the operator reads), or an account
URL with ``DefaultAzureCredential`` (workload identity), imported only when used. Messages name
the container and endpoint, never a key or connection string (``azure_errors``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tempsweep.engine.ports import DeleteResult, FileEntry, Outcome, StorageError, Usage
from tempsweep.storage.azure_batch import BATCH_READ_TIMEOUT_S, MAX_BATCH, BatchDeleter, Target
from tempsweep.storage.azure_errors import Backoff, Retrier, explain, redact

log = logging.getLogger(__name__)

PAGE_SIZE = 5000  # the service's maximum per List Blobs request
CONNECTION_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
MAX_SCAN_ERRORS = 1000


def folder_prefix(prefix: str) -> str:
    """The prefix as a virtual folder: '' stays '', 'tmp' and 'tmp/' both become 'tmp/'."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def unsafe_name(path: str) -> str | None:
    """Why a path after the prefix is not safe to send in a delete URL, or None when it is."""
    segments = path.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        return "its name has an empty, '.' or '..' segment, which a URL could resolve elsewhere"
    if any(segment.endswith(".") for segment in segments):
        return "a segment of its name ends with '.', which the service may trim"
    if "\\" in path:
        return "its name contains a backslash, which the service may read as '/'"
    if any(ord(char) < 0x20 or char == "\x7f" for char in path):
        return "its name contains control characters"
    return None


def _secrets_of(connection_string: str) -> list[str]:
    """The connection string and its key/SAS values, to be redacted from anything we print."""
    found = [connection_string]
    for part in connection_string.split(";"):
        key, _, value = part.partition("=")
        if key.strip().lower() in ("accountkey", "sharedaccesssignature") and value:
            found.append(value.strip())
    return found


def _tier_is_archive(tier: Any) -> bool:
    return str(getattr(tier, "value", tier) or "").lower() == "archive"


@dataclass(frozen=True)
class BlobTuning:
    """How the provider talks to the service: page and batch sizes, timeouts, retries (tests and
    benchmarks change these; a policy does not)."""

    page_size: int = PAGE_SIZE
    batch_limit: int = MAX_BATCH
    batch_read_timeout: float = BATCH_READ_TIMEOUT_S
    backoff: Backoff | None = None
    sleep: Callable[[float], None] = time.sleep


class AzureBlobStorage:
    """Blobs under one prefix of one container (implements ``StorageProvider``)."""

    def __init__(
        self,
        client: Any,  # azure.storage.blob.ContainerClient
        *,
        prefix: str = "",
        secrets: Sequence[str] = (),
        credential: Any = None,
        tuning: BlobTuning | None = None,
    ) -> None:
        tuning = tuning or BlobTuning()
        page_size = tuning.page_size
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        self.prefix = folder_prefix(prefix)
        if self.prefix and unsafe_name(self.prefix[:-1]):
            raise StorageError(f"spec.storage.azureBlob.prefix {prefix!r}: {unsafe_name(self.prefix[:-1])}")
        self._client = client
        self._credential = credential
        self.container = client.container_name
        self.endpoint = f"{client.scheme}://{client.primary_hostname}"
        self.page_size = page_size
        self._secrets = list(secrets)
        self._where = f"azure blob container {self.container!r}" + (f" (prefix {self.prefix!r})" if self.prefix else "")
        self.description = f"azure blob {self.endpoint}/{self.container}/{self.prefix}"
        self.retrier = Retrier(tuning.backoff or Backoff(), sleep=tuning.sleep)
        self.deleter = BatchDeleter(
            client,
            self.retrier,
            self._message,
            prefix=self.prefix,
            batch_limit=tuning.batch_limit,
            batch_read_timeout=tuning.batch_read_timeout,
        )
        self._errors: list[str] = []

    @classmethod
    def from_spec(cls, spec: Any, *, connection_string: str | None, **options: Any) -> AzureBlobStorage:
        """Storage for a policy's ``spec.storage.azureBlob``.

        ``connection_string`` is the resolved one (``Backend.azure_connection_string``: the Secret's value,
        the spec's own, or the offline setting); it is used as given, with no fallback of its own;
        ``options`` are the fields of ``BlobTuning`` (page_size, batch_limit, backoff, ...) and the
        client's connection_timeout / read_timeout.
        """
        where = f"spec.storage.azureBlob (container {spec.container!r})"
        client_options = {
            "retry_total": 0,  # retries are ours: bounded, and aware of throttling inside batches
            "connection_timeout": options.pop("connection_timeout", CONNECTION_TIMEOUT_S),
            "read_timeout": options.pop("read_timeout", READ_TIMEOUT_S),
        }
        conn = connection_string
        from azure.storage.blob import ContainerClient

        if conn:
            try:
                client = ContainerClient.from_connection_string(conn, spec.container, **client_options)
            except Exception as exc:
                raise StorageError(f"{where}: the connection string is not valid ({type(exc).__name__})") from None
            return cls(client, prefix=spec.prefix, secrets=_secrets_of(conn), tuning=BlobTuning(**options))
        if spec.account_url:
            try:
                from azure.identity import DefaultAzureCredential

                credential = DefaultAzureCredential()
                client = ContainerClient(spec.account_url, spec.container, credential=credential, **client_options)
            except Exception as exc:
                raise StorageError(
                    f"{where}: cannot use accountUrl {spec.account_url!r}: "
                    f"{type(exc).__name__}: {redact(str(exc), [])[:200]}"
                ) from None
            return cls(client, prefix=spec.prefix, credential=credential, tuning=BlobTuning(**options))
        ref = spec.connection_string_secret_ref
        if ref is not None:
            raise StorageError(
                f"{where}: connectionStringSecretRef ({ref.name}/{ref.key}) is read by the operator in the "
                "cluster; offline, set connectionString or TEMP_STORAGE_CLEANUP_AZURE_CONNECTION_STRING"
            )
        raise StorageError(f"{where}: no credentials: set connectionString, connectionStringSecretRef or accountUrl")

    def close(self) -> None:
        self._client.close()
        if self._credential is not None and hasattr(self._credential, "close"):
            self._credential.close()

    def __enter__(self) -> AzureBlobStorage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _message(self, exc: BaseException) -> str:
        return redact(explain(exc, where=self._where, endpoint=self.endpoint), self._secrets)

    # -- StorageProvider ----------------------------------------------------------------------------

    def scan(self) -> Iterator[FileEntry]:
        """Blobs under the prefix, in name order, one page in memory at a time."""
        self._errors = []
        token: str | None = None
        while True:
            try:
                blobs, token = self.retrier.call(functools.partial(self._page, token))
            except Exception as exc:
                raise StorageError(f"listing failed: {self._message(exc)}") from None
            for blob in blobs:
                entry = self._entry(blob)
                if entry is not None:
                    yield entry
            if not token:
                return

    def _page(self, token: str | None) -> tuple[list[Any], str | None]:
        pages = self._client.list_blobs(
            name_starts_with=self.prefix or None, include=["metadata"], results_per_page=self.page_size
        ).by_page(continuation_token=token)
        page = next(pages, None)
        if page is None:
            return [], None
        return list(page), pages.continuation_token

    def _entry(self, blob: Any) -> FileEntry | None:
        name: str = blob.name
        if not name.startswith(self.prefix):  # the service never does this; we check anyway
            self._note(f"{name}: skipped: outside the prefix")
            return None
        path = name[len(self.prefix) :]
        if not path or path.endswith("/") or (blob.metadata or {}).get("hdi_isfolder") == "true":
            return None  # a folder marker, not a file
        problem = unsafe_name(path)
        if problem is None and not blob.etag:
            problem = "the listing gave no ETag"
        if problem is not None:
            self._note(f"{name}: skipped: {problem}")
            return None
        return FileEntry(
            path=path,
            size=int(blob.size or 0),
            mtime=blob.last_modified.timestamp(),
            token=blob.etag,
            archived=_tier_is_archive(blob.blob_tier),
        )

    def _note(self, message: str) -> None:
        log.warning("%s: %s", self.description, message)
        if len(self._errors) < MAX_SCAN_ERRORS:
            self._errors.append(message)

    def scan_errors(self) -> list[str]:
        errors, self._errors = self._errors, []
        return errors

    def filesystem_usage(self) -> Usage | None:
        return None  # blobs have no filesystem: the policy's capacity is the total

    def delete(self, entries: Sequence[FileEntry]) -> list[DeleteResult]:
        """Delete each blob that still has the ETag it was scanned with; one result per entry."""
        refused: list[DeleteResult] = []
        targets: list[Target] = []
        for entry in entries:
            name = self.prefix + entry.path
            problem = unsafe_name(entry.path) if entry.path and not entry.path.endswith("/") else "not a blob"
            token = entry.token
            if problem is None and not (isinstance(token, str) and token):
                problem = "no ETag from the scan"
            if problem is not None or not isinstance(token, str):
                refused.append(DeleteResult(entry, Outcome.FAILED, f"not deleted: {problem}"))
            else:
                targets.append(Target(entry, name, token))
        return refused + self.deleter.delete(targets)
