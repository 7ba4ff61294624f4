"""Each named scenario produces what its documentation says a bot should detect."""

from __future__ import annotations

import httpx
import pytest

from sim.scenarios import SCENARIOS
from sim.server import SimServer
from tests.plugins.sim import SimFactory
from tests.sim.conftest import TEXT, V1, expect_raw
from tests.sim.promql import quantile_from_delta
from tests.sim.test_metrics import WRITE, scrape


def test_every_scenario_is_documented() -> None:
    import sim.scenarios

    doc = sim.scenarios.__doc__ or ""
    assert set(SCENARIOS) == {
        "store-down",
        "two-stores-down",
        "slow-store",
        "disk-filling",
        "hot-region",
        "pd-flaky",
    }
    for name in SCENARIOS:
        assert f"``{name}``" in doc


async def test_unknown_scenario_is_refused_with_the_known_names(sim: SimServer) -> None:
    with pytest.raises(ValueError, match="known scenarios: store-down, two-stores-down, slow"):
        sim.apply_scenario("meteor")


async def test_store_down(sim: SimServer) -> None:
    result = sim.apply_scenario("store-down")
    assert result.store_id == 3
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://{sim.status_addresses[3]}/metrics")
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        sim.cluster.advance(21)
        store = (await pd.get(f"{V1}/store/3")).json()
        assert store["store"]["state_name"] == "Disconnected"
        assert store["status"]["leader_count"] == 0
        sim.cluster.advance(600)
        assert (await pd.get(f"{V1}/regions/check/down-peer")).json()["count"] == 1000
        sim.cluster.advance(1200)
        assert (await pd.get(f"{V1}/store/3")).json()["store"]["state_name"] == "Down"


async def test_two_stores_down_loses_quorum(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=3, regions=40, peer_down_seconds=90.0)
    result = server.apply_scenario("two-stores-down")
    assert result.details == {"stores": [2, 3], "quorum_lost_regions": 40}
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        server.cluster.advance(100)
        body = (await pd.get(f"{V1}/regions/check/down-peer")).json()
        assert body["count"] == 40
        region = body["regions"][0]
        down = {p["peer"]["store_id"] for p in region["down_peers"]}
        assert down == {2, 3}  # two of its three voters: no majority left


async def test_store_down_choice_depends_on_size(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=5, regions=50)
    assert server.apply_scenario("store-down").store_id == 5


async def test_slow_store(sim: SimServer) -> None:
    result = sim.apply_scenario("slow-store")
    assert result.store_id == 2
    async with httpx.AsyncClient() as client:
        before = {sid: await scrape(client, a) for sid, a in sim.status_addresses.items()}
        sim.cluster.advance(60)
        after = {sid: await scrape(client, a) for sid, a in sim.status_addresses.items()}
    p99 = {
        sid: quantile_from_delta(before[sid], after[sid], WRITE, {"type": "write"}, 0.99)
        for sid in before
    }
    assert p99[2] > 0.16
    assert p99[1] < 0.03 and p99[3] < 0.03


async def test_disk_filling(sim: SimServer) -> None:
    result = sim.apply_scenario("disk-filling")
    assert result.store_id == 1
    cluster = sim.cluster
    store = cluster.stores[1]
    assert cluster.used_ratio(store) == pytest.approx(0.75, abs=1e-6)
    cluster.advance(600)
    assert 0.8 < cluster.used_ratio(store) < 0.92
    cluster.advance(1200)
    assert cluster.used_ratio(store) == pytest.approx(0.92, abs=1e-6)
    assert cluster.is_low_space(store)


async def test_hot_region(sim: SimServer) -> None:
    result = sim.apply_scenario("hot-region")
    assert result.region_id == sim.cluster.ordered_regions()[500].id
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        write = (await pd.get(f"{V1}/hotspot/regions/write")).json()
        stats = write["as_leader"][str(result.store_id)]["statistics"]
        assert [s["region_id"] for s in stats] == [result.region_id]
        metrics = (await pd.get("/metrics")).text
    assert (
        f'pd_hotspot_status{{address="127.0.0.1:{20159 + (result.store_id or 0)}",'
        f'store="{result.store_id}",type="hot_write_region_as_leader"}} 1'
    ) in metrics


async def test_pd_flaky(sim: SimServer) -> None:
    sim.apply_scenario("pd-flaky")
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        first = await pd.get(f"{V1}/stores")
        expect_raw(first, 503, "[PD:apiutil:ErrRedirect]redirect failed\n", TEXT)
        assert (await pd.get(f"{V1}/stores")).status_code == 200
        sim.cluster.advance(601)
        codes = {(await pd.get(f"{V1}/stores")).status_code for _ in range(4)}
        assert codes == {200}
