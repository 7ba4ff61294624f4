"""The ordered event log of the transactional outbox (`engine.events`) on SQLite, and the
cursors of the durable deliverers.

`insert_event` is called by the repositories inside the transaction of the change an event
reports; the `Database` then tells its listeners (the deliverers' wake-ups) after the commit.
Readers take events in `seq` order after their cursor."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import aiosqlite

from engine.events import Event
from storage.base import SqlDatabase
from storage.codec import dumps, loads, ts


async def insert_event(db: SqlDatabase, conn: aiosqlite.Connection, event: Event) -> Event:
    """Append `event` inside the caller's transaction; returns it with its `seq`."""
    payload = event.model_dump(mode="json", exclude={"seq"})
    cursor = await conn.execute(
        "INSERT INTO events (at, kind, subject, payload, cluster) VALUES (?, ?, ?, ?, ?)",
        (ts(event.at), event.kind.value, event.subject, dumps(payload), event.cluster),
    )
    seq = cursor.lastrowid
    await cursor.close()
    assert seq is not None
    db.events_written(seq)
    return event.model_copy(update={"seq": seq})


def _row_to_event(row: sqlite3.Row) -> Event:
    data = loads(row["payload"])
    assert isinstance(data, dict)
    return Event.model_validate({**data, "seq": row["seq"]})


async def take_cursor(conn: aiosqlite.Connection, consumer: str, seq: int) -> bool:
    """Inside the caller's transaction: move `consumer`'s cursor to `seq` if it is behind it.
    False when it is not (another process, or an earlier attempt, took that event already)."""
    cursor = await conn.execute(
        "INSERT INTO event_cursors (consumer, seq) VALUES (?, ?) "
        "ON CONFLICT (consumer) DO UPDATE SET seq = excluded.seq "
        "WHERE event_cursors.seq < excluded.seq",
        (consumer, seq),
    )
    moved = cursor.rowcount == 1
    await cursor.close()
    return moved


class SqliteEventLog:
    """`engine.ports.EventLog` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def append(self, event: Event) -> Event:
        async with self._db.transaction() as conn:
            return await insert_event(self._db, conn, event)

    async def after(self, seq: int, limit: int = 100) -> list[Event]:
        rows = await self._db.fetchall(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [_row_to_event(row) for row in rows]

    async def head(self) -> int:
        row = await self._db.fetchone("SELECT coalesce(max(seq), 0) FROM events")
        return int(row[0]) if row else 0

    async def cursor(self, consumer: str) -> int:
        row = await self._db.fetchone(
            "SELECT seq FROM event_cursors WHERE consumer = ?", (consumer,)
        )
        return int(row[0]) if row else 0

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call `listener(first_seq)` after every commit that wrote events (in this process),
        with the seq of the first event of that commit."""
        self._db.add_listener(listener)


__all__ = ["SqliteEventLog", "insert_event", "take_cursor"]
