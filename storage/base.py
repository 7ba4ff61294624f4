"""What the repositories need from a database, whichever it is: the SQLite `Database`
(`storage.db`) and the PostgreSQL `PgDatabase` (`storage.pg`) both provide it.

The repositories are written once, in SQL both dialects accept (`?` placeholders; the
PostgreSQL connection translates them and the few SQLite spellings listed in `storage.pg_sql`),
against a connection whose `execute(sql, params)` returns a cursor with `fetchone`, `fetchall`,
`rowcount`, `lastrowid` and `close`, and rows readable by position and by column name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol


class SqlDatabase(Protocol):
    """A database the repositories run on."""

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        ...

    def transaction(self, *, serialized: bool = True) -> AbstractAsyncContextManager[Any]:
        """A write transaction: the block's statements commit together or not at all, and
        concurrent transactions (also in other processes) are serialized. `serialized=False`
        is for transactions that write no event and lock their rows themselves (PostgreSQL
        then runs them beside others; SQLite always serializes)."""
        ...

    def read(self) -> AbstractAsyncContextManager[Any]:
        """A connection for reads outside any transaction."""
        ...

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Any: ...

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Any]: ...

    def events_written(self, seq: int) -> None:
        """Called inside a transaction that wrote the event `seq` (listeners hear after the
        commit)."""
        ...

    def add_listener(self, listener: Callable[[int], None]) -> None: ...

    async def schema_version(self) -> int: ...

    async def close(self) -> None: ...


__all__ = ["SqlDatabase"]
