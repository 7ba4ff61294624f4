"""The request log (Python and /sim/requests) and the /sim control API."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from sim.server import SimServer
from tests.sim.conftest import V1


async def test_request_log_records_what_the_client_sent(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    await pd.get(f"{V1}/stores", params=[("state", "0"), ("state", "1")])
    await pd.post(
        f"{V1}/operators", json={"name": "transfer-leader", "region_id": 2008, "to_store_id": 1}
    )
    await pd.post(f"{V1}/operators", content=b"not json")
    await pd.get("/sim/state")  # the control API is not logged
    records = sim.requests
    assert [(r.method, r.path) for r in records] == [
        ("GET", f"{V1}/stores"),
        ("POST", f"{V1}/operators"),
        ("POST", f"{V1}/operators"),
    ]
    assert records[0].query == {"state": ["0", "1"]}
    assert records[0].body is None and records[0].status == 200
    assert records[1].body == {"name": "transfer-leader", "region_id": 2008, "to_store_id": 1}
    assert records[1].status in (200, 500)
    assert records[2].body == "not json" and records[2].status == 400
    assert records[0].at == sim.cluster.now and records[0].store_id is None
    posts = [r for r in sim.requests if r.method == "POST" and r.path == f"{V1}/operators"]
    assert len(posts) == 2


async def test_metrics_scrapes_are_logged_with_their_store(sim: SimServer) -> None:
    async with httpx.AsyncClient() as client:
        await client.get(f"http://{sim.status_addresses[2]}/metrics")
        missing = await client.get(f"http://{sim.status_addresses[2]}/nope")
    assert missing.status_code == 404
    records = sim.requests
    assert [(r.store_id, r.path, r.status) for r in records] == [
        (2, "/metrics", 200),
        (2, "/nope", 404),
    ]


async def test_unanswered_request_has_no_status(sim: SimServer, pd: httpx.AsyncClient) -> None:
    sim.faults.pd_timeouts()
    with pytest.raises(httpx.ReadTimeout):
        await pd.get(f"{V1}/health", timeout=0.2)
    assert sim.requests[-1].status is None
    sim.faults.heal()
    await asyncio.sleep(0.05)


async def test_requests_endpoint_filters_and_clears(sim: SimServer, pd: httpx.AsyncClient) -> None:
    await pd.get(f"{V1}/stores")
    await pd.post(f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 1})
    listed = (await pd.get("/sim/requests", params={"method": "post"})).json()
    assert listed["count"] == 1
    record = listed["requests"][0]
    assert record["path"] == f"{V1}/schedulers"
    assert record["body"] == {"name": "evict-leader-scheduler", "store_id": 1}
    assert record["status"] == 200
    assert set(record) >= {"method", "path", "query", "body", "status", "at", "store_id"}
    by_prefix = (await pd.get("/sim/requests", params={"prefix": f"{V1}/store"})).json()
    assert [r["path"] for r in by_prefix["requests"]] == [f"{V1}/stores"]
    assert (await pd.delete("/sim/requests")).status_code == 200
    assert (await pd.get("/sim/requests")).json() == {"count": 0, "requests": []}
    assert sim.requests == []


async def test_control_api_drives_time_and_faults(sim: SimServer, pd: httpx.AsyncClient) -> None:
    state = (await pd.get("/sim/state")).json()
    assert state["speed"] == 1.0 and state["auto_tick"] is False
    assert [s["id"] for s in state["stores"]] == [1, 2, 3]
    response = await pd.post("/sim/stores/2/stop")
    assert response.status_code == 200
    advanced = (await pd.post("/sim/advance", json={"seconds": 25})).json()
    assert advanced["now"] == pytest.approx(state["now"] + 25)
    assert (await pd.get(f"{V1}/store/2")).json()["store"]["state_name"] == "Disconnected"
    await pd.post("/sim/stores/2/start")
    await pd.post("/sim/stores/3/slow", json={"write_p99_ms": 300})
    await pd.post("/sim/stores/1/disk", json={"ratio": 0.85})
    hot = (await pd.post("/sim/regions/2008/hot", json={"kind": "read"})).json()
    assert hot["leader_store_id"] == sim.cluster.regions[2008].leader_store
    faults = (await pd.get("/sim/state")).json()["faults"]
    assert faults["slow_stores"] == {"3": 300.0}
    assert faults["disk_used_ratio"]["1"] == pytest.approx(0.85, abs=1e-4)
    assert faults["hot_regions"] == {"2008": "read"}
    scenario = (await pd.post("/sim/scenarios/slow-store")).json()
    assert scenario["store_id"] == 2 and "250" in scenario["summary"]
    assert (await pd.get("/sim/scenarios")).json()["scenarios"][0] == "store-down"
    errors = (await pd.post("/sim/pd/errors", json={"status": 502})).json()
    assert errors["faults"]["pd_errors"]["status"] == 502
    assert (await pd.get(f"{V1}/health")).status_code == 502
    await pd.post("/sim/pd/heal")
    assert (await pd.get(f"{V1}/health")).status_code == 200
    cleared = (await pd.post("/sim/faults/clear")).json()["faults"]
    assert cleared["slow_stores"] == {} and cleared["hot_regions"] == {}


async def test_control_api_refusals_say_what_to_send(pd: httpx.AsyncClient) -> None:
    bad = await pd.post("/sim/advance", json={"seconds": "soon"})
    assert bad.status_code == 400 and "seconds" in bad.json()["error"]
    unknown_store = await pd.post("/sim/stores/9/stop")
    assert unknown_store.status_code == 404
    assert "store 9 not found" in unknown_store.json()["error"]
    unknown = await pd.post("/sim/scenarios/meteor")
    assert unknown.status_code == 404 and "store-down" in unknown.json()["error"]
    not_json = await pd.post("/sim/pd/errors", content=b"{")
    assert not_json.status_code == 400
    action = await pd.post("/sim/pd/explode")
    assert action.status_code == 404


async def test_partition_through_the_control_api_heals_with_time(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        assert (await pd.post("/sim/pd/partition", json={"seconds": 30})).status_code == 200
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        with pytest.raises(httpx.ConnectError):
            await pd.get("/sim/state")
    sim.cluster.advance(31)
    async with httpx.AsyncClient(base_url=sim.pd_url) as pd:
        assert (await pd.get(f"{V1}/health")).status_code == 200
