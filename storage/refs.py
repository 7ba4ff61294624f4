"""Message references on SQLite: the chat message (channel, ts, thread_ts) each incident and
proposal owns."""

from __future__ import annotations

import sqlite3

from engine.model import MessageRef, OwnerKind
from storage.base import SqlDatabase


def _row_to_ref(row: sqlite3.Row) -> MessageRef:
    return MessageRef(
        owner_kind=OwnerKind(row["owner_kind"]),
        owner_id=row["owner_id"],
        channel=row["channel"],
        ts=row["ts"],
        thread_ts=row["thread_ts"],
    )


class SqliteSlackRefs:
    """`engine.ports.SlackRefs` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def put(self, ref: MessageRef) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO message_refs (owner_kind, owner_id, channel, ts, thread_ts) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner_kind, owner_id) DO UPDATE SET "
                "channel = excluded.channel, ts = excluded.ts, thread_ts = excluded.thread_ts",
                (ref.owner_kind.value, ref.owner_id, ref.channel, ref.ts, ref.thread_ts),
            )

    async def get(self, owner_kind: OwnerKind, owner_id: str) -> MessageRef | None:
        row = await self._db.fetchone(
            "SELECT * FROM message_refs WHERE owner_kind = ? AND owner_id = ?",
            (owner_kind.value, owner_id),
        )
        return None if row is None else _row_to_ref(row)

    async def find_by_ts(self, channel: str, ts: str) -> MessageRef | None:
        row = await self._db.fetchone(
            "SELECT * FROM message_refs WHERE channel = ? AND ts = ? ORDER BY owner_kind LIMIT 1",
            (channel, ts),
        )
        return None if row is None else _row_to_ref(row)
