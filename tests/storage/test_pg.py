"""PostgreSQL itself (the repositories' behaviour is the contract tests, run on both backends):
migrations versioned like SQLite's and giving the same tables and columns, upgrades keeping
data, replicas starting together, a newer schema refused, errors that name the server and
never the password, reconnecting after the server restarts, and the db setting choosing the
backend."""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from engine.errors import StorageError
from storage import (
    Database,
    PgDatabase,
    PostgresUrl,
    Repositories,
    database_target,
    latest_version,
    open_database,
)
from storage.incidents import _COLUMNS
from storage.incidents import _values as incident_values
from storage.migrate import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, load_migrations
from tests.plugins.postgres import PostgresServer
from tests.plugins.storage import T0, make_incident
from tikvops.settings import load_settings


def test_every_migration_exists_for_both_dialects() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations(SQLITE_MIGRATIONS)]
    postgres = [(m.version, m.name) for m in load_migrations(POSTGRES_MIGRATIONS)]
    assert postgres == sqlite, (
        "each storage/migrations/NNNN_name.sql needs its PostgreSQL twin in "
        "storage/migrations/postgresql/ (same name); see storage/migrations/README.md"
    )


async def _pg_columns(db: PgDatabase) -> dict[str, set[str]]:
    rows = await db.fetchall(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name <> 'tikvops_schema'"
    )
    found: dict[str, set[str]] = {}
    for table, column in rows:
        if column != "rowid":  # SQLite's implicit rowid, explicit on PostgreSQL
            found.setdefault(table, set()).add(column)
    return found


async def _sqlite_columns(db: Database) -> dict[str, set[str]]:
    tables = await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    found: dict[str, set[str]] = {}
    for (table,) in tables:
        columns = await db.fetchall(f"PRAGMA table_info({table})")
        found[table] = {row["name"] for row in columns}
    return found


@pytest.mark.parametrize("version", range(1, latest_version() + 1))
async def test_each_version_has_the_same_tables_and_columns_on_both(
    version: int, postgres_schema_url: str, db_path: Path
) -> None:
    pg = await PgDatabase.open(postgres_schema_url, migrate_to=version)
    lite = await Database.open(db_path, migrate_to=version)
    try:
        assert await pg.schema_version() == await lite.schema_version() == version
        assert await _pg_columns(pg) == await _sqlite_columns(lite)
    finally:
        await pg.close()
        await lite.close()


async def test_migration_from_an_older_version_keeps_data(postgres_schema_url: str) -> None:
    old = await PgDatabase.open(postgres_schema_url, migrate_to=1)
    try:
        incident = make_incident(id=await Repositories.on(old).incidents.next_id())
        async with old.transaction() as conn:  # as version 1 wrote it (no event)
            await conn.execute(
                f"INSERT INTO incidents (id, {_COLUMNS}, version) "
                f"VALUES (?, {', '.join('?' * 15)}, 1)",
                (incident.id, *incident_values(incident)),
            )
    finally:
        await old.close()
    new = await PgDatabase.open(postgres_schema_url)
    try:
        assert await new.schema_version() == latest_version()
        repos = Repositories.on(new)
        assert await repos.incidents.get(incident.id) == incident
        item = await repos.outbox.enqueue("slack.post", incident.id, {"text": "hi"}, now=T0)
        assert [i.id for i in await repos.outbox.due(T0)] == [item]
        assert await repos.incidents.next_id() == "I-2"
    finally:
        await new.close()


async def test_replicas_starting_together_migrate_once(postgres_schema_url: str) -> None:
    opened = await asyncio.gather(
        *(PgDatabase.open(postgres_schema_url) for _ in range(4)), return_exceptions=True
    )
    try:
        assert [type(db) for db in opened] == [PgDatabase] * 4, opened
        for db in opened:
            assert isinstance(db, PgDatabase)
            assert await db.schema_version() == latest_version()
        first = opened[0]
        assert isinstance(first, PgDatabase)
        row = await first.fetchone("SELECT count(*) FROM engine_settings")
        assert row is not None and row[0] == 1  # the seed row was inserted once
        row = await first.fetchone("SELECT count(*) FROM tikvops_schema")
        assert row is not None and row[0] == 1
    finally:
        for db in opened:
            if isinstance(db, PgDatabase):
                await db.close()


async def test_newer_schema_is_refused(postgres_schema_url: str) -> None:
    db = await PgDatabase.open(postgres_schema_url)
    async with db.transaction() as conn:
        await conn.execute("UPDATE tikvops_schema SET version = 99")
    await db.close()
    with pytest.raises(StorageError) as caught:
        await PgDatabase.open(postgres_schema_url)
    assert "has schema version 99" in str(caught.value)
    assert "upgrade tikvops" in str(caught.value)


async def test_a_wrong_password_is_named_but_never_shown(
    postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "Sup3r-Secret-Pw"
    url = f"postgresql://tikvops:{quote(secret)}@127.0.0.1:{postgres_server.port}/postgres"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StorageError) as caught:
        await open_database(url)
    message = str(caught.value)
    assert f"PostgreSQL at 127.0.0.1:{postgres_server.port}/postgres refused the login" in message
    assert "check the user and password" in message
    assert secret not in message and secret not in repr(caught.value)
    assert secret not in (caught.value.path or "")
    assert secret not in "".join(traceback.format_exception(caught.value))
    assert secret not in caplog.text


async def test_an_unreachable_server_says_what_to_do(postgres_server: PostgresServer) -> None:
    with psycopg.connect(postgres_server.url()) as probe:
        probe.execute("SELECT 1")  # the server is up: only the port is wrong
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql://tikvops:pw@127.0.0.1:{port}/tikvops"
    with pytest.raises(StorageError) as caught:
        await PgDatabase.open(url, connect_timeout=2)
    message = str(caught.value)
    assert f"PostgreSQL at 127.0.0.1:{port}/tikvops could not be reached" in message
    assert "check that the server is running" in message
    assert ":pw@" not in message


async def test_the_database_reconnects_after_the_server_restarts(
    postgres_server: PostgresServer, postgres_schema_url: str
) -> None:
    db = await PgDatabase.open(postgres_schema_url)
    try:
        repos = Repositories.on(db)
        first = await repos.incidents.next_id()
        await postgres_server.restart_async(mode="immediate")
        # The first use after the restart finds the connection gone; it fails clearly (the
        # change was not made), and the next one reconnects.
        try:
            second = await repos.incidents.next_id()
        except StorageError as exc:
            assert "could not be reached" in str(exc) or "failed" in str(exc)
            second = await repos.incidents.next_id()
        assert (first, second) == ("I-1", "I-2")
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("url", "shown", "password"),
    [
        ("postgresql://bot:pw%40x@db:5432/ops", "postgresql://bot:***@db:5432/ops", "pw@x"),
        (
            "postgres://bot@db/ops?password=s3cret&sslmode=require",
            "postgres://bot@db/ops?password=***&sslmode=require",
            "s3cret",
        ),
        ("postgresql://db/ops", "postgresql://db/ops", None),
    ],
)
def test_a_url_shows_itself_without_its_password(
    url: str, shown: str, password: str | None
) -> None:
    parsed = PostgresUrl(url)
    assert str(parsed) == parsed.safe == shown
    assert repr(parsed) == f"PostgresUrl({shown!r})"
    assert parsed.password == password and parsed.dsn == url
    assert parsed.where == f"db{':5432' if ':5432' in url else ''}/ops"


def test_the_db_setting_chooses_the_backend_and_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIKVOPS_DB", "postgresql://bot:hunter2@db.internal:5432/tikvops")
    settings = load_settings(env_file=None)
    assert isinstance(settings.db, PostgresUrl)
    assert settings.db.dsn == "postgresql://bot:hunter2@db.internal:5432/tikvops"
    assert str(settings.db) == "postgresql://bot:***@db.internal:5432/tikvops"
    assert "hunter2" not in repr(settings) and "hunter2" not in f"{settings.db}"
    assert "hunter2" not in settings.model_dump_json()
    monkeypatch.setenv("TIKVOPS_DB", str(tmp_path / "bot.db"))
    assert load_settings(env_file=None).db == tmp_path / "bot.db"
    assert database_target("tikvops.db") == Path("tikvops.db")
    with pytest.raises(ValueError, match="names no host"):
        PostgresUrl("postgresql:///tikvops")
