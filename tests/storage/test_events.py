"""The transactional outbox on SQLite: every change writes its event in the same transaction
(a change that is rolled back leaves no event), events are read in order, a deliverer's cursor
moves with the outbox items an event became (once, also when two try at once), and an
existing version-3 database upgrades without losing open incidents, proposals or owed
messages."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import aiosqlite
import pytest

from engine.errors import StaleVersion
from engine.events import EventKind
from engine.model import AuditEvent, ExecutionStatus, Incident, Proposal, ProposalState
from engine.transitions import ProposalEvent, propose, transition
from storage import Database, Repositories, latest_version
from storage.codec import dumps, ts
from storage.executions import _MUTABLE as EXECUTION_COLUMNS
from storage.executions import _mutable_values as execution_values
from storage.incidents import _COLUMNS
from storage.incidents import _values as incident_values
from storage.proposals import _MARKS, _MUTABLE, _insert_approvals
from storage.proposals import _values as proposal_values
from tests.plugins.storage import (
    T0,
    alice,
    bob,
    make_execution,
    make_incident,
    make_proposal,
)


async def test_each_change_writes_its_event_in_order(repos: Repositories) -> None:
    incident = await repos.incidents.create(make_incident(id=await repos.incidents.next_id()))
    made = propose(
        proposal_id=await repos.proposals.next_id(),
        action="drain",
        params={"store_id": 4},
        risk=make_proposal().risk,
        origin=make_proposal().origin,
        proposed_by=alice(),
        now=T0,
        ttl=timedelta(minutes=30),
        incident_id=incident.id,
    )
    proposal = await repos.proposals.create(made)
    approved = await repos.proposals.apply(
        transition(proposal, ProposalEvent.APPROVE, actor=bob(), now=T0)
    )
    resolved = await repos.incidents.update(
        incident.model_copy(update={"title": "changed"}), announce=EventKind.INCIDENT_RESOLVED
    )
    await repos.incidents.update(resolved)  # no announce: no event
    events = await repos.events.after(0)
    assert [(e.kind, e.subject) for e in events] == [
        (EventKind.INCIDENT_OPENED, incident.id),
        (EventKind.PROPOSAL_MADE, proposal.id),
        (EventKind.PROPOSAL_CHANGED, proposal.id),
        (EventKind.INCIDENT_RESOLVED, incident.id),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events if e.seq is not None)
    changed = events[2]
    assert changed.proposal == approved and changed.proposal.state is ProposalState.APPROVED
    assert changed.audit is not None and changed.audit.action == "proposal.approve"
    assert changed.audit.id is not None  # the stored audit row, with its ID
    assert events[3].incident is not None and events[3].incident.version == 2
    assert await repos.events.head() == events[-1].seq
    assert await repos.events.after(events[1].seq or 0, limit=1) == [changed]


async def test_a_change_that_loses_its_compare_and_set_writes_no_event(
    repos: Repositories,
) -> None:
    proposal = await repos.proposals.create(
        propose(
            proposal_id="P-1",
            action="drain",
            params={"store_id": 4},
            risk=make_proposal().risk,
            origin=make_proposal().origin,
            proposed_by=alice(),
            now=T0,
            ttl=timedelta(minutes=30),
        )
    )
    first = transition(proposal, ProposalEvent.APPROVE, actor=bob(), now=T0)
    second = transition(proposal, ProposalEvent.REJECT, actor=bob(), now=T0)
    await repos.proposals.apply(first)
    with pytest.raises(StaleVersion):
        await repos.proposals.apply(second)
    kinds = [e.kind for e in await repos.events.after(0)]
    assert kinds == [EventKind.PROPOSAL_MADE, EventKind.PROPOSAL_CHANGED]


async def test_listeners_hear_the_first_seq_after_the_commit(repos: Repositories) -> None:
    heard: list[int] = []
    repos.events.subscribe(heard.append)
    incident = await repos.incidents.create(make_incident(id="I-1"))
    await repos.incidents.update(incident)  # wrote no event: nobody is woken
    assert heard == [await repos.events.head()]


async def test_a_cursor_moves_once_with_the_items_of_its_event(repos: Repositories) -> None:
    items = [("incident:I-1", {"op": "post", "n": 1}), ("incident:I-1", {"op": "post", "n": 2})]
    first = await repos.outbox.enqueue_batch("slack", items, now=T0, consumed=("slack", 1))
    again = await repos.outbox.enqueue_batch("slack", items, now=T0, consumed=("slack", 1))
    assert first is not None and len(first) == 2
    assert again is None  # the cursor was there: nothing queued
    assert await repos.events.cursor("slack") == 1
    assert await repos.events.cursor("other") == 0
    empty = await repos.outbox.enqueue_batch("slack", [], now=T0, consumed=("slack", 2))
    assert empty == [] and await repos.events.cursor("slack") == 2  # nothing to say: still moves
    assert await repos.outbox.depth() == 2


async def test_concurrent_deliveries_of_one_event_queue_once(repos: Repositories) -> None:
    results = await asyncio.gather(
        *(
            repos.outbox.enqueue_batch("slack", [("k", {"i": i})], now=T0, consumed=("slack", 7))
            for i in range(20)
        )
    )
    assert sum(1 for r in results if r is not None) == 1
    assert await repos.outbox.depth() == 1


async def _write_v3(db: Database, incident: Incident, *proposals: Proposal) -> None:
    """Rows as a version-3 tikvops wrote them (no events; a mark per told change)."""
    async with db.transaction() as conn:
        await conn.execute(
            f"INSERT INTO incidents (id, {_COLUMNS}, version) VALUES (?, {', '.join('?' * 15)}, 1)",
            (incident.id, *incident_values(incident)),
        )
        for proposal in proposals:
            await conn.execute(
                f"INSERT INTO proposals (id, {_MUTABLE}) VALUES (?, {_MARKS})",
                (proposal.id, *proposal_values(proposal)),
            )
            await _insert_approvals(conn, proposal)
            audit = make_audit(proposal)
            await conn.execute(
                "INSERT INTO audit_log (at, actor, actor_identity, action, subject, detail, "
                "outcome, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ts(audit.at),
                    audit.actor.key,
                    dumps(audit.actor),
                    audit.action,
                    audit.subject,
                    dumps(audit.detail),
                    audit.outcome.value,
                    audit.reason,
                ),
            )
        execution = make_execution("P-2", status=ExecutionStatus.VERIFYING)
        await conn.execute(
            f"INSERT INTO executions (proposal_id, started_at, {EXECUTION_COLUMNS}) "
            f"VALUES (?, ?, {', '.join('?' * 10)})",
            (execution.proposal_id, ts(execution.started_at), *execution_values(execution)),
        )
        await _v3_outbox(conn)


def make_audit(proposal: Proposal) -> AuditEvent:
    return propose(
        proposal_id=proposal.id,
        action=proposal.action,
        params=proposal.params,
        risk=proposal.risk,
        origin=proposal.origin,
        proposed_by=proposal.proposed_by,
        now=T0,
        ttl=timedelta(minutes=30),
    ).audit


async def _v3_outbox(conn: aiosqlite.Connection) -> None:
    await conn.execute(
        "INSERT INTO outbox (kind, key, payload, created_at, next_attempt_at) "
        'VALUES (\'slack\', \'incident:I-1\', \'{"op": "post", "text": "owed"}\', ?, ?)',
        (T0.isoformat(), T0.isoformat()),
    )
    await conn.execute(
        "INSERT INTO notified (mark, at) VALUES ('slack:incident:I-1:opened', ?)",
        (T0.isoformat(),),
    )


async def test_a_version_3_database_upgrades_keeping_incidents_proposals_and_owed_messages(
    db_path: Path,
) -> None:
    incident = make_incident(id="I-1")
    proposal = make_proposal(id="P-1", incident_id="I-1")
    running = make_proposal(ProposalState.EXECUTING, id="P-2", incident_id="I-1")
    old = await Database.open(db_path, migrate_to=3)
    try:
        assert await old.schema_version() == 3
        await _write_v3(old, incident, proposal, running)
    finally:
        await old.close()

    new = await Database.open(db_path)
    try:
        assert await new.schema_version() == latest_version()
        repos = Repositories.on(new)
        assert [i.id for i in await repos.incidents.list_open()] == ["I-1"]
        assert await repos.incidents.get("I-1") == incident
        assert await repos.proposals.get("P-1") == proposal
        assert await repos.proposals.get("P-2") == running  # with its approval
        assert running.approvals and (await repos.executions.get("P-2")) is not None
        assert await new.fetchall("PRAGMA foreign_key_check") == []
        fk = await new.fetchone("PRAGMA foreign_keys")
        assert fk is not None and fk[0] == 1  # back on after the table was rebuilt
        [owed] = await repos.outbox.due(T0)
        assert owed.payload == {"op": "post", "text": "owed"}
        tables = {
            row[0]
            for row in await new.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert "notified" not in tables and {"events", "event_cursors"} <= tables
        # Nothing stored before the upgrade is told again; what changes now is.
        assert await repos.events.after(0) == []
        approved = await repos.proposals.apply(
            transition(proposal, ProposalEvent.APPROVE, actor=bob(), now=T0)
        )
        [event] = await repos.events.after(0)
        assert event.kind is EventKind.PROPOSAL_CHANGED and event.proposal == approved
        # The new end state of a run can be stored (the state's CHECK was widened).
        ended = await repos.proposals.apply(
            transition(running, ProposalEvent.UNVERIFIED, actor=bob(), now=T0, outcome="x")
        )
        assert (await repos.proposals.get("P-2")) == ended
        assert ended.state is ProposalState.UNVERIFIED
    finally:
        await new.close()
