"""The leader lock of `engine.leadership` on PostgreSQL: a session advisory lock
(`pg_try_advisory_lock(LEADER_KEY)`) held on a connection of its own, opened for it and used
for nothing else, so that the lock lives exactly as long as that session.

When the holder dies (SIGKILL, its host gone), the server ends the session and the lock is free:
at once for a killed process (the kernel closes its socket), and for a lost host once the
server's TCP keepalives give up on it (set on the session: `KEEPALIVE_*`, about 10 s). The
holder confirms the lock by a round trip on that connection; a broken connection means the
lock is lost (it is never taken again on a new connection without a new `acquire`).

`open_leader_lock(db)` picks the lock for the database setting: this one for a
`postgresql://` URL, `SoleLeader` (always held) for a SQLite file, which one process owns.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg

from engine.errors import StorageError
from engine.leadership import LeaderLock, SoleLeader
from storage.dburl import PostgresUrl, database_target

logger = logging.getLogger(__name__)

LEADER_KEY = 0x7431_6B76_1EAD
"""The advisory lock key every replica competes for (64-bit, unlike `storage.pg`'s write lock)."""
KEEPALIVE_IDLE = 5
KEEPALIVE_INTERVAL = 2
KEEPALIVE_COUNT = 3
CONNECT_TIMEOUT = 5


class PgLeaderLock:
    """`engine.leadership.LeaderLock` as a PostgreSQL session advisory lock."""

    def __init__(self, url: PostgresUrl | str, *, key: int = LEADER_KEY) -> None:
        target = url if isinstance(url, PostgresUrl) else PostgresUrl(url)
        self._dsn = target.dsn
        self._key = key
        self._password = target.password
        self.name = f"PostgreSQL advisory lock {key} on {target.where}"
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._held = False
        self._guard = asyncio.Lock()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the lock's session (tests end it to cut the connection)."""
        return None if self._conn is None else self._conn.info.backend_pid

    async def acquire(self) -> bool:
        async with self._guard:
            try:
                conn = await self._connection()
                cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,))
                row = await cursor.fetchone()
            except (psycopg.Error, OSError) as exc:
                await self._drop()
                raise StorageError(
                    f"cannot take the {self.name}: {self._scrub(exc)}; check that PostgreSQL "
                    "is running and reachable"
                ) from None
            self._held = bool(row and row[0])
            return self._held

    async def confirm(self) -> bool:
        async with self._guard:
            if not self._held or self._conn is None or self._conn.closed:
                return False
            try:
                await self._conn.execute("SELECT 1")
            except (psycopg.Error, OSError) as exc:
                logger.warning("the %s is lost: %s", self.name, self._scrub(exc))
                await self._drop()
                return False
            return True

    async def release(self) -> None:
        async with self._guard:
            await self._drop()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="tikvops-leader",
                keepalives=1,
                keepalives_idle=KEEPALIVE_IDLE,
                keepalives_interval=KEEPALIVE_INTERVAL,
                keepalives_count=KEEPALIVE_COUNT,
            )
            # The server too gives up on a silent peer, so a lost host frees the lock.
            for setting, value in (
                ("tcp_keepalives_idle", KEEPALIVE_IDLE),
                ("tcp_keepalives_interval", KEEPALIVE_INTERVAL),
                ("tcp_keepalives_count", KEEPALIVE_COUNT),
            ):
                await self._conn.execute(f"SET {setting} = {int(value)}")
        return self._conn

    async def _drop(self) -> None:
        """Close the session: the server lets the lock go with it."""
        self._held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT)
            except (psycopg.Error, OSError, TimeoutError):
                logger.debug("closing the leader lock's connection failed", exc_info=True)

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text


def is_postgres(db: str | Path | PostgresUrl) -> bool:
    """Whether the database setting names PostgreSQL (replicas may share it)."""
    return isinstance(database_target(db), PostgresUrl)


def open_leader_lock(db: str | Path | PostgresUrl) -> LeaderLock:
    """The leader lock for the database setting (see the module docstring)."""
    target = database_target(db)
    if isinstance(target, PostgresUrl):
        return PgLeaderLock(target)
    return SoleLeader()


__all__ = ["LEADER_KEY", "PgLeaderLock", "is_postgres", "open_leader_lock"]
