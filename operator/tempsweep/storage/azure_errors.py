"""Azure errors for tempsweep: which are worth retrying, and what to tell a human about the others.

Two jobs, kept apart from the listing and deletion code:

* ``Retrier`` runs one service call with a bounded exponential backoff. Throttling (429, 503) and
  other transient answers (500, 502, 504, dropped or refused connections) are retried; a
  ``Retry-After`` header is honoured up to a cap; a read timeout (the service is overloaded) waits
  longer. Once the endpoint has refused connections to the last attempt, later calls get a single
  attempt until one succeeds, so a run against a dead endpoint ends in seconds instead of backing
  off once per batch.
* ``explain`` turns any exception into one line that names the container and endpoint and the
  cause (wrong key, missing container, unreachable endpoint, ...). It is built from status codes
  and error codes, never from the SDK's text, which can quote request URLs (and so SAS tokens);
  ``redact`` is applied on top as a second guard against leaking a key or connection string.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Answers worth another try: throttling and transient server trouble.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Answers that mean the credentials or the container are wrong: no point trying blob by blob.
FATAL_CODES = frozenset(
    {
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "InvalidAuthenticationInfo",
        "InsufficientAccountPermissions",
        "AccountIsDisabled",
        "ContainerNotFound",
        "ContainerBeingDeleted",
        "ContainerDisabled",
    }
)


@dataclass(frozen=True)
class Backoff:
    """How often and how long to retry: ``attempts`` tries in all, delays doubling from ``first_delay``.

    A request the service took but did not answer within the read timeout means it is overloaded:
    those retries wait longer, doubling from ``first_overload_delay``, so the work already queued
    there can drain. Either way a blob is given up after ``attempts``.
    """

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0
    first_overload_delay: float = 5.0
    max_overload_delay: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None, *, overloaded: bool = False) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based)."""
        if retry_after is not None:
            return float(min(max(retry_after, 0.0), self.max_retry_after))
        if overloaded:
            return float(min(self.first_overload_delay * 2.0**attempt, self.max_overload_delay))
        return float(min(self.first_delay * 2.0**attempt, self.max_delay))


def error_code(exc: BaseException) -> str:
    """The service's ``x-ms-error-code`` of an HTTP error, as a plain string ('' when there is none)."""
    code = getattr(exc, "error_code", None)
    if code is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None) or {}
        code = headers.get("x-ms-error-code")
    return str(getattr(code, "value", code or ""))


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return int(status) if isinstance(status, int) else None


def is_connection_error(exc: BaseException) -> bool:
    return isinstance(exc, ServiceRequestError | ServiceResponseError)


def answer_lost(exc: BaseException) -> bool:
    """The request reached the service but its answer did not come back (it may have been carried out)."""
    return isinstance(exc, ServiceResponseError)


def overloaded(exc: BaseException) -> bool:
    """The service took the request and did not answer within the read timeout: it is overloaded.

    (A connection reset is not taken as overload: a busy server that closes an idle keep-alive
    connection just as a request arrives resets it without having read the request.)
    """
    return isinstance(exc, ServiceResponseTimeoutError)


def is_transient(exc: BaseException) -> bool:
    if is_connection_error(exc):
        return True
    return isinstance(exc, HttpResponseError) and status_of(exc) in TRANSIENT_STATUSES


def is_fatal(exc: BaseException) -> bool:
    """Credentials refused or the container gone: the storage as a whole is unusable."""
    if isinstance(exc, ClientAuthenticationError) and status_of(exc) is None:
        return True  # no token could be obtained at all (DefaultAzureCredential)
    return status_of(exc) == 403 or error_code(exc) in FATAL_CODES


def retry_after_seconds(headers: object) -> float | None:
    """The ``Retry-After`` (or ``x-ms-retry-after-ms``) of a response, in seconds, if it gives one."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    try:
        millis = get("x-ms-retry-after-ms") or get("retry-after-ms")
        if millis:
            return float(millis) / 1000.0
        seconds = get("Retry-After")
        return float(seconds) if seconds else None
    except (TypeError, ValueError):
        return None  # an HTTP date: fall back to our own backoff


def retry_after_of(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    return retry_after_seconds(getattr(response, "headers", None))


class Retrier:
    """Bounded retries of transient failures, shared by listing and deletion of one storage."""

    def __init__(self, backoff: Backoff, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.backoff = backoff
        self.sleep = sleep
        self._lock = threading.Lock()
        self._unreachable = False
        self.retries = 0  # how many retries were made (tests and the benchmark read it)

    @property
    def unreachable(self) -> bool:
        return self._unreachable

    def attempts(self) -> Iterator[int]:
        """Attempt numbers to try: all of them normally, a single one while the endpoint is down."""
        return iter(range(1 if self._unreachable else self.backoff.attempts))

    def wait(self, attempt: int, retry_after: float | None = None, *, overloaded: bool = False) -> None:
        with self._lock:
            self.retries += 1
        self.sleep(self.backoff.delay(attempt, retry_after, overloaded=overloaded))

    def succeeded(self) -> None:
        self._unreachable = False

    def gave_up(self, exc: BaseException) -> None:
        """After the last attempt: a refused connection makes later calls try once until one works."""
        if isinstance(exc, ServiceRequestError):
            self._unreachable = True

    def call(self, operation: Callable[[], T]) -> T:
        """``operation()``, retried while it fails transiently (bounded); the last error is raised."""
        attempts = list(self.attempts())
        for attempt in attempts:
            try:
                result = operation()
            except Exception as exc:
                if not is_transient(exc) or attempt == attempts[-1]:
                    self.gave_up(exc)
                    raise
                log.info("transient storage error (%s), retrying", short_cause(exc))
                self.wait(attempt, retry_after_of(exc), overloaded=overloaded(exc))
                continue
            self.succeeded()
            return result
        raise AssertionError("unreachable")  # pragma: no cover - attempts is never empty


_ERRNO = re.compile(r"\[Errno -?\d+\][^'\"\n>)]*")


def short_cause(exc: BaseException) -> str:
    """A short, secret-free cause: status and error code, or the OS error of a failed connection."""
    status = status_of(exc)
    if status is not None:
        code = error_code(exc)
        return f"HTTP {status}{' ' + code if code else ''}"
    if is_connection_error(exc):
        found = _ERRNO.search(str(exc))
        if found:
            return found.group(0).strip().rstrip(".,:")
        lowered = str(exc).lower()
        for hint in (
            "timed out",
            "connection refused",
            "connection reset",
            "connection aborted",
            "name or service not known",
            "remotedisconnected",
        ):
            if hint in lowered:
                return hint
        return type(exc).__name__
    return type(exc).__name__


def explain(exc: BaseException, *, where: str, endpoint: str) -> str:
    """One line for a human: what went wrong with ``where`` (container/prefix) at ``endpoint``."""
    status = status_of(exc)
    code = error_code(exc)
    if isinstance(exc, ServiceResponseError):
        return f"{where}: storage endpoint {endpoint} took the request but gave no answer ({short_cause(exc)})"
    if is_connection_error(exc):
        return f"{where}: storage endpoint {endpoint} is unreachable ({short_cause(exc)})"
    if isinstance(exc, ClientAuthenticationError) and status is None:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"{where}: the credentials cannot be used: {first_line[:300]}"
    if code in ("ContainerNotFound", "ContainerBeingDeleted"):
        return f"{where}: the container does not exist at {endpoint} ({code})"
    if code in ("AuthenticationFailed", "InvalidAuthenticationInfo") or (status == 403 and not code):
        return (
            f"{where}: {endpoint} refused the credentials (HTTP {status} {code or 'Forbidden'}): "
            "check the account key or connection string"
        )
    if status == 403:
        return (
            f"{where}: {endpoint} denied access (HTTP 403 {code}): check the account key or connection "
            "string, or (with accountUrl) the identity's role on the container"
        )
    if status in (429, 503):
        return f"{where}: {endpoint} kept throttling requests (HTTP {status} {code}); gave up after retries"
    if status is not None:
        return f"{where}: {endpoint} answered HTTP {status}{' ' + code if code else ''}"
    return f"{where}: unexpected {type(exc).__name__} talking to {endpoint}"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every given secret, and anything that looks like a SAS signature, blanked out."""
    for secret in secrets:
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return re.sub(r"(?i)(sig|accountkey|sharedaccesssignature)=[^&;\s'\"]+", r"\1=***", text)
