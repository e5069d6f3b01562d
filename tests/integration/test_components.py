"""The real-component fixtures give real servers: PostgreSQL and Azurite, no mocks."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from azure.core.exceptions import HttpResponseError, ServiceRequestError
from azure.storage.blob import BlobServiceClient

from support.azurite_server import AzuriteServer, BlobContainer
from support.postgres_server import PostgresServer


def _scalar(url: str, query: str) -> object:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar_one()
    finally:
        engine.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_answers_select_version(postgres_db: str) -> None:
    version = _scalar(postgres_db, "select version()")
    assert isinstance(version, str)
    assert version.startswith("PostgreSQL ")


@pytest.mark.postgres
def test_postgres_db_is_fresh_and_writable(postgres_db: str, postgres_server: PostgresServer) -> None:
    engine = sa.create_engine(postgres_db, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as conn:
            assert conn.execute(sa.text("select current_database()")).scalar_one() == engine.url.database
            conn.execute(sa.text("create table t (id int primary key, v text)"))
            conn.execute(sa.text("insert into t values (1, 'x')"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("select v from t where id = 1")).scalar_one() == "x"
    finally:
        engine.dispose()
    assert engine.url.host == postgres_server.host
    assert engine.url.port == postgres_server.port


@pytest.mark.postgres
def test_postgres_refuses_a_wrong_password(postgres_server: PostgresServer) -> None:
    good = sa.engine.make_url(postgres_server.url("postgres"))
    bad = good.set(password="not-" + postgres_server.password)
    engine = sa.create_engine(bad, poolclass=sa.pool.NullPool)
    try:
        with (
            pytest.raises(sa.exc.OperationalError, match="password authentication failed"),
            engine.connect(),
        ):
            pass
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_postgres_stop_and_start_keep_data(postgres_server: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("create table kept (v int)"))
            conn.execute(sa.text("insert into kept values (42)"))

        postgres_server.stop()
        assert not postgres_server.is_running()
        with pytest.raises(sa.exc.OperationalError), engine.connect():
            pass

        postgres_server.start()
        assert postgres_server.is_running()
        with engine.connect() as conn:
            assert conn.execute(sa.text("select v from kept")).scalar_one() == 42
    finally:
        engine.dispose()
        postgres_server.start()
        postgres_server.drop_database(name)


# -- Azurite ---------------------------------------------------------------------------------------


@pytest.mark.azurite
def test_azurite_upload_list_delete(blob_container: BlobContainer) -> None:
    client = blob_container.client
    assert client.container_name == blob_container.name
    client.upload_blob("dir/a.txt", b"hello")
    assert [b.name for b in client.list_blobs()] == ["dir/a.txt"]
    assert client.download_blob("dir/a.txt").readall() == b"hello"
    client.delete_blob("dir/a.txt")
    assert list(client.list_blobs()) == []


@pytest.mark.azurite
def test_azurite_refuses_a_wrong_account_key(azurite: AzuriteServer, blob_container: BlobContainer) -> None:
    wrong_key = "A" * 86 + "=="  # valid base64 of 64 bytes, not the account's key
    assert wrong_key != azurite.account_key
    service = BlobServiceClient(
        account_url=azurite.blob_endpoint,
        credential={"account_name": azurite.account_name, "account_key": wrong_key},
        retry_total=0,
    )
    try:
        # Azure answers AuthenticationFailed (the SDK raises ClientAuthenticationError); Azurite answers 403
        # AuthorizationFailure, which the SDK raises as a plain HttpResponseError. Both mean: refused.
        with pytest.raises(HttpResponseError) as caught:
            list(service.get_container_client(blob_container.name).list_blobs())
        assert caught.value.status_code == 403
        assert getattr(caught.value, "error_code", None) in {"AuthenticationFailed", "AuthorizationFailure"}
    finally:
        service.close()


@pytest.mark.azurite
def test_azurite_stop_and_start_keep_data(azurite: AzuriteServer, blob_container: BlobContainer) -> None:
    blob_container.client.upload_blob("kept.bin", b"\x00\x01persist")
    port = azurite.port

    azurite.stop()
    assert not azurite.is_running()
    offline = BlobServiceClient.from_connection_string(azurite.connection_string, retry_total=0)
    with offline, pytest.raises(ServiceRequestError):
        offline.get_container_client(blob_container.name).get_container_properties()

    azurite.start()
    assert azurite.is_running()
    assert azurite.port == port
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        container = service.get_container_client(blob_container.name)
        assert container.download_blob("kept.bin").readall() == b"\x00\x01persist"
