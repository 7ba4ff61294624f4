"""The run claims of `engine.claims` on PostgreSQL: one session advisory lock per proposal
(`pg_try_advisory_lock(key)`, key `claim_key(proposal_id)`), all held on one connection of this
replica's own, opened for them and used for nothing else.

The keys are 64-bit with the high half `CLAIM_SPACE` (0x74316B77), distinct from every other
lock of tikvops (writes 0x74316B760001, migrations 0x74316B760002, the leader 0x74316B761EAD);
the low half is the proposal's number (`P-7` → 7), or a CRC-32 of an ID of another shape (two
such IDs sharing a key only make one wait for the other, never both run).

When this replica dies, the server ends its session and every claim is free: at once for a killed
process, and for a lost host once the server's TCP keepalives give up (about 10 s, as for the
leader lock). When the connection is lost while the process lives, its claims are lost with it:
`held()` asks the server whether this session still holds the lock (`pg_locks`), so a runner that
lost it sends nothing more; the next `claim()` opens a new connection.

`open_run_claims(db)` picks the claims for the database setting: these for a `postgresql://`
URL, `engine.claims.LocalClaims` for a SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import re
import zlib
from pathlib import Path
from typing import Any

import psycopg

from engine.claims import Claim, LocalClaims, RunClaims
from engine.errors import StorageError
from storage.dburl import PostgresUrl, database_target
from storage.leader import CONNECT_TIMEOUT, KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL

logger = logging.getLogger(__name__)

CLAIM_SPACE = 0x7431_6B77
"""The high 32 bits of every claim's advisory lock key."""
_NUMBERED = re.compile(r"^[A-Za-z]+-(\d{1,9})$")


def claim_key(proposal_id: str) -> int:
    """The advisory lock key of the claim on `proposal_id` (see the module docstring)."""
    numbered = _NUMBERED.match(proposal_id)
    low = int(numbered.group(1)) if numbered else zlib.crc32(proposal_id.encode())
    return (CLAIM_SPACE << 32) | low


class _PgClaim:
    def __init__(self, owner: PgRunClaims, proposal_id: str, session: int) -> None:
        self.proposal_id = proposal_id
        self._owner = owner
        self._session = session

    async def held(self) -> bool:
        return await self._owner.holds(self.proposal_id, self._session)

    async def release(self) -> None:
        await self._owner.release(self.proposal_id, self._session)


class PgRunClaims:
    """`engine.claims.RunClaims` as PostgreSQL session advisory locks (module docstring)."""

    shared = True

    def __init__(self, url: PostgresUrl | str) -> None:
        target = url if isinstance(url, PostgresUrl) else PostgresUrl(url)
        self._dsn = target.dsn
        self._password = target.password
        self.name = f"PostgreSQL run claims on {target.where}"
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._session = 0  # counts connections: a claim belongs to the one that took it
        self._held: set[str] = set()
        self._guard = asyncio.Lock()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the claims' session (tests end it to cut the connection)."""
        return None if self._conn is None else self._conn.info.backend_pid

    async def claim(self, proposal_id: str) -> Claim | None:
        async with self._guard:
            if proposal_id in self._held:
                return None
            try:
                conn = await self._connection()
                cursor = await conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (claim_key(proposal_id),)
                )
                row = await cursor.fetchone()
            except (psycopg.Error, OSError) as exc:
                await self._drop()
                raise StorageError(
                    f"cannot claim the run of proposal {proposal_id} ({self.name}): "
                    f"{self._scrub(exc)}; check that PostgreSQL is running and reachable"
                ) from None
            if not (row and row[0]):
                return None
            self._held.add(proposal_id)
            return _PgClaim(self, proposal_id, self._session)

    async def holds(self, proposal_id: str, session: int) -> bool:
        """Whether the claim taken on connection `session` is still this session's."""
        async with self._guard:
            if session != self._session or proposal_id not in self._held or self._conn is None:
                return False
            try:
                cursor = await self._conn.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND pid = pg_backend_pid() AND objsubid = 1 "
                    "AND classid = %s AND objid = %s",
                    _lock_parts(claim_key(proposal_id)),
                )
                row = await cursor.fetchone()
            except (psycopg.Error, OSError) as exc:
                logger.warning("the %s are lost: %s", self.name, self._scrub(exc))
                await self._drop()
                return False
            return bool(row and row[0])

    async def release(self, proposal_id: str, session: int) -> None:
        async with self._guard:
            if session != self._session or proposal_id not in self._held:
                return
            self._held.discard(proposal_id)
            if self._conn is None:
                return
            try:
                await self._conn.execute("SELECT pg_advisory_unlock(%s)", (claim_key(proposal_id),))
            except (psycopg.Error, OSError) as exc:
                logger.warning("the %s are lost: %s", self.name, self._scrub(exc))
                await self._drop()

    async def close(self) -> None:
        async with self._guard:
            await self._drop()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            await self._drop()
            self._conn = await psycopg.AsyncConnection.connect(
                self._dsn,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                application_name="tikvops-claims",
                keepalives=1,
                keepalives_idle=KEEPALIVE_IDLE,
                keepalives_interval=KEEPALIVE_INTERVAL,
                keepalives_count=KEEPALIVE_COUNT,
            )
            self._session += 1
            for setting, value in (
                ("tcp_keepalives_idle", KEEPALIVE_IDLE),
                ("tcp_keepalives_interval", KEEPALIVE_INTERVAL),
                ("tcp_keepalives_count", KEEPALIVE_COUNT),
            ):
                await self._conn.execute(f"SET {setting} = {int(value)}")
        return self._conn

    async def _drop(self) -> None:
        """Close the session: the server lets every claim go with it."""
        self._held.clear()
        self._session += 1
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await asyncio.wait_for(conn.close(), CONNECT_TIMEOUT)
            except (psycopg.Error, OSError, TimeoutError):
                logger.debug("closing the claims' connection failed", exc_info=True)

    def _scrub(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if self._password:
            text = text.replace(self._password, "***")
        return text


def _lock_parts(key: int) -> tuple[int, int]:
    """`pg_locks` shows a 64-bit advisory key as classid (high half) and objid (low half)."""
    return key >> 32, key & 0xFFFF_FFFF


def open_run_claims(db: str | Path | PostgresUrl) -> RunClaims:
    """The run claims for the database setting (see the module docstring)."""
    target = database_target(db)
    if isinstance(target, PostgresUrl):
        return PgRunClaims(target)
    return LocalClaims()


__all__ = ["CLAIM_SPACE", "PgRunClaims", "claim_key", "open_run_claims"]
