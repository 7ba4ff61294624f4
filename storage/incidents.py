"""Incidents on SQLite: at most one open incident per fingerprint (a partial unique index),
updates by compare-and-set on `version`."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

import aiosqlite

from engine.errors import DuplicateIncident, NotFound, StaleVersion
from engine.events import EventKind, IncidentChange, incident_event
from engine.model import DEFAULT_CLUSTER, AuditEvent, Incident, IncidentStatus, Severity
from storage.attention import attention_of
from storage.audit import in_cluster, insert_audit
from storage.base import SqlDatabase
from storage.codec import dumps, loads, parse_ts, parse_ts_or_none, ts, ts_or_none
from storage.events import insert_event
from storage.sequences import next_id

_COLUMNS = (
    "fingerprint, kind, subject, severity, worst_severity, status, title, value, threshold, "
    "details, opened_at, updated_at, last_seen_at, clear_since, resolved_at"
)


def _values(incident: Incident) -> tuple[Any, ...]:
    return (
        incident.fingerprint,
        incident.kind,
        incident.subject,
        incident.severity.value,
        incident.worst_severity.value,
        incident.status.value,
        incident.title,
        incident.value,
        incident.threshold,
        dumps(incident.details),
        ts(incident.opened_at),
        ts(incident.updated_at),
        ts(incident.last_seen_at),
        ts_or_none(incident.clear_since),
        ts_or_none(incident.resolved_at),
    )


def row_to_incident(row: sqlite3.Row) -> Incident:
    return Incident(
        id=row["id"],
        cluster=row["cluster"],
        fingerprint=row["fingerprint"],
        kind=row["kind"],
        subject=row["subject"],
        severity=Severity(row["severity"]),
        worst_severity=Severity(row["worst_severity"]),
        status=IncidentStatus(row["status"]),
        title=row["title"],
        value=row["value"],
        threshold=row["threshold"],
        details=loads(row["details"]),
        opened_at=parse_ts(row["opened_at"]),
        updated_at=parse_ts(row["updated_at"]),
        last_seen_at=parse_ts(row["last_seen_at"]),
        clear_since=parse_ts_or_none(row["clear_since"]),
        resolved_at=parse_ts_or_none(row["resolved_at"]),
        version=row["version"],
        attention=attention_of(row),
    )


class SqliteIncidentRepo:
    """`engine.ports.IncidentRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def next_id(self) -> str:
        return await next_id(self._db, "incident")

    async def get(self, incident_id: str) -> Incident | None:
        row = await self._db.fetchone("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return None if row is None else row_to_incident(row)

    async def get_open_by_fingerprint(
        self, fingerprint: str, cluster: str = DEFAULT_CLUSTER
    ) -> Incident | None:
        row = await self._db.fetchone(
            "SELECT * FROM incidents WHERE cluster = ? AND fingerprint = ? AND status = 'open'",
            (cluster, fingerprint),
        )
        return None if row is None else row_to_incident(row)

    async def list_open(self, cluster: str | None = None) -> list[Incident]:
        """Open incidents, oldest first; of one cluster when `cluster` is given."""
        if cluster is None:
            rows = await self._db.fetchall(
                "SELECT * FROM incidents WHERE status = 'open' ORDER BY opened_at, id"
            )
        else:
            rows = await self._db.fetchall(
                "SELECT * FROM incidents WHERE status = 'open' AND cluster = ? "
                "ORDER BY opened_at, id",
                (cluster,),
            )
        return [row_to_incident(row) for row in rows]

    async def list(
        self,
        *,
        status: IncidentStatus | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[Incident]:
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(status.value)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if since is not None:
            where.append("opened_at >= ?")
            params.append(ts(since))
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._db.fetchall(
            f"SELECT * FROM incidents {clause} ORDER BY opened_at DESC, rowid DESC LIMIT ?",
            [*params, limit],
        )
        return [row_to_incident(row) for row in rows]

    async def create(self, incident: Incident, *, audit: AuditEvent | None = None) -> Incident:
        stored = incident.model_copy(update={"version": 1})
        async with self._db.transaction() as conn:
            try:
                await conn.execute(
                    f"INSERT INTO incidents (id, cluster, {_COLUMNS}, version) "
                    f"VALUES (?, ?, {', '.join('?' * 15)}, 1)",
                    (incident.id, incident.cluster, *_values(incident)),
                )
            except sqlite3.IntegrityError as exc:
                existing = await _open_id(conn, incident.fingerprint, incident.cluster)
                if existing is None and "incidents.id" not in str(exc):
                    raise
                if existing is None:
                    raise DuplicateIncident(
                        f"incident {incident.id} already exists; allocate IDs with next_id()",
                        fingerprint=incident.fingerprint,
                        existing_id=incident.id,
                    ) from None
                raise DuplicateIncident(
                    f"an open incident for {incident.fingerprint} already exists ({existing}); "
                    "update that one instead",
                    fingerprint=incident.fingerprint,
                    existing_id=existing,
                ) from None
            if audit is not None:
                await insert_audit(conn, in_cluster(audit, incident.cluster))
            await insert_event(self._db, conn, incident_event(EventKind.INCIDENT_OPENED, stored))
        return stored

    async def update(
        self,
        incident: Incident,
        *,
        audit: AuditEvent | None = None,
        announce: EventKind | None = None,
        notes: tuple[IncidentChange, ...] = (),
        previous_severity: Severity | None = None,
    ) -> Incident:
        saved = incident.model_copy(update={"version": incident.version + 1})
        sets = ", ".join(f"{name.strip()} = ?" for name in _COLUMNS.split(","))
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE incidents SET {sets}, version = version + 1 WHERE id = ? AND version = ?",
                (*_values(incident), incident.id, incident.version),
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                actual = await _version(conn, incident.id)
                if actual is None:
                    raise NotFound(
                        f"there is no incident {incident.id}",
                        kind="incident",
                        record_id=incident.id,
                    )
                raise StaleVersion(
                    f"incident {incident.id} changed while it was being updated (version "
                    f"{incident.version}, now {actual}); read it again",
                    record_id=incident.id,
                    expected=incident.version,
                    actual=actual,
                )
            if audit is not None:
                await insert_audit(conn, in_cluster(audit, incident.cluster))
            if announce is not None:
                await insert_event(
                    self._db, conn, incident_event(announce, saved, notes, previous_severity)
                )
        return saved


async def _open_id(conn: aiosqlite.Connection, fingerprint: str, cluster: str) -> str | None:
    cursor = await conn.execute(
        "SELECT id FROM incidents WHERE cluster = ? AND fingerprint = ? AND status = 'open'",
        (cluster, fingerprint),
    )
    row = await cursor.fetchone()
    await cursor.close()
    return None if row is None else str(row[0])


async def _version(conn: aiosqlite.Connection, incident_id: str) -> int | None:
    cursor = await conn.execute("SELECT version FROM incidents WHERE id = ?", (incident_id,))
    row = await cursor.fetchone()
    await cursor.close()
    return None if row is None else int(row[0])
