"""The append-only audit log (UPDATE and DELETE are refused by triggers in the schema). Each row
names its cluster: the event's, or else its subject's (a proposal or an incident)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from engine.events import Event
from engine.model import DEFAULT_CLUSTER, AuditEvent, AuditOutcome, Identity
from storage.base import SqlDatabase
from storage.codec import dumps, loads, parse_ts, ts
from storage.events import insert_event


async def insert_audit(conn: aiosqlite.Connection, event: AuditEvent) -> AuditEvent:
    """Append `event` inside the caller's transaction; returns it with its ID."""
    cursor = await conn.execute(
        "INSERT INTO audit_log (at, actor, actor_identity, action, subject, detail, outcome, "
        "reason, cluster) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        # An event that names no cluster takes its subject's (a proposal's or an incident's).
        "CASE WHEN ? <> 'default' THEN ? ELSE coalesce("
        "(SELECT cluster FROM proposals WHERE id = ?), "
        "(SELECT cluster FROM incidents WHERE id = ?), 'default') END)",
        (
            ts(event.at),
            event.actor.key,
            dumps(event.actor),
            event.action,
            event.subject,
            dumps(event.detail),
            event.outcome.value,
            event.reason,
            event.cluster,
            event.cluster,
            event.subject,
            event.subject,
        ),
    )
    new_id = cursor.lastrowid
    await cursor.close()
    return event.model_copy(update={"id": new_id})


def in_cluster(event: AuditEvent, cluster: str) -> AuditEvent:
    """`event` as the audit of a record of `cluster` (an event built without one names the
    record's cluster)."""
    if event.cluster == cluster or event.cluster != DEFAULT_CLUSTER:
        return event
    return event.model_copy(update={"cluster": cluster})


def row_to_audit(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        at=parse_ts(row["at"]),
        actor=Identity.model_validate(loads(row["actor_identity"])),
        action=row["action"],
        subject=row["subject"],
        detail=loads(row["detail"]),
        outcome=AuditOutcome(row["outcome"]),
        reason=row["reason"],
        cluster=row["cluster"],
    )


class SqliteAuditLog:
    """`engine.ports.AuditLog` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def append(self, event: AuditEvent, *, events: Sequence[Event] = ()) -> AuditEvent:
        """Append `event`; with `events`, write those in the same transaction (an event whose
        `audit` is this one gets it with its ID)."""
        async with self._db.transaction() as conn:
            stored = await insert_audit(conn, event)
            for told in events:
                with_id = told.model_copy(update={"audit": stored}) if told.audit == event else told
                await insert_event(self._db, conn, with_id)
            return stored

    async def list_recent(
        self,
        *,
        limit: int = 50,
        subject: str | None = None,
        actor_key: str | None = None,
        action_prefix: str | None = None,
    ) -> list[AuditEvent]:
        where: list[str] = []
        params: list[Any] = []
        if subject is not None:
            where.append("subject = ?")
            params.append(subject)
        if actor_key is not None:
            where.append("actor = ?")
            params.append(actor_key)
        if action_prefix is not None:
            where.append("substr(action, 1, ?) = ?")
            params.extend([len(action_prefix), action_prefix])
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._db.fetchall(
            f"SELECT * FROM audit_log {clause} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [row_to_audit(row) for row in rows]
