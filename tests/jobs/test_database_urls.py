"""Database URLs: one engine per URL, psycopg 3 for plain postgresql://, and passwords that never show."""

from __future__ import annotations

import pytest

from jobs.helpers import READER_PASSWORD, assert_no_password
from tempsweep.engine import JobSourceError
from tempsweep.jobs.database import describe_error, parse_url, safe_url, scrub, shared_engine

URL = "postgresql+psycopg://reader:Recognisable-S3cret%2Fp%40ss%25word@db.example:5432/crawler"


def test_the_url_in_messages_has_its_password_masked() -> None:
    assert safe_url(URL) == "postgresql+psycopg://reader:***@db.example:5432/crawler"


@pytest.mark.parametrize(
    "spelling",
    [READER_PASSWORD, "Recognisable-S3cret%2Fp%40ss%25word", "Recognisable-S3cret/p%40ss%25word"],
    ids=["plain", "percent-encoded", "partly-encoded"],
)
def test_any_spelling_of_the_password_is_scrubbed(spelling: str) -> None:
    assert scrub(f"server said: bad {spelling}!", URL) == "server said: bad ***!"


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert parse_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("postgresql+psycopg://u:p@h/db").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:////data/jobs.db").drivername == "sqlite"


def test_one_engine_per_url() -> None:
    assert shared_engine(URL) is shared_engine(URL)
    assert shared_engine(URL) is shared_engine(URL.replace("postgresql+psycopg", "postgresql"))
    assert shared_engine(URL) is not shared_engine(URL.replace("crawler", "other"))
    assert shared_engine(URL).pool._pre_ping  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("not a url", "jobs.database.url: not a database URL", id="garbage"),
        pytest.param(
            "mysql+nodriver://u:Recognisable-S3cret%2Fp%40ss%25word@h/db",
            "jobs.database.url: mysql+nodriver://u:***@h/db cannot be used",
            id="unknown-driver",
        ),
        pytest.param(
            f"mysql+nodriver://u:{READER_PASSWORD}@h/db",
            "jobs.database.url: mysql+nodriver://u:***@h/db cannot be used",
            id="password-not-percent-encoded",
        ),
    ],
)
def test_an_unusable_url_is_one_clear_line(url: str, expected: str) -> None:
    with pytest.raises(JobSourceError) as caught:
        shared_engine(url)
    assert str(caught.value).startswith(expected)
    assert_no_password(str(caught.value))


def test_a_message_quoting_the_password_is_scrubbed() -> None:
    error = RuntimeError(f"could not connect with password {READER_PASSWORD}: connection refused")

    message = describe_error(error, URL)

    assert message.startswith("job database postgresql+psycopg://reader:***@db.example:5432/crawler is unreachable:")
    assert_no_password(message)
