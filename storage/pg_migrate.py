"""Forward schema migrations on PostgreSQL: the same numbered versions as SQLite, each with its
PostgreSQL text in `storage/migrations/postgresql/NNNN_name.sql` (same name as the SQLite
file). Each version runs in one transaction (PostgreSQL's DDL is transactional) that also
records the version in `tikvops_schema`, under a session advisory lock taken before the
transaction begins (a transaction that waited for an advisory lock would still see the catalog
as it was before the wait), so several replicas starting together apply each migration once.
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg

from engine.errors import StorageError
from storage.migrate import POSTGRES_MIGRATIONS, load_migrations

MIGRATE_LOCK = 0x7431_6B76_0002  # pg_advisory_xact_lock key of schema changes


async def schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The applied version (0 for an empty database)."""
    cursor = await conn.execute("SELECT to_regclass('tikvops_schema') IS NOT NULL")
    exists = await cursor.fetchone()
    if not exists or not exists[0]:
        return 0
    cursor = await conn.execute("SELECT max(version) FROM tikvops_schema")
    row = await cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


async def migrate_pg(
    conn: psycopg.AsyncConnection[Any], *, target: int | None = None, where: str = "?"
) -> int:
    """Bring the schema of `conn` (autocommit mode) up to `target` (default: latest); returns
    the resulting version. Raises `StorageError` when the database is newer than this code."""
    migrations = load_migrations(POSTGRES_MIGRATIONS)
    newest = len(migrations)
    target = newest if target is None else target
    if not 0 <= target <= newest:
        raise ValueError(f"schema version {target} does not exist (latest is {newest})")
    current = await schema_version(conn)
    if current > newest:
        raise StorageError(
            f"the PostgreSQL database {where} has schema version {current}, but this tikvops "
            f"knows versions up to {newest}; upgrade tikvops, or use another database",
            path=where,
        )
    for migration in migrations:
        if migration.version > target:
            break
        if migration.version <= current:
            continue
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATE_LOCK,))
        try:
            await conn.execute("BEGIN")
            current = await schema_version(conn)  # another replica may have been first
            if migration.version > current:
                for statement in migration.statements:
                    await conn.execute(statement)
                await conn.execute(
                    "CREATE TABLE IF NOT EXISTS tikvops_schema (version INTEGER NOT NULL)"
                )
                await conn.execute("DELETE FROM tikvops_schema")
                await conn.execute(
                    "INSERT INTO tikvops_schema (version) VALUES (%s)", (migration.version,)
                )
                current = migration.version
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.execute("ROLLBACK")
            raise
        finally:
            with contextlib.suppress(psycopg.Error, OSError):
                await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATE_LOCK,))
    return await schema_version(conn)


__all__ = ["MIGRATE_LOCK", "migrate_pg", "schema_version"]
