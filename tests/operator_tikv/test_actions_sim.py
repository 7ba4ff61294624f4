"""Every action end to end against the cluster simulator (a real HTTP server speaking PD's API,
whose operators and schedulers move leaders and peers as virtual time advances).

The simulator's request log shows exactly what was sent; refusals leave no write in it. Time
moves only through `sim.cluster.advance()`, which `follow()` uses as its sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from operator_tikv.actions import (
    REGISTRY,
    DrainParams,
    LimitParams,
    Outcome,
    PreflightContext,
    RegionState,
    SpaceRatioParams,
    SplitParams,
    TransferLeaderParams,
    TransferPeerParams,
    UndrainParams,
    follow,
    validate_call,
)
from operator_tikv.actions import state as cluster_state
from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import PDClient, open_pd_client
from sim.server import SimServer

SimFactory = Callable[..., Awaitable[SimServer]]


@pytest.fixture
async def sim5(sim_factory: SimFactory) -> SimServer:
    """Five stores, 200 regions of three replicas; peers count as down after 30 s."""
    return await sim_factory(stores=5, regions=200, peer_down_seconds=30)


@pytest.fixture
async def pd(sim5: SimServer) -> AsyncIterator[PDClient]:
    async with open_pd_client(sim5.pd_url, retries=0) as client:
        yield client


def writes(sim: SimServer) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.body) for r in sim.requests if r.method != "GET"]


def ctx(sim: SimServer, **kw: Any) -> PreflightContext:
    return PreflightContext(now=datetime.fromtimestamp(sim.cluster.now, UTC), **kw)


def advancing(sim: SimServer) -> tuple[Callable[[float], Awaitable[None]], Callable[[], float]]:
    """(sleep, clock) for follow(): sleeping advances the simulated cluster."""

    async def sleep(seconds: float) -> None:
        sim.cluster.advance(seconds)

    return sleep, lambda: sim.cluster.now


async def some_region(pd: PDClient, sim: SimServer) -> RegionState:
    """A healthy region with a leader (the lowest id, for determinism)."""
    for region_id in sorted(sim.cluster.regions):
        region = await cluster_state.read_region(pd, region_id)
        if region and region.leader_store_id and len(region.voter_store_ids) == 3:
            return region
    raise AssertionError("no healthy region")


def other_voter(region: RegionState) -> int:
    return next(s for s in region.voter_store_ids if s != region.leader_store_id)


def store_without_peer(region: RegionState) -> int:
    return next(s for s in (1, 2, 3, 4, 5) if s not in region.peer_store_ids)


# ------------------------------------------------------------------ transfer-leader


async def test_transfer_leader_end_to_end(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    target = other_voter(region)
    params = TransferLeaderParams(region_id=region.id, to_store_id=target)
    action = REGISTRY["transfer-leader"]
    dry = await action.dry_run(params, pd, ctx(sim5))
    assert dry.would_run, dry.text()
    assert writes(sim5) == []
    before = await action.snapshot(params, pd)
    assert await action.execute(params, pd) == "The operator is created."
    assert writes(sim5) == [
        (
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-leader", "region_id": region.id, "to_store_id": target},
        )
    ]
    sleep, clock = advancing(sim5)
    result = await follow(action, params, pd, before, sleep=sleep, clock=clock)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    after = await action.snapshot(params, pd)
    assert after.region is not None and after.region.leader_store_id == target
    assert len(writes(sim5)) == 1


async def test_transfer_leader_to_a_disconnected_store_is_refused(
    sim5: SimServer, pd: PDClient
) -> None:
    region = await some_region(pd, sim5)
    target = other_voter(region)
    sim5.faults.stop_store(target)
    sim5.cluster.advance(25)
    action = REGISTRY["transfer-leader"]
    params = TransferLeaderParams(region_id=region.id, to_store_id=target)
    report = await action.preflight(params, pd, ctx(sim5))
    # Disconnected after 20 s without a heartbeat; its peer is not yet reported pending
    assert [c.name for c in report.failures] == ["target-store-up"]
    assert f"store {target} is Disconnected (last heartbeat " in report.refusal()
    assert "s ago); transfer-leader needs an Up target" in report.refusal()
    sim5.cluster.advance(40)  # the simulator lists its peers as pending after 60 s
    report = await action.preflight(params, pd, ctx(sim5))
    assert [c.name for c in report.failures] == ["target-store-up", "target-holds-healthy-voter"]
    assert writes(sim5) == []


async def test_transfer_leader_timed_out_by_pd(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    target = other_voter(region)
    params = TransferLeaderParams(region_id=region.id, to_store_id=target)
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    sim5.faults.stop_store(target)  # the step can never finish
    sleep, clock = advancing(sim5)
    result = await follow(
        action, params, pd, before, sleep=sleep, clock=clock, deadline_seconds=300
    )
    assert result.outcome is Outcome.TIMED_OUT
    assert "PD timed out admin-transfer-leader" in result.message
    assert f"the leader of region {region.id} is on store {region.leader_store_id}" in (
        result.message
    )


async def test_transfer_leader_deadline_passes_before_pd_gives_up(
    sim5: SimServer, pd: PDClient
) -> None:
    region = await some_region(pd, sim5)
    target = other_voter(region)
    params = TransferLeaderParams(region_id=region.id, to_store_id=target)
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    sim5.faults.stop_store(target)
    sleep, clock = advancing(sim5)
    result = await follow(action, params, pd, before, sleep=sleep, clock=clock, deadline_seconds=10)
    assert result.outcome is Outcome.TIMED_OUT
    assert result.message.startswith("transfer-leader did not finish within 10 s; last seen: ")


async def test_transfer_leader_cancelled(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    params = TransferLeaderParams(region_id=region.id, to_store_id=other_voter(region))
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    await pd.execute(PDWrite.cancel_operator(region.id))
    result = await action.verify(params, pd, before)
    assert result.outcome is Outcome.FAILED
    assert "PD cancelled admin-transfer-leader" in result.message


async def test_reconcile_after_a_crash_never_resends(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    params = TransferLeaderParams(region_id=region.id, to_store_id=other_voter(region))
    action = REGISTRY["transfer-leader"]
    before = await action.snapshot(params, pd)
    assert await action.reconcile(params, pd, before) is None  # crashed before sending
    await action.execute(params, pd)
    # the process dies here; a new one reconciles with a fresh client
    async with open_pd_client(sim5.pd_url, retries=0) as fresh:
        pending = await action.reconcile(params, fresh, before)
        assert pending is not None and pending.outcome is Outcome.PENDING
        sim5.cluster.advance(5)
        done = await action.reconcile(params, fresh, before)
        assert done is not None and done.outcome is Outcome.SUCCEEDED
    assert len(writes(sim5)) == 1


# ------------------------------------------------------------------ transfer-peer


async def test_transfer_peer_end_to_end(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    source = other_voter(region)
    target = store_without_peer(region)
    params = TransferPeerParams(region_id=region.id, from_store_id=source, to_store_id=target)
    action = REGISTRY["transfer-peer"]
    assert (await action.preflight(params, pd, ctx(sim5))).ok
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    assert writes(sim5) == [
        (
            "POST",
            "/pd/api/v1/operators",
            {
                "name": "transfer-peer",
                "region_id": region.id,
                "from_store_id": source,
                "to_store_id": target,
            },
        )
    ]
    sleep, clock = advancing(sim5)
    result = await follow(action, params, pd, before, sleep=sleep, clock=clock)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    after = await cluster_state.read_region(pd, region.id)
    assert after is not None
    assert target in after.peer_store_ids and source not in after.peer_store_ids


async def test_transfer_peer_refused_next_to_a_down_peer(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    leader = region.leader_store_id
    assert leader is not None
    down, healthy = (s for s in region.voter_store_ids if s != leader)
    sim5.faults.stop_store(down)
    sim5.cluster.advance(40)
    params = TransferPeerParams(
        region_id=region.id, from_store_id=healthy, to_store_id=store_without_peer(region)
    )
    report = await REGISTRY["transfer-peer"].preflight(params, pd, ctx(sim5))
    assert "quorum-safe" in [c.name for c in report.failures]
    assert f"already has a down or pending peer (stores {down})" in report.refusal()
    # moving the down peer itself is the remedy, and allowed
    remedy = TransferPeerParams(
        region_id=region.id, from_store_id=down, to_store_id=store_without_peer(region)
    )
    assert (await REGISTRY["transfer-peer"].preflight(remedy, pd, ctx(sim5))).ok
    assert writes(sim5) == []


# ------------------------------------------------------------------ drain and undrain


async def test_drain_until_no_leaders_then_undo(sim5: SimServer, pd: PDClient) -> None:
    drain = REGISTRY["drain"]
    params = DrainParams(store_id=2)
    dry = await drain.dry_run(params, pd, ctx(sim5))
    leaders = sim5.cluster.stores[2].leader_count
    assert leaders > 0
    assert dry.expected_effect.startswith(f"{leaders:,} leaders would move off store 2")
    before = await drain.snapshot(params, pd)
    await drain.execute(params, pd)
    assert writes(sim5) == [
        ("POST", "/pd/api/v1/schedulers", {"name": "evict-leader-scheduler", "store_id": 2})
    ]
    sleep, clock = advancing(sim5)
    progress: list[str] = []

    async def record(v: Any) -> None:
        progress.append(v.message)

    result = await follow(drain, params, pd, before, sleep=sleep, clock=clock, on_progress=record)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert result.message.endswith("→ 0")
    assert all(p.startswith("leaders on store 2: ") for p in progress)
    assert (await pd.get_store(2)).leader_count == 0

    undo = drain.undo(params, before)
    assert undo is not None
    undrain, undo_params = validate_call(undo)
    assert undrain.name == "undrain"
    assert (await undrain.preflight(undo_params, pd, ctx(sim5))).ok
    undo_before = await undrain.snapshot(undo_params, pd)
    await undrain.execute(undo_params, pd)
    assert writes(sim5)[-1] == ("DELETE", "/pd/api/v1/schedulers/evict-leader-scheduler-2", None)
    assert (await undrain.verify(undo_params, pd, undo_before)).outcome is Outcome.SUCCEEDED
    assert await pd.evicted_leader_store_ids() == []


async def test_a_slow_stores_drain_runs_to_zero_leaders_on_three_stores(sim: SimServer) -> None:
    """The most common small deployment: 3 stores, max-replicas 3. Evicting leaders moves no
    replica, so the drain passes preflight and every leader of the slow store moves away."""
    scenario = sim.apply_scenario("slow-store")
    sid = scenario.store_id
    assert sid is not None
    sim.cluster.advance(30)
    total = sum(s.leader_count for s in sim.cluster.stores.values())
    async with open_pd_client(sim.pd_url, retries=0) as pd:
        drain, params = validate_call({"action": "drain", "params": {"store_id": sid}})
        others = [s for s in (1, 2, 3) if s != sid]
        dry = await drain.dry_run(params, pd, ctx(sim))
        assert dry.would_run, dry.text()
        assert dry.preflight.warnings == ()
        checks = {c.name: c for c in dry.preflight.checks}
        assert checks["enough-leader-stores"].observed == (
            f"2 other Up store(s) can take leaders ({others[0]}, {others[1]})"
        )
        assert checks["healthy-voters-elsewhere"].observed.startswith(
            f"every region store {sid} leads has another voter on stores {others[0]} or "
            f"{others[1]}, able to take its leader"
        )
        load = checks["leader-load"].observed
        assert "(50%" in load and load.count("≈") == 2
        assert writes(sim) == []

        before = await drain.snapshot(params, pd)
        leaders = before.store_leader_counts[sid]
        assert leaders > 0
        await drain.execute(params, pd)
        assert writes(sim) == [
            ("POST", "/pd/api/v1/schedulers", {"name": "evict-leader-scheduler", "store_id": sid})
        ]
        sleep, clock = advancing(sim)
        result = await follow(drain, params, pd, before, sleep=sleep, clock=clock)
        assert result.outcome is Outcome.SUCCEEDED, result.message
        assert result.message == f"leaders on store {sid}: {leaders:,} → 0"
        assert (await pd.get_store(sid)).leader_count == 0
        # No leader was lost: the two other stores lead every region now.
        after = {s: (await pd.get_store(s)).leader_count for s in others}
        assert sum(after.values()) == total
        assert all(count > 0 for count in after.values())
        assert len(writes(sim)) == 1


async def test_drain_of_a_stopped_store_is_refused_on_three_stores(sim: SimServer) -> None:
    sim.faults.stop_store(2)
    sim.cluster.advance(25)
    async with open_pd_client(sim.pd_url, retries=0) as client:
        report = await REGISTRY["drain"].preflight(DrainParams(store_id=2), client, ctx(sim))
        assert [c.name for c in report.failures] == ["store-up"]
        refusal = report.refusal()
        assert refusal.startswith("Refused drain: store 2 is Disconnected (last heartbeat ")
        assert "s ago); a drain moves leaders off a serving store" in refusal
        # The other Up store can be drained, but all leaders would then sit on one store.
        other = await REGISTRY["drain"].preflight(DrainParams(store_id=1), client, ctx(sim))
        assert other.ok, other.refusal()
        [warning] = other.warnings
        assert warning.name == "leader-load"
        assert "Store 3 would lead 100% of all leaders, more than 60%" in warning.message
    assert writes(sim) == []


async def test_only_one_store_drained_at_once(sim5: SimServer, pd: PDClient) -> None:
    drain = REGISTRY["drain"]
    await drain.execute(DrainParams(store_id=1), pd)
    report = await drain.preflight(DrainParams(store_id=2), pd, ctx(sim5))
    assert [c.name for c in report.failures] == ["drained-stores-limit"]
    wider = await drain.preflight(DrainParams(store_id=2), pd, ctx(sim5, max_drained_stores=2))
    assert wider.ok, wider.refusal()
    assert len(writes(sim5)) == 1


async def test_reconcile_drain(sim5: SimServer, pd: PDClient) -> None:
    drain = REGISTRY["drain"]
    params = DrainParams(store_id=3)
    before = await drain.snapshot(params, pd)
    assert await drain.reconcile(params, pd, before) is None
    await drain.execute(params, pd)
    applied = await drain.reconcile(params, pd, before)
    assert applied is not None and applied.outcome is Outcome.PENDING
    sim5.cluster.advance(600)
    done = await drain.reconcile(params, pd, before)
    assert done is not None and done.outcome is Outcome.SUCCEEDED
    assert len(writes(sim5)) == 1


async def test_undrain_refused_when_not_drained(sim5: SimServer, pd: PDClient) -> None:
    report = await REGISTRY["undrain"].preflight(UndrainParams(store_id=2), pd, ctx(sim5))
    assert [c.name for c in report.failures] == ["is-drained"]
    assert writes(sim5) == []


# ------------------------------------------------------------------ split


async def test_split_end_to_end(sim5: SimServer, pd: PDClient) -> None:
    region = await some_region(pd, sim5)
    params = SplitParams(region_id=region.id)
    action = REGISTRY["split"]
    count = len(sim5.cluster.regions)
    before = await action.snapshot(params, pd)
    await action.execute(params, pd)
    assert writes(sim5) == [
        (
            "POST",
            "/pd/api/v1/operators",
            {"name": "split-region", "region_id": region.id, "policy": "approximate"},
        )
    ]
    sleep, clock = advancing(sim5)
    result = await follow(action, params, pd, before, sleep=sleep, clock=clock)
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert len(sim5.cluster.regions) == count + 1
    assert action.undo(params, before) is None


# ------------------------------------------------------------------ config


async def test_limit_and_its_undo(sim5: SimServer, pd: PDClient) -> None:
    action = REGISTRY["limit"]
    params = LimitParams(kind="leader", value=12)
    assert (await action.preflight(params, pd, ctx(sim5))).ok
    before = await action.snapshot(params, pd)
    previous = (await pd.get_schedule_config()).leader_schedule_limit
    await action.execute(params, pd)
    assert writes(sim5) == [("POST", "/pd/api/v1/config/schedule", {"leader-schedule-limit": 12})]
    assert (await action.verify(params, pd, before)).outcome is Outcome.SUCCEEDED
    assert (await pd.get_schedule_config()).leader_schedule_limit == 12
    undo_action, undo_params = validate_call(action.undo(params, before) or {})
    await undo_action.execute(undo_params, pd)
    assert (await pd.get_schedule_config()).leader_schedule_limit == previous


async def test_space_ratio_order_is_checked_before_pd(sim5: SimServer, pd: PDClient) -> None:
    action = REGISTRY["space-ratio"]
    bad = SpaceRatioParams(which="high", ratio=0.95)
    report = await action.preflight(bad, pd, ctx(sim5))
    assert [c.name for c in report.failures] == ["ratio-order"]
    assert writes(sim5) == []
    good = SpaceRatioParams(which="low", ratio=0.9)
    before = await action.snapshot(good, pd)
    await action.execute(good, pd)
    assert (await action.verify(good, pd, before)).outcome is Outcome.SUCCEEDED
    assert writes(sim5) == [("POST", "/pd/api/v1/config/schedule", {"low-space-ratio": 0.9})]
