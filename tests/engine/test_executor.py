"""Every action end to end through the Engine against the simulator: the exact PD request sent
(from the simulator's request log), verification outcomes (success, timeout, cancel, PD
refusal, lost answer), preflight refused at execution time with nothing sent, undo of drain and
limits, and in-process reconciliation after an interrupted run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.render.proposal import status_line
from engine.errors import PolicyRefusal
from engine.model import ExecutionStatus, ProposalOrigin, ProposalState
from engine.results import Decided, ProposalCreated
from operator_tikv.errors import classify
from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import open_pd_client
from tests.engine.test_service_support import (
    ALICE,
    OPERATOR,
    Harness,
    engine_on,
    leader_region,
)
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory

SCHEDULERS = "/pd/api/v1/schedulers"
OPERATORS = "/pd/api/v1/operators"
SCHEDULE_CONFIG = "/pd/api/v1/config/schedule"


class Crash(BaseException):
    """Stands for the process dying at a checkpoint (not caught by the executor)."""


async def run_to_end(h: Harness, words: str) -> str:
    """Propose `words` as the terminal operator, approve as alice (an approver of every risk),
    wait for the execution; the proposal ID."""
    created = await handle_text(h.engine, words, h.operator)
    assert isinstance(created, ProposalCreated), created
    decided = await h.engine.approve(created.proposal.id, ALICE)
    assert isinstance(decided, Decided) and decided.executing, decided
    await h.engine.wait_idle()
    return created.proposal.id


async def test_drain_sends_evict_leader_verifies_zero_leaders_and_undrain_undoes_it(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path) as h:
        leaders_before = sim.cluster.store(4).leader_count
        assert leaders_before > 0
        pid = await run_to_end(h, "drain 4")

        assert h.writes() == [
            ("POST", SCHEDULERS, {"name": "evict-leader-scheduler", "store_id": 4})
        ]
        proposal = await h.repos.proposals.get(pid)
        execution = await h.repos.executions.get(pid)
        assert proposal is not None and execution is not None
        assert proposal.state is ProposalState.SUCCEEDED
        assert execution.status is ExecutionStatus.SUCCEEDED
        assert sim.cluster.store(4).leader_count == 0
        assert proposal.outcome == f"leaders on store 4: {leaders_before:,} → 0"
        assert execution.before is not None and execution.after is not None
        assert execution.before["store_leader_counts"]["4"] == leaders_before
        assert execution.after["store_leader_counts"]["4"] == 0
        assert execution.after["evicted_store_ids"] == [4]
        assert execution.requests == [
            {
                "method": "POST",
                "path": SCHEDULERS,
                "query": {},
                "body": {"name": "evict-leader-scheduler", "store_id": 4},
            }
        ]
        # progress was reported while leaders moved, ending at zero
        progress = h.notifier.progress_messages()
        assert any(m.startswith(f"leaders on store 4: {leaders_before:,} → ") for m in progress)
        assert progress[-1] == f"leaders on store 4: {leaders_before:,} → 0"
        assert [a for a in await h.audit_actions(pid) if a.startswith("execution.")] == [
            "execution.started",
            "execution.sent",
            "execution.verified",
        ]

        report = await h.engine.execution_report(pid)
        assert report.result == "execution"
        assert report.undo is not None
        assert (report.undo.action, report.undo.params) == ("undrain", {"store_id": 4})

        undo = await h.engine.propose_undo(pid, ALICE)
        assert isinstance(undo, ProposalCreated)
        assert undo.proposal.origin is ProposalOrigin.UNDO
        assert undo.proposal.reason == f"undo of {pid}"
        decided = await h.engine.approve(undo.proposal.id, ALICE)
        assert isinstance(decided, Decided) and decided.executing
        await h.engine.wait_idle()
        assert h.writes()[1:] == [("DELETE", f"{SCHEDULERS}/evict-leader-scheduler-4", None)]
        undone = await h.repos.proposals.get(undo.proposal.id)
        assert undone is not None and undone.state is ProposalState.SUCCEEDED
        assert 4 not in sim.cluster.schedulers.evicted_stores()


async def test_a_slow_stores_drain_on_three_stores_runs_to_zero_leaders(
    sim: Any, db_path: Path
) -> None:
    # The default 3-store cluster with max-replicas 3: evicting leaders moves no replica.
    scenario = sim.apply_scenario("slow-store")
    sid = scenario.store_id
    sim.cluster.advance(30)
    async with engine_on(sim, db_path) as h:
        leaders_before = sim.cluster.store(sid).leader_count
        assert leaders_before > 0
        pid = await run_to_end(h, f"drain {sid}")
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        checks = {c["name"]: c for c in proposal.preflight}
        assert all(c["ok"] and not c["warning"] for c in checks.values())
        assert checks["leader-load"]["observed"].count("(50%") == 2
        assert h.writes() == [
            ("POST", SCHEDULERS, {"name": "evict-leader-scheduler", "store_id": sid})
        ]
        assert sim.cluster.store(sid).leader_count == 0
        assert proposal.outcome == f"leaders on store {sid}: {leaders_before:,} → 0"
        assert [a for a in await h.audit_actions(pid) if a.startswith("execution.")] == [
            "execution.started",
            "execution.sent",
            "execution.verified",
        ]


async def test_transfer_leader_moves_the_leader_and_offers_moving_it_back(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=3)
    region = leader_region(sim, leader=1, voters=(1, 2, 3))
    async with engine_on(sim, db_path) as h:
        pid = await run_to_end(h, f"transfer-leader {region} 2")
        assert h.writes() == [
            (
                "POST",
                OPERATORS,
                {"name": "transfer-leader", "region_id": region, "to_store_id": 2},
            )
        ]
        assert sim.cluster.regions[region].leader_store == 2
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        assert proposal.outcome == (
            f"admin-transfer-leader finished: the leader of region {region} is on store 2"
        )
        undo = await h.engine.undo_for(pid)
        assert undo.model_dump() == {
            "action": "transfer-leader",
            "params": {"region_id": region, "to_store_id": 1},
        }


async def test_transfer_peer_copies_the_replica_and_removes_the_source(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    region = leader_region(sim, leader=1, voters=(1, 2, 3))
    async with engine_on(sim, db_path) as h:
        pid = await run_to_end(h, f"transfer-peer {region} 3 4")
        assert h.writes() == [
            (
                "POST",
                OPERATORS,
                {
                    "name": "transfer-peer",
                    "region_id": region,
                    "from_store_id": 3,
                    "to_store_id": 4,
                },
            )
        ]
        assert sorted(sim.cluster.regions[region].store_ids()) == [1, 2, 4]
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        undo = await h.engine.undo_for(pid)
        assert undo.model_dump()["params"] == {
            "region_id": region,
            "from_store_id": 4,
            "to_store_id": 3,
        }


async def test_split_grows_the_epoch_and_has_no_undo(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=3)
    region = leader_region(sim, leader=1, voters=(1, 2, 3))
    regions_before = len(sim.cluster.regions)
    async with engine_on(sim, db_path) as h:
        pid = await run_to_end(h, f"split {region}")
        assert h.writes() == [
            (
                "POST",
                OPERATORS,
                {"name": "split-region", "region_id": region, "policy": "approximate"},
            )
        ]
        assert len(sim.cluster.regions) == regions_before + 1
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        assert "split (epoch version" in (proposal.outcome or "")
        undo = await h.engine.undo_for(pid)
        assert undo.result == "refused"
        assert undo.reason == f"proposal {pid} (split) is not reversible"


async def test_limit_sets_the_value_and_its_undo_restores_the_previous_one(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        pid = await run_to_end(h, "limit leader 8")
        assert h.writes() == [("POST", SCHEDULE_CONFIG, {"leader-schedule-limit": 8})]
        assert sim.cluster.schedule["leader-schedule-limit"] == 8
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None
        assert proposal.outcome == "leader-schedule-limit is now 8 (was 4)"

        undo = await h.engine.propose_undo(pid, OPERATOR)
        assert isinstance(undo, ProposalCreated)
        assert undo.proposal.params == {"kind": "leader", "value": 4}
        await h.engine.approve(undo.proposal.id, OPERATOR)
        await h.engine.wait_idle()
        assert h.writes()[1:] == [("POST", SCHEDULE_CONFIG, {"leader-schedule-limit": 4})]
        assert sim.cluster.schedule["leader-schedule-limit"] == 4


async def test_space_ratio_sends_the_ratio_and_verifies_it(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path) as h:
        pid = await run_to_end(h, "space-ratio low 0.85")
        assert h.writes() == [("POST", SCHEDULE_CONFIG, {"low-space-ratio": 0.85})]
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        assert proposal.outcome == "low-space-ratio is now 0.85 (was 0.8)"


async def test_preflight_failing_at_execution_time_fails_the_proposal_and_sends_nothing(
    sim: Any, db_path: Path
) -> None:
    async with engine_on(sim, db_path) as h:
        created = await handle_text(h.engine, "limit leader 8", h.operator)
        assert isinstance(created, ProposalCreated)
        # Someone else changes the value between the proposal and its approval.
        async with open_pd_client(sim.pd_url) as other:
            await other.execute(PDWrite.set_schedule_config({"leader-schedule-limit": 8}))
        sim.clear_requests()

        decided = await h.engine.approve(created.proposal.id, h.operator)
        assert isinstance(decided, Decided) and decided.executing
        await h.engine.wait_idle()

        assert h.writes() == []
        proposal = await h.repos.proposals.get(created.proposal.id)
        execution = await h.repos.executions.get(created.proposal.id)
        assert proposal is not None and execution is not None
        assert proposal.state is ProposalState.FAILED
        assert proposal.outcome == (
            "Refused limit: leader-schedule-limit is already 8; nothing to change. Nothing was "
            "sent to PD."
        )
        assert execution.status is ExecutionStatus.FAILED
        assert execution.requests == []


async def test_verification_deadline_is_recorded_as_timed_out_not_success(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    async with engine_on(sim, db_path, deadlines={"drain": 5.0}) as h:
        pid = await run_to_end(h, "drain 4")
        proposal = await h.repos.proposals.get(pid)
        execution = await h.repos.executions.get(pid)
        assert proposal is not None and execution is not None
        assert execution.status is ExecutionStatus.TIMED_OUT
        assert proposal.state is ProposalState.FAILED
        assert (proposal.outcome or "").startswith(
            "verification timed out: drain did not finish within 5 s; last seen: leaders on "
            "store 4: "
        )
        assert sim.cluster.store(4).leader_count > 0
        assert await h.engine.undo_for(pid) == await h.engine.undo_for(pid)  # stable
        assert (await h.engine.undo_for(pid)).result == "refused"
        assert "execution.timed_out" in await h.audit_actions(pid)


async def test_operator_cancelled_during_verification_fails_with_pds_reason(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)
    region = leader_region(sim, leader=1, voters=(1, 2, 3))

    async def cancel_it(step: str) -> None:
        if step == "verifying":
            async with open_pd_client(sim.pd_url) as other:
                await other.execute(PDWrite.cancel_operator(region))

    async with engine_on(sim, db_path, checkpoint=cancel_it) as h:
        pid = await run_to_end(h, f"transfer-peer {region} 3 4")
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.FAILED
        assert (proposal.outcome or "").startswith(
            f"PD cancelled admin-move-peer on region {region}"
        )
        assert 3 in sim.cluster.regions[region].store_ids()
        posts = [w for w in h.writes() if w[0] == "POST"]
        assert len(posts) == 1


async def test_a_generic_pd_refusal_is_said_once(
    sim: Any, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refusal PD gives no specific type to (PDRejectedError, whose own summary is "PD refused
    the request") once read "PD refused the request: PD refused the request: PD said ...";
    the sentence is composed once, and the proposal's status line ends it once."""
    region = leader_region(sim, leader=1, voters=(1, 2, 3))
    body = json.dumps(f"[PD:region:ErrRegionAbnormalPeer]region {region} has abnormal peer")

    async def pd_refuses(step: str) -> None:
        if step == "before_request":

            async def refuse(write: Any) -> str:
                raise classify(500, body, method=write.method, path=write.path)

            monkeypatch.setattr(h.pd, "execute", refuse)

    async with engine_on(sim, db_path, checkpoint=pd_refuses) as h:
        pid = await run_to_end(h, f"transfer-leader {region} 2")
        proposal = await h.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.FAILED
        assert proposal.outcome == (
            "PD refused the request: PD said '[PD:region:ErrRegionAbnormalPeer]region "
            f"{region} has abnormal peer' (HTTP 500, POST /pd/api/v1/operators). Read PD's "
            "reason, fix the cause, then retry."
        )
        line = status_line(proposal, h.clock.now())
        assert "retry. Approved by" in line and ".." not in line


async def test_pd_refusing_the_write_fails_with_pds_message(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=3)
    region = leader_region(sim, leader=1, voters=(1, 2, 3))

    async def target_goes_away(step: str) -> None:
        if step == "before_request":
            sim.faults.stop_store(2)
            sim.cluster.advance(30)  # Disconnected: PD refuses it as a leader target

    async with engine_on(sim, db_path, checkpoint=target_goes_away) as h:
        pid = await run_to_end(h, f"transfer-leader {region} 2")
        proposal = await h.repos.proposals.get(pid)
        execution = await h.repos.executions.get(pid)
        assert proposal is not None and execution is not None
        assert proposal.state is ProposalState.FAILED
        assert (proposal.outcome or "").startswith("PD refused the request: ")
        assert execution.pd_message
        assert execution.pd_message in (proposal.outcome or "")
        assert len(h.writes()) == 1
        assert sim.cluster.regions[region].leader_store != 2


async def test_lost_answer_is_looked_up_and_never_resent(
    sim_factory: SimFactory, db_path: Path
) -> None:
    sim = await sim_factory(stores=4)

    async def pd_hangs(step: str) -> None:
        if step == "before_request":
            sim.faults.pd_timeouts()

    async with engine_on(sim, db_path, checkpoint=pd_hangs, pd_timeout=0.3) as h:
        created = await handle_text(h.engine, "drain 4", h.operator)
        assert isinstance(created, ProposalCreated)
        await h.engine.approve(created.proposal.id, ALICE)
        await h.engine.wait_idle()
        sim.faults.heal()
        proposal = await h.repos.proposals.get(created.proposal.id)
        assert proposal is not None and proposal.state is ProposalState.FAILED
        assert "not sent again" in (proposal.outcome or "")
        assert [w for w in h.writes() if w[0] == "POST"] == [
            ("POST", SCHEDULERS, {"name": "evict-leader-scheduler", "store_id": 4})
        ]


async def test_a_write_pd_applied_after_its_answer_was_lost_is_found_and_verified(
    sim_factory: SimFactory, db_path: Path
) -> None:
    """PD hangs for 2 s of cluster time: the write's answer and the first looks time out; the
    hung write then lands, and a later look finds it instead of calling the outcome unknown."""
    sim = await sim_factory(stores=4)

    async def pd_hangs_a_while(step: str) -> None:
        if step == "before_request":
            sim.faults.pd_timeouts(seconds=2.0)

    async with engine_on(sim, db_path, checkpoint=pd_hangs_a_while, pd_timeout=0.3) as h:
        created = await handle_text(h.engine, "drain 4", h.operator)
        assert isinstance(created, ProposalCreated)
        await h.engine.approve(created.proposal.id, ALICE)
        await h.engine.wait_idle()
        proposal = await h.repos.proposals.get(created.proposal.id)
        execution = await h.repos.executions.get(created.proposal.id)
        assert proposal is not None and execution is not None
        assert proposal.state is ProposalState.SUCCEEDED, proposal.outcome
        notes = [n.message for n in execution.progress]
        assert any("looking again" in n for n in notes), notes
        assert any(n.startswith("answer lost; PD shows") for n in notes), notes
        assert [w for w in h.writes() if w[0] == "POST"] == [
            ("POST", SCHEDULERS, {"name": "evict-leader-scheduler", "store_id": 4})
        ]
        assert sim.cluster.store(4).leader_count == 0


@pytest.mark.parametrize(
    ("step", "state", "status", "posts"),
    [
        ("started", ProposalState.FAILED, ExecutionStatus.RECONCILED_FAILED, 0),
        ("before_request", ProposalState.FAILED, ExecutionStatus.RECONCILED_FAILED, 0),
        ("after_request", ProposalState.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED, 1),
        ("verifying", ProposalState.SUCCEEDED, ExecutionStatus.RECONCILED_SUCCEEDED, 1),
    ],
)
async def test_reconcile_after_an_interrupted_run_never_resends(
    sim_factory: SimFactory,
    db_path: Path,
    step: str,
    state: ProposalState,
    status: ExecutionStatus,
    posts: int,
) -> None:
    sim = await sim_factory(stores=4)

    async def die(reached: str) -> None:
        if reached == step:
            raise Crash(step)

    async with engine_on(sim, db_path, checkpoint=die, auto_execute=False) as h:
        created = await handle_text(h.engine, "drain 4", h.operator)
        assert isinstance(created, ProposalCreated)
        await h.engine.approve(created.proposal.id, ALICE)
        with pytest.raises(Crash):
            await h.engine.execute(created.proposal.id)
        pid = created.proposal.id

    async with engine_on(sim, db_path) as h:
        await h.engine.reconcile()
        await h.engine.wait_idle()
        proposal = await h.repos.proposals.get(pid)
        execution = await h.repos.executions.get(pid)
        assert proposal is not None and execution is not None
        assert proposal.state is state
        assert execution.status is status
        assert len([w for w in h.writes() if w[0] == "POST"]) == posts
        if posts:
            assert sim.cluster.store(4).leader_count == 0
        # a second start-up finds nothing left to do
        assert await h.engine.reconcile() == []
        assert len([w for w in h.writes() if w[0] == "POST"]) == posts


async def test_execute_refuses_while_the_kill_switch_is_on(sim: Any, db_path: Path) -> None:
    async with engine_on(sim, db_path, auto_execute=False) as h:
        created = await handle_text(h.engine, "limit leader 8", h.operator)
        assert isinstance(created, ProposalCreated)
        await h.engine.approve(created.proposal.id, h.operator)
        await h.engine.set_kill_switch(True, ALICE, "incident review")
        with pytest.raises(PolicyRefusal) as refused:
            await h.engine.execute(created.proposal.id)
        assert refused.value.message.startswith("kill switch on by alice")
        assert refused.value.observed is not None
        assert refused.value.observed.kill_switch is not None
        assert refused.value.observed.kill_switch.by == ALICE
        assert "(incident review)" in refused.value.message
        assert h.writes() == []
        assert await h.repos.executions.get(created.proposal.id) is None
        assert "proposal.start.refused" in await h.audit_actions(created.proposal.id)
