"""The path from an approval to the PD write, made short without giving up a guarantee.

- the write goes out after one fresh read of each kind (preflight and before snapshot share
  them) and only once the `executing` transition and a `request_sent` record with the requests
  and the before snapshot are in the database;
- a slow surface holds back neither the write nor the approver's answer, and still hears
  approved → started → outcome in order (the events are read from the log); a slow PD does
  not hold the approval's notification back;
- a run handed the approved proposal still goes through the gate: the kill switch, a proposal
  changed meanwhile, and concurrent runs (exactly one sends);
- a PD read failing at execution time fails the proposal with the reason; nothing is sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from engine.applying import apply_transition
from engine.errors import PolicyRefusal, TransitionError
from engine.model import SYSTEM, AuditEvent, Execution, ExecutionStatus, Proposal, ProposalState
from engine.results import Decided, ProposalCreated
from engine.transitions import ProposalEvent, transition
from operator_tikv.errors import PDUnavailableError
from tests.engine.test_service_support import ALICE, Harness, RecordingNotifier, engine_on
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory

SCHEDULERS = "/pd/api/v1/schedulers"
READS = {
    "/pd/api/v1/stores",
    "/pd/api/v1/scheduler-config/evict-leader-scheduler/list",
    "/pd/api/v1/config/replicate",
}


async def propose_drain(h: Harness, store: int = 4) -> str:
    created = await handle_text(h.engine, f"drain {store}", h.operator)
    assert isinstance(created, ProposalCreated), created
    return created.proposal.id


async def until(predicate: Any) -> None:
    async with asyncio.timeout(20):
        while not predicate():
            await asyncio.sleep(0.005)


def posts(h: Harness) -> list[tuple[str, str, Any]]:
    return [w for w in h.writes() if w[0] == "POST"]


async def test_the_write_follows_one_read_of_each_kind_and_a_durable_gate(
    sim_factory: SimFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        pid = await propose_drain(h)
        seen_at_send: list[tuple[Proposal | None, Execution | None]] = []
        audited_at_send: list[list[str]] = []
        send = h.pd.execute

        async def execute(write: Any) -> str:
            seen_at_send.append(
                (await h.repos.proposals.get(pid), await h.repos.executions.get(pid))
            )
            audited_at_send.append(await h.audit_actions(pid))
            return await send(write)

        monkeypatch.setattr(h.pd, "execute", execute)
        mark = len(sim.requests)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided) and decided.executing
        await h.engine.wait_idle()

        between = [(r.method, r.path) for r in sim.requests[mark:] if r.store_id is None]
        write_at = between.index(("POST", SCHEDULERS))
        assert sorted(path for _, path in between[:write_at]) == sorted(READS)

        [(proposal, execution)] = seen_at_send
        assert proposal is not None and proposal.state is ProposalState.EXECUTING
        # The start is audited with the `request_sent` record, before the write goes out.
        [audited] = audited_at_send
        assert audited.count("proposal.start") == 1 and audited.count("execution.started") == 1
        assert execution is not None and execution.status is ExecutionStatus.REQUEST_SENT
        assert execution.requests == [
            {
                "method": "POST",
                "path": SCHEDULERS,
                "query": {},
                "body": {"name": "evict-leader-scheduler", "store_id": 4},
            }
        ]
        assert execution.before is not None
        assert execution.before["store_leader_counts"]["4"] > 0
        assert [p.message for p in execution.progress] == [
            "preflight passed on fresh cluster state"
        ]
        final = await h.repos.proposals.get(pid)
        assert final is not None and final.state is ProposalState.SUCCEEDED


@dataclass
class SlowApprovalNotifier(RecordingNotifier):
    """Telling the approval takes until `release` is set; every report is recorded when it
    is done (as an outbox would order them)."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    approval_started: asyncio.Event = field(default_factory=asyncio.Event)

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        if event.action == "proposal.approve":
            self.approval_started.set()
            await self.release.wait()
        await super().proposal_changed(proposal, event)


async def test_a_slow_surface_holds_back_neither_the_write_nor_the_answer_nor_the_order(
    sim_factory: SimFactory, db_path: Path
) -> None:
    # The surfaces hear the events after the change, from the log (engine.relay): a surface
    # stuck on the approval delays nothing of the run, and still hears it in order.
    sim = await sim_factory(stores=4)
    notifier = SlowApprovalNotifier()
    async with engine_on(sim, db_path, notifier=notifier) as h:
        pid = await propose_drain(h)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided) and decided.executing
        await asyncio.wait_for(notifier.approval_started.wait(), 20)
        await until(lambda: posts(h))
        await until(lambda: h.engine._tasks == set())  # the run finished
        final = await h.repos.proposals.get(pid)
        assert final is not None and final.state is ProposalState.SUCCEEDED
        assert notifier.changes() == []  # nothing overtook the approval
        assert "execution_progress" not in notifier.names()

        notifier.release.set()
        await h.engine.wait_idle()
        changes = notifier.changes()
        assert changes == ["proposal.approve", "proposal.start", "proposal.succeed"]
        names = notifier.names()
        progress = [i for i, name in enumerate(names) if name == "execution_progress"]
        changed = [i for i, name in enumerate(names) if name == "proposal_changed"]
        assert progress and changed[1] < progress[0] and progress[-1] < changed[2]
        assert len(posts(h)) == 1


async def test_a_slow_pd_does_not_hold_the_approvals_notification_back(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        pid = await propose_drain(h)
        sim.faults.pd_timeouts()  # the preflight reads hang until healed
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided) and decided.executing
        assert h.engine.relay is not None
        await h.engine.relay.drain()
        assert h.notifier.changes()[:1] == ["proposal.approve"]
        assert posts(h) == []
        sim.faults.heal()
        await h.engine.wait_idle()
        assert h.notifier.changes() == ["proposal.approve", "proposal.start", "proposal.succeed"]
        assert len(posts(h)) == 1


async def test_a_run_handed_the_approval_still_obeys_the_kill_switch(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, auto_execute=False) as h:
        pid = await propose_drain(h)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided)
        await h.engine.set_kill_switch(True, ALICE, "incident review")
        with pytest.raises(PolicyRefusal) as refused:
            await h.engine.executor.run(pid, approved=decided.proposal)
        assert "kill switch on" in refused.value.message
        assert posts(h) == []
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.APPROVED
        assert await h.repos.executions.get(pid) is None
        assert "proposal.start.refused" in await h.audit_actions(pid)


async def test_a_run_handed_a_stale_approval_reads_the_proposal_again(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, auto_execute=False) as h:
        pid = await propose_drain(h)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided)
        now = h.clock.now()
        await apply_transition(
            h.repos.proposals,
            pid,
            lambda p: transition(p, ProposalEvent.CANCEL, actor=SYSTEM, now=now, reason="test"),
        )
        with pytest.raises(TransitionError):
            await h.engine.executor.run(pid, approved=decided.proposal)
        assert posts(h) == []
        assert await h.repos.executions.get(pid) is None


async def test_concurrent_runs_of_one_approval_send_once(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, auto_execute=False) as h:
        pid = await propose_drain(h)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided)
        runs = await asyncio.gather(
            h.engine.executor.run(pid, approved=decided.proposal),
            h.engine.executor.run(pid, approved=decided.proposal),
            h.engine.executor.run(pid),
        )
        await h.engine.wait_idle()
        assert len(posts(h)) == 1
        assert len({run.started_at for run in runs}) == 1
        assert (await h.audit_actions(pid)).count("execution.started") == 1


async def test_a_pd_read_failing_at_execution_fails_with_the_reason_and_sends_nothing(
    sim_factory: SimFactory, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        pid = await propose_drain(h)

        async def unreachable() -> list[Any]:
            raise PDUnavailableError("connection refused", from_pd=False)

        monkeypatch.setattr(h.pd, "list_stores", unreachable)
        decided = await h.engine.approve(pid, ALICE)
        assert isinstance(decided, Decided) and decided.executing
        await h.engine.wait_idle()
        proposal = await h.repos.proposals.get(pid)
        execution = await h.repos.executions.get(pid)
        assert proposal is not None and proposal.state is ProposalState.FAILED
        assert execution is not None and execution.status is ExecutionStatus.FAILED
        assert execution.requests == []
        assert "connection refused" in (proposal.outcome or "")
        assert "nothing was sent" in (proposal.outcome or "")
        assert posts(h) == []
        assert h.notifier.changes() == ["proposal.approve", "proposal.start", "proposal.fail"]
