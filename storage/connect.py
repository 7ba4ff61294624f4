"""The one place the database is chosen: a `postgresql://` URL opens PostgreSQL
(`storage.pg.PgDatabase`), anything else is a SQLite file path (`storage.db.Database`)."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database
from storage.dburl import PostgresUrl, database_target
from storage.pg import PgDatabase

AnyDatabase = Database | PgDatabase


async def open_database(
    target: str | Path | PostgresUrl, *, migrate_to: int | None = None
) -> AnyDatabase:
    """Open (and migrate) the database `target` names. Raises `StorageError` when it cannot be
    opened; the message never contains a password."""
    chosen = database_target(target)
    if isinstance(chosen, PostgresUrl):
        return await PgDatabase.open(chosen, migrate_to=migrate_to)
    return await Database.open(chosen, migrate_to=migrate_to)


__all__ = ["AnyDatabase", "open_database"]
