"""Forward schema migrations: numbered `.sql` files in `storage/migrations`, applied in order,
each in its own `BEGIN IMMEDIATE` transaction that also sets `PRAGMA user_version`. The version
is re-read under the write lock, so two processes starting together apply each migration once.

A migration that rebuilds a table other tables refer to carries the line
`-- tikvops: foreign_keys off`: foreign keys are switched off around its transaction (SQLite
ignores the switch inside one) and `PRAGMA foreign_key_check` must find nothing before it
commits.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import aiosqlite

from engine.errors import StorageError

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
FOREIGN_KEYS_OFF = "-- tikvops: foreign_keys off"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    foreign_keys_off: bool = False


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (triggers' inner `;` included), dropping
    comments-only leftovers."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement:
                statements.append(statement)
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")
    return statements


SQLITE_MIGRATIONS = "storage.migrations"
POSTGRES_MIGRATIONS = "storage.migrations.postgresql"


@cache
def load_migrations(package: str = SQLITE_MIGRATIONS) -> tuple[Migration, ...]:
    """The packaged migrations of one dialect (`SQLITE_MIGRATIONS`, `POSTGRES_MIGRATIONS`), in
    version order (versions must be 1, 2, 3, … with no gap)."""
    found: list[Migration] = []
    for entry in resources.files(package).iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        text = entry.read_text(encoding="utf-8")
        found.append(
            Migration(
                version=int(match.group(1)),
                name=entry.name,
                statements=(
                    tuple(split_statements(text)) if package == SQLITE_MIGRATIONS else (text,)
                ),
                foreign_keys_off=FOREIGN_KEYS_OFF in text,
            )
        )
    found.sort(key=lambda m: m.version)
    expected = list(range(1, len(found) + 1))
    if [m.version for m in found] != expected:
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {found}")
    return tuple(found)


def latest_version() -> int:
    return len(load_migrations())


async def _user_version(conn: aiosqlite.Connection) -> int:
    cursor = await conn.execute("PRAGMA user_version")
    row = await cursor.fetchone()
    await cursor.close()
    return int(row[0]) if row else 0


async def _check_foreign_keys(conn: aiosqlite.Connection, migration: Migration) -> None:
    cursor = await conn.execute("PRAGMA foreign_key_check")
    broken = list(await cursor.fetchall())
    await cursor.close()
    if broken:
        raise StorageError(
            f"migration {migration.name} would leave {len(broken)} broken reference(s) (first: "
            f"{tuple(broken[0])}); the database was not changed. Report this with the file",
        )


async def migrate(
    conn: aiosqlite.Connection, *, target: int | None = None, path: Path | str = "?"
) -> int:
    """Bring the schema of `conn` (autocommit mode) up to `target` (default: latest); returns
    the resulting version. Raises `StorageError` when the database is newer than this code."""
    migrations = load_migrations()
    newest = len(migrations)
    target = newest if target is None else target
    if not 0 <= target <= newest:
        raise ValueError(f"schema version {target} does not exist (latest is {newest})")
    current = await _user_version(conn)
    if current > newest:
        raise StorageError(
            f"the database file {path} has schema version {current}, but this tikvops knows "
            f"versions up to {newest}; upgrade tikvops, or use another database file",
            path=str(path),
        )
    for migration in migrations:
        if migration.version > target:
            break
        if migration.version <= current:
            continue
        if migration.foreign_keys_off:
            await conn.execute("PRAGMA foreign_keys = OFF")
        await conn.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(conn)  # another process may have been first
            if migration.version > current:
                for statement in migration.statements:
                    await conn.execute(statement)
                if migration.foreign_keys_off:
                    await _check_foreign_keys(conn, migration)
                await conn.execute(f"PRAGMA user_version = {migration.version}")
                current = migration.version
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                await conn.execute("ROLLBACK")
            raise
        finally:
            if migration.foreign_keys_off:
                await conn.execute("PRAGMA foreign_keys = ON")
    return await _user_version(conn)


__all__ = [
    "POSTGRES_MIGRATIONS",
    "SQLITE_MIGRATIONS",
    "Migration",
    "latest_version",
    "load_migrations",
    "migrate",
    "split_statements",
]
