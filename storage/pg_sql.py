"""The repositories' SQL on PostgreSQL: one connection adapter that looks like the aiosqlite
connection the repositories were written against.

The repositories speak the SQL both databases accept; what differs is translated here, once
per statement text (cached):
- `?` placeholders become psycopg's `%s` (a literal `%` is doubled);
- `INSERT OR IGNORE INTO t ...` becomes `INSERT INTO t ... ON CONFLICT DO NOTHING`;
- an `INSERT` into a table whose key the database assigns gets `RETURNING <key>`, which
  becomes the cursor's `lastrowid` (SQLite's rowid);
- `rowid` (tie-breaks in ORDER BY) is a real column in the PostgreSQL schema.

A unique-key violation is raised as `PgIntegrityError`, a `sqlite3.IntegrityError` whose text
names the table and columns the way SQLite does ("UNIQUE constraint failed: incidents.id"), so
the repositories' handling of duplicates is shared. Statements whose duplicate is expected and
handled inside a transaction run under a savepoint, because PostgreSQL aborts the whole
transaction on an error.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg._cursor_base import BaseCursor
from psycopg.rows import BaseRowFactory, RowMaker

# Tables whose key PostgreSQL assigns (identity columns): the key is returned as lastrowid.
_GENERATED_KEY = {"audit_log": "id", "diagnoses": "id", "events": "seq", "outbox": "id"}
# Inserts whose unique violation a repository catches and handles inside its transaction.
_HANDLED_DUPLICATES = frozenset({"incidents", "executions"})
_INSERT = re.compile(r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)", re.IGNORECASE)
_KEY = re.compile(r"Key \(([^)]*)\)")


class Row(tuple[Any, ...]):
    """A result row readable by position (`row[0]`) and by column name (`row["id"]`)."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names[key])
        return super().__getitem__(key)

    def keys(self) -> list[str]:
        return list(self._names)


def row_factory(cursor: BaseCursor[Any, Any]) -> RowMaker[Row]:
    description = cursor.description or []
    names = {column.name: index for index, column in enumerate(description)}

    def make(values: Sequence[Any]) -> Row:
        return Row(values, names)

    return make


_ROW_FACTORY: BaseRowFactory[Row] = row_factory


@lru_cache(maxsize=512)
def translate_sql(sql: str) -> tuple[str, str | None, str | None]:
    """(PostgreSQL text, the generated key it returns or None, the table inserted into)."""
    text = sql.replace("%", "%%").replace("?", "%s")
    match = _INSERT.match(text)
    table = match.group(2).lower() if match else None
    returning: str | None = None
    if match and match.group(1):
        text = re.sub(r"INSERT\s+OR\s+IGNORE\s+INTO", "INSERT INTO", text, count=1, flags=re.I)
        text = f"{text.rstrip().rstrip(';')} ON CONFLICT DO NOTHING"
    if table in _GENERATED_KEY and "RETURNING" not in text.upper():
        returning = _GENERATED_KEY[table]
        text = f"{text.rstrip().rstrip(';')} RETURNING {returning}"
    return text, returning, table


class PgIntegrityError(sqlite3.IntegrityError):
    """A unique-key violation on PostgreSQL, worded as SQLite words it."""


def integrity_error(exc: pg_errors.IntegrityError) -> sqlite3.IntegrityError:
    table = exc.diag.table_name or "?"
    detail = exc.diag.message_detail or ""
    match = _KEY.search(detail)
    columns = [c.strip() for c in match.group(1).split(",")] if match else ["?"]
    named = ", ".join(f"{table}.{column}" for column in columns)
    if isinstance(exc, pg_errors.UniqueViolation):
        return PgIntegrityError(f"UNIQUE constraint failed: {named}")
    return PgIntegrityError(f"constraint failed on {table}: {exc.diag.message_primary}")


class PgCursor:
    """The result of one statement, fetched eagerly (the repositories' results are small)."""

    def __init__(self, rows: list[Row], rowcount: int, lastrowid: int | None) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid

    async def fetchone(self) -> Row | None:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    async def fetchall(self) -> list[Row]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    async def close(self) -> None:
        self._rows = []


class PgConnection:
    """An aiosqlite-shaped `execute()` over one psycopg async connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], *, in_transaction: bool) -> None:
        self._conn = conn
        self._in_transaction = in_transaction

    @property
    def raw(self) -> psycopg.AsyncConnection[Any]:
        return self._conn

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        text, returning, table = translate_sql(sql)
        guarded = self._in_transaction and table in _HANDLED_DUPLICATES
        async with self._conn.cursor(row_factory=_ROW_FACTORY) as cursor:
            if guarded:
                await cursor.execute("SAVEPOINT tikvops_insert")
            try:
                await cursor.execute(text, tuple(params))
            except pg_errors.IntegrityError as exc:
                if guarded:
                    await cursor.execute("ROLLBACK TO SAVEPOINT tikvops_insert")
                raise integrity_error(exc) from exc
            rows = await cursor.fetchall() if cursor.description is not None else []
            rowcount = cursor.rowcount
            if guarded:
                await cursor.execute("RELEASE SAVEPOINT tikvops_insert")
        lastrowid = int(rows[0][0]) if returning is not None and rows else None
        return PgCursor(rows, rowcount, lastrowid)


__all__ = ["PgConnection", "PgCursor", "PgIntegrityError", "Row", "translate_sql"]
