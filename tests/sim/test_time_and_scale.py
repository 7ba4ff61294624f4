"""Virtual time with auto_tick and a speed factor; a larger cluster answers consistently."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sim.cluster import Cluster
from tests.plugins.sim import SimFactory
from tests.sim.conftest import V1


async def test_auto_tick_moves_virtual_time_at_speed(sim_factory: SimFactory) -> None:
    server = await sim_factory(auto_tick=True, speed=600.0)
    server.faults.stop_store(3)
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        state = "Up"
        for _ in range(200):  # 20 virtual seconds need ~0.04 s of wall time at speed 600
            await asyncio.sleep(0.05)
            state = (await pd.get(f"{V1}/store/3")).json()["store"]["state_name"]
            if state == "Disconnected":
                break
        assert state == "Disconnected"
        assert (await pd.get("/sim/state")).json()["elapsed"] > 20


async def test_manual_advance_adds_to_auto_tick(sim_factory: SimFactory) -> None:
    server = await sim_factory(auto_tick=True, speed=1.0)
    before = server.cluster.now
    server.cluster.advance(3600)
    await asyncio.sleep(0.25)
    assert server.cluster.now >= before + 3600


def test_cluster_sizes_are_bounded_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="stores must be between 1 and 200, got 201"):
        Cluster(stores=201)
    with pytest.raises(ValueError, match="regions must be between 1 and 1000000"):
        Cluster(regions=0)


def test_same_seed_same_cluster_different_seed_different_sizes() -> None:
    first, second, other = Cluster(seed=7), Cluster(seed=7), Cluster(seed=8)
    sizes = [r.approximate_size for r in first.ordered_regions()]
    assert sizes == [r.approximate_size for r in second.ordered_regions()]
    assert sizes != [r.approximate_size for r in other.ordered_regions()]
    assert [r.id for r in first.ordered_regions()][:3] == [4, 8, 12]


async def test_ten_stores_twenty_thousand_regions(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=10, regions=20_000)
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        stores = (await pd.get(f"{V1}/stores")).json()["stores"]
        assert len(stores) == 10
        assert sum(s["status"]["leader_count"] for s in stores) == 20_000
        assert sum(s["status"]["region_count"] for s in stores) == 60_000
        assert all(s["status"]["region_count"] == 6000 for s in stores)
        assert (await pd.get(f"{V1}/regions/check/down-peer")).json()["count"] == 0
        last = server.cluster.ordered_regions()[-1]
        body = (await pd.get(f"{V1}/region/id/{last.id}")).json()
        assert body["end_key"] == "" and len(body["peers"]) == 3
        assert len({p["store_id"] for p in body["peers"]}) == 3
        server.faults.stop_store(10)
        server.cluster.advance(601)
        down = (await pd.get(f"{V1}/regions/check/down-peer")).json()
        assert down["count"] == 6000
        assert all(
            any(d["peer"]["store_id"] == 10 for d in r["down_peers"]) for r in down["regions"]
        )
