"""Fault injection through the Python API: stores, disks, hot regions, PD errors and partitions."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sim.server import SimServer
from tests.sim.conftest import TEXT, V1, expect_raw, leader_store, post_operator, region

REDIRECT = "[PD:apiutil:ErrRedirect]redirect failed\n"


async def test_stopped_store_refuses_metrics_and_answers_again_after_start(
    sim: SimServer,
) -> None:
    address = sim.status_addresses[2]
    sim.faults.stop_store(2)
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://{address}/metrics")
    sim.faults.start_store(2)
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{address}/metrics")
    assert response.status_code == 200
    assert sim.status_addresses[2] == address  # same status port after the restart


async def test_fill_disk_sets_the_used_ratio(sim: SimServer) -> None:
    sim.faults.fill_disk(1, 0.9)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        status = (await pd.get(f"{V1}/store/1")).json()["status"]
    units = {"GiB": 2**30, "TiB": 2**40}

    def size(text: str) -> float:
        return float(text[:-3]) * units[text[-3:]]

    ratio = 1 - size(status["available"]) / size(status["capacity"])
    assert ratio == pytest.approx(0.9, abs=0.002)
    store = sim.cluster.stores[1]
    assert sim.cluster.used_ratio(store) == pytest.approx(0.9, abs=1e-6)


async def test_fill_disk_over_time_ramps(sim: SimServer) -> None:
    cluster = sim.cluster
    start = cluster.used_ratio(cluster.stores[3])
    sim.faults.fill_disk(3, 0.8, over_seconds=100)
    cluster.advance(50)
    middle = cluster.used_ratio(cluster.stores[3])
    assert middle == pytest.approx((start + 0.8) / 2, abs=1e-6)
    cluster.advance(60)
    assert cluster.used_ratio(cluster.stores[3]) == pytest.approx(0.8, abs=1e-6)


async def test_hot_region_follows_its_leader(sim: SimServer) -> None:
    leader = sim.faults.hot_region(2008)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        write = (await pd.get(f"{V1}/hotspot/regions/write")).json()
        stats = write["as_leader"][str(leader)]["statistics"]
        assert [s["region_id"] for s in stats] == [2008]
        assert stats[0]["is_leader"] is True and stats[0]["stores"] == [1, 2, 3]
        assert write["as_leader"][str(leader)]["regions_count"] == 1
        for store_id in ("1", "2", "3"):
            assert write["as_peer"][store_id]["regions_count"] == 1
        target = next(s for s in (1, 2, 3) if s != leader)
        await post_operator(pd, name="transfer-leader", region_id=2008, to_store_id=target)
        sim.cluster.advance(1)
        moved = (await pd.get(f"{V1}/hotspot/regions/write")).json()
        assert moved["as_leader"][str(target)]["regions_count"] == 1
        assert moved["as_leader"][str(leader)]["regions_count"] == 0
        read = (await pd.get(f"{V1}/hotspot/regions/read")).json()
        assert all(v["regions_count"] == 0 for v in read["as_leader"].values())
        assert (await region(pd, 2008))["written_bytes"] > 1_000_000_000


async def test_pd_errors_every_request_then_healed(sim: SimServer) -> None:
    sim.faults.pd_errors(status=503)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        expect_raw(await pd.get(f"{V1}/stores"), 503, REDIRECT, TEXT)
        expect_raw(await pd.post(f"{V1}/operators", json={}), 503, REDIRECT, TEXT)
        assert (await pd.get("/sim/state")).status_code == 200  # control API unaffected
        async with httpx.AsyncClient() as client:
            metrics = await client.get(f"http://{sim.status_addresses[1]}/metrics")
        assert metrics.status_code == 200
        sim.faults.heal()
        assert (await pd.get(f"{V1}/stores")).status_code == 200


async def test_pd_errors_every_nth_request_for_a_while(sim: SimServer) -> None:
    sim.faults.pd_errors(status=500, seconds=30, every=3)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        codes = [(await pd.get(f"{V1}/health")).status_code for _ in range(6)]
        assert codes == [500, 200, 200, 500, 200, 200]
        sim.cluster.advance(31)
        codes = [(await pd.get(f"{V1}/health")).status_code for _ in range(3)]
        assert codes == [200, 200, 200]


async def test_pd_timeouts_hang_until_healed(sim: SimServer) -> None:
    sim.faults.pd_timeouts(seconds=60)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        with pytest.raises(httpx.ReadTimeout):
            await pd.get(f"{V1}/stores", timeout=0.3)
        pending = asyncio.create_task(pd.get(f"{V1}/health", timeout=10))
        await asyncio.sleep(0.1)
        assert not pending.done()
        sim.cluster.advance(61)  # the fault expires with virtual time
        response = await pending
        assert response.status_code == 200
        assert (await pd.get(f"{V1}/stores", timeout=2)).status_code == 200


async def test_partition_refuses_connections_and_keeps_state(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        leader = leader_store(await region(pd, 2008))
    sim.faults.partition()
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        with pytest.raises(httpx.ConnectError):
            await pd.get(f"{V1}/stores")
    sim.cluster.advance(5)
    sim.faults.heal()
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        assert (await pd.get(f"{V1}/stores")).status_code == 200
        assert leader_store(await region(pd, 2008)) == leader


async def test_partition_with_duration_heals_itself(sim: SimServer) -> None:
    sim.faults.partition(seconds=10)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        with pytest.raises(httpx.ConnectError):
            await pd.get(f"{V1}/health")
    sim.cluster.advance(11)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        assert (await pd.get(f"{V1}/health")).status_code == 200


async def test_clear_undoes_every_fault(sim: SimServer) -> None:
    faults = sim.faults
    faults.stop_store(1)
    faults.slow_store(2, 400)
    faults.fill_disk(3, 0.95)
    faults.hot_region(2008)
    faults.pd_errors(503)
    faults.clear()
    cluster = sim.cluster
    assert all(s.running for s in cluster.stores.values())
    assert cluster.stores[2].write_p99_ms == 20.0
    assert cluster.used_ratio(cluster.stores[3]) < 0.5
    assert not cluster.hot
    described = faults.describe()
    assert described["pd_errors"] is None and described["stopped_stores"] == []
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        assert (await pd.get(f"{V1}/stores")).status_code == 200
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{sim.status_addresses[1]}/metrics")
    assert response.status_code == 200


async def test_invalid_fault_arguments_are_refused(sim: SimServer) -> None:
    with pytest.raises(ValueError, match="status"):
        sim.faults.pd_errors(status=200)
    with pytest.raises(ValueError, match="ratio"):
        sim.faults.fill_disk(1, 1.5)
    with pytest.raises(ValueError, match="kind"):
        sim.faults.hot_region(2008, kind="sideways")
