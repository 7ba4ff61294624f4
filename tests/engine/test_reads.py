"""Read views through `Engine.handle()`: built from PD's answers and the database, typed, and
refusing clearly for unknown IDs or an unreachable PD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.results import (
    AuditView,
    IncidentsView,
    ProposalsView,
    ProposalView,
    RefusalCheck,
    RefusalKind,
    Refused,
    RegionView,
    StatusView,
    StoresView,
    StoreView,
)
from tests.engine.test_service_support import ALICE, BOB, CAROL, engine_on, leader_region
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory
from tests.plugins.storage import make_incident
from tikvops.outcome_text import render


async def test_stores_and_store_come_from_pd_with_the_drained_flag(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        await handle_text(h.engine, "drain 4", CAROL)
        await h.engine.approve("P-1", ALICE)
        await h.engine.wait_idle()

        stores = await handle_text(h.engine, "stores", BOB)
        assert isinstance(stores, StoresView)
        assert [s.id for s in stores.stores] == [1, 2, 3, 4]
        assert [s.drained for s in stores.stores] == [False, False, False, True]
        by_id = {s.id: s for s in stores.stores}
        for store_id, summary in by_id.items():
            simulated = sim.cluster.store(store_id)
            assert summary.leader_count == simulated.leader_count
            assert summary.region_count == simulated.region_count
            assert summary.state == "Up"
        assert by_id[4].leader_count == 0

        store = await handle_text(h.engine, "store 4", BOB)
        assert isinstance(store, StoreView)
        assert store.store.drained and store.store.leader_count == 0
        assert store.proposals == []  # P-1 finished


async def test_store_view_lists_its_incidents_and_unfinished_proposals(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        await h.repos.incidents.create(make_incident(id="I-1", subject="store:4"))
        await h.repos.incidents.create(make_incident(id="I-2", kind="disk-full", subject="store:1"))
        await handle_text(h.engine, "drain 4", CAROL)
        view = await handle_text(h.engine, "store 4", BOB)
        assert isinstance(view, StoreView)
        assert [i.id for i in view.incidents] == ["I-1"]
        assert [p.id for p in view.proposals] == ["P-1"]


async def test_region_view_shows_peers_leader_and_operator(sim: Any, db_path: Path) -> None:
    region_id = leader_region(sim, leader=1, voters=(1, 2, 3))
    async with engine_on(sim, db_path) as h:
        before = await handle_text(h.engine, f"region {region_id}", BOB)
        assert isinstance(before, RegionView)
        assert before.leader_store_id == 1
        assert [(p.store_id, p.leader) for p in before.peers] == [
            (1, True),
            (2, False),
            (3, False),
        ]
        assert before.operator is None
        await handle_text(h.engine, f"transfer-leader {region_id} 2", CAROL)
        await h.engine.approve("P-1", ALICE)
        await h.engine.wait_idle()
        after = await handle_text(h.engine, f"region {region_id}", BOB)
        assert isinstance(after, RegionView)
        assert after.leader_store_id == 2
        assert after.operator is not None
        assert (after.operator.desc, after.operator.status) == ("admin-transfer-leader", "SUCCESS")


async def test_unknown_store_region_and_proposal_say_how_to_find_one(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        store = await handle_text(h.engine, "store 9", BOB)
        assert isinstance(store, Refused) and store.kind is RefusalKind.UNKNOWN
        assert store.check is RefusalCheck.NOT_FOUND and store.observed.store_id == 9
        region = await handle_text(h.engine, "region 999999", BOB)
        assert isinstance(region, Refused) and region.kind is RefusalKind.UNKNOWN
        assert region.check is RefusalCheck.NOT_FOUND and region.observed.region_id == 999999
        proposal = await handle_text(h.engine, "proposal P-5", h.operator)
        assert isinstance(proposal, Refused) and proposal.kind is RefusalKind.UNKNOWN
        assert proposal.check is RefusalCheck.NOT_FOUND
        assert (proposal.observed.record_kind, proposal.observed.proposal_id) == ("proposal", "P-5")
        assert render(proposal) == (
            "Refused: there is no proposal P-5; list proposals with `tikvops proposals`"
        )


async def test_status_still_shows_the_database_when_pd_is_unreachable(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        await h.repos.incidents.create(make_incident(id="I-1", subject="store:3"))
        await handle_text(h.engine, "limit leader 8", CAROL)
        healthy = await handle_text(h.engine, "status", BOB)
        assert isinstance(healthy, StatusView)
        assert healthy.pd_error is None
        assert healthy.state_counts == {"Up": 3}
        assert [i.id for i in healthy.open_incidents] == ["I-1"]
        assert [p.id for p in healthy.active_proposals] == ["P-1"]
        assert not healthy.kill_switch.on

        sim.faults.partition()
        status = await handle_text(h.engine, "status", BOB)
        assert isinstance(status, StatusView)
        assert status.stores == []
        assert status.pd_error is not None and status.pd_error.startswith("PD is unavailable")
        assert [i.id for i in status.open_incidents] == ["I-1"]
        stores = await handle_text(h.engine, "stores", BOB)
        assert isinstance(stores, Refused) and stores.kind is RefusalKind.PD
        sim.faults.heal()


async def test_proposals_incidents_proposal_and_audit_views(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        await h.repos.incidents.create(make_incident(id="I-1", subject="store:3"))
        await handle_text(h.engine, "limit leader 8", CAROL)  # P-1, will run
        await handle_text(h.engine, "limit region 100", CAROL)  # P-2, stays proposed
        await h.engine.approve("P-1", ALICE)
        await h.engine.wait_idle()

        proposals = await handle_text(h.engine, "proposals", BOB)
        assert isinstance(proposals, ProposalsView)
        assert [p.id for p in proposals.proposals] == ["P-2"]
        assert [p.id for p in proposals.recent] == ["P-1"]

        incidents = await handle_text(h.engine, "incidents", BOB)
        assert isinstance(incidents, IncidentsView)
        assert [i.id for i in incidents.incidents] == ["I-1"]

        view = await handle_text(h.engine, "proposal 1", BOB)
        assert isinstance(view, ProposalView)
        assert view.proposal.id == "P-1"
        assert view.text is not None
        assert view.text.requests == (
            'POST /pd/api/v1/config/schedule {"leader-schedule-limit": 8}',
        )
        assert view.execution is not None and view.execution.status.value == "succeeded"
        assert view.undo is not None and view.undo.params == {"kind": "leader", "value": 4}
        assert [e.action for e in view.history] == [
            "proposal.created",
            "proposal.approve",
            "proposal.start",
            "execution.started",
            "execution.sent",
            "proposal.succeed",
            "execution.verified",
        ]

        audit = await handle_text(h.engine, "audit 3", BOB)
        assert isinstance(audit, AuditView)
        assert len(audit.events) == 3
        assert audit.events[0].action == "execution.verified"  # newest first
