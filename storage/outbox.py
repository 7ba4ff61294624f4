"""The outbox on SQLite: messages waiting for delivery, retried on a schedule. An item is due
when its time has come and no earlier pending item has the same key, so the messages of one
incident or proposal are delivered in order even across retries.

`enqueue_batch` queues the items an event (`storage.events`) became together with the move of
the deliverer's cursor past that event, in one transaction: an event whose items were queued
before (the cursor is already past it) is not queued again.

`claim` is `due` for several deliverers (replicas) at once: the items it returns are leased to
the caller (their next attempt moved to the end of the lease), so no other replica takes them
until the lease lapses; on PostgreSQL the due rows are locked with `FOR UPDATE SKIP LOCKED`, so
concurrent claims never wait for each other nor take the same item. An item whose lease lapsed
(its deliverer died) is claimed again with that interrupted attempt counted, so the next
deliverer treats its post as uncertain and looks it up before sending."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta

from engine.errors import NotFound
from engine.model import DEFAULT_CLUSTER, JsonDict, OutboxItem, OutboxStatus
from storage.base import SqlDatabase
from storage.codec import dumps, dumps_or_none, loads, parse_ts, parse_ts_or_none, ts
from storage.events import take_cursor

CLAIMED = "being delivered (claimed until"
"""`last_error` of a claimed item; seen again at the next claim, the claim was interrupted."""


def _row_to_item(row: sqlite3.Row) -> OutboxItem:
    return OutboxItem(
        id=row["id"],
        kind=row["kind"],
        key=row["key"],
        payload=loads(row["payload"]),
        status=OutboxStatus(row["status"]),
        attempts=row["attempts"],
        created_at=parse_ts(row["created_at"]),
        next_attempt_at=parse_ts(row["next_attempt_at"]),
        last_error=row["last_error"],
        delivered_at=parse_ts_or_none(row["delivered_at"]),
        result=loads(row["result"]),
        cluster=row["cluster"],
    )


class SqliteOutbox:
    """`engine.ports.Outbox` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def enqueue(
        self,
        kind: str,
        key: str,
        payload: JsonDict,
        *,
        now: datetime,
        cluster: str = DEFAULT_CLUSTER,
    ) -> int:
        ids = await self.enqueue_batch(kind, [(key, payload)], now=now, cluster=cluster)
        assert ids  # an unmarked batch is always queued
        return ids[0]

    async def enqueue_batch(
        self,
        kind: str,
        items: Sequence[tuple[str, JsonDict]],
        *,
        now: datetime,
        consumed: tuple[str, int] | None = None,
        cluster: str = DEFAULT_CLUSTER,
    ) -> list[int] | None:
        async with self._db.transaction() as conn:
            if consumed is not None and not await take_cursor(conn, *consumed):
                return None
            ids: list[int] = []
            for key, payload in items:
                cursor = await conn.execute(
                    "INSERT INTO outbox (kind, key, payload, created_at, next_attempt_at, "
                    "cluster) VALUES (?, ?, ?, ?, ?, ?)",
                    (kind, key, dumps(payload), ts(now), ts(now), cluster),
                )
                assert cursor.lastrowid is not None
                ids.append(cursor.lastrowid)
                await cursor.close()
        return ids

    async def list(
        self, *, statuses: Sequence[OutboxStatus] | None = None, limit: int = 50
    ) -> list[OutboxItem]:
        """Items, newest first, optionally only those in `statuses`."""
        where = ""
        params: list[object] = []
        if statuses is not None:
            if not statuses:
                return []
            where = f"WHERE status IN ({', '.join('?' * len(statuses))})"
            params.extend(s.value for s in statuses)
        rows = await self._db.fetchall(
            f"SELECT * FROM outbox {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [_row_to_item(row) for row in rows]

    async def requeue(self, item_ids: Sequence[int] | None, *, now: datetime) -> builtins.list[int]:
        """Give dead items another round of attempts (all of them when `item_ids` is None);
        returns the IDs requeued. Items that are not dead are left alone."""
        where = "status = 'dead'"
        params: list[object] = [ts(now)]
        if item_ids is not None:
            if not item_ids:
                return []
            where += f" AND id IN ({', '.join('?' * len(item_ids))})"
            params.extend(item_ids)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ? "
                f"WHERE {where} RETURNING id",
                params,
            )
            rows = await cursor.fetchall()
            await cursor.close()
        return sorted(int(row[0]) for row in rows)

    async def due(self, now: datetime, limit: int = 20) -> builtins.list[OutboxItem]:
        rows = await self._db.fetchall(
            "SELECT * FROM outbox AS o WHERE o.status = 'pending' AND o.next_attempt_at <= ? "
            "AND NOT EXISTS (SELECT 1 FROM outbox AS e WHERE e.key = o.key "
            "AND e.status = 'pending' AND e.id < o.id) ORDER BY o.id LIMIT ?",
            (ts(now), limit),
        )
        return [_row_to_item(row) for row in rows]

    async def claim(
        self, now: datetime, *, lease: timedelta, limit: int = 20
    ) -> builtins.list[OutboxItem]:
        """Take up to `limit` due items (as `due` chooses them) for this deliverer until
        `now + lease`; oldest first."""
        postgres = self._db.dialect == "postgresql"
        lock = " FOR UPDATE OF o SKIP LOCKED" if postgres else ""
        until = ts(now + lease)
        claimed = f"{CLAIMED} {until})"
        async with self._db.transaction(serialized=False) as conn:
            cursor = await conn.execute(
                "SELECT o.id FROM outbox AS o WHERE o.status = 'pending' "
                "AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox AS e "
                "WHERE e.key = o.key AND e.status = 'pending' AND e.id < o.id) "
                f"ORDER BY o.id LIMIT ?{lock}",
                (ts(now), limit),
            )
            ids = [int(row[0]) for row in await cursor.fetchall()]
            await cursor.close()
            if not ids:
                return []
            cursor = await conn.execute(
                "UPDATE outbox SET next_attempt_at = ?, attempts = attempts + CASE WHEN "
                "last_error LIKE ? THEN 1 ELSE 0 END, last_error = ? "
                f"WHERE id IN ({', '.join('?' * len(ids))}) RETURNING *",
                (until, f"{CLAIMED}%", claimed, *ids),
            )
            rows = await cursor.fetchall()
            await cursor.close()
        return sorted((_row_to_item(row) for row in rows), key=lambda item: item.id)

    async def get(self, item_id: int) -> OutboxItem | None:
        row = await self._db.fetchone("SELECT * FROM outbox WHERE id = ?", (item_id,))
        return None if row is None else _row_to_item(row)

    async def mark_delivered(
        self, item_id: int, *, now: datetime, result: JsonDict | None = None
    ) -> None:
        await self._change(
            item_id,
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, "
            "result = ? WHERE id = ?",
            (ts(now), dumps_or_none(result), item_id),
        )

    async def mark_failed(
        self, item_id: int, error: str, *, next_attempt_at: datetime | None
    ) -> None:
        if next_attempt_at is None:
            await self._change(
                item_id,
                "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (error, item_id),
            )
            return
        await self._change(
            item_id,
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
            "WHERE id = ?",
            (error, ts(next_attempt_at), item_id),
        )

    async def depth(self) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM outbox WHERE status = 'pending'")
        return int(row[0]) if row else 0

    async def _change(self, item_id: int, sql: str, params: tuple[object, ...]) -> None:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(sql, params)
            changed = cursor.rowcount
            await cursor.close()
        if changed != 1:
            raise NotFound(
                f"there is no outbox item {item_id}", kind="outbox", record_id=str(item_id)
            )
