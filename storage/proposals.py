"""Proposals on SQLite. `apply()` saves a transition with a compare-and-set on `version` and
its audit event in one `BEGIN IMMEDIATE` transaction: of two concurrent approvals (coroutines
or processes) exactly one wins, the other gets `StaleVersion` and re-reads. Approvals live in
their own table, one row per person."""

from __future__ import annotations

import builtins
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from engine.errors import NotFound, StaleVersion
from engine.events import EventKind, proposal_event
from engine.model import (
    ActionRef,
    Approval,
    AuditEvent,
    Execution,
    Identity,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.transitions import TransitionResult
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
from storage.executions import insert_execution, update_execution
from storage.sequences import next_id

_MUTABLE = (
    "incident_id, action, params, risk, reversible, undo, reason, origin, proposed_by, "
    "requested_by, state, version, decided_by, decided_at, decision_reason, expires_at, "
    "created_at, updated_at, preflight, preview, outcome"
)
_MARKS = ", ".join("?" * len(_MUTABLE.split(",")))


def _values(p: Proposal) -> tuple[Any, ...]:
    return (
        p.incident_id,
        p.action,
        dumps(p.params),
        p.risk.value,
        int(p.reversible),
        dumps_or_none(p.undo),
        p.reason,
        p.origin.value,
        dumps(p.proposed_by),
        dumps(p.requested_by),
        p.state.value,
        p.version,
        dumps_or_none(p.decided_by),
        ts_or_none(p.decided_at),
        p.decision_reason,
        ts(p.expires_at),
        ts(p.created_at),
        ts(p.updated_at),
        dumps(p.preflight),
        dumps_or_none(p.preview),
        p.outcome,
    )


def _row_to_proposal(row: sqlite3.Row, approvals: Sequence[Approval]) -> Proposal:
    undo = loads(row["undo"])
    decided_by = loads(row["decided_by"])
    return Proposal(
        id=row["id"],
        cluster=row["cluster"],
        incident_id=row["incident_id"],
        action=row["action"],
        params=loads(row["params"]),
        risk=RiskLevel(row["risk"]),
        reversible=bool(row["reversible"]),
        undo=None if undo is None else ActionRef.model_validate(undo),
        reason=row["reason"],
        origin=ProposalOrigin(row["origin"]),
        proposed_by=Identity.model_validate(loads(row["proposed_by"])),
        requested_by=Identity.model_validate(loads(row["requested_by"])),
        state=ProposalState(row["state"]),
        version=row["version"],
        approvals=tuple(approvals),
        decided_by=None if decided_by is None else Identity.model_validate(decided_by),
        decided_at=parse_ts_or_none(row["decided_at"]),
        decision_reason=row["decision_reason"],
        expires_at=parse_ts(row["expires_at"]),
        created_at=parse_ts(row["created_at"]),
        updated_at=parse_ts(row["updated_at"]),
        preflight=loads(row["preflight"]),
        preview=loads(row["preview"]),
        outcome=row["outcome"],
    )


def _row_to_approval(row: sqlite3.Row) -> Approval:
    return Approval(by=Identity.model_validate(loads(row["identity"])), at=parse_ts(row["at"]))


async def _insert_approvals(conn: aiosqlite.Connection, proposal: Proposal) -> None:
    for approval in proposal.approvals:
        await conn.execute(
            "INSERT OR IGNORE INTO approvals (proposal_id, approver, identity, at) "
            "VALUES (?, ?, ?, ?)",
            (proposal.id, approval.by.key, dumps(approval.by), ts(approval.at)),
        )


class SqliteProposalRepo:
    """`engine.ports.ProposalRepo` on SQLite."""

    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def next_id(self) -> str:
        return await next_id(self._db, "proposal")

    async def create(self, result: TransitionResult) -> Proposal:
        if result.previous is not None:
            raise ValueError("create() takes the result of propose(); use apply() for changes")
        proposal = result.proposal
        async with self._db.transaction() as conn:
            await conn.execute(
                f"INSERT INTO proposals (id, cluster, {_MUTABLE}) VALUES (?, ?, {_MARKS})",
                (proposal.id, proposal.cluster, *_values(proposal)),
            )
            await _insert_approvals(conn, proposal)
            audit = await insert_audit(conn, in_cluster(result.audit, proposal.cluster))
            await insert_event(
                self._db, conn, proposal_event(EventKind.PROPOSAL_MADE, proposal, audit=audit)
            )
        return proposal

    async def get(self, proposal_id: str) -> Proposal | None:
        async with self._db.read() as conn:
            found = await _select(conn, "WHERE id = ?", [proposal_id], limit=1)
        return found[0] if found else None

    async def list(
        self,
        *,
        states: Sequence[ProposalState] | None = None,
        incident_id: str | None = None,
        limit: int = 50,
        cluster: str | None = None,
    ) -> list[Proposal]:
        where: list[str] = []
        params: list[Any] = []
        if states is not None:
            if not states:
                return []
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(s.value for s in states)
        if incident_id is not None:
            where.append("incident_id = ?")
            params.append(incident_id)
        if cluster is not None:
            where.append("cluster = ?")
            params.append(cluster)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        async with self._db.read() as conn:
            return await _select(conn, clause, params, limit=limit)

    async def list_due_for_expiry(self, now: datetime) -> builtins.list[Proposal]:
        async with self._db.read() as conn:
            return await _select(
                conn,
                "WHERE state = 'proposed' AND expires_at <= ?",
                [ts(now)],
                limit=1000,
                order="expires_at, rowid",
            )

    async def apply(
        self,
        result: TransitionResult,
        *,
        start_execution: Execution | None = None,
        execution: Execution | None = None,
        also_audit: AuditEvent | None = None,
    ) -> Proposal:
        expected = result.expected_version
        new = result.proposal
        if expected is None:
            raise ValueError("apply() takes the result of transition(); use create() for new")
        if new.version != expected + 1:
            raise ValueError(
                f"a transition must bump the version by one ({expected} -> {new.version})"
            )
        for given in (start_execution, execution):
            if given is not None and given.proposal_id != new.id:
                raise ValueError("the execution belongs to another proposal")
        sets = ", ".join(f"{name.strip()} = ?" for name in _MUTABLE.split(","))
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"UPDATE proposals SET {sets} WHERE id = ? AND version = ?",
                (*_values(new), new.id, expected),
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                actual = await _version(conn, new.id)
                if actual is None:
                    raise NotFound(
                        f"there is no proposal {new.id}", kind="proposal", record_id=new.id
                    )
                raise StaleVersion(
                    f"proposal {new.id} changed while this was being decided (version "
                    f"{expected}, now {actual}); read it again",
                    record_id=new.id,
                    expected=expected,
                    actual=actual,
                )
            await _insert_approvals(conn, new)
            audit = await insert_audit(conn, in_cluster(result.audit, new.cluster))
            if start_execution is not None:
                start_execution = start_execution.model_copy(update={"cluster": new.cluster})
                await insert_execution(conn, start_execution)
            if execution is not None:
                await update_execution(conn, execution)
            if also_audit is not None:
                await insert_audit(conn, in_cluster(also_audit, new.cluster))
            event = proposal_event(
                EventKind.PROPOSAL_CHANGED,
                new,
                audit=audit,
                execution=start_execution or execution,
            )
            await insert_event(self._db, conn, event)
        return new


async def _version(conn: aiosqlite.Connection, proposal_id: str) -> int | None:
    cursor = await conn.execute("SELECT version FROM proposals WHERE id = ?", (proposal_id,))
    row = await cursor.fetchone()
    await cursor.close()
    return None if row is None else int(row[0])


async def _select(
    conn: aiosqlite.Connection,
    clause: str,
    params: Sequence[Any],
    *,
    limit: int,
    order: str = "created_at DESC, rowid DESC",
) -> list[Proposal]:
    cursor = await conn.execute(
        f"SELECT * FROM proposals {clause} ORDER BY {order} LIMIT ?", (*params, limit)
    )
    rows = list(await cursor.fetchall())
    await cursor.close()
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    cursor = await conn.execute(
        f"SELECT * FROM approvals WHERE proposal_id IN ({', '.join('?' * len(ids))}) "
        "ORDER BY at, rowid",
        ids,
    )
    approval_rows = list(await cursor.fetchall())
    await cursor.close()
    by_proposal: dict[str, list[Approval]] = {pid: [] for pid in ids}
    for row in approval_rows:
        by_proposal[row["proposal_id"]].append(_row_to_approval(row))
    return [_row_to_proposal(row, by_proposal[row["id"]]) for row in rows]
