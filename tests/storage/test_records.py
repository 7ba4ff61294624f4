"""The other stores: the append-only audit log, executions, message references, request
deduplication, the outbox and engine settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from engine.errors import NotFound, StorageError
from engine.model import (
    SYSTEM,
    AuditEvent,
    AuditOutcome,
    EngineSettings,
    ExecutionStatus,
    Identity,
    MessageRef,
    OutboxStatus,
    OwnerKind,
    ProgressNote,
)
from engine.policy import ApprovalPolicy
from engine.switches import KILL_SWITCH, switched
from storage import Database, PostgresUrl, Repositories, SqlDatabase, open_database
from tests.plugins.storage import T0, alice, bob, make_execution, make_proposal


async def _event(repos: Repositories, n: int, **changes: object) -> AuditEvent:
    fields: dict[str, object] = {
        "at": T0 + timedelta(seconds=n),
        "actor": alice() if n % 2 else bob(),
        "action": "proposal.approve" if n % 3 else "killswitch.on",
        "subject": f"P-{n % 2}",
        "detail": {"n": n},
    }
    fields.update(changes)
    return await repos.audit.append(AuditEvent(**fields))  # type: ignore[arg-type]


async def test_audit_append_and_filters(repos: Repositories) -> None:
    saved = [await _event(repos, n) for n in range(1, 7)]
    assert [e.id for e in saved] == [1, 2, 3, 4, 5, 6]
    recent = await repos.audit.list_recent(limit=3)
    assert [e.id for e in recent] == [6, 5, 4]
    assert recent[0] == saved[5]
    assert {e.subject for e in await repos.audit.list_recent(subject="P-1")} == {"P-1"}
    by_alice = await repos.audit.list_recent(actor_key="slack:U1ALICE")
    assert [e.id for e in by_alice] == [5, 3, 1]
    assert [e.id for e in await repos.audit.list_recent(action_prefix="killswitch.")] == [6, 3]
    refused = await _event(repos, 7, outcome=AuditOutcome.REFUSED, reason="not an approver")
    assert (await repos.audit.list_recent(limit=1))[0] == refused


async def test_audit_log_is_append_only(db: Database, repos: Repositories) -> None:
    await _event(repos, 1)
    with pytest.raises(StorageError, match="append-only: rows cannot be changed"):
        async with db.transaction() as conn:
            await conn.execute("UPDATE audit_log SET actor = 'someone-else'")
    with pytest.raises(StorageError, match="append-only: rows cannot be deleted"):
        async with db.transaction() as conn:
            await conn.execute("DELETE FROM audit_log")
    assert len(await repos.audit.list_recent()) == 1
    assert (await repos.audit.list_recent())[0].actor == alice()


async def _stored_proposal(repos: Repositories, pid: str) -> None:
    from engine.transitions import propose

    proposal = make_proposal(id=pid)
    await repos.proposals.create(
        propose(
            proposal_id=pid,
            action=proposal.action,
            params=proposal.params,
            risk=proposal.risk,
            origin=proposal.origin,
            proposed_by=proposal.proposed_by,
            now=T0,
            ttl=timedelta(minutes=30),
        )
    )


async def test_execution_lifecycle(repos: Repositories) -> None:
    await _stored_proposal(repos, "P-7")
    await _stored_proposal(repos, "P-8")
    started = await repos.executions.start(make_execution("P-7"))
    await repos.executions.start(make_execution("P-8", at=T0 + timedelta(seconds=1)))
    sent = started.model_copy(
        update={
            "status": ExecutionStatus.REQUEST_SENT,
            "updated_at": T0 + timedelta(seconds=2),
            "requests": [{"method": "POST", "path": "/pd/api/v1/schedulers", "body": {"x": 1}}],
            "before": {"leaders": {"4": 120}},
            "progress": [ProgressNote(at=T0, message="scheduler added")],
        }
    )
    await repos.executions.update(sent)
    assert await repos.executions.get("P-7") == sent
    assert [e.proposal_id for e in await repos.executions.list_unfinished()] == ["P-7", "P-8"]
    done = sent.model_copy(
        update={
            "status": ExecutionStatus.SUCCEEDED,
            "updated_at": T0 + timedelta(minutes=3),
            "after": {"leaders": {"4": 0}},
            "response": {"status": 200, "body": "The scheduler is created."},
            "pd_message": "The scheduler is created.",
        }
    )
    finished = await repos.executions.finish(done)
    assert finished.finished_at == T0 + timedelta(minutes=3)
    assert await repos.executions.get("P-7") == finished
    assert [e.proposal_id for e in await repos.executions.list_unfinished()] == ["P-8"]
    with pytest.raises(ValueError, match="finished status"):
        await repos.executions.finish(make_execution("P-8"))
    with pytest.raises(NotFound):
        await repos.executions.update(make_execution("P-404"))
    with pytest.raises(StorageError, match="constraint"):  # no such proposal
        await repos.executions.start(make_execution("P-404"))


async def test_message_refs(repos: Repositories) -> None:
    incident_ref = MessageRef(owner_kind=OwnerKind.INCIDENT, owner_id="I-1", channel="C1", ts="1.1")
    proposal_ref = MessageRef(
        owner_kind=OwnerKind.PROPOSAL, owner_id="P-1", channel="C1", ts="1.2", thread_ts="1.1"
    )
    await repos.slack_refs.put(incident_ref)
    await repos.slack_refs.put(proposal_ref)
    assert await repos.slack_refs.get(OwnerKind.INCIDENT, "I-1") == incident_ref
    assert await repos.slack_refs.get(OwnerKind.PROPOSAL, "P-1") == proposal_ref
    assert await repos.slack_refs.get(OwnerKind.PROPOSAL, "I-1") is None
    assert await repos.slack_refs.find_by_ts("C1", "1.2") == proposal_ref
    moved = incident_ref.model_copy(update={"channel": "C2", "ts": "9.9"})
    await repos.slack_refs.put(moved)  # replaces
    assert await repos.slack_refs.get(OwnerKind.INCIDENT, "I-1") == moved


async def test_dedup_marks_once_and_expires(repos: Repositories) -> None:
    ttl = timedelta(minutes=10)
    assert await repos.dedup.seen("env-1", now=T0, ttl=ttl) is False
    assert await repos.dedup.seen("env-1", now=T0 + timedelta(minutes=9), ttl=ttl) is True
    assert await repos.dedup.seen("env-2", now=T0, ttl=ttl) is False
    # After expiry the ID counts as new again (and is marked again).
    later = T0 + timedelta(minutes=10)
    assert await repos.dedup.seen("env-1", now=later, ttl=ttl) is False
    assert await repos.dedup.seen("env-1", now=later, ttl=ttl) is True
    assert await repos.dedup.purge(T0 + timedelta(minutes=15)) == 1  # env-2
    assert await repos.dedup.seen("env-2", now=later, ttl=ttl) is False


async def test_dedup_concurrent_marks_exactly_one_new(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    import asyncio

    other = await open_database(db_target)
    try:
        stores = [Repositories.on(db).dedup, Repositories.on(other).dedup]
        results = await asyncio.gather(
            *(stores[i % 2].seen("env-x", now=T0, ttl=timedelta(minutes=1)) for i in range(20))
        )
        assert results.count(False) == 1
    finally:
        await other.close()


async def test_outbox_order_per_key_and_retry_schedule(repos: Repositories) -> None:
    box = repos.outbox
    a1 = await box.enqueue("slack.post", "I-1", {"text": "opened"}, now=T0)
    b1 = await box.enqueue("slack.post", "I-2", {"text": "other"}, now=T0)
    a2 = await box.enqueue("slack.reply", "I-1", {"text": "update"}, now=T0)
    assert await box.depth() == 3
    # First in line per key, oldest first; a2 waits behind a1.
    assert [i.id for i in await box.due(T0)] == [a1, b1]
    assert [i.id for i in await box.due(T0, limit=1)] == [a1]

    retry_at = T0 + timedelta(seconds=30)
    await box.mark_failed(a1, "ratelimited", next_attempt_at=retry_at)
    # a1 is not due yet and still blocks a2 (order within a key survives retries).
    assert [i.id for i in await box.due(T0 + timedelta(seconds=29))] == [b1]
    item = await box.get(a1)
    assert item is not None and item.attempts == 1 and item.last_error == "ratelimited"
    assert item.next_attempt_at == retry_at
    assert [i.id for i in await box.due(retry_at)] == [a1, b1]

    await box.mark_delivered(a1, now=retry_at, result={"ts": "1.1"})
    delivered = await box.get(a1)
    assert delivered is not None and delivered.status is OutboxStatus.DELIVERED
    assert delivered.result == {"ts": "1.1"} and delivered.attempts == 2
    assert [i.id for i in await box.due(retry_at)] == [b1, a2]
    assert (await box.due(retry_at))[1].payload == {"text": "update"}

    await box.mark_failed(b1, "channel_not_found", next_attempt_at=None)  # give up
    dead = await box.get(b1)
    assert dead is not None and dead.status is OutboxStatus.DEAD
    assert [i.id for i in await box.due(retry_at)] == [a2]
    assert await box.depth() == 1
    with pytest.raises(NotFound):
        await box.mark_delivered(999, now=T0)


async def test_engine_settings_with_audit(repos: Repositories) -> None:
    assert await repos.settings.get() == EngineSettings()
    policy = ApprovalPolicy(approvers=frozenset({"U1ALICE"}))
    new, event = switched(
        policy,
        await repos.settings.get(),
        KILL_SWITCH,
        on=True,
        actor=alice(),
        now=T0,
        reason="PD upgrade",
    )
    await repos.settings.save(new, audit=event)
    loaded = await repos.settings.get()
    assert loaded == new
    assert loaded.kill_switch.on and loaded.kill_switch.by == alice()
    assert loaded.kill_switch.reason == "PD upgrade"
    events = await repos.audit.list_recent(subject="engine")
    assert [e.action for e in events] == ["killswitch.on"]
    observing = loaded.model_copy(update={"observe_only": True})
    await repos.settings.save(
        observing,
        audit=AuditEvent(
            at=T0, actor=Identity.cli("root@host"), action="observe_only.on", subject="engine"
        ),
    )
    assert (await repos.settings.get()).observe_only is True
    assert (await repos.settings.get()).kill_switch == loaded.kill_switch
    assert SYSTEM.key == "system"
