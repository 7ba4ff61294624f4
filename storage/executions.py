"""Executions on SQLite: one row per proposal (the primary key), written before the PD request
and updated as it progresses, so a restart finds what was interrupted."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from engine.errors import ExecutionAlreadyStarted, ExecutionFinished, NotFound
from engine.events import Event
from engine.model import (
    UNFINISHED_EXECUTION,
    AuditEvent,
    Execution,
    ExecutionStatus,
    ProgressNote,
)
from storage.audit import in_cluster, insert_audit
from storage.base import SqlDatabase
from storage.codec import (
    dumps,
    dumps_or_none,
    loads,
    parse_ts,
    parse_ts_or_none,
    ts,
    ts_or_none,
)
from storage.events import insert_event

_MUTABLE = (
    "status, updated_at, finished_at, requests, response, pd_message, before, after, "
    "progress, error"
)


def _mutable_values(execution: Execution) -> tuple[Any, ...]:
    return (
        execution.status.value,
        ts(execution.updated_at),
        ts_or_none(execution.finished_at),
        dumps(execution.requests),
        dumps_or_none(execution.response),
        execution.pd_message,
        dumps_or_none(execution.before),
        dumps_or_none(execution.after),
        dumps(execution.progress),
        execution.error,
    )


async def insert_execution(conn: aiosqlite.Connection, execution: Execution) -> Execution:
    """Insert inside the caller's transaction; a second execution of a proposal is refused."""
    try:
        await conn.execute(
            f"INSERT INTO executions (proposal_id, started_at, {_MUTABLE}, cluster) "
            f"VALUES (?, ?, {', '.join('?' * 10)}, "
            "coalesce((SELECT cluster FROM proposals WHERE id = ?), ?))",
            (
                execution.proposal_id,
                ts(execution.started_at),
                *_mutable_values(execution),
                execution.proposal_id,
                execution.cluster,
            ),
        )
    except sqlite3.IntegrityError as exc:
        if "executions.proposal_id" not in str(exc):
            raise
        raise ExecutionAlreadyStarted(
            f"proposal {execution.proposal_id} already has an execution; it never runs twice",
            proposal_id=execution.proposal_id,
        ) from None
    return execution


async def update_execution(conn: aiosqlite.Connection, execution: Execution) -> bool:
    """Replace the stored record inside the caller's transaction; False if there is none, or if
    it is finished: a finished record is never changed (a run that a reconciler of another
    process settled meanwhile must not overwrite the settlement)."""
    sets = ", ".join(f"{name.strip()} = ?" for name in _MUTABLE.split(","))
    cursor = await conn.execute(
        f"UPDATE executions SET {sets} WHERE proposal_id = ? AND finished_at IS NULL",
        (*_mutable_values(execution), execution.proposal_id),
    )
    changed = cursor.rowcount == 1
    await cursor.close()
    return changed


def row_to_execution(row: sqlite3.Row) -> Execution:
    return Execution(
        proposal_id=row["proposal_id"],
        cluster=row["cluster"],
        status=ExecutionStatus(row["status"]),
        started_at=parse_ts(row["started_at"]),
        updated_at=parse_ts(row["updated_at"]),
        finished_at=parse_ts_or_none(row["finished_at"]),
        requests=loads(row["requests"]),
        response=loads(row["response"]),
        pd_message=row["pd_message"],
        before=loads(row["before"]),
        after=loads(row["after"]),
        progress=[ProgressNote.model_validate(p) for p in loads(row["progress"])],
        error=row["error"],
    )


class SqliteExecutionRepo:
    """`engine.ports.ExecutionRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def start(self, execution: Execution) -> Execution:
        async with self._db.transaction() as conn:
            return await insert_execution(conn, execution)

    async def get(self, proposal_id: str) -> Execution | None:
        row = await self._db.fetchone(
            "SELECT * FROM executions WHERE proposal_id = ?", (proposal_id,)
        )
        return None if row is None else row_to_execution(row)

    async def update(
        self,
        execution: Execution,
        *,
        audit: AuditEvent | None = None,
        events: Sequence[Event] = (),
    ) -> Execution:
        async with self._db.transaction() as conn:
            changed = await update_execution(conn, execution)
            if changed and audit is not None:
                await insert_audit(conn, in_cluster(audit, execution.cluster))
            if changed:
                for event in events:
                    await insert_event(self._db, conn, event)
        if not changed:
            if await self.get(execution.proposal_id) is not None:
                raise ExecutionFinished(
                    f"the execution of proposal {execution.proposal_id} is already finished; "
                    "a finished record is never changed",
                    proposal_id=execution.proposal_id,
                )
            raise NotFound(
                f"there is no execution of proposal {execution.proposal_id}; start() it first",
                kind="execution",
                record_id=execution.proposal_id,
            )
        return execution

    async def finish(self, execution: Execution) -> Execution:
        if not execution.is_finished:
            raise ValueError(
                f"finish() needs a finished status, not {execution.status.value!r}; use update()"
            )
        if execution.finished_at is None:
            execution = execution.model_copy(update={"finished_at": execution.updated_at})
        return await self.update(execution)

    async def list_unfinished(self) -> list[Execution]:
        marks = ", ".join("?" * len(UNFINISHED_EXECUTION))
        rows = await self._db.fetchall(
            f"SELECT * FROM executions WHERE status IN ({marks}) ORDER BY started_at",
            [s.value for s in sorted(UNFINISHED_EXECUTION)],
        )
        return [row_to_execution(row) for row in rows]
