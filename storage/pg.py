"""The PostgreSQL database (psycopg 3, async): one connection per `PgDatabase`, reopened when
the server went away, the same transaction helper and listener hooks as the SQLite `Database`,
and psycopg failures translated into `StorageError` sentences that name the server (never the
password) and say what to do.

Write transactions are serialized across every process on the database by one advisory
transaction lock (`WRITE_LOCK`), taken first, as SQLite's `BEGIN IMMEDIATE` takes its write
lock: events are then committed in `seq` order, which the relays rely on (they read events
after their cursor; a smaller seq committed after a larger one would be skipped). Inside, a
transition is still its own row-level compare-and-set (`UPDATE ... WHERE id = ? AND version = ?`),
so correctness never depends on the lock. `claim()` transactions (the outbox's
`FOR UPDATE SKIP LOCKED`) do not take it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg

from engine.errors import EngineError, StorageError
from storage.dburl import PostgresUrl
from storage.pg_migrate import migrate_pg, schema_version
from storage.pg_sql import PgConnection, Row

logger = logging.getLogger(__name__)

WRITE_LOCK = 0x7431_6B76_0001  # pg_advisory_xact_lock key of write transactions
DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_CONNECT_TIMEOUT = 5.0


class PgDatabase:
    """One connection to one PostgreSQL database. Open with `await PgDatabase.open(url)` (which
    applies pending migrations), close with `await db.close()` or use `async with`."""

    def __init__(self, url: PostgresUrl, *, lock_timeout: float, connect_timeout: float) -> None:
        self._url = url
        self._lock_timeout = lock_timeout
        self._connect_timeout = connect_timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._listeners: list[Callable[[int], None]] = []
        self._events_pending: int | None = None

    @classmethod
    async def open(
        cls,
        url: PostgresUrl | str,
        *,
        migrate_to: int | None = None,
        apply_migrations: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> PgDatabase:
        """Connect and apply forward migrations up to `migrate_to` (default: the latest).
        Raises `StorageError` when the server cannot be reached, refuses the login, or holds
        a schema from a newer tikvops."""
        target = url if isinstance(url, PostgresUrl) else PostgresUrl(url)
        db = cls(target, lock_timeout=lock_timeout, connect_timeout=connect_timeout)
        try:
            async with db._guard():
                pass  # connects
            if apply_migrations:
                await db.migrate(migrate_to)
        except BaseException:
            await db.close()
            raise
        return db

    @property
    def url(self) -> PostgresUrl:
        return self._url

    @property
    def dialect(self) -> str:
        return "postgresql"

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(
            self._url.dsn,
            autocommit=True,
            connect_timeout=max(1, round(self._connect_timeout)),
            application_name="tikvops",
        )
        await conn.execute(f"SET lock_timeout = {int(self._lock_timeout * 1000)}")
        return conn

    async def migrate(self, target: int | None = None) -> int:
        """Apply forward migrations up to `target` (default: latest); returns the version."""
        async with self._guard() as conn:
            return await migrate_pg(conn.raw, target=target, where=self._url.where)

    async def schema_version(self) -> int:
        async with self._guard() as conn:
            return await schema_version(conn.raw)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error, OSError):
                await conn.close()

    async def __aenter__(self) -> PgDatabase:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ access

    @asynccontextmanager
    async def transaction(self, *, serialized: bool = True) -> AsyncIterator[PgConnection]:
        """`async with db.transaction() as conn:` runs the block in one transaction (rolled
        back on any exception). `serialized` (default) takes the write lock first (see the
        module's docstring)."""
        async with self._guard() as plain:
            conn = PgConnection(plain.raw, in_transaction=True)
            await plain.raw.execute("BEGIN")
            try:
                if serialized:
                    await plain.raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                yield conn
            except BaseException:
                self._events_pending = None
                await self._rollback(plain.raw)
                raise
            try:
                await plain.raw.execute("COMMIT")
            except BaseException:
                self._events_pending = None
                await self._rollback(plain.raw)
                raise
        first, self._events_pending = self._events_pending, None
        if first is not None:
            for listener in list(self._listeners):
                try:
                    listener(first)
                except Exception:  # a wake-up hook: never fails the committed change
                    logger.exception("an event listener failed")

    def events_written(self, seq: int) -> None:
        if self._events_pending is None:
            self._events_pending = seq

    def add_listener(self, listener: Callable[[int], None]) -> None:
        self._listeners.append(listener)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgConnection]:
        async with self._guard() as conn:
            yield conn

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        async with self.read() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        async with self.read() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return await cursor.fetchall()

    async def _rollback(self, conn: psycopg.AsyncConnection[Any]) -> None:
        with suppress(psycopg.Error, OSError):
            await conn.execute("ROLLBACK")

    @asynccontextmanager
    async def _guard(self) -> AsyncIterator[PgConnection]:
        if self._closed:
            raise StorageError(
                f"the database {self._url.where} is closed; this is a bug in tikvops's "
                "shutdown order",
                path=self._url.safe,
            )
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.broken:
                    await self._drop()
                    self._conn = await self._connect()
                yield PgConnection(self._conn, in_transaction=False)
            except EngineError:
                raise
            except (psycopg.Error, OSError) as exc:
                if isinstance(exc, psycopg.OperationalError | OSError) or (
                    self._conn is not None and self._conn.broken
                ):
                    await self._drop()  # reconnect at the next use
                raise translate_pg(exc, self._url, self._lock_timeout) from None
            except sqlite3.IntegrityError as exc:  # pg_sql.PgIntegrityError, not handled
                raise StorageError(
                    f"the database {self._url.where} refused a write that breaks a "
                    f"constraint ({exc})",
                    path=self._url.safe,
                ) from None

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with suppress(psycopg.Error, OSError):
                await conn.close()


def translate_pg(exc: BaseException, url: PostgresUrl, lock_timeout: float) -> StorageError:
    """A psycopg failure as a `StorageError` sentence about the server, never its password."""
    where = url.where
    text = _scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, url)
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate == "28P01" or "password authentication failed" in text:
        message = (
            f"PostgreSQL at {where} refused the login ({text}); check the user and password in "
            "the db setting (TIKVOPS_DB)"
        )
    elif sqlstate == "3D000":
        message = (
            f"PostgreSQL at {where} has no such database ({text}); create it (createdb) or fix "
            "the database name in the db setting"
        )
    elif sqlstate == "55P03" or "lock timeout" in text:
        message = (
            f"the PostgreSQL database {where} stayed locked by another writer for more than "
            f"{lock_timeout:g} s ({text}); check for a stuck tikvops replica or a long "
            "transaction (pg_stat_activity); nothing was changed"
        )
    elif sqlstate.startswith(("22", "23")):  # bad data, a broken constraint
        message = (
            f"the PostgreSQL database {where} refused a write that breaks a constraint "
            f"({text}); the transaction was rolled back, nothing was changed"
        )
    elif sqlstate.startswith("53") or "no space" in text.lower():
        message = f"PostgreSQL at {where} is out of resources ({text}); free space or connections"
    elif isinstance(exc, psycopg.OperationalError | OSError) or sqlstate.startswith("08"):
        message = (
            f"PostgreSQL at {where} could not be reached ({text}); check that the server is "
            "running and reachable; tikvops reconnects at the next attempt, and a change that "
            "did not commit was not made"
        )
    else:
        message = f"the PostgreSQL database {where} failed: {text}"
    return StorageError(message, path=url.safe)


def _scrub(text: str, url: PostgresUrl) -> str:
    """Remove the password from a driver message (psycopg quotes connection strings)."""
    password = url.password
    return text.replace(password, "***") if password else text


__all__ = ["DEFAULT_LOCK_TIMEOUT", "WRITE_LOCK", "PgDatabase", "translate_pg"]
