"""Processed request IDs (e.g. Slack envelope IDs) on SQLite, so a retried delivery is handled
once. `seen()` is one atomic upsert: insert, or revive an expired entry, or report a repeat;
`seen_any()` does the same for the several IDs of one request in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from storage.base import SqlDatabase
from storage.codec import ts

_UPSERT = (
    "INSERT INTO processed_requests (request_id, seen_at, expires_at) VALUES {rows} "
    "ON CONFLICT (request_id) DO UPDATE SET "
    "seen_at = excluded.seen_at, expires_at = excluded.expires_at "
    "WHERE processed_requests.expires_at <= excluded.seen_at"
)
"""Marks every new or expired ID; the changed-row count says how many were not repeats."""


class SqliteDedupRepo:
    """`engine.ports.DedupRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def seen(self, request_id: str, *, now: datetime, ttl: timedelta) -> bool:
        return await self.seen_any([request_id], now=now, ttl=ttl)

    async def seen_any(self, request_ids: Sequence[str], *, now: datetime, ttl: timedelta) -> bool:
        unique = list(dict.fromkeys(request_ids))  # a repeated ID would count as a repeat
        if not unique:
            return False
        seen_at, expires_at = ts(now), ts(now + ttl)
        params: list[str] = []
        for request_id in unique:
            params += [request_id, seen_at, expires_at]
        sql = _UPSERT.format(rows=", ".join(["(?, ?, ?)"] * len(unique)))
        async with self._db.transaction() as conn:
            cursor = await conn.execute(sql, params)
            marked = int(cursor.rowcount)
            await cursor.close()
        return marked < len(unique)

    async def purge(self, now: datetime) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM processed_requests WHERE expires_at <= ?", (ts(now),)
            )
            removed = int(cursor.rowcount)
            await cursor.close()
        return removed
