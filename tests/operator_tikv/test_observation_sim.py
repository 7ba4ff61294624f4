"""observe() and the invariants against the simulator: request cost, and faults seen over time."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from operator_tikv.invariants import (
    Evaluation,
    InvariantMemory,
    Severity,
    Thresholds,
    ViolationKind,
    evaluate,
)
from operator_tikv.observation import Observation, RegionProblem, observe
from operator_tikv.pd import PDClient
from operator_tikv.scrape import ScrapeSource
from sim.server import SimServer
from tests.plugins.sim import SimFactory


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def take(server: SimServer, http: httpx.AsyncClient, scrape: ScrapeSource) -> Observation:
    pd = PDClient(http, server.pd_url, retries=0)
    return await observe(pd, scrape, at=server.cluster.now, pd_url=server.pd_url)


@pytest.mark.parametrize(
    ("stopped", "sizes"),
    [
        (False, (1_000, 20_000)),
        # With a store down the region lists hold most regions and take seconds to parse at
        # 20k, so this variant compares 1k with 4k.
        (True, (1_000, 4_000)),
    ],
)
async def test_requests_per_observation_do_not_grow_with_regions(
    sim_factory: SimFactory, http: httpx.AsyncClient, stopped: bool, sizes: tuple[int, int]
) -> None:
    costs = []
    for regions in sizes:
        server = await sim_factory(regions=regions)
        if stopped:  # every region with a peer on store 3 gets a down peer
            server.faults.stop_store(3)
            server.cluster.advance(700)
        server.clear_requests()
        obs = await take(server, http, ScrapeSource(http))
        paths = [r.path for r in server.requests]
        assert "/pd/api/v1/regions" not in paths
        assert not any(p.startswith("/pd/api/v1/regions/store/") for p in paths)
        assert obs.pd_reachable
        down = obs.region_checks[RegionProblem.DOWN_PEER].count
        if stopped:
            assert down > regions // 2  # the lists grow with the cluster...
        else:
            assert down == 0
        costs.append(len(paths))
    # ...the number of requests does not: 1 store list + PD's /metrics (the region counts) +
    # 1 hotspot + scrapes (3, or 2 with a store stopped); with a store stopped, the down-peer
    # and pending-peer lists (their counts are not 0) and PD's max-replicas.
    assert costs[0] == costs[1] == (8 if stopped else 6)


def kinds(result: Evaluation) -> set[tuple[ViolationKind, int | None]]:
    return {(v.kind, v.store_id) for v in result.violations}


async def test_faults_become_violations_and_clear(sim: SimServer, http: httpx.AsyncClient) -> None:
    t = Thresholds()  # 100 ms / 60 s, 70 %
    scrape = ScrapeSource(http)
    memory = InvariantMemory()

    first = evaluate(await take(sim, http, scrape), t, memory)
    assert first.violations == () and first.pending == ()

    sim.faults.slow_store(2, write_p99_ms=250)
    sim.faults.fill_disk(3, 0.85)
    sim.cluster.advance(15)
    second = evaluate(await take(sim, http, scrape), t, first.memory)
    # Disk is immediate; the slow store is pending until 60 s have passed.
    assert kinds(second) == {(ViolationKind.DISK_USAGE, 3)}
    assert [(v.kind, v.store_id) for v in second.pending] == [(ViolationKind.WRITE_LATENCY, 2)]
    assert second.pending[0].value is not None and second.pending[0].value > 150

    sim.cluster.advance(60)
    third = evaluate(await take(sim, http, scrape), t, second.memory)
    assert kinds(third) == {(ViolationKind.DISK_USAGE, 3), (ViolationKind.WRITE_LATENCY, 2)}
    latency = next(v for v in third.violations if v.kind is ViolationKind.WRITE_LATENCY)
    assert latency.first_seen == second.pending[0].first_seen

    sim.faults.slow_store(2, write_p99_ms=20)
    sim.faults.fill_disk(3, 0.3)
    sim.cluster.advance(15)
    fourth = evaluate(await take(sim, http, scrape), t, third.memory)
    assert fourth.violations == ()
    assert fourth.memory.entries == {}


async def test_stopped_store_goes_disconnected_then_down(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    t = Thresholds()
    scrape = ScrapeSource(http)
    sim.faults.stop_store(3)
    sim.cluster.advance(1)
    early = evaluate(await take(sim, http, scrape), t)
    # PD still says Up (no heartbeat missed for 20 s yet), but the metrics endpoint is gone.
    assert kinds(early) == {(ViolationKind.STORE_METRICS_MISSING, 3)}

    sim.cluster.advance(30)
    later = evaluate(await take(sim, http, scrape), t, early.memory)
    assert (ViolationKind.STORE_DISCONNECTED, 3) in kinds(later)
    assert (ViolationKind.STORE_METRICS_MISSING, 3) not in kinds(later)

    sim.cluster.advance(1900)
    down = evaluate(await take(sim, http, scrape), t, later.memory)
    found = kinds(down)
    assert (ViolationKind.STORE_DOWN, 3) in found
    assert (ViolationKind.REGION_DOWN_PEER, None) in found
    region_violation = next(v for v in down.violations if v.kind is ViolationKind.REGION_DOWN_PEER)
    assert "store 3" in region_violation.message
    store_down = next(v for v in down.violations if v.kind is ViolationKind.STORE_DOWN)
    assert store_down.severity is Severity.CRITICAL

    sim.faults.start_store(3)
    sim.cluster.advance(120)
    healed = evaluate(await take(sim, http, scrape), t, down.memory)
    assert (ViolationKind.STORE_DOWN, 3) not in kinds(healed)


async def test_pd_partition_is_pd_unreachable(sim: SimServer, http: httpx.AsyncClient) -> None:
    sim.faults.partition()
    obs = await take(sim, http, ScrapeSource(http))
    result = evaluate(obs, Thresholds())
    assert [v.kind for v in result.violations] == [ViolationKind.PD_UNREACHABLE]
    sim.faults.heal()
    assert evaluate(await take(sim, http, ScrapeSource(http)), Thresholds()).violations == ()
