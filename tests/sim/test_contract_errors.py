"""PD's refusals, byte for byte: every case of reference/pd-errors.json the simulator can reach.

Expected bodies are the reference's `raw_body` values (v8.5.5); ids are the simulated cluster's
(3 stores, regions 4, 8, 12, ... with region 2008 on stores 1-3).
"""

from __future__ import annotations

import httpx

from sim.server import SimServer
from tests.plugins.sim import SimFactory
from tests.sim.conftest import (
    DATA,
    TEXT,
    V1,
    expect_errcode,
    expect_message,
    expect_raw,
    leader_store,
    post_operator,
    region,
)

REGION = 2008


async def test_empty_and_malformed_bodies_give_errcode_objects(pd: httpx.AsyncClient) -> None:
    response = await pd.post(f"{V1}/operators", content=b"")
    expect_raw(
        response,
        400,
        '{\n  "code": "input",\n  "msg": "unexpected end of JSON input",\n  "data": {\n'
        '    "Offset": 0\n  }\n}\n',
    )
    assert response.headers["tidb-error-code"] == "input"
    response = await pd.post(f"{V1}/operators", content=b"{name:1}")
    expect_errcode(
        response, "invalid character 'n' looking for beginning of object key string", {"Offset": 2}
    )
    for path in ("/schedulers", "/store/1/weight", "/config/replicate"):
        response = await pd.post(f"{V1}{path}", content=b"{name:1}")
        expect_errcode(
            response,
            "invalid character 'n' looking for beginning of object key string",
            {"Offset": 2},
        )


async def test_unknown_route_is_gorilla_404_text(pd: httpx.AsyncClient) -> None:
    response = await pd.get(f"{V1}/regions/check/no-such-state")
    expect_raw(response, 404, "404 page not found\n", TEXT)
    response = await pd.get("/pd/api/v1/no/such/path")
    expect_raw(response, 404, "404 page not found\n", TEXT)


async def test_wrong_method_on_known_path_is_405_without_json(pd: httpx.AsyncClient) -> None:
    response = await pd.put(f"{V1}/operators")
    assert response.status_code == 405
    assert response.content == b""


async def test_operator_request_validation_messages(pd: httpx.AsyncClient) -> None:
    cases = [
        ({"region_id": REGION, "to_store_id": 4}, "missing operator name"),
        ({"name": "move-leader", "region_id": REGION, "to_store_id": 4}, "unknown operator"),
        ({"name": "transfer-leader", "region_id": "2008", "to_store_id": 4}, "missing region id"),
        (
            {"name": "transfer-leader", "region_id": REGION, "store_id": 4},
            "missing store id to transfer leader to",
        ),
        (
            {"name": "transfer-peer", "region_id": REGION, "to_store_id": 4},
            "invalid store id to transfer peer from",
        ),
        (
            {"name": "transfer-peer", "region_id": REGION, "from_store_id": 5},
            "invalid store id to transfer peer to",
        ),
        ({"name": "remove-peer", "region_id": REGION}, "invalid store id to transfer peer to"),
        ({"name": "add-peer", "region_id": REGION}, "invalid store id to transfer peer to"),
        ({"name": "split-region", "region_id": REGION}, "missing split policy"),
        (
            {"name": "split-region", "region_id": REGION, "policy": "usekey", "keys": [1]},
            "bad format keys",
        ),
        (
            {"name": "merge-region", "source_region_id": REGION},
            "invalid target region id to merge to",
        ),
        ({"name": "merge-region", "target_region_id": REGION}, "missing region id"),
        (
            {"name": "transfer-region", "region_id": REGION, "to_store_ids": "1"},
            "invalid store ids to transfer region to",
        ),
        (
            {"name": "transfer-region", "region_id": REGION, "to_store_ids": []},
            "missing store ids to transfer region to",
        ),
        ({"name": "scatter-regions"}, "region_ids is invalid"),
    ]
    for body, message in cases:
        expect_message(await pd.post(f"{V1}/operators", json=body), 400, message)


async def test_operator_semantic_refusals_are_500(pd: httpx.AsyncClient) -> None:
    info = await region(pd, REGION)
    leader = leader_store(info)
    cases = [
        (
            {"name": "transfer-leader", "region_id": 999999, "to_store_id": 4},
            "[PD:region:ErrRegionNotFound]region 999999 not found",
        ),
        (
            {"name": "transfer-leader", "region_id": REGION, "to_store_id": 99},
            "region has no voter in store 99",
        ),
        (
            {"name": "transfer-leader", "region_id": REGION, "to_store_id": leader},
            "no operator step is built",
        ),
        (
            {"name": "transfer-peer", "region_id": REGION, "from_store_id": 7, "to_store_id": 6},
            "region has no peer in store 7",
        ),
        (
            {"name": "transfer-peer", "region_id": REGION, "from_store_id": 1, "to_store_id": 99},
            "[PD:core:ErrStoreNotFound]store 99 not found",
        ),
        (
            {"name": "add-peer", "region_id": REGION, "store_id": 1},
            "region already has peer in store 1",
        ),
        (
            {"name": "remove-peer", "region_id": REGION, "store_id": 9},
            "region has no peer in store 9",
        ),
        (
            {"name": "merge-region", "source_region_id": REGION, "target_region_id": 4},
            "[PD:region:ErrRegionNotAdjacent]two regions are not adjacent",
        ),
        (
            {"name": "split-region", "region_id": REGION, "policy": "half"},
            "check policy half is not supported",
        ),
        (
            {"name": "split-region", "region_id": REGION, "policy": "usekey", "keys": ["zz"]},
            "split key zz is not in hex format",
        ),
        (
            {"name": "transfer-region", "region_id": REGION, "to_store_ids": [1, 2, 3]},
            "transfer region without peer role is not supported when placement rules enabled",
        ),
    ]
    for body, message in cases:
        expect_message(await pd.post(f"{V1}/operators", json=body), 500, message)


async def test_transfer_leader_to_unhealthy_peer_is_refused(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    leader = leader_store(await region(pd, REGION))
    target = next(s for s in (1, 2, 3) if s != leader)
    sim.faults.stop_store(target)
    sim.cluster.advance(65)  # the stopped store's peers are pending after 60 s
    response = await post_operator(pd, name="transfer-leader", region_id=REGION, to_store_id=target)
    expect_message(response, 500, f"cannot transfer leader to {target}: unhealthy")


async def test_transfer_leader_to_evicted_store_is_not_allowed(pd: httpx.AsyncClient) -> None:
    leader = leader_store(await region(pd, REGION))
    target = next(s for s in (1, 2, 3) if s != leader)
    await pd.post(f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": target})
    response = await post_operator(pd, name="transfer-leader", region_id=REGION, to_store_id=target)
    expect_message(response, 500, "cannot create operator: target leader is not allowed")


async def test_transfer_leader_to_disconnected_then_down_store(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    leader = leader_store(await region(pd, REGION))
    target = next(s for s in (1, 2, 3) if s != leader)
    sim.faults.stop_store(target)
    sim.cluster.advance(25)  # Disconnected, peers not yet behind
    state = (await pd.get(f"{V1}/store/{target}")).json()["store"]["state_name"]
    assert state == "Disconnected"
    response = await post_operator(pd, name="transfer-leader", region_id=REGION, to_store_id=target)
    expect_message(response, 500, "cannot create operator: target leader is not allowed")
    sim.cluster.advance(1800)  # Down: its peers are down and pending
    response = await post_operator(pd, name="transfer-leader", region_id=REGION, to_store_id=target)
    expect_message(response, 500, f"cannot transfer leader to {target}: unhealthy")


async def test_second_admin_operator_on_a_region_is_refused(pd: httpx.AsyncClient) -> None:
    leader = leader_store(await region(pd, REGION))
    target = next(s for s in (1, 2, 3) if s != leader)
    first = await post_operator(pd, name="transfer-leader", region_id=REGION, to_store_id=target)
    expect_message(first, 200, "The operator is created.")
    second = await post_operator(pd, name="split-region", region_id=REGION, policy="scan")
    expect_message(
        second, 500, "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
    )


async def test_merge_of_region_with_pending_peer_is_abnormal(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    sim.faults.stop_store(2)
    sim.cluster.advance(65)
    response = await post_operator(
        pd, name="merge-region", source_region_id=REGION, target_region_id=REGION + 4
    )
    expect_message(
        response, 500, f"[PD:region:ErrRegionAbnormalPeer]region {REGION} has abnormal peer"
    )


async def test_scatter_of_hot_region_is_refused(sim: SimServer, pd: httpx.AsyncClient) -> None:
    sim.faults.hot_region(REGION)
    response = await post_operator(pd, name="scatter-region", region_id=REGION)
    expect_message(response, 500, f"region {REGION} is a hot region")


async def test_operator_status_and_cancel_errors(pd: httpx.AsyncClient) -> None:
    not_found = "[PD:operator:ErrOperatorNotFound]operator not found"
    expect_message(await pd.get(f"{V1}/operators/{REGION}"), 500, not_found)
    expect_message(await pd.delete(f"{V1}/operators/{REGION}"), 500, not_found)
    expect_message(
        await pd.get(f"{V1}/operators/abc"),
        400,
        'strconv.ParseUint: parsing "abc": invalid syntax',
    )
    expect_message(
        await pd.get(f"{V1}/operators/records", params={"from": 1795443600}), 500, not_found
    )


async def test_scheduler_request_refusals(pd: httpx.AsyncClient) -> None:
    url = f"{V1}/schedulers"
    expect_message(await pd.post(url, json={"store_id": 5}), 400, "missing scheduler name")
    expect_message(
        await pd.post(url, json={"name": "evict-leader-scheduler-5"}), 400, "unknown scheduler"
    )
    expect_message(
        await pd.post(url, json={"name": "evict-leader-scheduler"}), 400, "missing store id"
    )
    expect_message(
        await pd.post(url, json={"name": "evict-leader-scheduler", "store_id": "5"}),
        400,
        "missing store id",
    )
    expect_message(
        await pd.post(url, json={"name": "evict-leader-scheduler", "store_id": 99}),
        500,
        "[PD:core:ErrStoreNotFound]store 99 not found",
    )
    expect_message(
        await pd.post(url, json={"name": "balance-leader-scheduler"}),
        500,
        "[PD:scheduler:ErrSchedulerExisted]scheduler existed",
    )


async def test_adding_unknown_store_to_running_evict_leader_wraps_inner_body(
    pd: httpx.AsyncClient,
) -> None:
    url = f"{V1}/schedulers"
    await pd.post(url, json={"name": "evict-leader-scheduler", "store_id": 1})
    response = await pd.post(url, json={"name": "evict-leader-scheduler", "store_id": 99})
    expect_raw(response, 500, '"\\"[PD:core:ErrStoreNotFound]store 99 not found\\"\\n"\n')


async def test_evict_leader_on_store_paused_by_grant_leader(pd: httpx.AsyncClient) -> None:
    url = f"{V1}/schedulers"
    await pd.post(url, json={"name": "grant-leader-scheduler", "store_id": 2})
    response = await pd.post(url, json={"name": "evict-leader-scheduler", "store_id": 2})
    expect_message(
        response, 500, "[PD:core:ErrPauseLeaderTransfer]store 2 is paused for leader transfer"
    )


async def test_scheduler_delete_refusals(pd: httpx.AsyncClient) -> None:
    expect_message(
        await pd.delete(f"{V1}/schedulers/evict-leader-scheduler"),
        404,
        "[PD:scheduler:ErrSchedulerNotFound]scheduler not found",
    )
    expect_raw(await pd.delete(f"{V1}/schedulers/evict-leader-scheduler-5"), 404, "null\n")
    expect_raw(
        await pd.get(f"{V1}/scheduler-config/evict-leader-scheduler/list"),
        404,
        "404 page not found\n",
        TEXT,
    )
    await pd.post(f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 1})
    expect_raw(await pd.delete(f"{V1}/schedulers/evict-leader-scheduler-3"), 404, "null\n")
    expect_message(
        await pd.delete(f"{V1}/scheduler-config/evict-leader-scheduler/delete/3"),
        404,
        "[PD:scheduler:ErrScheduleConfigNotExist]the config does not exist",
    )
    expect_message(
        await pd.delete(f"{V1}/scheduler-config/evict-leader-scheduler/delete/1"),
        200,
        "The last store has been deleted",
    )


async def test_store_endpoint_refusals(pd: httpx.AsyncClient) -> None:
    not_found = "[PD:core:ErrStoreNotFound]store 99 not found"
    expect_message(await pd.get(f"{V1}/store/99"), 404, not_found)
    expect_errcode(
        await pd.get(f"{V1}/store/abc"), 'strconv.ParseUint: parsing "abc": invalid syntax', {}
    )
    expect_raw(
        await pd.get(f"{V1}/store/abc"),
        400,
        '{\n  "code": "input",\n  "msg": "strconv.ParseUint: parsing \\"abc\\": invalid syntax",'
        '\n  "data": {}\n}\n',
    )
    expect_message(await pd.delete(f"{V1}/store/99"), 404, not_found)
    expect_message(
        await pd.delete(f"{V1}/store/1"),
        400,
        "[PD:core:ErrStoresNotEnough]can not remove store 1 since the number of up stores "
        "would be 2 while need 3",
    )
    expect_message(
        await pd.post(f"{V1}/store/1/state", params={"state": "Down"}), 400, "invalid state Down"
    )
    weight = f"{V1}/store/1/weight"
    expect_message(await pd.post(weight, json={"region": 1}), 400, "leader weight unset")
    expect_message(await pd.post(weight, json={"leader": 0}), 400, "region weight unset")
    expect_message(
        await pd.post(weight, json={"leader": -1, "region": 1}), 400, "bad format leader weight"
    )
    expect_message(
        await pd.post(weight, json={"leader": 1, "region": "x"}), 400, "bad format region weight"
    )
    expect_message(
        await pd.post(f"{V1}/store/99/weight", json={"leader": 0, "region": 1}), 500, not_found
    )
    expect_message(
        await pd.get(f"{V1}/stores", params={"state": "Up"}),
        500,
        'strconv.Atoi: parsing "Up": invalid syntax',
    )
    expect_message(
        await pd.get(f"{V1}/stores/check", params={"state": "serving"}),
        400,
        "unknown StoreState: serving",
    )


async def test_region_and_hotspot_refusals(pd: httpx.AsyncClient) -> None:
    expect_raw(
        await pd.get(f"{V1}/region/id/999999"),
        200,
        '{"id":0,"start_key":"","end_key":"","leader":{"role_name":""},"cpu_usage":0,'
        '"written_bytes":0,"read_bytes":0,"written_keys":0,"read_keys":0,"approximate_size":0,'
        '"approximate_keys":0}',
        DATA,
    )
    expect_message(
        await pd.get(f"{V1}/region/id/abc"), 400, 'strconv.ParseUint: parsing "abc": invalid syntax'
    )
    hot = f"{V1}/hotspot/regions/write"
    expect_message(await pd.get(hot, params={"store_id": "x"}), 400, "invalid store id: x")
    expect_message(
        await pd.get(hot, params={"store_id": "99"}),
        500,
        "[PD:core:ErrStoreNotFound]store 99 not found",
    )


async def test_schedule_config_refusals(pd: httpx.AsyncClient) -> None:
    url = f"{V1}/config/schedule"
    expect_message(await pd.post(url, content=b""), 400, "unexpected end of JSON input")
    response = await pd.post(url, content=b'{"leader-schedule-limit": "8"}')
    expect_raw(
        response,
        400,
        '{\n  "code": "input",\n  "msg": "json: cannot unmarshal string into Go struct field '
        'ScheduleConfig.leader-schedule-limit of type uint64",\n  "data": {\n    "Value": '
        '"string",\n    "Type": {},\n    "Offset": 29,\n    "Struct": "ScheduleConfig",\n'
        '    "Field": "leader-schedule-limit"\n  }\n}\n',
    )
    expect_message(
        await pd.post(url, json={"low-space-ratio": 0.6}),
        500,
        "low-space-ratio should be larger than high-space-ratio",
    )
    expect_message(
        await pd.post(url, json={"leader-schedule-limt": 8}), 200, "The config is updated."
    )
    expect_message(
        await pd.post(f"{V1}/config", json={"leader-schedule-limt": 8}),
        400,
        "config item leader-schedule-limt not found",
    )
    # nothing was applied by the refused or misspelled updates
    config = (await pd.get(url)).json()
    assert config["leader-schedule-limit"] == 4
    assert config["low-space-ratio"] == 0.8


async def test_tombstone_and_destroyed_store_refusals(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=60)
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        expect_message(await pd.delete(f"{V1}/store/4"), 200, "The store is set as Offline.")
        expect_message(await pd.delete(f"{V1}/store/4"), 200, "The store is set as Offline.")
        server.cluster.advance(1800)  # the replica checker moves every peer away
        store = (await pd.get(f"{V1}/store/4")).json()["store"]
        assert (store["state"], store["node_state"], store["state_name"]) == (2, 3, "Tombstone")
        removed = "[PD:core:ErrStoreRemoved]store 4 has been removed"
        expect_message(await pd.delete(f"{V1}/store/4"), 410, removed)
        expect_message(await pd.post(f"{V1}/store/4/state", params={"state": "Up"}), 410, removed)
        region_id = next(iter(server.cluster.regions))
        expect_message(
            await post_operator(pd, name="add-peer", region_id=region_id, store_id=4), 500, removed
        )
        default = (await pd.get(f"{V1}/stores")).json()
        assert [s["store"]["id"] for s in default["stores"]] == [1, 2, 3]
        everything = (await pd.get(f"{V1}/stores", params=[("state", "0"), ("state", "2")])).json()
        assert everything["count"] == 4


async def test_unhealthy_target_and_destroyed_store(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=40)
    cluster = server.cluster
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        server.faults.stop_store(4)
        cluster.advance(601)
        region_id = next(r.id for r in cluster.regions.values() if 4 not in r.store_ids())
        expect_message(
            await post_operator(
                pd, name="transfer-peer", region_id=region_id, from_store_id=1, to_store_id=4
            ),
            500,
            "[PD:core:ErrStoreUnhealthy]store 4 is unhealthy",
        )
        expect_message(
            await pd.delete(f"{V1}/store/3", params={"force": "false"}),
            200,
            "The store is set as Offline.",
        )
        expect_message(
            await pd.delete(f"{V1}/store/3"),
            400,
            "[PD:core:ErrStoreDestroyed]store 3 has been physically destroyed",
        )


async def test_delete_store_when_all_other_up_stores_evict_leaders(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=40)
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        for store_id in (2, 3, 4):
            await pd.post(
                f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": store_id}
            )
        expect_message(
            await pd.delete(f"{V1}/store/1"),
            400,
            "[PD:core:ErrNoStoreForRegionLeader]can not remove store 1 since there are no extra "
            "up store to store the leader",
        )
