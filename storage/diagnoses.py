"""Diagnoses on SQLite: hypotheses, evidence and proposed actions as JSON columns."""

from __future__ import annotations

import sqlite3

from engine.events import Event, EventKind
from engine.model import (
    Diagnosis,
    DiagnosisSource,
    Evidence,
    Hypothesis,
    Incident,
    ProposedAction,
)
from storage.base import SqlDatabase
from storage.codec import dumps, loads, parse_ts, ts
from storage.events import insert_event


def row_to_diagnosis(row: sqlite3.Row) -> Diagnosis:
    return Diagnosis(
        id=row["id"],
        incident_id=row["incident_id"],
        source=DiagnosisSource(row["source"]),
        model=row["model"],
        prompt_version=row["prompt_version"],
        summary=row["summary"],
        causes=[Hypothesis.model_validate(c) for c in loads(row["causes"])],
        evidence=[Evidence.model_validate(e) for e in loads(row["evidence"])],
        confidence=row["confidence"],
        actions=[ProposedAction.model_validate(a) for a in loads(row["actions"])],
        error=row["error"],
        created_at=parse_ts(row["created_at"]),
    )


class SqliteDiagnosisRepo:
    """`engine.ports.DiagnosisRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def add(self, diagnosis: Diagnosis, *, incident: Incident | None = None) -> Diagnosis:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO diagnoses (incident_id, source, model, prompt_version, summary, "
                "causes, evidence, confidence, actions, error, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    diagnosis.incident_id,
                    diagnosis.source.value,
                    diagnosis.model,
                    diagnosis.prompt_version,
                    diagnosis.summary,
                    dumps(diagnosis.causes),
                    dumps(diagnosis.evidence),
                    diagnosis.confidence,
                    dumps(diagnosis.actions),
                    diagnosis.error,
                    ts(diagnosis.created_at),
                ),
            )
            new_id = cursor.lastrowid
            await cursor.close()
            stored = diagnosis.model_copy(update={"id": new_id})
            if incident is not None:
                event = Event(
                    at=stored.created_at,
                    kind=EventKind.DIAGNOSIS_READY,
                    subject=incident.id,
                    incident=incident,
                    diagnosis=stored,
                )
                await insert_event(self._db, conn, event)
        return stored

    async def latest_for(self, incident_id: str) -> Diagnosis | None:
        row = await self._db.fetchone(
            "SELECT * FROM diagnoses WHERE incident_id = ? ORDER BY id DESC LIMIT 1",
            (incident_id,),
        )
        return None if row is None else row_to_diagnosis(row)

    async def list_for(self, incident_id: str) -> list[Diagnosis]:
        rows = await self._db.fetchall(
            "SELECT * FROM diagnoses WHERE incident_id = ? ORDER BY id", (incident_id,)
        )
        return [row_to_diagnosis(row) for row in rows]
