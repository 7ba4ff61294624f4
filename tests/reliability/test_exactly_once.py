"""A proposal executes at most once, whatever the number of approvals, clicks, redelivered
request IDs, concurrent executions or engines sharing the database. Counted on the simulator's
request log: the PD write is POSTed exactly once."""

from __future__ import annotations

import asyncio
from pathlib import Path

from engine.model import ExecutionStatus, Identity, ProposalState
from engine.policy import ANYONE
from engine.results import Decided, ProposalCreated, RefusalKind, Refused
from tests.engine.test_service_support import ALICE, BOB, CAROL, POLICY, Harness, engine_on
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory

EVICT_POST = ("POST", "/pd/api/v1/schedulers")
OPEN_POLICY = POLICY.model_copy(
    update={"approvers": frozenset({ANYONE}), "approvers_high": frozenset({ANYONE})}
)


def evict_posts(h: Harness) -> int:
    return sum(1 for method, path, _ in h.writes() if (method, path) == EVICT_POST)


async def test_fifty_concurrent_approvals_send_one_write(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, policy=OPEN_POLICY) as h:
        created = await handle_text(h.engine, "drain 4", CAROL)
        assert isinstance(created, ProposalCreated)
        approvers = [Identity.slack(f"U{n:03d}") for n in range(50)]
        outcomes = await asyncio.gather(*(h.engine.approve("P-1", who) for who in approvers))
        await h.engine.wait_idle()

        decided = [o for o in outcomes if isinstance(o, Decided)]
        refused = [o for o in outcomes if isinstance(o, Refused)]
        assert len(decided) == 1 and decided[0].executing
        assert len(refused) == 49
        assert {r.kind for r in refused} == {RefusalKind.STATE}
        winner = decided[0].proposal.approvals[0].by
        # every loser is told who won (as data; the surfaces word it)
        assert {r.observed.decided_by for r in refused} == {winner}
        assert {r.observed.proposal_state for r in refused} <= {
            ProposalState.APPROVED,
            ProposalState.EXECUTING,
            ProposalState.SUCCEEDED,
        }
        assert evict_posts(h) == 1
        proposal = await h.repos.proposals.get("P-1")
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        assert len(proposal.approvals) == 1
        refusals = await h.repos.audit.list_recent(
            subject="P-1", action_prefix="proposal.approve.refused", limit=100
        )
        assert len(refusals) == 49


async def test_fifty_concurrent_executions_share_one_record_and_one_write(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, auto_execute=False) as h:
        await handle_text(h.engine, "drain 4", CAROL)
        decided = await h.engine.approve("P-1", ALICE)
        assert isinstance(decided, Decided) and not decided.auto_execute and decided.missing == 0
        results = await asyncio.gather(*(h.engine.execute("P-1") for _ in range(50)))
        assert {r.proposal_id for r in results} == {"P-1"}
        assert {r.started_at for r in results} == {results[0].started_at}
        assert evict_posts(h) == 1
        final = await h.repos.executions.get("P-1")
        assert final is not None and final.status is ExecutionStatus.SUCCEEDED
        # and once more, long after: still the same single run
        again = await h.engine.execute("P-1")
        assert again.status is ExecutionStatus.SUCCEEDED
        assert evict_posts(h) == 1
        starts = await h.repos.audit.list_recent(subject="P-1", action_prefix="proposal.start")
        assert [e.action for e in starts] == ["proposal.start"]


async def test_a_redelivered_click_is_applied_once(sim_factory: SimFactory, db_path: Path) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "drain 4", CAROL)
        outcomes = await asyncio.gather(
            *(h.engine.approve("P-1", ALICE, request_id="envelope-7") for _ in range(10))
        )
        await h.engine.wait_idle()
        assert sum(isinstance(o, Decided) for o in outcomes) == 1
        duplicates = [o for o in outcomes if isinstance(o, Refused)]
        assert len(duplicates) == 9
        assert {d.kind for d in duplicates} == {RefusalKind.DUPLICATE}
        assert evict_posts(h) == 1
        # the same envelope arriving after the run changes nothing either
        late = await h.engine.approve("P-1", ALICE, request_id="envelope-7")
        assert isinstance(late, Refused) and late.kind is RefusalKind.DUPLICATE
        assert evict_posts(h) == 1


async def test_two_engines_on_two_connections_of_one_database_write_once(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with (
        engine_on(sim, db_path, policy=OPEN_POLICY) as first,
        engine_on(sim, db_path, policy=OPEN_POLICY) as second,
    ):
        assert first.db is not second.db
        created = await handle_text(first.engine, "drain 4", CAROL)
        assert isinstance(created, ProposalCreated)
        outcomes = await asyncio.gather(
            first.engine.approve("P-1", ALICE),
            second.engine.approve("P-1", BOB),
            *(first.engine.approve("P-1", Identity.slack(f"UA{n}")) for n in range(10)),
            *(second.engine.approve("P-1", Identity.slack(f"UB{n}")) for n in range(10)),
        )
        await asyncio.gather(first.engine.wait_idle(), second.engine.wait_idle())
        # whichever engine won the approval, both try to execute again: nothing more is sent
        runs = await asyncio.gather(first.engine.execute("P-1"), second.engine.execute("P-1"))
        assert sum(isinstance(o, Decided) for o in outcomes) == 1
        assert evict_posts(first) == 1
        assert runs[0].status is runs[1].status is ExecutionStatus.SUCCEEDED
        seen_by_second = await second.repos.proposals.get("P-1")
        assert seen_by_second is not None and seen_by_second.state is ProposalState.SUCCEEDED


async def test_two_engines_racing_to_execute_an_approved_proposal_write_once(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with (
        engine_on(sim, db_path, auto_execute=False) as first,
        engine_on(sim, db_path, auto_execute=False) as second,
    ):
        await handle_text(first.engine, "drain 4", CAROL)
        await second.engine.approve("P-1", ALICE)
        runs = await asyncio.gather(
            *(first.engine.execute("P-1") for _ in range(5)),
            *(second.engine.execute("P-1") for _ in range(5)),
        )
        assert len({r.started_at for r in runs}) == 1
        assert evict_posts(first) == 1
