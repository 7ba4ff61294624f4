"""The playbooks' rules, one decision at a time, on hand-built observations and an in-memory PD."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from operator_tikv.actions import get_action
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import RegionProblem
from operator_tikv.playbooks import (
    MAX_GATHER_REQUESTS,
    DiagnosisKind,
    PlaybookLimits,
    PlaybookResult,
    Problem,
    diagnose,
    gather,
    run,
)
from tests.diagnosis.builders import FakePD, hotspot, metrics, observation, region, store


def slow(sid: int = 2, value: float = 300.0) -> Problem:
    return Problem(kind="write_latency", store_id=sid, value=value, threshold=100.0)


def five_stores(overrides: dict[int, dict[str, Any]] | None = None) -> list[StoreInfo]:
    return [store(i, **(overrides or {}).get(i, {})) for i in range(1, 6)]


def assert_registry_valid(result: PlaybookResult) -> None:
    for action in result.actions:
        get_action(action.action).validate(action.params)
        assert action.reason


# --------------------------------------------------------------------------- slow store


async def test_slow_store_is_drained_when_the_rest_can_take_its_leaders() -> None:
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300, 3: 22, 4: 18, 5: 21}))
    result = await diagnose(slow(), obs, FakePD())
    assert result.kind is DiagnosisKind.SLOW_STORE
    assert [(a.action, a.params) for a in result.actions] == [("drain", {"store_id": 2})]
    reason = result.actions[0].reason
    assert "300 ms" in reason and "18–22 ms" in reason
    assert "stores 1, 3, 4, 5" in reason and "max-replicas 3" in reason
    assert_registry_valid(result)


async def test_slow_store_on_three_stores_is_drained() -> None:
    # Evicting leaders moves no replica: two other Up stores are enough with max-replicas 3.
    stores = [store(1, leaders=334, regions=1000), store(2, leaders=333, regions=1000)]
    stores.append(store(3, leaders=333, regions=1000))
    obs = observation(stores, reading=metrics({1: 20, 2: 300, 3: 20}))
    result = await diagnose(slow(), obs, FakePD())
    assert [(a.action, a.params) for a in result.actions] == [("drain", {"store_id": 2})]
    reason = result.actions[0].reason
    assert "Evicting its 333 leaders to stores 1, 3 (2 Up, undrained store(s)" in reason
    assert "max-replicas 3" in reason
    assert "store 1 ≈ 501 (50%, now 334), store 3 ≈ 499 (50%, now 333)" in reason
    assert "Warning" not in reason and result.confidence == 0.7
    assert_registry_valid(result)


async def test_slow_store_not_drained_when_no_other_store_can_take_leaders() -> None:
    stores = [store(1, "Down", regions=300), store(2), store(3, "Disconnected")]
    obs = observation(stores, reading=metrics({2: 300}))
    result = await diagnose(slow(), obs, FakePD())
    assert result.actions == ()
    assert "a drain would be refused: no other store can take the leaders of store 2 " in (
        result.summary
    )
    assert "(store 1 is Down; store 3 is Disconnected)" in result.summary


async def test_slow_store_not_drained_when_its_leaders_have_no_voter_to_move_to() -> None:
    stores = [store(1, leaders=10, regions=50), store(2, leaders=500, regions=1000)]
    stores += [store(3, "Down", regions=1000), store(4, "Down", regions=1000)]
    obs = observation(stores, reading=metrics({1: 20, 2: 300}))
    result = await diagnose(slow(), obs, FakePD())
    assert result.actions == ()
    assert "at least 450 of the 500 leaders of store 2 cannot move" in result.summary


async def test_slow_store_counts_only_up_undrained_stores_as_targets() -> None:
    # Stores 4 and 5 hold replicas but cannot take leaders: some regions led by store 2 may
    # have both other voters there. The drain is proposed with that warning.
    stores = [store(1), store(2), store(3), store(4, "Disconnected"), store(5, "Down")]
    obs = observation(stores, reading=metrics({1: 20, 2: 300, 3: 20}))
    result = await diagnose(slow(), obs, FakePD())
    [action] = result.actions
    assert "Evicting its 100 leaders to stores 1, 3 (2 Up, undrained store(s)" in action.reason
    assert (
        "Warning: Up to 100 of the 100 leaders of store 2 may have no healthy voter to move "
        "to: stores 4 (Disconnected), 5 (Down) cannot take leaders and hold 600 replicas"
    ) in action.reason
    assert "Read the warning" in result.summary and result.confidence == 0.5


async def test_slow_store_drain_warns_when_one_store_would_lead_most_leaders() -> None:
    stores = [store(1, leaders=900, regions=1000), store(2, leaders=100, regions=1000)]
    stores.append(store(3, leaders=10, regions=1000))
    obs = observation(stores, reading=metrics({1: 20, 2: 300, 3: 20}))
    [action] = (await diagnose(slow(), obs, FakePD())).actions
    assert "Warning: Leaders after the drain, estimated" in action.reason
    assert "Store 1 would lead 94% of all leaders, more than 60%" in action.reason


async def test_slow_store_not_drained_when_another_store_is_drained() -> None:
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20}))
    result = await diagnose(slow(), obs, FakePD(evicted=[4]))
    assert result.actions == ()
    assert "4 are already drained" in result.summary


async def test_more_drained_stores_allowed_by_limits() -> None:
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20}))
    result = await diagnose(slow(), obs, FakePD(evicted=[5]), PlaybookLimits(max_drained_stores=2))
    assert [a.action for a in result.actions] == ["drain"]
    assert "stores 1, 3, 4 " in result.actions[0].reason


async def test_slow_store_already_drained_is_left_alone() -> None:
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20}))
    result = await diagnose(slow(), obs, FakePD(evicted=[2]))
    assert result.actions == ()
    assert "already drained" in result.summary


async def test_cluster_wide_slowness_drains_nothing() -> None:
    obs = observation(five_stores(), reading=metrics({1: 250, 2: 300, 3: 240, 4: 20, 5: 260}))
    result = await diagnose(slow(), obs, FakePD())
    assert result.actions == ()
    assert "cluster-wide" in result.summary
    assert "load" in result.causes[0].statement


async def test_slow_store_without_leaders_or_not_up_is_not_drained() -> None:
    reading = metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20})
    no_leaders = observation(five_stores({2: {"leaders": 0}}), reading=reading)
    assert (await diagnose(slow(), no_leaders, FakePD())).actions == ()
    offline = observation(five_stores({2: {"state": "Disconnected"}}), reading=reading)
    result = await diagnose(slow(), offline, FakePD())
    assert result.actions == () and "Disconnected" in result.summary


async def test_slow_store_proposes_nothing_when_pd_facts_cannot_be_read() -> None:
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300, 3: 20, 4: 20, 5: 20}))
    result = await diagnose(slow(), obs, FakePD(failing=["evicted_leader_store_ids"]))
    assert result.actions == ()
    assert any("evict-leader" in note for note in result.notes)
    no_pd = await diagnose(slow(), obs, None)
    assert no_pd.actions == ()


async def test_hot_writes_on_the_slow_store_lower_confidence_in_a_slow_disk() -> None:
    hot = hotspot({2: [(10, 5e6, [1, 2, 3]), (11, 4e6, [2, 3, 4]), (12, 3e6, [2, 4, 5])]})
    obs = observation(five_stores(), reading=metrics({1: 20, 2: 300}), hot=hot)
    result = await diagnose(slow(), obs, FakePD())
    statements = [c.statement for c in result.causes]
    assert any("Hot write regions" in s for s in statements)
    assert result.confidence < 0.7


# --------------------------------------------------------------------------- hot region


def hot_problem(sid: int = 1) -> Problem:
    return Problem(kind="hot_write_skew", store_id=sid, value=0.75, threshold=0.5)


async def test_hot_region_leader_moves_to_least_loaded_healthy_voter() -> None:
    hot = hotspot(
        {
            1: [(10, 4e6, [1, 2, 3]), (11, 3.5e6, [1, 3, 4]), (12, 3e6, [1, 2, 5])],
            2: [(20, 1e6, [2, 3, 4]), (21, 1e6, [2, 4, 5])],
        }
    )
    obs = observation(five_stores(), hot=hot)
    pd = FakePD([region(10, [1, 2, 3], leader=1)])
    result = await diagnose(hot_problem(), obs, pd)
    assert result.kind is DiagnosisKind.HOT_REGION
    # store 2 leads 2 hot regions, store 3 none: the leader goes to store 3.
    assert [(a.action, a.params) for a in result.actions] == [
        ("transfer-leader", {"region_id": 10, "to_store_id": 3})
    ]
    assert "0 hot write leaders vs 3 on store 1" in result.actions[0].reason
    assert_registry_valid(result)


async def test_hot_region_target_skips_unhealthy_drained_and_down_voters() -> None:
    hot = hotspot({1: [(10, 4e6, [1, 2, 3, 4, 5]), (11, 3.9e6, [1, 2, 3]), (12, 3e6, [1, 2, 3])]})
    stores = five_stores({5: {"state": "Down"}})
    obs = observation(stores, hot=hot)
    pd = FakePD([region(10, [1, 2, 3, 4, 5], leader=1, pending=[2])], evicted=[3])
    result = await diagnose(hot_problem(), obs, pd)
    assert [(a.action, a.params["to_store_id"]) for a in result.actions] == [("transfer-leader", 4)]


async def test_dominant_hot_region_is_split() -> None:
    hot = hotspot({1: [(10, 24e6, [1, 2, 3]), (11, 1e6, [1, 2, 3])]})
    obs = observation(five_stores(), hot=hot)
    result = await diagnose(hot_problem(), obs, FakePD([region(10, [1, 2, 3], leader=1)]))
    assert [(a.action, a.params) for a in result.actions] == [
        ("split", {"region_id": 10, "policy": "approximate"})
    ]
    assert "96%" in result.actions[0].reason


async def test_hot_region_without_a_leader_target_is_split() -> None:
    hot = hotspot({1: [(10, 4e6, [1, 2, 3]), (11, 3.9e6, [1, 2, 3]), (12, 3e6, [1, 2, 3])]})
    obs = observation(five_stores({2: {"state": "Down"}}), hot=hot)
    pd = FakePD([region(10, [1, 2, 3], leader=1, down=[2])], evicted=[3])
    result = await diagnose(hot_problem(), obs, pd)
    assert [a.action for a in result.actions] == ["split"]
    assert "no other Up, undrained store" in result.actions[0].reason


async def test_hot_region_whose_leader_already_moved_is_left_alone() -> None:
    hot = hotspot({1: [(10, 4e6, [1, 2, 3]), (11, 3.9e6, [1, 2, 3])]})
    obs = observation(five_stores(), hot=hot)
    result = await diagnose(hot_problem(), obs, FakePD([region(10, [1, 2, 3], leader=2)]))
    assert result.actions == ()
    assert "now led by store 2" in result.summary


async def test_hot_skew_without_hot_peers_proposes_nothing() -> None:
    result = await diagnose(hot_problem(), observation(five_stores()), FakePD())
    assert result.kind is DiagnosisKind.HOT_REGION and result.actions == ()


# --------------------------------------------------------------------------- disk


def disk_problem(sid: int = 1, value: float = 0.85) -> Problem:
    return Problem(kind="disk_usage", store_id=sid, value=value, threshold=0.7)


def disk_stores() -> list[StoreInfo]:
    return [
        store(1, used=0.85),
        store(2, used=0.5),
        store(3, used=0.4),
        store(4, used=0.1),
        store(5, used=0.2),
        store(6, used=0.75),
    ]


async def test_disk_moves_the_largest_healthy_region_to_the_emptiest_store_without_a_peer() -> None:
    regions = [
        region(7, [1, 2, 4], size=300, pending=[2]),  # largest, but not healthy
        region(8, [1, 4, 5], size=200),  # store 4 holds a peer: goes to 3 (next emptiest)?
        region(9, [1, 2, 3], size=100),
        region(10, [2, 3, 4], size=500),  # not on store 1
    ]
    obs = observation(disk_stores())
    result = await diagnose(disk_problem(), obs, FakePD(regions))
    assert result.kind is DiagnosisKind.DISK_FULL
    # Region 8 is the largest healthy one on store 1; stores 4 and 5 hold peers, store 3 (40%)
    # is the emptiest without one. Store 6 (75%) is above the threshold and never a target.
    assert [(a.action, a.params) for a in result.actions] == [
        ("transfer-peer", {"region_id": 8, "from_store_id": 1, "to_store_id": 3})
    ]
    reason = result.actions[0].reason
    assert "85% used" in reason and "200 MiB" in reason and "(40% used)" in reason
    assert_registry_valid(result)


async def test_disk_skips_a_region_with_an_extra_replica_mid_move() -> None:
    # The incident seen in production: region 8 had 4 peers (a peer move half done) and was
    # picked with "all its peers are healthy". It must be skipped for the next settled one.
    regions = [
        region(8, [1, 2, 4, 5], size=300),  # 4 voters with max-replicas 3
        region(9, [1, 2, 5], size=200),
    ]
    result = await diagnose(disk_problem(), observation(disk_stores()), FakePD(regions))
    assert [(a.params["region_id"], a.params["to_store_id"]) for a in result.actions] == [(9, 4)]
    reason = result.actions[0].reason
    assert "Its 3 peers (stores 1, 2, 5, max-replicas 3) are healthy voters" in reason
    assert "no operator PD is running on it" in reason


@pytest.mark.parametrize(
    ("unsafe", "pd_options", "why"),
    [
        (region(8, [1, 2, 5], learners=[4], size=300), {}, "a learner peer being added (store 4)"),
        (region(8, [1, 2, 5], roles={5: "DemotingVoter"}, size=300), {}, "membership change"),
        (region(8, [1, 2, 5], down=[2], size=300), {}, "a down peer (store 2)"),
        (region(8, [1, 2, 5], pending=[5], size=300), {}, "a pending peer (store 5)"),
        (region(8, [1, 2, 5], size=300), {"operators": [8]}, "an operator PD is running on it"),
        (
            region(8, [1, 2, 4, 5], size=300),
            {"max_replicas": 3},
            "4 peers, more than max-replicas 3",
        ),
    ],
)
async def test_disk_never_moves_a_region_that_is_unhealthy_or_mid_change(
    unsafe: Any, pd_options: dict[str, Any], why: str
) -> None:
    result = await diagnose(
        disk_problem(), observation(disk_stores()), FakePD([unsafe], **pd_options)
    )
    assert result.actions == ()
    assert "None of its 1 largest regions can be moved safely now" in result.summary
    assert "1 are unhealthy or mid-change (region 8: " in result.summary
    assert why in result.summary


async def test_disk_with_five_replicas_moves_a_five_peer_region() -> None:
    stores = [*disk_stores(), store(7, used=0.05)]
    regions = [region(8, [1, 2, 3, 5, 6], size=300)]
    result = await diagnose(disk_problem(), observation(stores), FakePD(regions, max_replicas=5))
    assert [(a.params["region_id"], a.params["to_store_id"]) for a in result.actions] == [(8, 7)]
    # max-replicas unread: PD's default 3 is assumed, so a 5-peer region is not touched
    unread = FakePD(regions, failing=["get_replication_config"])
    assert (await diagnose(disk_problem(), observation(stores), unread)).actions == ()


async def test_disk_without_the_operator_list_still_proposes_but_says_so() -> None:
    pd = FakePD([region(9, [1, 2, 5], size=200)], failing=["list_operators"])
    result = await diagnose(disk_problem(), observation(disk_stores()), pd)
    [move] = result.actions
    assert "running operators could not be read (preflight checks again)" in move.reason
    assert any("the running operators" in n for n in result.notes)


async def test_disk_moves_up_to_the_configured_number() -> None:
    regions = [region(8, [1, 2, 3], size=200), region(9, [1, 2, 5], size=100)]
    result = await diagnose(
        disk_problem(), observation(disk_stores()), FakePD(regions), PlaybookLimits(disk_moves=2)
    )
    assert [(a.params["region_id"], a.params["to_store_id"]) for a in result.actions] == [
        (8, 4),
        (9, 4),
    ]


async def test_disk_with_every_store_holding_a_peer_explains_instead() -> None:
    stores = [store(1, used=0.8), store(2, used=0.3), store(3, used=0.3)]
    regions = [region(i, [1, 2, 3], size=100 + i) for i in range(1, 6)]
    result = await diagnose(disk_problem(value=0.8), observation(stores), FakePD(regions))
    assert result.actions == ()
    assert "5 already have a peer on every store with room (2, 3)" in result.summary
    assert "Add capacity" in result.summary


async def test_disk_with_no_room_elsewhere_proposes_nothing() -> None:
    stores = [store(1, used=0.85), store(2, used=0.72), store(3, used=0.9), store(4, "Down")]
    result = await diagnose(disk_problem(), observation(stores), FakePD([region(8, [1, 2, 3])]))
    assert result.actions == ()
    assert "No other Up store has room" in result.summary


async def test_disk_without_the_store_regions_proposes_nothing() -> None:
    pd = FakePD([region(8, [1, 2, 3])], failing=["get_store_regions"])
    result = await diagnose(disk_problem(), observation(disk_stores()), pd)
    assert result.actions == ()
    assert any("store's regions" in n for n in result.notes)


async def test_disk_mentions_incoming_snapshots() -> None:
    stores = [store(1, used=0.85, receiving_snaps=3), store(2, used=0.72)]
    result = await diagnose(disk_problem(), observation(stores), FakePD())
    assert "lowering region-schedule-limit" in result.summary
    assert any("receiving 3 snapshots" in e.fact for e in result.evidence)


# --------------------------------------------------------------------------- stores


async def test_store_down_explains_and_proposes_nothing() -> None:
    stores = five_stores({5: {"state": "Down", "heartbeat_age": 3900.0}})
    down = [region(i, [1, 2, 5], down=[5]) for i in range(1, 8)]
    lost = [region(99, [3, 4, 5], down=[4, 5])]
    obs = observation(stores, checks={RegionProblem.DOWN_PEER: down + lost})
    pd = FakePD(schedule={"max-store-down-time": "1h0m0s", "replica-schedule-limit": 16})
    result = await diagnose(Problem(kind="store_down", store_id=5), obs, pd)
    assert result.kind is DiagnosisKind.STORE_DOWN
    assert result.actions == ()
    assert "no heartbeat for 65 min" in result.summary
    assert "max-store-down-time (60 min)" in result.summary
    assert "Its 8 replicas count as down" in result.summary
    assert "1 region(s) lost a majority" in result.summary and "99" in result.summary


async def test_store_disconnected_waits_and_watches() -> None:
    obs = observation(five_stores({3: {"state": "Disconnected", "heartbeat_age": 50.0}}))
    result = await diagnose(Problem(kind="store_disconnected", store_id=3), obs, FakePD())
    assert result.kind is DiagnosisKind.STORE_DISCONNECTED
    assert result.actions == ()
    assert "50 s" in result.summary and "in about 29 min" in result.summary
    assert "Wait and watch" in result.summary


async def test_missing_store_is_explained() -> None:
    result = run(Problem(kind="store_down", store_id=9), observation(five_stores()))
    assert result.actions == () and "no longer lists store 9" in result.summary


# --------------------------------------------------------------------------- regions, PD


async def test_unhealthy_regions_explain_pds_repair_and_blame_the_store() -> None:
    stores = five_stores({4: {"state": "Disconnected"}})
    pending = [region(i, [1, 2, 4], pending=[4]) for i in range(1, 4)]
    obs = observation(stores, checks={RegionProblem.PENDING_PEER: pending})
    result = await diagnose(Problem(kind="region_pending_peer", value=3.0), obs, FakePD())
    assert result.kind is DiagnosisKind.UNHEALTHY_REGIONS
    assert result.actions == ()
    assert result.summary.startswith("3 regions have a pending peer.")
    assert "Store 4 (Disconnected) holds 3 of them" in result.causes[0].statement


async def test_one_region_reads_in_the_singular() -> None:
    obs = observation(five_stores(), checks={RegionProblem.EXTRA_PEER: [region(1, [1, 2, 3, 4])]})
    result = run(Problem(kind="region_extra_peer", value=1.0), obs)
    assert result.summary.startswith("1 region has more replicas than configured.")


async def test_pd_unreachable_wins_over_any_kind() -> None:
    obs = observation(pd_error="GET /pd/api/v1/stores: connection refused")
    for kind in ("pd_unreachable", "write_latency", "disk_usage"):
        result = await diagnose(Problem(kind=kind, store_id=1), obs, FakePD())
        assert result.kind is DiagnosisKind.PD_UNREACHABLE
        assert result.actions == ()
        assert "connection refused" in result.summary


async def test_metrics_gap_and_unknown_kinds_explain() -> None:
    obs = observation(five_stores(), metrics_error="prometheus: connection refused")
    gap = run(Problem(kind="metrics_unavailable"), obs)
    assert gap.kind is DiagnosisKind.METRICS_GAP and "connection refused" in gap.summary
    other = run(Problem(kind="something_new", title="odd thing"), obs)
    assert other.kind is DiagnosisKind.UNKNOWN and other.actions == ()
    assert "something_new" in other.summary


# --------------------------------------------------------------------------- gather, problem


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("write_latency", {"evicted_leader_store_ids", "get_replication_config"}),
        ("hot_write_skew", {"evicted_leader_store_ids", "get_region"}),
        (
            "disk_usage",
            {
                "get_schedule_config",
                "get_store_regions",
                "get_replication_config",
                "list_operators",
            },
        ),
        ("store_down", {"get_schedule_config"}),
        ("store_disconnected", {"get_schedule_config"}),
        ("region_down_peer", {"get_schedule_config"}),
        ("pd_unreachable", set()),
        ("metrics_unavailable", set()),
    ],
)
async def test_gather_reads_only_what_the_rule_needs(kind: str, expected: set[str]) -> None:
    hot = hotspot({1: [(10, 4e6, [1, 2, 3]), (11, 3e6, [1, 2, 3]), (12, 2e6, [1, 2, 3])]})
    pd = FakePD([region(10, [1, 2, 3])])
    context = await gather(Problem(kind=kind, store_id=1), observation(five_stores(), hot=hot), pd)
    assert set(pd.calls) == expected
    assert len(pd.calls) == context.requests <= MAX_GATHER_REQUESTS
    assert "get_store_regions" not in pd.calls or kind == "disk_usage"


async def test_gather_reads_nothing_when_pd_is_unreachable() -> None:
    pd = FakePD()
    context = await gather(slow(), observation(pd_error="down"), pd)
    assert pd.calls == [] and context.requests == 0


async def test_gather_keeps_only_the_largest_regions() -> None:
    regions = [region(i, [1, 2, 3], size=i) for i in range(1, 40)]
    context = await gather(disk_problem(), observation(disk_stores()), FakePD(regions))
    assert context.largest_regions is not None
    assert [r.id for r in context.largest_regions[:3]] == [39, 38, 37]
    assert len(context.largest_regions) == PlaybookLimits().disk_candidates


def test_problem_from_incident_fields() -> None:
    problem = Problem.from_fields(
        "write_latency",
        "store:4",
        value=250.0,
        threshold=100.0,
        details={"region_ids": [5, "6", -1, "x", True], "store_id": 9},
    )
    assert problem.store_id == 4
    assert problem.region_ids == (5, 6)
    cluster = Problem.from_fields("region_down_peer", "cluster", details={"store_id": "x"})
    assert cluster.store_id is None and cluster.region_id is None
    assert Problem.from_fields("x", "region:12").region_id == 12


def test_max_store_down_time_default_is_used_without_config() -> None:
    obs = observation(five_stores({3: {"state": "Disconnected", "heartbeat_age": 600.0}}))
    result = run(Problem(kind="store_disconnected", store_id=3), obs)
    assert "in about 20 min" in result.summary
    assert any("PD's default" in e.fact for e in result.evidence)
    assert timedelta(minutes=30).total_seconds() in [e.value for e in result.evidence]
