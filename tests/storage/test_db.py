"""The database: pragmas, transactions, migrations (from empty, from an older version, two
processes at once, a newer schema), and clear errors for corrupted, unopenable and locked
files."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from engine.errors import StorageError
from engine.model import SYSTEM, AuditEvent
from storage import Database, Repositories, latest_version
from storage.db import translate
from storage.incidents import _COLUMNS
from storage.incidents import _values as incident_values
from storage.migrate import load_migrations, split_statements
from tests.plugins.storage import T0, make_incident

TABLES_V1 = {
    "id_sequences",
    "incidents",
    "diagnoses",
    "proposals",
    "approvals",
    "executions",
    "audit_log",
    "message_refs",
    "processed_requests",
    "engine_settings",
}


async def _tables(db: Database) -> set[str]:
    rows = await db.fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    )
    return {row[0] for row in rows}


async def test_fresh_database_is_migrated_with_pragmas(sqlite_db: Database) -> None:
    db = sqlite_db
    assert await db.schema_version() == latest_version() == 6
    assert await _tables(db) == TABLES_V1 | {"outbox", "events", "event_cursors"}
    journal = await db.fetchone("PRAGMA journal_mode")
    assert journal is not None and journal[0] == "wal"
    foreign = await db.fetchone("PRAGMA foreign_keys")
    assert foreign is not None and foreign[0] == 1
    busy = await db.fetchone("PRAGMA busy_timeout")
    assert busy is not None and busy[0] == 5000
    synchronous = await db.fetchone("PRAGMA synchronous")
    assert synchronous is not None and synchronous[0] == 2  # FULL: commits survive a power loss


async def test_migration_from_an_older_version_keeps_data(db_path: Path) -> None:
    old = await Database.open(db_path, migrate_to=1)
    try:
        assert await old.schema_version() == 1
        assert await _tables(old) == TABLES_V1
        incident = make_incident(id=await Repositories.on(old).incidents.next_id())
        async with old.transaction() as conn:  # as version 1 wrote it (no event)
            await conn.execute(
                f"INSERT INTO incidents (id, {_COLUMNS}, version) "
                f"VALUES (?, {', '.join('?' * 15)}, 1)",
                (incident.id, *incident_values(incident)),
            )
    finally:
        await old.close()

    new = await Database.open(db_path)
    try:
        assert await new.schema_version() == latest_version()
        repos = Repositories.on(new)
        assert await repos.incidents.get(incident.id) == incident
        item = await repos.outbox.enqueue("slack.post", incident.id, {"text": "hi"}, now=T0)
        assert [i.id for i in await repos.outbox.due(T0)] == [item]
        # The ID sequence continues where version 1 left it.
        assert await repos.incidents.next_id() == "I-2"
    finally:
        await new.close()


async def test_reopening_is_a_no_op_and_two_openers_migrate_once(db_path: Path) -> None:
    opened = await asyncio.gather(
        *(Database.open(db_path) for _ in range(4)), return_exceptions=True
    )
    try:
        assert [type(db) for db in opened] == [Database] * 4, opened
        versions = [await db.schema_version() for db in opened]  # type: ignore[union-attr]
        assert versions == [latest_version()] * 4
    finally:
        for db in opened:
            if isinstance(db, Database):
                await db.close()
    again = await Database.open(db_path)
    try:
        assert await again.schema_version() == latest_version()
        row = await again.fetchone("SELECT count(*) FROM engine_settings")
        assert row is not None and row[0] == 1  # the seed row was inserted once
    finally:
        await again.close()


async def test_newer_schema_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StorageError) as caught:
        await Database.open(db_path)
    assert "has schema version 99" in str(caught.value)
    assert "upgrade tikvops" in str(caught.value)
    assert caught.value.path == str(db_path)


async def test_corrupted_file_gives_a_clear_error(db_path: Path) -> None:
    db_path.write_bytes(b"this is certainly not an SQLite database file\n" * 200)
    with pytest.raises(StorageError) as caught:
        await Database.open(db_path)
    message = str(caught.value)
    assert f"the database file {db_path} is corrupted" in message
    assert "move it aside" in message and "restore it from a backup" in message


async def test_unopenable_path_gives_a_clear_error(tmp_path: Path) -> None:
    missing_dir = tmp_path / "no" / "such" / "dir" / "tikvops.db"
    with pytest.raises(StorageError) as caught:
        await Database.open(missing_dir)
    assert "cannot be opened" in str(caught.value)
    assert "does not exist; create it" in str(caught.value)


async def test_path_that_is_a_directory_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as caught:
        await Database.open(tmp_path)
    assert "cannot be opened" in str(caught.value)
    assert "directory exists and is writable" in str(caught.value)


async def test_locked_database_gives_a_clear_error(db_path: Path) -> None:
    setup = await Database.open(db_path)
    await setup.close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        db = await Database.open(db_path, busy_timeout=0.1)
        try:
            repos = Repositories.on(db)
            with pytest.raises(StorageError) as caught:
                await repos.audit.append(
                    AuditEvent(at=T0, actor=SYSTEM, action="test", subject="engine")
                )
            assert "stayed locked by another process" in str(caught.value)
            holder.execute("ROLLBACK")
            # Once released, the same Database works again.
            saved = await repos.audit.append(
                AuditEvent(at=T0, actor=SYSTEM, action="test", subject="engine")
            )
            assert saved.id == 1
        finally:
            await db.close()
    finally:
        holder.close()


async def test_transaction_rolls_back_on_error(db: Database) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as conn:
            await conn.execute("UPDATE engine_settings SET observe_only = 1")
            raise Boom
    row = await db.fetchone("SELECT observe_only FROM engine_settings")
    assert row is not None and row[0] == 0
    # The connection is usable afterwards (no transaction left open).
    async with db.transaction() as conn:
        await conn.execute("UPDATE engine_settings SET observe_only = 1")
    row = await db.fetchone("SELECT observe_only FROM engine_settings")
    assert row is not None and row[0] == 1


async def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(StorageError, match="constraint"):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO approvals (proposal_id, approver, identity, at) "
                "VALUES ('P-404', 'slack:U1', '{}', '2024')"
            )


async def test_closed_database_says_so(db_path: Path) -> None:
    db = await Database.open(db_path)
    await db.close()
    await db.close()  # idempotent
    with pytest.raises(StorageError, match="is closed"):
        await db.fetchone("SELECT 1")


def test_statement_splitter_keeps_triggers_whole() -> None:
    script = """
-- a comment
CREATE TABLE t (a INTEGER); -- trailing
CREATE TRIGGER t_no_delete BEFORE DELETE ON t
BEGIN
    SELECT RAISE(ABORT, 'no; really');
END;
INSERT INTO t VALUES (1);
"""
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete"):
        split_statements("CREATE TABLE t (a INTEGER)")


def test_packaged_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == [1, 2, 3, 4, 5, 6]
    assert [m.name for m in migrations] == [
        "0001_init.sql",
        "0002_outbox.sql",
        "0003_notified.sql",
        "0004_events.sql",
        "0005_attention.sql",
        "0006_clusters.sql",
    ]


@pytest.mark.parametrize(
    ("error", "says"),
    [
        (sqlite3.DatabaseError("file is not a database"), "move it aside"),
        (sqlite3.OperationalError("database is locked"), "another tikvops"),
        (sqlite3.OperationalError("attempt to write a readonly database"), "permissions"),
        (sqlite3.OperationalError("unable to open database file"), "directory"),
        (sqlite3.OperationalError("database or disk is full"), "free space and restart"),
        (sqlite3.OperationalError("disk I/O error"), "ulimit -f"),
        (sqlite3.IntegrityError("UNIQUE constraint failed: x.id"), "constraint"),
    ],
)
def test_each_sqlite_failure_is_one_sentence_with_what_to_do(
    error: sqlite3.Error, says: str
) -> None:
    translated = translate(error, "/var/lib/tikvops.db", 5.0)
    assert isinstance(translated, StorageError)
    assert "/var/lib/tikvops.db" in str(translated) and str(error) in str(translated)
    assert says in str(translated)


async def test_invalid_json_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(StorageError, match="refused a write that breaks a constraint"):
        async with db.transaction() as conn:
            await conn.execute(
                "INSERT INTO events (at, kind, subject, payload) VALUES (?, ?, ?, ?)",
                ("2024-05-01T14:00:00.000000Z", "incident.updated", "I-1", "{not json"),
            )
    row = await db.fetchone("SELECT count(*) FROM events")
    assert row is not None and row[0] == 0
