"""The storage tests are the repositories' contract: `db` (and so `repos`) is parametrized over
both backends, SQLite on a temporary file and PostgreSQL on a fresh schema of the session's
server (`tests.plugins.postgres`; skipped without PostgreSQL outside CI). `db_target` is what
`storage.open_database` takes to open a second connection to the same database;
`sqlite_db` is for the tests about SQLite itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import Database, PostgresUrl, SqlDatabase, open_database

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_target(request: pytest.FixtureRequest, db_path: Path) -> Path | PostgresUrl:
    if request.param == "sqlite":
        return db_path
    return PostgresUrl(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
async def db(db_target: Path | PostgresUrl) -> AsyncIterator[SqlDatabase]:
    """A migrated database on each backend, closed after the test."""
    database = await open_database(db_target)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
async def sqlite_db(db_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(db_path)
    try:
        yield database
    finally:
        await database.close()
