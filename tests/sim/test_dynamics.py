"""Operators and schedulers really change the cluster over virtual time, within PD's limits."""

from __future__ import annotations

import re

import httpx

from sim.operators import REGION, REPLACED
from sim.server import SimServer
from tests.plugins.sim import SimFactory
from tests.sim.conftest import (
    V1,
    expect_message,
    leader_store,
    peer_stores,
    post_operator,
    region,
)


async def leader_counts(pd: httpx.AsyncClient) -> dict[int, int]:
    stores = (await pd.get(f"{V1}/stores")).json()["stores"]
    return {s["store"]["id"]: s["status"]["leader_count"] for s in stores}


async def test_transfer_leader_moves_the_leader(sim: SimServer, pd: httpx.AsyncClient) -> None:
    before = leader_store(await region(pd, 2008))
    target = next(s for s in (1, 2, 3) if s != before)
    expect_message(
        await post_operator(pd, name="transfer-leader", region_id=2008, to_store_id=target),
        200,
        "The operator is created.",
    )
    assert leader_store(await region(pd, 2008)) == before  # nothing happens without time
    sim.cluster.advance(1.0)
    after = await region(pd, 2008)
    assert leader_store(after) == target
    assert after["leader"]["id"] == next(p["id"] for p in after["peers"] if p["store_id"] == target)


async def test_transfer_peer_adds_learner_promotes_and_removes(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=40)
    cluster = server.cluster
    region_id = next(
        r.id for r in cluster.regions.values() if 4 not in r.store_ids() and r.leader_store != 1
    )
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        before = await region(pd, region_id)
        assert 1 in peer_stores(before)
        response = await post_operator(
            pd, name="transfer-peer", region_id=region_id, from_store_id=1, to_store_id=4
        )
        expect_message(response, 200, "The operator is created.")
        status = (await pd.get(f"{V1}/operators/{region_id}")).json()
        assert status.startswith(
            "status: RUNNING, operator: admin-move-peer {mv peer: store [1] to [4]}"
        )
        assert "kind:admin,region," in status
        steps = re.search(r"steps:\[(.*)\], timeout:\[(.*?)\]", status)
        assert steps is not None
        assert "0:{add learner peer" in steps.group(1) and "on store 4}" in steps.group(1)
        assert "1:{use joint consensus, promote learner peer" in steps.group(1)
        assert "2:{leave joint state, promote learner peer" in steps.group(1)
        assert "3:{remove peer on store 1}" in steps.group(1)
        assert steps.group(2) == "17m0s"

        learning = await region(pd, region_id)  # the learner exists at once and is pending
        learner = next(p for p in learning["peers"] if p["store_id"] == 4)
        assert learner["role_name"] == "Learner" and learner["is_learner"] is True
        assert learning["pending_peers"] == [learner]
        learner_regions = (await pd.get(f"{V1}/regions/check/learner-peer")).json()
        assert [r["id"] for r in learner_regions["regions"]] == [region_id]

        cluster.advance(10)
        after = await region(pd, region_id)
        assert peer_stores(after) == sorted({*peer_stores(before), 4} - {1})
        assert all(p["role_name"] == "Voter" for p in after["peers"])
        assert "pending_peers" not in after
        assert after["epoch"]["conf_ver"] == before["epoch"]["conf_ver"] + 6
        done = (await pd.get(f"{V1}/operators/{region_id}")).json()
        assert done.startswith("status: SUCCESS") and "currentStep:4," in done


async def test_transfer_peer_of_the_leader_moves_leadership_first(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=40)
    cluster = server.cluster
    region_obj = next(r for r in cluster.regions.values() if 4 not in r.store_ids())
    old_leader = region_obj.leader_store
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        await post_operator(
            pd,
            name="transfer-peer",
            region_id=region_obj.id,
            from_store_id=old_leader,
            to_store_id=4,
        )
        status = (await pd.get(f"{V1}/operators/{region_obj.id}")).json()
        assert "kind:admin,region,leader," in status
        assert f"1:{{transfer leader from store {old_leader} to store" in status
        cluster.advance(15)
        after = await region(pd, region_obj.id)
        assert old_leader not in peer_stores(after)
        assert 4 in peer_stores(after)
        assert leader_store(after) in peer_stores(after)


async def test_split_creates_a_region(sim: SimServer, pd: httpx.AsyncClient) -> None:
    before = await region(pd, 2008)
    response = await post_operator(pd, name="split-region", region_id=2008, policy="approximate")
    expect_message(response, 200, "The operator is created.")
    sim.cluster.advance(1)
    assert (await pd.get(f"{V1}/regions/count")).json()["count"] == 1001
    right = await region(pd, 2008)
    assert right["end_key"] == before["end_key"]
    assert before["start_key"] < right["start_key"] < before["end_key"]
    assert right["epoch"]["version"] == before["epoch"]["version"] + 1
    left = (await pd.get(f"{V1}/region/key/x", params={"format": "hex"})).status_code
    assert left == 400  # not hex
    neighbours = (
        await pd.get(
            f"{V1}/regions/key",
            params={"key": before["start_key"], "format": "hex", "limit": 2},
        )
    ).json()["regions"]
    assert neighbours[0]["start_key"] == before["start_key"]
    assert neighbours[0]["end_key"] == right["start_key"]
    assert neighbours[1]["id"] == 2008
    assert neighbours[0]["id"] not in (2008,)
    assert peer_stores(neighbours[0]) == peer_stores(before)


async def test_split_by_key_uses_the_given_key(sim: SimServer, pd: httpx.AsyncClient) -> None:
    before = await region(pd, 2008)
    key = before["start_key"] + "00"
    response = await post_operator(
        pd, name="split-region", region_id=2008, policy="usekey", keys=[key]
    )
    expect_message(response, 200, "The operator is created.")
    status = (await pd.get(f"{V1}/operators/2008")).json()
    assert f"{{split: region 2008 use policy USEKEY and keys [{key}]}}" in status
    sim.cluster.advance(1)
    assert (await region(pd, 2008))["start_key"] == key


async def test_merge_joins_adjacent_regions(sim: SimServer, pd: httpx.AsyncClient) -> None:
    source, target = await region(pd, 2008), await region(pd, 2012)
    assert source["end_key"] == target["start_key"]
    response = await post_operator(
        pd, name="merge-region", source_region_id=2008, target_region_id=2012
    )
    expect_message(response, 200, "The operator is created.")
    listed = (await pd.get(f"{V1}/operators")).json()
    assert len(listed) == 2 and all("{merge: region 2008 to 2012}" in op for op in listed)
    sim.cluster.advance(3)
    assert (await region(pd, 2008))["id"] == 0  # gone: v8.5 answers a zero region
    merged = await region(pd, 2012)
    assert (merged["start_key"], merged["end_key"]) == (source["start_key"], target["end_key"])
    assert (await pd.get(f"{V1}/regions/count")).json()["count"] == 999


async def test_evict_leader_empties_the_store_and_keeps_it_empty(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    response = await pd.post(
        f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 1}
    )
    expect_message(response, 200, "The scheduler is created.")
    sim.cluster.advance(5)
    draining = await leader_counts(pd)
    assert 0 < draining[1] < 334
    listed = (await pd.get(f"{V1}/operators")).json()
    evicting = [op for op in listed if op.startswith("evict-leader-scheduler ")]
    assert evicting  # balance-leader may also be evening out stores 2 and 3
    assert all(
        op.startswith("evict-leader-scheduler {evict leader: from store 1 to one in [2 3]")
        for op in evicting
    )
    assert all("kind:leader," in op for op in evicting)
    sim.cluster.advance(120)
    assert (await leader_counts(pd))[1] == 0
    sim.cluster.advance(1800)  # balance-leader may not bring them back while evicted
    counts = await leader_counts(pd)
    assert counts[1] == 0 and counts[2] + counts[3] == 1000

    assert (await pd.delete(f"{V1}/schedulers/evict-leader-scheduler-1")).text == "null\n"
    assert "evict-leader-scheduler" not in (await pd.get(f"{V1}/schedulers")).json()
    sim.cluster.advance(60)
    returning = (await leader_counts(pd))[1]
    assert 0 < returning < 333
    sim.cluster.advance(600)
    balanced = await leader_counts(pd)
    assert max(balanced.values()) - min(balanced.values()) <= 1


async def test_stopped_store_goes_disconnected_then_down_with_down_peers(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    cluster = sim.cluster

    async def store3() -> dict[str, object]:
        body: dict[str, object] = (await pd.get(f"{V1}/store/3")).json()
        return body

    led_before = (await leader_counts(pd))[3]
    assert led_before > 0
    sim.faults.stop_store(3)
    cluster.advance(5)
    assert (await store3())["store"]["state_name"] == "Up"  # type: ignore[index]
    cluster.advance(6)  # 11 s: leaders re-elected on healthy voters
    counts = await leader_counts(pd)
    assert counts[3] == 0 and counts[1] + counts[2] == 1000
    cluster.advance(10)  # 21 s
    info = await store3()
    assert info["store"]["state_name"] == "Disconnected"  # type: ignore[index]
    assert "pending_peer_count" not in info["status"]  # type: ignore[operator]
    cluster.advance(40)  # 61 s: the store's peers have fallen behind
    info = await store3()
    assert info["status"]["pending_peer_count"] == 1000  # type: ignore[index]
    assert (await pd.get(f"{V1}/regions/check/down-peer")).json()["count"] == 0
    pending = (await pd.get(f"{V1}/regions/check/pending-peer")).json()
    assert pending["count"] == 1000
    cluster.advance(560)
    down = (await pd.get(f"{V1}/regions/check/down-peer")).json()
    assert down["count"] == 1000
    first = down["regions"][0]
    assert first["down_peers"][0]["peer"]["store_id"] == 3
    assert first["down_peers"][0]["down_seconds"] >= 600
    assert (await store3())["store"]["state_name"] == "Disconnected"  # type: ignore[index]
    cluster.advance(1200)  # 1821 s > max-store-down-time 30m
    assert (await store3())["store"]["state_name"] == "Down"  # type: ignore[index]
    late = await region(pd, first["id"])
    assert late["down_peers"][0]["down_seconds"] >= 1800

    sim.faults.start_store(3)
    cluster.advance(1)
    info = await store3()
    assert info["store"]["state_name"] == "Up"  # type: ignore[index]
    assert "down_peers" not in await region(pd, first["id"])
    cluster.advance(10)
    assert (await pd.get(f"{V1}/regions/check/pending-peer")).json()["count"] == 0


async def test_max_store_down_time_comes_from_the_config(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    await pd.post(f"{V1}/config/schedule", json={"max-store-down-time": "5m"})
    sim.faults.stop_store(2)
    sim.cluster.advance(290)
    state = (await pd.get(f"{V1}/store/2")).json()["store"]["state_name"]
    assert state == "Disconnected"
    sim.cluster.advance(21)
    assert (await pd.get(f"{V1}/store/2")).json()["store"]["state_name"] == "Down"


async def test_no_new_leader_without_quorum(sim: SimServer, pd: httpx.AsyncClient) -> None:
    before = leader_store(await region(pd, 2008))
    for store_id in (1, 2, 3):
        if store_id != before:
            sim.faults.stop_store(store_id)
    sim.cluster.advance(30)
    assert leader_store(await region(pd, 2008)) == before


async def test_leader_schedule_limit_bounds_evict_leader(sim_factory: SimFactory) -> None:
    drained: dict[int, int] = {}
    for limit in (0, 1, 64):
        server = await sim_factory()
        async with httpx.AsyncClient(base_url=server.pd_url) as pd:
            await pd.post(f"{V1}/config/schedule", json={"leader-schedule-limit": limit})
            await pd.post(
                f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 1}
            )
            start = (await leader_counts(pd))[1]
            most_running = 0
            for _ in range(40):
                server.cluster.advance(0.5)
                running = (await pd.get(f"{V1}/operators", params={"kind": "leader"})).json() or []
                most_running = max(most_running, len(running))
            drained[limit] = start - (await leader_counts(pd))[1]
            if limit == 1:
                assert most_running <= 3  # one scheduling round's batch, then wait
    assert drained[0] == 0
    assert 0 < drained[1] < drained[64]


async def test_replica_checker_replaces_down_peers_within_replica_limit(
    sim_factory: SimFactory,
) -> None:
    results = {}
    for limit in (0, 64):
        server = await sim_factory(stores=4, regions=40)
        async with httpx.AsyncClient(base_url=server.pd_url) as pd:
            await pd.post(
                f"{V1}/config/schedule",
                json={"replica-schedule-limit": limit, "max-store-down-time": "1m"},
            )
            server.faults.stop_store(4)
            server.cluster.advance(61)
            assert (await pd.get(f"{V1}/store/4")).json()["store"]["state_name"] == "Down"
            server.cluster.advance(600)
            results[limit] = server.cluster.stores[4].region_count
            if limit:
                ops = [op.desc for op in server.cluster.operators.history]
                assert "replace-rule-down-peer" in ops
    assert results[0] == 30
    assert results[64] == 0


async def test_operator_times_out_when_its_target_store_stops(sim_factory: SimFactory) -> None:
    server = await sim_factory(stores=4, regions=40)
    region_obj = next(r for r in server.cluster.regions.values() if 4 not in r.store_ids())
    from_store = next(s for s in region_obj.store_ids() if s != region_obj.leader_store)
    async with httpx.AsyncClient(base_url=server.pd_url) as pd:
        await post_operator(
            pd,
            name="transfer-peer",
            region_id=region_obj.id,
            from_store_id=from_store,
            to_store_id=4,
        )
        server.faults.stop_store(4)
        server.cluster.advance(17 * 60 + 1)
        status = (await pd.get(f"{V1}/operators/{region_obj.id}")).json()
        assert status.startswith("status: TIMEOUT") and status.endswith(" timeout")
        assert 4 not in peer_stores(await region(pd, region_obj.id))


async def test_cancel_operator(sim: SimServer, pd: httpx.AsyncClient) -> None:
    leader = leader_store(await region(pd, 2008))
    target = next(s for s in (1, 2, 3) if s != leader)
    await post_operator(pd, name="transfer-leader", region_id=2008, to_store_id=target)
    expect_message(
        await pd.delete(f"{V1}/operators/2008"), 200, "The pending operator is canceled."
    )
    status = (await pd.get(f"{V1}/operators/2008")).json()
    assert status.startswith("status: CANCEL, operator: admin-transfer-leader")
    sim.cluster.advance(5)
    assert leader_store(await region(pd, 2008)) == leader


async def test_admin_operator_replaces_a_balance_operator_but_not_an_evict_one(
    sim: SimServer, pd: httpx.AsyncClient
) -> None:
    await pd.post(f"{V1}/store/1/weight", json={"leader": 0.1, "region": 1})
    sim.cluster.advance(0.5)
    balancing = [
        op for op in sim.cluster.operators.operators() if op.desc == "balance-leader-scheduler"
    ]
    assert balancing and all(op.brief.startswith("transfer leader: store 1 to") for op in balancing)
    victim = balancing[0]
    response = await post_operator(
        pd, name="split-region", region_id=victim.region_id, policy="scan"
    )
    expect_message(response, 200, "The operator is created.")
    assert victim.status == REPLACED
    status = (await pd.get(f"{V1}/operators/{victim.region_id}")).json()
    assert status.startswith("status: RUNNING, operator: admin-split-region")

    # balance-leader now holds the 4 leader-operator slots: raise the limit so evict can run
    await pd.post(f"{V1}/config/schedule", json={"leader-schedule-limit": 64})
    await pd.post(f"{V1}/schedulers", json={"name": "evict-leader-scheduler", "store_id": 2})
    sim.cluster.advance(0.5)
    evicting = next(
        op for op in sim.cluster.operators.operators() if op.desc == "evict-leader-scheduler"
    )
    response = await post_operator(
        pd, name="split-region", region_id=evicting.region_id, policy="scan"
    )
    expect_message(
        response, 500, "[PD:operator:ErrAddOperator]failed to add operator, maybe already have one"
    )


async def test_region_schedule_limit_bounds_balance_region(sim_factory: SimFactory) -> None:
    moved: dict[int, int] = {}
    for limit in (0, 2):
        server = await sim_factory(stores=4, regions=200)
        cluster = server.cluster
        async with httpx.AsyncClient(base_url=server.pd_url) as pd:
            await pd.post(f"{V1}/config/schedule", json={"region-schedule-limit": limit})
            # a low region weight makes store 1 look full: balance-region moves peers off it
            await pd.post(f"{V1}/store/1/weight", json={"leader": 1, "region": 0.1})
            before = cluster.stores[1].region_count
            most = 0
            for step in range(120):
                cluster.advance(0.5)
                most = max(most, len(cluster.operators.of_kind(REGION)))
                if step % 30 == 0:  # what PD shows agrees with the model
                    shown = (await pd.get(f"{V1}/operators", params={"kind": "region"})).json()
                    assert len(shown or []) == len(cluster.operators.of_kind(REGION))
            moved[limit] = before - cluster.stores[1].region_count
            assert most <= limit
            if limit:
                descs = {op.desc for op in cluster.operators.history}
                assert "balance-region-scheduler" in descs
    assert moved[0] == 0
    assert moved[2] > 0
