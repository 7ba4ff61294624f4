"""Successful answers have PD v8.5.5's shapes: keys, types, omitted zero values, content types."""

from __future__ import annotations

import re

import httpx

from sim.server import SimServer
from tests.sim.conftest import DATA, JSON, V1, expect_message, leader_store, region

STORE_KEYS = [
    "id",
    "address",
    "labels",
    "version",
    "status_address",
    "git_hash",
    "start_timestamp",
    "deploy_path",
    "last_heartbeat",
    "node_state",
    "state_name",
]
SIZE = re.compile(r"^\d+(\.\d+)?(B|KiB|MiB|GiB|TiB|PiB)$")


async def test_stores_list_has_pd_store_info_shape(sim: SimServer, pd: httpx.AsyncClient) -> None:
    response = await pd.get(f"{V1}/stores")
    assert response.headers["content-type"] == JSON
    assert response.text.startswith('{\n  "count": 3,\n  "stores": [\n')
    body = response.json()
    assert body["count"] == len(body["stores"]) == 3
    for info in body["stores"]:
        store, status = info["store"], info["status"]
        assert list(store) == STORE_KEYS  # Up: no "state" key (omitempty); node_state 1
        assert store["state_name"] == "Up"
        assert store["node_state"] == 1
        assert store["status_address"] == sim.status_addresses[store["id"]]
        assert store["version"].startswith("8.5.")
        assert store["last_heartbeat"] > 1_795_000_000 * 10**9  # unix nanoseconds
        assert isinstance(store["start_timestamp"], int)
        for key in ("capacity", "available", "used_size"):
            assert SIZE.match(status[key]), status[key]
        assert status["leader_weight"] == 1
        assert '"leader_weight": 1,' in response.text
        assert status["region_count"] == 1000
        assert status["leader_count"] in (333, 334)
        for absent in ("learner_count", "pending_peer_count", "is_busy", "witness_count"):
            assert absent not in status
        assert status["slow_score"] == 1
        assert status["start_ts"].endswith("Z")
        assert status["last_heartbeat_ts"].endswith("Z")
        assert re.match(r"^\d+h\d+m[\d.]+s$", status["uptime"])
    assert sum(i["status"]["leader_count"] for i in body["stores"]) == 1000


async def test_store_by_id_is_unwrapped_store_info(pd: httpx.AsyncClient) -> None:
    body = (await pd.get(f"{V1}/store/2")).json()
    assert list(body) == ["store", "status"]
    assert body["store"]["id"] == 2
    labels = {label["key"]: label["value"] for label in body["store"]["labels"]}
    assert labels == {"zone": "z2", "host": "tikv-2"}


async def test_stores_state_filters(sim: SimServer, pd: httpx.AsyncClient) -> None:
    sim.faults.stop_store(3)
    sim.cluster.advance(25)
    checked = (await pd.get(f"{V1}/stores/check", params={"state": "disconnected"})).json()
    assert [s["store"]["id"] for s in checked["stores"]] == [3]
    assert checked["stores"][0]["store"]["state_name"] == "Disconnected"
    up = (await pd.get(f"{V1}/stores/check", params={"state": "UP"})).json()
    assert [s["store"]["id"] for s in up["stores"]] == [1, 2]
    numeric = (await pd.get(f"{V1}/stores", params={"state": "0"})).json()
    assert numeric["count"] == 3  # Disconnected is still metapb state Up (0)


async def test_region_by_id_is_compact_octet_stream(sim: SimServer, pd: httpx.AsyncClient) -> None:
    response = await pd.get(f"{V1}/region/id/2008")
    assert response.headers["content-type"] == DATA
    assert not response.text.endswith("\n")
    assert ": " not in response.text and ", " not in response.text
    body = response.json()
    assert list(body) == [
        "id",
        "start_key",
        "end_key",
        "epoch",
        "peers",
        "leader",
        "cpu_usage",
        "written_bytes",
        "read_bytes",
        "written_keys",
        "read_keys",
        "approximate_size",
        "approximate_keys",
    ]
    assert body["id"] == 2008
    assert re.match(r"^[0-9A-F]+$", body["start_key"])
    assert body["epoch"]["conf_ver"] >= 1
    assert body["epoch"]["version"] >= 1
    for peer in body["peers"]:
        assert list(peer) == ["role_name", "id", "store_id"]  # Voter: no role, no is_learner
        assert peer["role_name"] == "Voter"
    assert body["leader"] in body["peers"]
    cached = await pd.get(f"{V1}/region/id/2008")
    assert cached.text == response.text


async def test_learner_peer_has_role_and_is_learner(sim: SimServer, pd: httpx.AsyncClient) -> None:
    server_region = sim.cluster.regions[2008]
    from sim.model import LEARNER, Peer

    sim.cluster.add_peer(server_region, Peer(999_001, 2, LEARNER))
    body = await region(pd, 2008)
    learner = next(p for p in body["peers"] if p["id"] == 999_001)
    assert learner == {
        "role_name": "Learner",
        "is_learner": True,
        "id": 999_001,
        "store_id": 2,
        "role": 1,
    }


async def test_region_lists_and_counters(sim: SimServer, pd: httpx.AsyncClient) -> None:
    everything = await pd.get(f"{V1}/regions")
    assert everything.headers["content-type"] == DATA
    body = everything.json()
    assert body["count"] == len(body["regions"]) == 1000
    keys = [r["start_key"] for r in body["regions"]]
    assert keys == sorted(keys)
    assert body["regions"][0]["start_key"] == "" and body["regions"][-1]["end_key"] == ""
    for left, right in zip(body["regions"], body["regions"][1:], strict=False):
        assert left["end_key"] == right["start_key"]

    count = await pd.get(f"{V1}/regions/count")
    assert count.headers["content-type"] == JSON
    assert count.text == '{\n  "count": 1000,\n  "regions": null\n}\n'

    first = await pd.get(f"{V1}/regions/key", params={"key": "", "limit": 3})
    assert [r["id"] for r in first.json()["regions"]] == [r["id"] for r in body["regions"][:3]]
    default = await pd.get(f"{V1}/regions/key", params={"key": ""})
    assert default.json()["count"] == 16

    leaders = (await pd.get(f"{V1}/regions/store/1", params={"type": "leader"})).json()
    assert leaders["count"] == sim.cluster.stores[1].leader_count
    assert all(r["leader"]["store_id"] == 1 for r in leaders["regions"])
    peers = (await pd.get(f"{V1}/regions/store/1")).json()
    assert peers["count"] == 1000
    empty = (await pd.get(f"{V1}/regions/check/down-peer")).json()
    assert empty == {"count": 0, "regions": []}


async def test_region_statistics(sim: SimServer, pd: httpx.AsyncClient) -> None:
    full = (await pd.get(f"{V1}/stats/region")).json()
    assert full["count"] == 1000
    assert full["store_peer_count"] == {"1": 1000, "2": 1000, "3": 1000}
    assert sum(full["store_leader_count"].values()) == 1000
    assert full["storage_size"] == sum(r.approximate_size for r in sim.cluster.regions.values())
    assert full["empty_count"] == len(
        (await pd.get(f"{V1}/regions/check/empty-region")).json()["regions"]
    )
    count_only = (await pd.get(f"{V1}/stats/region", params={"count": ""})).json()
    assert count_only["count"] == 1000
    assert count_only["store_leader_count"] is None


async def test_region_check_categories(sim: SimServer, pd: httpx.AsyncClient) -> None:
    undersized = (await pd.get(f"{V1}/regions/check/undersized-region")).json()
    assert undersized["count"] > 0
    assert all(r["approximate_size"] < 54 for r in undersized["regions"])
    for state in ("miss-peer", "extra-peer", "pending-peer", "offline-peer", "learner-peer"):
        response = await pd.get(f"{V1}/regions/check/{state}")
        assert response.json() == {"count": 0, "regions": []}, state
    histogram = (await pd.get(f"{V1}/regions/check/hist-size")).json()
    assert sum(item["count"] for item in histogram) == 1000


async def test_config_schedule_and_replicate(pd: httpx.AsyncClient) -> None:
    schedule = (await pd.get(f"{V1}/config/schedule")).json()
    assert schedule["leader-schedule-limit"] == 4
    assert schedule["region-schedule-limit"] == 2048
    assert schedule["replica-schedule-limit"] == 64
    assert schedule["max-store-down-time"] == "30m0s"
    assert schedule["low-space-ratio"] == 0.8
    assert schedule["high-space-ratio"] == 0.7
    assert schedule["enable-joint-consensus"] == "true"
    assert "halt-scheduling" not in schedule  # omitempty false
    assert schedule["store-limit"]["1"] == {"add-peer": 15, "remove-peer": 15}
    types = [entry["type"] for entry in schedule["schedulers-v2"]]
    assert types[:2] == ["balance-region", "balance-leader"]
    replicate = (await pd.get(f"{V1}/config/replicate")).json()
    assert replicate == {
        "max-replicas": 3,
        "location-labels": "zone,host",
        "strictly-match-label": "false",
        "enable-placement-rules": "true",
        "enable-placement-rules-cache": "false",
        "isolation-level": "",
    }


async def test_config_updates_apply(sim: SimServer, pd: httpx.AsyncClient) -> None:
    response = await pd.post(
        f"{V1}/config/schedule",
        json={
            "leader-schedule-limit": 8,
            "max-store-down-time": "1h",
            "enable-one-way-merge": "true",
        },
    )
    expect_message(response, 200, "The config is updated.")
    schedule = (await pd.get(f"{V1}/config/schedule")).json()
    assert schedule["leader-schedule-limit"] == 8
    assert schedule["max-store-down-time"] == "1h0m0s"
    assert schedule["enable-one-way-merge"] == "true"
    expect_message(
        await pd.post(f"{V1}/config", json={"schedule.region-schedule-limit": 16}),
        200,
        "The config is updated.",
    )
    expect_message(
        await pd.post(f"{V1}/config", json={"replica-schedule-limit": 5}),
        200,
        "The config is updated.",
    )
    schedule = (await pd.get(f"{V1}/config/schedule")).json()
    assert (schedule["region-schedule-limit"], schedule["replica-schedule-limit"]) == (16, 5)
    bad_bool = await pd.post(f"{V1}/config/schedule", json={"enable-one-way-merge": True})
    assert bad_bool.status_code == 500
    assert bad_bool.json()["code"] == "internal"
    bad_duration = await pd.post(f"{V1}/config/schedule", json={"max-store-down-time": 30})
    assert bad_duration.status_code == 500
    expect_message(
        await pd.post(f"{V1}/config/replicate", json={"max-replicas": 5}),
        200,
        "The config is updated.",
    )
    assert (await pd.get(f"{V1}/config/replicate")).json()["max-replicas"] == 5
    assert (await pd.get(f"{V1}/cluster")).json()["max_peer_count"] == 5
    miss = (await pd.get(f"{V1}/regions/check/miss-peer")).json()
    assert miss["count"] == 1000  # 3 peers < 5 wanted, and no store to add them to


async def test_health_members_status_version(sim: SimServer, pd: httpx.AsyncClient) -> None:
    health = (await pd.get(f"{V1}/health")).json()
    assert health == [
        {
            "name": "pd-1",
            "member_id": sim.cluster.member_id,
            "client_urls": [sim.pd_url],
            "health": True,
        }
    ]
    members = (await pd.get(f"{V1}/members")).json()
    assert list(members) == ["header", "members", "leader", "etcd_leader"]
    assert members["leader"]["member_id"] == sim.cluster.member_id
    assert "leader_priority" not in members["leader"]
    assert members["leader"]["binary_version"] == "v8.5.5"
    status = (await pd.get(f"{V1}/cluster/status")).json()
    assert status["is_initialized"] is True
    assert status["replication_status"] == ""
    assert (await pd.get(f"{V1}/version")).json()["version"] == "v8.5.5"
    assert list((await pd.get(f"{V1}/status")).json()) == [
        "build_ts",
        "version",
        "git_hash",
        "start_timestamp",
    ]
    assert (await pd.get(f"{V1}/cluster")).json()["id"] == sim.cluster.cluster_id
    ping = await pd.get(f"{V1}/ping")
    assert (ping.status_code, ping.content) == (200, b"")


async def test_operator_lists_and_status_strings(sim: SimServer, pd: httpx.AsyncClient) -> None:
    assert (await pd.get(f"{V1}/operators")).text == "[]\n"
    assert (await pd.get(f"{V1}/operators", params={"kind": "admin"})).text == "null\n"
    leader = leader_store(await region(pd, 2008))
    target = next(s for s in (1, 2, 3) if s != leader)
    await pd.post(
        f"{V1}/operators",
        json={"name": "transfer-leader", "region_id": 2008, "to_store_id": target},
    )
    listed = (await pd.get(f"{V1}/operators")).json()
    assert len(listed) == 1
    pattern = (
        rf"^admin-transfer-leader \{{transfer leader: store {leader} to {target}\}} "
        r"\(kind:admin,leader, region:2008\((\d+), (\d+)\), createAt:2026-11-23 02:13:20 \+0000 UTC"
        r" m=\+3600\.000000000, startAt:2026-11-23 02:13:20 \+0000 UTC m=\+3600\.000000000, "
        rf"currentStep:0, size:\d+, steps:\[0:\{{transfer leader from store {leader} to store "
        rf"{target}\}}\], timeout:\[1m0s\]\)$"
    )
    assert re.match(pattern, listed[0]), listed[0]
    by_kind = (
        await pd.get(f"{V1}/operators", params=[("kind", "admin"), ("kind", "leader")])
    ).json()
    assert by_kind == [listed[0], listed[0]]  # matching two kinds lists it twice
    objects = (await pd.get(f"{V1}/operators", params={"object": "true"})).json()
    assert objects[0]["desc"] == "admin-transfer-leader"
    assert objects[0]["kind"] == 257  # admin | leader with v8.5.5 bits
    assert objects[0]["status"] == 1
    assert objects[0]["timeout"] == "1m0s"
    assert set(objects[0]["region_epoch"]) == {"conf_ver", "version"}
    status = (await pd.get(f"{V1}/operators/2008")).json()
    assert status == "status: RUNNING, operator: " + listed[0]
    sim.cluster.advance(2)
    finished = (await pd.get(f"{V1}/operators/2008")).json()
    assert finished.startswith("status: SUCCESS, operator: admin-transfer-leader")
    assert "currentStep:1," in finished and finished.endswith(" finished")
    assert (await pd.get(f"{V1}/operators")).text == "[]\n"
    records = (await pd.get(f"{V1}/operators/records", params={"from": 0})).json()
    records = [r for r in records if r.startswith("admin-")]  # balance-leader may follow up
    assert len(records) == 1
    assert re.search(
        r"\(finishAt:2026-11-23 02:13:21 \+0000 UTC m=\+3601\.000000000, duration:1s\)$", records[0]
    )
    sim.cluster.advance(601)
    expect_message(
        await pd.get(f"{V1}/operators/2008"),
        500,
        "[PD:operator:ErrOperatorNotFound]operator not found",
    )


async def test_scatter_regions_answers_an_object(pd: httpx.AsyncClient) -> None:
    response = await pd.post(
        f"{V1}/operators", json={"name": "scatter-regions", "region_ids": [2008, 2012]}
    )
    assert response.status_code == 200
    assert response.text == '{\n  "processed-percentage": 100,\n  "error": ""\n}\n'


async def test_scheduler_list_pause_and_config(sim: SimServer, pd: httpx.AsyncClient) -> None:
    names = (await pd.get(f"{V1}/schedulers")).json()
    assert set(names) == {
        "balance-region-scheduler",
        "balance-leader-scheduler",
        "balance-hot-region-scheduler",
        "evict-slow-store-scheduler",
        "evict-stopping-store-scheduler",
    }
    assert (await pd.get(f"{V1}/schedulers", params={"status": "paused"})).text == "[]\n"
    expect_message(
        await pd.post(f"{V1}/schedulers/balance-leader-scheduler", json={"delay": 60}),
        200,
        "Pause or resume the scheduler successfully.",
    )
    assert (await pd.get(f"{V1}/schedulers", params={"status": "paused"})).json() == [
        "balance-leader-scheduler"
    ]
    timed = (await pd.get(f"{V1}/schedulers?status=paused&timestamp")).json()
    assert timed == [
        {
            "name": "balance-leader-scheduler",
            "paused_at": "2026-11-23T02:13:20Z",
            "resume_at": "2026-11-23T02:14:20Z",
        }
    ]
    expect_message(
        await pd.post(f"{V1}/schedulers/balance-leader-scheduler", json={}),
        400,
        "missing pause time",
    )
    sim.cluster.advance(61)
    assert (await pd.get(f"{V1}/schedulers", params={"status": "paused"})).json() == []

    created = await pd.post(
        f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 2}
    )
    expect_message(created, 200, "The scheduler is created.")
    again = await pd.post(
        f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 3}
    )
    expect_message(again, 200, "The scheduler has been applied to the store.")
    names = (await pd.get(f"{V1}/schedulers")).json()
    assert names.count("evict-leader-scheduler") == 1
    listed = await pd.get(f"{V1}/scheduler-config/evict-leader-scheduler/list")
    assert listed.json() == {
        "store-id-ranges": {
            "2": [{"start-key": "", "end-key": ""}],
            "3": [{"start-key": "", "end-key": ""}],
        },
        "batch": 3,
    }
    expect_message(
        await pd.post(f"{V1}/scheduler-config/evict-leader-scheduler/config", json={"batch": 11}),
        400,
        "batch is invalid, it should be in [1, 10]",
    )
    schedule = (await pd.get(f"{V1}/config/schedule")).json()
    evict = next(e for e in schedule["schedulers-v2"] if e["type"] == "evict-leader")
    assert evict == {
        "type": "evict-leader",
        "args": ["2", "3"],
        "disable": False,
        "args-payload": "",
    }
    assert (await pd.delete(f"{V1}/schedulers/evict-leader-scheduler-2")).text == "null\n"
    expect_message(
        await pd.delete(f"{V1}/schedulers/evict-leader-scheduler"), 200, "The scheduler is removed."
    )
    assert "evict-leader-scheduler" not in (await pd.get(f"{V1}/schedulers")).json()

    expect_message(
        await pd.delete(f"{V1}/schedulers/balance-region-scheduler"),
        200,
        "The scheduler is removed.",
    )
    assert "balance-region-scheduler" not in (await pd.get(f"{V1}/schedulers")).json()
    disabled = (await pd.get(f"{V1}/schedulers", params={"status": "disabled"})).json()
    assert disabled == ["balance-region-scheduler"]
    expect_message(
        await pd.post(f"{V1}/schedulers", json={"name": "balance-region-scheduler"}),
        200,
        "The scheduler is created.",
    )


async def test_hotspot_and_store_weight(sim: SimServer, pd: httpx.AsyncClient) -> None:
    write = (await pd.get(f"{V1}/hotspot/regions/write")).json()
    assert list(write) == ["as_peer", "as_leader"]
    assert set(write["as_leader"]) == {"1", "2", "3"}
    stat = write["as_leader"]["1"]
    assert list(stat) == [
        "store_bytes",
        "store_keys",
        "store_query",
        "total_flow_bytes",
        "total_flow_keys",
        "total_flow_query",
        "regions_count",
        "statistics",
    ]
    assert stat["regions_count"] == 0 and stat["statistics"] == []
    only = (await pd.get(f"{V1}/hotspot/regions/read", params={"store_id": "2"})).json()
    assert list(only["as_leader"]) == ["2"]
    stores = (await pd.get(f"{V1}/hotspot/stores")).json()
    assert set(stores) == {
        "bytes-write-rate",
        "bytes-read-rate",
        "keys-write-rate",
        "keys-read-rate",
        "query-write-rate",
        "query-read-rate",
    }
    expect_message(
        await pd.post(f"{V1}/store/2/weight", json={"leader": 0.5, "region": 2}),
        200,
        "The store's weight is updated.",
    )
    status = (await pd.get(f"{V1}/store/2")).json()["status"]
    assert (status["leader_weight"], status["region_weight"]) == (0.5, 2)
    assert status["leader_score"] == status["leader_count"] / 0.5
