"""Who attends to an incident (owner, silence) on SQLite: the `attention` column of
`incidents` (JSON, migration 0005), written with a compare-and-set on the incident's version,
together with its audit row and its event, in one transaction (the transactional outbox)."""

from __future__ import annotations

import json
import logging
import sqlite3

from engine.errors import NotFound, StaleVersion
from engine.events import Event, EventKind
from engine.model import Attention, AuditEvent, Incident
from storage.audit import insert_audit
from storage.base import SqlDatabase
from storage.codec import dumps
from storage.events import insert_event

logger = logging.getLogger(__name__)


def attention_of(row: sqlite3.Row) -> Attention:
    """The attention stored in an incident row (empty when NULL, or unreadable: logged)."""
    raw = row["attention"]
    if not raw:
        return Attention()
    try:
        return Attention.model_validate(json.loads(raw))
    except ValueError:
        logger.warning("incident %s has an unreadable attention record; shown as none", row["id"])
        return Attention()


class SqliteAttentionRepo:
    """`engine.ports.AttentionRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save(self, incident: Incident, attention: Attention, audit: AuditEvent) -> Incident:
        """Store `attention` on `incident` if it is still at `incident.version` (bumped), with
        `audit` and an `incident.attention` event carrying both; returns the stored incident.
        Raises `StaleVersion` when the incident changed meanwhile, `NotFound` when it is gone."""
        saved = incident.model_copy(
            update={"attention": attention, "version": incident.version + 1}
        )
        stored = None if attention == Attention() else dumps(attention)
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE incidents SET attention = ?, version = version + 1 "
                "WHERE id = ? AND version = ?",
                (stored, incident.id, incident.version),
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                cursor = await conn.execute(
                    "SELECT version FROM incidents WHERE id = ?", (incident.id,)
                )
                row = await cursor.fetchone()
                await cursor.close()
                if row is None:
                    raise NotFound(
                        f"there is no incident {incident.id}",
                        kind="incident",
                        record_id=incident.id,
                    )
                raise StaleVersion(
                    f"incident {incident.id} changed while it was being updated (version "
                    f"{incident.version}, now {int(row[0])}); read it again",
                    record_id=incident.id,
                    expected=incident.version,
                    actual=int(row[0]),
                )
            await insert_audit(conn, audit)
            await insert_event(
                self._db,
                conn,
                Event(
                    at=audit.at,
                    kind=EventKind.INCIDENT_ATTENTION,
                    subject=incident.id,
                    incident=saved,
                    audit=audit,
                ),
            )
        return saved


__all__ = ["SqliteAttentionRepo", "attention_of"]
