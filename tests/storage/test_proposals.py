"""Proposals in SQLite: round-trips, compare-and-set, concurrent approvals (one connection, two
connections, two real processes), one execution per proposal, and IDs unique across
connections."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from engine.applying import apply_transition
from engine.errors import AlreadyDecided, ExecutionAlreadyStarted, StaleVersion
from engine.model import (
    SYSTEM,
    ActionRef,
    AuditEvent,
    AuditOutcome,
    ExecutionStatus,
    Identity,
    Proposal,
    ProposalOrigin,
    ProposalState,
    RiskLevel,
)
from engine.policy import ANYONE, ApprovalPolicy
from engine.transitions import ProposalEvent, TransitionResult, propose, transition
from storage import PostgresUrl, Repositories, SqlDatabase, open_database
from tests.plugins.storage import T0, alice, bob, make_execution

POLICY = ApprovalPolicy(approvers=frozenset({ANYONE}))


async def _create(repos: Repositories, **overrides: object) -> Proposal:
    fields: dict[str, object] = {
        "proposal_id": await repos.proposals.next_id(),
        "action": "drain-store",
        "params": {"store_id": 4},
        "risk": RiskLevel.HIGH,
        "origin": ProposalOrigin.USER,
        "proposed_by": alice(),
        "now": T0,
        "ttl": timedelta(minutes=30),
        "reversible": True,
        "undo": ActionRef(action="undrain-store", params={"store_id": 4}),
        "reason": "store 4 is slow",
        "preflight": [{"name": "store 4 is Up", "ok": True}],
        "preview": {"leaders_to_move": 120},
    }
    fields.update(overrides)
    return await repos.proposals.create(propose(**fields))  # type: ignore[arg-type]


async def test_create_get_round_trip_and_audit(repos: Repositories) -> None:
    created = await _create(repos)
    assert created.id == "P-1"
    assert await repos.proposals.get("P-1") == created
    assert await repos.proposals.get("P-404") is None
    events = await repos.audit.list_recent(subject="P-1")
    assert [e.action for e in events] == ["proposal.created"]
    assert events[0].actor == alice()


async def test_apply_saves_state_approvals_and_audit_atomically(repos: Repositories) -> None:
    policy = ApprovalPolicy(approvers=frozenset({ANYONE}), high_risk_approvals=2)
    created = await _create(repos)
    first = policy.decide(ProposalEvent.APPROVE, created, bob(), T0 + timedelta(minutes=1))
    await repos.proposals.apply(first)
    carol = Identity.slack("U3CAROL", groups=("S1",))
    second = policy.decide(ProposalEvent.APPROVE, first.proposal, carol, T0 + timedelta(minutes=2))
    saved = await repos.proposals.apply(second)
    loaded = await repos.proposals.get(created.id)
    assert loaded == saved == second.proposal
    assert loaded.state is ProposalState.APPROVED and loaded.version == 3
    assert [a.by for a in loaded.approvals] == [bob(), carol]
    assert loaded.approvals[1].by.groups == ("S1",)
    actions = [e.action for e in await repos.audit.list_recent(subject=created.id)]
    assert actions == ["proposal.approve", "proposal.approve", "proposal.created"]


async def test_stale_apply_is_refused_and_changes_nothing(repos: Repositories) -> None:
    created = await _create(repos)
    approve = transition(created, ProposalEvent.APPROVE, actor=bob(), now=T0)
    reject = transition(created, ProposalEvent.REJECT, actor=alice(), now=T0)
    await repos.proposals.apply(approve)
    with pytest.raises(StaleVersion) as caught:
        await repos.proposals.apply(reject)
    assert caught.value.expected == 1 and caught.value.actual == 2
    assert "changed while this was being decided" in str(caught.value)
    loaded = await repos.proposals.get(created.id)
    assert loaded is not None and loaded.state is ProposalState.APPROVED
    # The losing audit row was not written either (same transaction).
    actions = [e.action for e in await repos.audit.list_recent(subject=created.id)]
    assert "proposal.reject" not in actions


async def test_apply_refuses_results_that_skip_versions(repos: Repositories) -> None:
    created = await _create(repos)
    result = transition(created, ProposalEvent.APPROVE, actor=bob(), now=T0)
    bad = TransitionResult(
        proposal=result.proposal.model_copy(update={"version": 5}),
        audit=result.audit,
        previous=created,
        event=ProposalEvent.APPROVE,
    )
    with pytest.raises(ValueError, match="bump the version by one"):
        await repos.proposals.apply(bad)


class _CountingRepo:
    """Passes through to the SQLite repo, counting lost compare-and-sets."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.stale = 0

    async def get(self, proposal_id: str) -> Proposal | None:
        return await self.inner.get(proposal_id)  # type: ignore[attr-defined, no-any-return]

    async def apply(self, result: TransitionResult) -> Proposal:
        try:
            return await self.inner.apply(result)  # type: ignore[attr-defined, no-any-return]
        except StaleVersion:
            self.stale += 1
            raise


async def _race(
    repos_list: list[Repositories], proposal_id: str, count: int
) -> tuple[list[TransitionResult], list[AlreadyDecided], int]:
    counting = [_CountingRepo(r.proposals) for r in repos_list]
    approvers = [Identity.slack(f"U{i:03d}") for i in range(count)]

    async def one(i: int) -> TransitionResult:
        repo = counting[i % len(counting)]
        return await apply_transition(
            repo,
            proposal_id,
            lambda p: POLICY.decide(ProposalEvent.APPROVE, p, approvers[i], T0),
            attempts=count + 1,
        )

    outcomes = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
    wins = [o for o in outcomes if isinstance(o, TransitionResult)]
    losses = [o for o in outcomes if isinstance(o, AlreadyDecided)]
    others = [o for o in outcomes if not isinstance(o, TransitionResult | AlreadyDecided)]
    assert others == []
    return wins, losses, sum(c.stale for c in counting)


async def test_fifty_concurrent_approvals_exactly_one_wins(repos: Repositories) -> None:
    created = await _create(repos)
    wins, losses, stale = await _race([repos], created.id, 50)
    assert len(wins) == 1 and len(losses) == 49
    assert stale >= 1  # the race really happened: losers lost a compare-and-set
    winner = wins[0].proposal.decided_by
    assert winner is not None
    expected = (
        f"proposal {created.id} approve refused: it is approved, by {winner.name} at 14:00 UTC"
    )
    assert {str(loss) for loss in losses} == {expected}
    assert {loss.observed.decided_by for loss in losses if loss.observed} == {winner}
    stored = await repos.proposals.get(created.id)
    assert stored is not None
    assert stored.state is ProposalState.APPROVED and stored.version == 2
    assert [a.by for a in stored.approvals] == [winner]
    events = await repos.audit.list_recent(subject=created.id, action_prefix="proposal.approve")
    assert len(events) == 1 and events[0].actor == winner
    # Every refusal carries its audit row for the caller to append.
    for loss in losses:
        assert loss.audit is not None and loss.audit.outcome is AuditOutcome.REFUSED


async def test_two_connections_to_one_database_still_one_winner(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    other = await open_database(db_target)
    try:
        here, there = Repositories.on(db), Repositories.on(other)
        created = await _create(here)
        wins, losses, _ = await _race([here, there], created.id, 50)
        assert len(wins) == 1 and len(losses) == 49
        assert await there.proposals.get(created.id) == await here.proposals.get(created.id)
        events = await there.audit.list_recent(subject=created.id, action_prefix="proposal.approve")
        assert len(events) == 1
    finally:
        await other.close()


_PROCESS_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from engine.errors import AlreadyDecided
    from engine.model import Identity
    from engine.policy import ANYONE, ApprovalPolicy
    from engine.applying import apply_transition
    from engine.transitions import ProposalEvent
    from storage import Repositories, open_database
    from tests.plugins.storage import T0

    async def main(path, tag):
        db = await open_database(path)
        repos = Repositories.on(db)
        policy = ApprovalPolicy(approvers=frozenset({ANYONE}))
        wins = 0
        async def one(i):
            nonlocal wins
            user = Identity.slack(f"U{tag}{i}")
            try:
                decide = lambda p: policy.decide(ProposalEvent.APPROVE, p, user, T0)
                await apply_transition(repos.proposals, "P-1", decide, attempts=50)
                wins += 1
            except AlreadyDecided:
                pass
        await asyncio.gather(*(one(i) for i in range(10)))
        await db.close()
        print(wins)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


async def test_two_real_processes_one_winner(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    repos = Repositories.on(db)
    created = await _create(repos)
    assert created.id == "P-1"
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PROCESS_SCRIPT,
            db_target.dsn if isinstance(db_target, PostgresUrl) else str(db_target),
            tag,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        for tag in ("A", "B")
    ]
    results = [await p.communicate() for p in procs]
    for proc, (_, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()
    assert sum(int(out) for out, _ in results) == 1
    stored = await repos.proposals.get("P-1")
    assert stored is not None and stored.state is ProposalState.APPROVED
    assert len(stored.approvals) == 1


async def test_start_with_execution_record_never_twice(repos: Repositories) -> None:
    created = await _create(repos, risk=RiskLevel.LOW)
    approved = await repos.proposals.apply(POLICY.decide(ProposalEvent.APPROVE, created, bob(), T0))
    started = transition(approved, ProposalEvent.START, actor=SYSTEM, now=T0)
    await repos.proposals.apply(started, start_execution=make_execution(created.id))
    execution = await repos.executions.get(created.id)
    assert execution is not None and execution.proposal_id == created.id
    assert [e.proposal_id for e in await repos.executions.list_unfinished()] == [created.id]
    with pytest.raises(ExecutionAlreadyStarted, match="never runs twice"):
        await repos.executions.start(make_execution(created.id))


async def test_a_runs_closing_audit_row_is_written_with_its_final_transition_or_not_at_all(
    repos: Repositories,
) -> None:
    created = await _create(repos, risk=RiskLevel.LOW)
    approved = await repos.proposals.apply(POLICY.decide(ProposalEvent.APPROVE, created, bob(), T0))
    started = transition(approved, ProposalEvent.START, actor=SYSTEM, now=T0)
    running = await repos.proposals.apply(started, start_execution=make_execution(created.id))
    execution = await repos.executions.get(created.id)
    assert execution is not None
    finished = execution.model_copy(
        update={"status": ExecutionStatus.RECONCILED_FAILED, "finished_at": T0}
    )
    closing = AuditEvent(
        at=T0, actor=SYSTEM, action="execution.reconciled", subject=created.id, detail={}
    )
    failed = transition(running, ProposalEvent.RECONCILE_FAILED, actor=SYSTEM, now=T0)
    # a lost race (the proposal changed meanwhile) writes neither the transition nor the row
    with pytest.raises(StaleVersion):
        await repos.proposals.apply(
            transition(approved, ProposalEvent.START, actor=SYSTEM, now=T0),
            execution=finished,
            also_audit=closing,
        )
    assert "execution.reconciled" not in [
        e.action for e in await repos.audit.list_recent(subject=created.id)
    ]
    await repos.proposals.apply(failed, execution=finished, also_audit=closing)
    actions = [e.action for e in await repos.audit.list_recent(subject=created.id)]
    assert actions[:2] == ["execution.reconciled", "proposal.reconcile_failed"]
    stored = await repos.executions.get(created.id)
    assert stored is not None and stored.status is ExecutionStatus.RECONCILED_FAILED


async def test_failed_execution_insert_rolls_back_the_transition(repos: Repositories) -> None:
    created = await _create(repos, risk=RiskLevel.LOW)
    approved = await repos.proposals.apply(POLICY.decide(ProposalEvent.APPROVE, created, bob(), T0))
    await repos.executions.start(make_execution(created.id))  # e.g. left by a crash
    started = transition(approved, ProposalEvent.START, actor=SYSTEM, now=T0)
    with pytest.raises(ExecutionAlreadyStarted):
        await repos.proposals.apply(started, start_execution=make_execution(created.id))
    loaded = await repos.proposals.get(created.id)
    assert loaded is not None and loaded.state is ProposalState.APPROVED


async def test_ids_are_unique_across_connections(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    other = await open_database(db_target)
    try:
        here, there = Repositories.on(db), Repositories.on(other)
        ids = await asyncio.gather(
            *(r.proposals.next_id() for r in [here, there] * 20),
            *(r.incidents.next_id() for r in [here, there] * 5),
        )
        proposal_ids, incident_ids = ids[:40], ids[40:]
        assert sorted(proposal_ids, key=lambda s: int(s[2:])) == [f"P-{n}" for n in range(1, 41)]
        assert len(set(incident_ids)) == 10 and all(i.startswith("I-") for i in incident_ids)
    finally:
        await other.close()


async def test_list_filters_and_expiry_query(repos: Repositories) -> None:
    first = await _create(repos, now=T0)
    second = await _create(repos, now=T0 + timedelta(minutes=10), incident_id=None)
    rejected = await repos.proposals.apply(
        transition(second, ProposalEvent.REJECT, actor=bob(), now=T0 + timedelta(minutes=11))
    )
    assert [p.id for p in await repos.proposals.list()] == [second.id, first.id]
    assert [p.id for p in await repos.proposals.list(states=[ProposalState.PROPOSED])] == [first.id]
    assert await repos.proposals.list(states=[]) == []
    assert [p.id for p in await repos.proposals.list(limit=1)] == [rejected.id]
    assert await repos.proposals.list_due_for_expiry(T0 + timedelta(minutes=29)) == []
    due = await repos.proposals.list_due_for_expiry(T0 + timedelta(minutes=30))
    assert [p.id for p in due] == [first.id]
    expired = POLICY.decide(ProposalEvent.EXPIRE, due[0], SYSTEM, T0 + timedelta(minutes=30))
    await repos.proposals.apply(expired)
    assert await repos.proposals.list_due_for_expiry(T0 + timedelta(hours=5)) == []


async def test_hundred_concurrent_starts_over_five_connections_one_execution(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    """The approved → executing gate is one compare-and-set: 100 attempts to start the same
    approved proposal, spread over five connections (one process's worth of replicas), give one
    executing proposal, one execution record and one event; every loser is told it is stale."""
    here = Repositories.on(db)
    created = await _create(here, risk=RiskLevel.LOW)
    approved = await here.proposals.apply(POLICY.decide(ProposalEvent.APPROVE, created, bob(), T0))
    others = [await open_database(db_target) for _ in range(4)]
    try:
        connections = [here, *(Repositories.on(o) for o in others)]
        head = await here.events.head()

        async def start(i: int) -> object:
            repos = connections[i % len(connections)]
            started = transition(approved, ProposalEvent.START, actor=SYSTEM, now=T0)
            return await repos.proposals.apply(started, start_execution=make_execution(created.id))

        outcomes = await asyncio.gather(*(start(i) for i in range(100)), return_exceptions=True)
        wins = [o for o in outcomes if not isinstance(o, BaseException)]
        stale = [o for o in outcomes if isinstance(o, StaleVersion)]
        assert len(wins) == 1 and len(stale) == 99, [o for o in outcomes if o not in stale][:3]
        stored = await Repositories.on(others[-1]).proposals.get(created.id)
        assert stored is not None and stored.state is ProposalState.EXECUTING
        assert stored.version == approved.version + 1
        assert [e.proposal_id for e in await here.executions.list_unfinished()] == [created.id]
        events = await here.events.after(head)
        assert [e.subject for e in events] == [created.id]
    finally:
        for other in others:
            await other.close()
