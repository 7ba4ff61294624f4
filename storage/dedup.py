"""Processed request IDs (e.g. Slack envelope IDs) on SQLite, so a retried delivery is handled
once. `seen()` is one atomic upsert: insert, or revive an expired entry, or report a repeat."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.codec import ts
from storage.db import Database


class SqliteDedupRepo:
    """`engine.ports.DedupRepo` on SQLite."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def seen(self, request_id: str, *, now: datetime, ttl: timedelta) -> bool:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO processed_requests (request_id, seen_at, expires_at) "
                "VALUES (?, ?, ?) ON CONFLICT (request_id) DO UPDATE SET "
                "seen_at = excluded.seen_at, expires_at = excluded.expires_at "
                "WHERE processed_requests.expires_at <= excluded.seen_at",
                (request_id, ts(now), ts(now + ttl)),
            )
            marked = cursor.rowcount
            await cursor.close()
        return marked == 0

    async def purge(self, now: datetime) -> int:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM processed_requests WHERE expires_at <= ?", (ts(now),)
            )
            removed = cursor.rowcount
            await cursor.close()
        return removed
