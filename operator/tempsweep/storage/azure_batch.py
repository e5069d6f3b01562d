"""Deleting blobs: Blob Batch first, one request per blob when a batch is refused; one result per blob.

Every delete carries the ETag the scan saw (``If-Match``), so a blob rewritten after it was
planned is refused by the service itself (412) and reported as ``CHANGED``; the same 412 for a
blob that has since gone (Azurite answers that way) is told apart with one HEAD request.

A batch holds at most ``batch_limit`` (256, the service's limit) sub-requests. The service reports
per-blob outcomes inside the batch reply; throttled sub-requests (429/503) are re-sent after a
backoff. When the batch request as a whole is refused (an error status, or a reply that does not
carry one part per sub-request, which is how Azurite reports an over-long batch), the same blobs
are deleted one request at a time with identical conditions; after ``REFUSALS_BEFORE_SINGLES``
refusals in a row the deleter stops trying batches altogether. Wrong credentials or a missing
container fail every blob of the batch with one clear message instead of 256 identical requests.

A batch answers only when its last sub-request is done, so it gets a long read timeout
(``BATCH_READ_TIMEOUT_S``). When an answer is lost anyway (timeout, connection reset) the request
is sent again; a blob that is then found gone was most likely deleted by the lost request, and is
reported deleted rather than vanished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceNotFoundError

from tempsweep.engine.ports import DeleteResult, FileEntry, Outcome
from tempsweep.storage.azure_errors import (
    FATAL_CODES,
    TRANSIENT_STATUSES,
    Retrier,
    answer_lost,
    error_code,
    is_connection_error,
    is_fatal,
    is_transient,
    overloaded,
    retry_after_of,
    retry_after_seconds,
    status_of,
)

log = logging.getLogger(__name__)

MAX_BATCH = 256  # Blob Batch: at most 256 sub-requests per batch request
REFUSALS_BEFORE_SINGLES = 3
#: A batch answers when its last sub-request is done: allow far longer than for one request.
BATCH_READ_TIMEOUT_S = 180.0
LEASE_CODES = frozenset(
    {"LeaseIdMissing", "LeaseIdMismatchWithBlobOperation", "LeaseLost", "LeaseNotPresentWithBlobOperation"}
)


@dataclass(frozen=True, slots=True)
class Target:
    """One blob to delete: the scanned entry, its full name and the ETag it must still have."""

    entry: FileEntry
    name: str
    etag: str


def outcome_of(status: int, code: str) -> tuple[Outcome, str] | None:
    """What a delete answer means for the blob; None when it is worth another try (throttling)."""
    if 200 <= status < 300:
        return Outcome.DELETED, ""
    if status in TRANSIENT_STATUSES:
        return None
    if status == 404 and code not in FATAL_CODES:
        return Outcome.VANISHED, ""
    if status == 412 and code in LEASE_CODES:
        return Outcome.FAILED, "not deleted: the blob is leased by another client (in use)"
    if status == 412:
        return Outcome.CHANGED, "changed since it was planned (ETag differs)"
    if code in ("ContainerNotFound", "ContainerBeingDeleted"):
        return Outcome.FAILED, f"not deleted: the container is gone ({code})"
    if status == 403:
        return Outcome.FAILED, f"not deleted: access denied (HTTP 403 {code})"
    return Outcome.FAILED, f"not deleted: HTTP {status}{' ' + code if code else ''}"


class BatchDeleter:
    """Deletes targets of one container through Blob Batch, falling back to single deletes."""

    def __init__(
        self,
        client: Any,  # azure.storage.blob.ContainerClient
        retrier: Retrier,
        explain: Callable[[BaseException], str],
        *,
        prefix: str,
        batch_limit: int = MAX_BATCH,
        batch_read_timeout: float = BATCH_READ_TIMEOUT_S,
    ) -> None:
        if batch_limit < 1:
            raise ValueError("batch_limit must be at least 1")
        self._client = client
        self._retrier = retrier
        self._explain = explain
        self.prefix = prefix
        self.batch_limit = batch_limit
        self.batch_read_timeout = batch_read_timeout
        self.batching = True
        self._lock = threading.Lock()
        self._refusals_in_a_row = 0
        # counters for tests and the benchmark
        self.batch_requests = 0
        self.single_requests = 0
        self.refused_batches = 0

    def _count(self, name: str, by: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + by)

    def delete(self, targets: Sequence[Target]) -> list[DeleteResult]:
        # the last line of defence for prefix isolation: nothing outside the prefix is ever sent
        outside = [t for t in targets if not t.name.startswith(self.prefix)]
        results = _fail_all(outside, "not deleted: outside the prefix")
        targets = [t for t in targets if t.name.startswith(self.prefix)] if outside else targets
        for start in range(0, len(targets), self.batch_limit):
            chunk = list(targets[start : start + self.batch_limit])
            results.extend(self._delete_batch(chunk) if self.batching else self._delete_singly(chunk))
        return results

    # -- batches --------------------------------------------------------------------------------

    def _send(self, targets: list[Target]) -> list[Any]:
        self._count("batch_requests")
        specs = [
            {
                "name": target.name,
                "etag": target.etag,
                "match_condition": MatchConditions.IfNotModified,
                "delete_snapshots": "include",
            }
            for target in targets
        ]
        return list(self._client.delete_blobs(*specs, raise_on_any_failure=False, read_timeout=self.batch_read_timeout))

    def _delete_batch(self, pending: list[Target]) -> list[DeleteResult]:
        done: list[DeleteResult] = []
        attempts = list(self._retrier.attempts())
        lost = False  # a request went out and its answer was lost: it may have deleted blobs
        for attempt in attempts:
            last = attempt == attempts[-1]
            try:
                parts = self._send(pending)
            except Exception as exc:
                lost = lost or answer_lost(exc)
                if is_fatal(exc) or (is_transient(exc) and last):
                    self._retrier.gave_up(exc)
                    return done + _fail_all(pending, _unknown_if(lost) + self._explain(exc))
                if is_transient(exc):
                    self._retrier.wait(attempt, retry_after_of(exc), overloaded=overloaded(exc))
                    continue
                self._refused(f"{type(exc).__name__} {status_of(exc) or ''} {error_code(exc)}".strip(), len(pending))
                return done + self._delete_singly(pending)
            if len(parts) != len(pending):
                whole = parts[0] if len(parts) == 1 else None
                status = whole.status_code if whole is not None else 0
                code = (whole.headers.get("x-ms-error-code") or "") if whole is not None else ""
                if whole is not None and (status == 403 or code in FATAL_CODES):
                    return done + _fail_all(pending, outcome_of(status, code)[1])  # type: ignore[index]
                if whole is not None and status in TRANSIENT_STATUSES:
                    if last:
                        return done + _fail_all(pending, f"not deleted: still throttled after {len(attempts)} attempts")
                    self._retrier.wait(attempt, retry_after_seconds(whole.headers))
                    continue
                self._refused(
                    f"{len(parts)} answers to {len(pending)} deletes, HTTP {status} {code}".strip(),
                    len(pending),
                )
                return done + self._delete_singly(pending)
            self._retrier.succeeded()
            self._refusals_in_a_row = 0
            throttled: list[Target] = []
            retry_after: float | None = None
            for target, part in zip(pending, parts, strict=True):
                code = part.headers.get("x-ms-error-code") or ""
                meaning = outcome_of(part.status_code, code)
                if meaning is None:
                    throttled.append(target)
                    retry_after = retry_after or retry_after_seconds(part.headers)
                    continue
                done.append(self._result(target, *meaning, lost=lost))
            pending = throttled
            if not pending:
                return done
            if not last:
                self._retrier.wait(attempt, retry_after)
        return done + _fail_all(pending, f"not deleted: still throttled after {len(attempts)} attempts")

    def _refused(self, why: str, count: int) -> None:
        self._count("refused_batches")
        with self._lock:
            self._refusals_in_a_row += 1
            give_up = self._refusals_in_a_row >= REFUSALS_BEFORE_SINGLES and self.batching
            if give_up:
                self.batching = False
        log.warning("Blob Batch request refused (%s); deleting these %d blobs one request at a time", why, count)
        if give_up:
            log.warning("Blob Batch refused %d times in a row: single deletes from now on", REFUSALS_BEFORE_SINGLES)

    # -- one request per blob -----------------------------------------------------------------------

    def _delete_singly(self, targets: list[Target]) -> list[DeleteResult]:
        results: list[DeleteResult] = []
        for index, target in enumerate(targets):
            result, fatal = self._delete_one(target)
            results.append(result)
            if fatal:  # the same answer awaits every other blob: do not ask 255 more times
                results.extend(_fail_all(targets[index + 1 :], result.detail))
                break
        return results

    def _delete_one(self, target: Target) -> tuple[DeleteResult, bool]:
        attempts = list(self._retrier.attempts())
        lost = False
        for attempt in attempts:
            self._count("single_requests")
            try:
                self._client.delete_blob(
                    target.name,
                    etag=target.etag,
                    match_condition=MatchConditions.IfNotModified,
                    delete_snapshots="include",
                )
            except Exception as exc:
                lost = lost or answer_lost(exc)
                status = status_of(exc)
                if is_connection_error(exc) or status is None:
                    if is_connection_error(exc) and attempt != attempts[-1]:
                        self._retrier.wait(attempt, overloaded=overloaded(exc))
                        continue
                    self._retrier.gave_up(exc)
                    detail = _unknown_if(lost) or "not deleted: "
                    return DeleteResult(target.entry, Outcome.FAILED, detail + self._explain(exc)), True
                meaning = outcome_of(status, error_code(exc))
                if meaning is None:
                    if attempt != attempts[-1]:
                        self._retrier.wait(attempt, retry_after_of(exc))
                        continue
                    # the service is overloaded: the rest of this batch waits for the next call
                    return DeleteResult(
                        target.entry,
                        Outcome.FAILED,
                        f"not deleted: still throttled after {len(attempts)} attempts",
                    ), True
                return self._result(target, *meaning, lost=lost), is_fatal(exc)
            self._retrier.succeeded()
            return DeleteResult(target.entry, Outcome.DELETED), False
        raise AssertionError("unreachable")  # pragma: no cover

    # -- results ------------------------------------------------------------------------------------

    def _result(self, target: Target, outcome: Outcome, detail: str, *, lost: bool = False) -> DeleteResult:
        """The result of one answer; ``lost``: an earlier attempt's answer was lost on the way back."""
        if outcome is Outcome.CHANGED and self._is_gone(target):
            outcome = Outcome.VANISHED
        if outcome is Outcome.VANISHED and lost:
            # our own earlier request, whose answer never arrived, is what most likely deleted it
            return DeleteResult(target.entry, Outcome.DELETED, "gone after a request whose answer was lost")
        return DeleteResult(target.entry, outcome, "" if outcome is Outcome.VANISHED else detail)

    def _is_gone(self, target: Target) -> bool:
        """After a 412: has the blob gone (Azurite answers If-Match on a missing blob with 412)?"""
        try:
            self._client.get_blob_client(target.name).get_blob_properties()
        except ResourceNotFoundError:
            return True
        except Exception:  # cannot tell: it was not deleted either way
            return False
        return False


def _fail_all(targets: Sequence[Target], detail: str) -> list[DeleteResult]:
    return [DeleteResult(target.entry, Outcome.FAILED, detail) for target in targets]


def _unknown_if(lost: bool) -> str:
    return "deleted or not, unknown (the answer was lost): " if lost else ""
