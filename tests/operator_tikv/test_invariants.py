"""Invariants at the edges of each threshold and grace period, and how conditions clear."""

from __future__ import annotations

from typing import Any

import pytest

from operator_tikv.invariants import (
    Evaluation,
    InvariantMemory,
    Severity,
    Thresholds,
    Violation,
    ViolationKind,
    evaluate,
)
from operator_tikv.metrics import MetricsReading, StoreMetrics
from operator_tikv.models.hotspot import HotspotInfo
from operator_tikv.models.region import Region
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation, RegionCheck, RegionProblem

T0 = 1795441567.0
GIB = 1024**3


def store_json(
    store_id: int,
    state_name: str = "Up",
    *,
    at: float = T0,
    heartbeat_age: float = 5.0,
    capacity: str = "500GiB",
    available: str = "300GiB",
    leaders: int = 1203,
    regions: int = 3610,
) -> dict[str, Any]:
    """A v8.5.5 StoreInfo (pd-api.md §3.1): Up stores have no `state` key."""
    port = 20160 + store_id
    beat_ns = int((at - heartbeat_age) * 1e9)
    return {
        "store": {
            "id": store_id,
            "address": f"127.0.0.1:{port}",
            "labels": [{"key": "zone", "value": f"z{store_id}"}],
            "version": "8.5.5",
            "status_address": f"127.0.0.1:{port + 20}",
            "git_hash": "bd35d5c6f5e53a4e4ec04ae94fc4d2e9f7a0c1b2",
            "start_timestamp": 1795406296,
            "deploy_path": "/home/tidb/.tiup/components/tikv/v8.5.5",
            "last_heartbeat": beat_ns,
            "node_state": 1,
            "state_name": state_name,
        },
        "status": {
            "capacity": capacity,
            "available": available,
            "used_size": "200GiB",
            "leader_count": leaders,
            "leader_weight": 1,
            "leader_score": leaders,
            "leader_size": leaders * 94,
            "region_count": regions,
            "region_weight": 1,
            "region_score": 1051937.4477139413,
            "region_size": regions * 94,
            "slow_score": 1,
            "start_ts": "2026-11-23T03:58:16Z",
            "last_heartbeat_ts": "2026-11-23T13:45:51.277031846Z",
            "uptime": "9h47m35.277031846s",
        },
    }


def stores(*items: dict[str, Any]) -> tuple[StoreInfo, ...]:
    return tuple(StoreInfo.model_validate(item) for item in items)


HEALTHY = (store_json(1), store_json(4), store_json(5))


def reading(at: float, **per_store: StoreMetrics) -> MetricsReading:
    return MetricsReading(
        source="scrape", at=at, stores={m.store_id: m for m in per_store.values()}
    )


def metrics(store_id: int, p99_ms: float | None = 20.0, disk: float | None = 0.4) -> StoreMetrics:
    return StoreMetrics(
        store_id=store_id,
        up=True,
        write_p99_seconds=None if p99_ms is None else p99_ms / 1000,
        disk_used_ratio=disk,
        leader_count=1203,
        region_count=3610,
    )


def healthy_metrics(at: float, **overrides: StoreMetrics) -> MetricsReading:
    base = {f"s{i}": metrics(i) for i in (1, 4, 5)}
    return reading(at, **(base | overrides))


def observation(
    at: float = T0,
    *,
    store_items: tuple[dict[str, Any], ...] = HEALTHY,
    metric_reading: MetricsReading | None = None,
    use_default_metrics: bool = True,
    checks: dict[RegionProblem, RegionCheck] | None = None,
    hot: HotspotInfo | None = None,
    **extra: Any,
) -> Observation:
    if metric_reading is None and use_default_metrics:
        metric_reading = healthy_metrics(at)
    if checks is None:
        checks = {p: RegionCheck.from_regions(p, []) for p in RegionProblem}
    return Observation(
        at=at,
        pd_url="http://pd.test:2379",
        stores=stores(*store_items),
        metrics=metric_reading,
        metrics_source="scrape",
        region_checks=checks,
        hot_write=hot if hot is not None else HotspotInfo(),
        **extra,
    )


def kinds(result: Evaluation) -> list[tuple[ViolationKind, int | None]]:
    return [(v.kind, v.store_id) for v in result.violations]


def only(result: Evaluation, kind: ViolationKind) -> Violation:
    found = [v for v in result.violations if v.kind is kind]
    assert len(found) == 1, result.violations
    return found[0]


def test_healthy_cluster_has_no_violations() -> None:
    result = evaluate(observation(), Thresholds())
    assert result.violations == ()
    assert result.pending == ()
    assert result.memory.entries == {}


# ---------------------------------------------------------------- PD and stores


def test_pd_unreachable_is_critical_and_holds_what_was_known() -> None:
    down = observation(store_items=(store_json(1), store_json(5, "Down", heartbeat_age=2009)))
    before = evaluate(down, Thresholds())
    assert kinds(before) == [(ViolationKind.STORE_DOWN, 5)]

    blind = Observation(
        at=T0 + 15,
        pd_url="http://pd.test:2379",
        pd_error="PD is unavailable: PD said 'ConnectError: [Errno 111] Connection refused'.",
    )
    result = evaluate(blind, Thresholds(), before.memory)
    pd = only(result, ViolationKind.PD_UNREACHABLE)
    assert pd.severity is Severity.CRITICAL
    assert "http://pd.test:2379" in pd.message
    assert "Connection refused" in pd.message
    held = only(result, ViolationKind.STORE_DOWN)
    assert held.stale is True
    assert held.first_seen == T0

    back = evaluate(observation(T0 + 30), Thresholds(), result.memory)
    assert back.violations == ()


def test_store_down_is_critical_at_once_with_heartbeat_age() -> None:
    obs = observation(store_items=(store_json(1), store_json(5, "Down", heartbeat_age=35241)))
    down = only(evaluate(obs, Thresholds(disconnected_grace=300)), ViolationKind.STORE_DOWN)
    assert down.severity is Severity.CRITICAL
    assert down.store_id == 5
    assert down.value == pytest.approx(35241, abs=1)
    assert "127.0.0.1:20165" in down.message
    assert "9 h 47 min" in down.message


@pytest.mark.parametrize(
    ("elapsed", "expect_violation"), [(0.0, False), (29.9, False), (30.0, True), (31.0, True)]
)
def test_disconnected_grace_edges(elapsed: float, expect_violation: bool) -> None:
    t = Thresholds(disconnected_grace=30)
    items = (store_json(1), store_json(4, "Disconnected", heartbeat_age=25))
    first = evaluate(observation(T0, store_items=items), t)
    assert [v.kind for v in first.pending] == [ViolationKind.STORE_DISCONNECTED]
    result = evaluate(observation(T0 + elapsed, store_items=items), t, first.memory)
    if expect_violation:
        v = only(result, ViolationKind.STORE_DISCONNECTED)
        assert v.severity is Severity.WARNING
        assert v.first_seen == T0
    else:
        assert result.violations == ()
        assert [v.store_id for v in result.pending] == [4]


def test_disconnected_without_grace_is_immediate_and_clears() -> None:
    items = (store_json(1), store_json(4, "Disconnected", heartbeat_age=25))
    result = evaluate(observation(store_items=items), Thresholds())
    assert kinds(result) == [(ViolationKind.STORE_DISCONNECTED, 4)]
    cleared = evaluate(observation(T0 + 15), Thresholds(), result.memory)
    assert cleared.violations == ()
    assert cleared.memory.entries == {}


def test_tombstone_and_offline_stores_are_not_down() -> None:
    items = (store_json(1), store_json(2, "Tombstone"), store_json(3, "Offline"))
    result = evaluate(observation(store_items=items, use_default_metrics=False), Thresholds())
    assert [v.kind for v in result.violations] == []


def test_up_store_without_metrics_is_reported_not_healthy() -> None:
    dead = StoreMetrics(store_id=4, up=False, error="could not read 127.0.0.1:20184/metrics")
    obs = observation(metric_reading=healthy_metrics(T0, s4=dead))
    v = only(evaluate(obs, Thresholds()), ViolationKind.STORE_METRICS_MISSING)
    assert v.store_id == 4
    assert "127.0.0.1:20184/metrics" in v.message


def test_down_store_without_metrics_is_only_down() -> None:
    items = (store_json(1), store_json(4), store_json(5, "Down", heartbeat_age=4000))
    obs = observation(
        store_items=items,
        metric_reading=healthy_metrics(T0, s5=StoreMetrics(store_id=5, up=False)),
    )
    assert kinds(evaluate(obs, Thresholds())) == [(ViolationKind.STORE_DOWN, 5)]


# ---------------------------------------------------------------- write latency


@pytest.mark.parametrize(
    ("p99_ms", "over"), [(99.9, False), (100.0, False), (100.1, True), (float("inf"), True)]
)
def test_write_p99_threshold_edges(p99_ms: float, over: bool) -> None:
    obs = observation(metric_reading=healthy_metrics(T0, s4=metrics(4, p99_ms=p99_ms)))
    result = evaluate(obs, Thresholds(), ignore_grace=True)
    if over:
        v = only(result, ViolationKind.WRITE_LATENCY)
        assert v.store_id == 4
        assert v.value == pytest.approx(p99_ms)
        assert v.threshold == 100.0
        assert v.unit == "ms"
    else:
        assert result.violations == ()


def slow(at: float, p99_ms: float | None = 250.0) -> Observation:
    return observation(at, metric_reading=healthy_metrics(at, s4=metrics(4, p99_ms=p99_ms)))


@pytest.mark.parametrize(
    ("elapsed", "expect_violation"), [(0, False), (59.9, False), (60.0, True), (75.0, True)]
)
def test_write_p99_grace_edges(elapsed: float, expect_violation: bool) -> None:
    t = Thresholds()  # 100 ms, 60 s
    first = evaluate(slow(T0), t)
    assert first.violations == ()
    assert [(v.kind, v.store_id) for v in first.pending] == [(ViolationKind.WRITE_LATENCY, 4)]
    result = evaluate(slow(T0 + elapsed), t, first.memory)
    if expect_violation:
        v = only(result, ViolationKind.WRITE_LATENCY)
        assert v.first_seen == T0
        assert "250 ms" in v.message
    else:
        assert result.violations == ()
        assert len(result.pending) == 1


def test_write_p99_dip_restarts_the_grace_period() -> None:
    t = Thresholds()
    memory = evaluate(slow(T0), t).memory
    memory = evaluate(slow(T0 + 30, p99_ms=40.0), t, memory).memory
    assert memory.entries == {}
    result = evaluate(slow(T0 + 75), t, memory)
    assert result.violations == ()
    assert result.pending[0].first_seen == T0 + 75


def test_write_p99_no_data_neither_clears_nor_confirms() -> None:
    t = Thresholds()
    active = evaluate(slow(T0 + 60), t, evaluate(slow(T0), t).memory)
    assert kinds(active) == [(ViolationKind.WRITE_LATENCY, 4)]
    # No writes in the window (NaN) or a failed scrape: the violation is kept, marked stale.
    quiet = evaluate(slow(T0 + 75, p99_ms=None), t, active.memory)
    held = only(quiet, ViolationKind.WRITE_LATENCY)
    assert held.stale is True
    assert held.value == pytest.approx(250.0)
    # Fresh data under the threshold clears it.
    fine = evaluate(slow(T0 + 90, p99_ms=12.0), t, quiet.memory)
    assert fine.violations == ()


def test_pending_timer_survives_a_gap_in_data() -> None:
    t = Thresholds()
    memory = evaluate(slow(T0), t).memory
    memory = evaluate(slow(T0 + 30, p99_ms=None), t, memory).memory
    result = evaluate(slow(T0 + 60), t, memory)
    assert only(result, ViolationKind.WRITE_LATENCY).first_seen == T0


def test_ignore_grace_reports_at_once() -> None:
    result = evaluate(slow(T0), Thresholds(), ignore_grace=True)
    assert kinds(result) == [(ViolationKind.WRITE_LATENCY, 4)]


def test_removed_store_drops_its_held_conditions() -> None:
    t = Thresholds()
    active = evaluate(slow(T0 + 60), t, evaluate(slow(T0), t).memory)
    gone = observation(
        T0 + 75,
        store_items=(store_json(1), store_json(5)),
        metric_reading=reading(T0 + 75, s1=metrics(1), s5=metrics(5)),
    )
    result = evaluate(gone, t, active.memory)
    assert result.violations == ()
    assert result.memory.entries == {}


# ---------------------------------------------------------------- disk


@pytest.mark.parametrize(
    ("ratio", "severity"),
    [
        (0.6999, None),
        (0.70, None),
        (0.7001, Severity.WARNING),
        (0.7999, Severity.WARNING),
        (0.80, Severity.CRITICAL),
        (0.97, Severity.CRITICAL),
    ],
)
def test_disk_threshold_edges(ratio: float, severity: Severity | None) -> None:
    obs = observation(metric_reading=healthy_metrics(T0, s5=metrics(5, disk=ratio)))
    result = evaluate(obs, Thresholds())
    if severity is None:
        assert result.violations == ()
        return
    v = only(result, ViolationKind.DISK_USAGE)
    assert (v.store_id, v.severity, v.value, v.threshold) == (5, severity, ratio, 0.70)
    assert "TiKV's metrics" in v.message


def test_disk_falls_back_to_pd_figures_without_metrics() -> None:
    items = (store_json(1), store_json(5, available="125GiB"))
    result = evaluate(
        observation(store_items=items, use_default_metrics=False), Thresholds(), ignore_grace=True
    )
    v = only(result, ViolationKind.DISK_USAGE)
    assert v.store_id == 5
    assert v.value == pytest.approx(0.75)
    assert "PD's store status" in v.message


def test_metrics_win_over_pd_for_disk() -> None:
    items = (store_json(1), store_json(4), store_json(5, available="125GiB"))
    obs = observation(store_items=items, metric_reading=healthy_metrics(T0))
    assert evaluate(obs, Thresholds()).violations == ()


def test_disk_grace() -> None:
    t = Thresholds(disk_grace=120)
    full = observation(metric_reading=healthy_metrics(T0, s5=metrics(5, disk=0.9)))
    first = evaluate(full, t)
    assert first.violations == ()
    later = observation(T0 + 120, metric_reading=healthy_metrics(T0, s5=metrics(5, disk=0.9)))
    assert kinds(evaluate(later, t, first.memory)) == [(ViolationKind.DISK_USAGE, 5)]


def test_metrics_source_down_is_a_warning_and_disk_uses_pd() -> None:
    items = (store_json(1), store_json(4), store_json(5, available="100GiB"))
    obs = observation(
        store_items=items,
        use_default_metrics=False,
        metrics_error="could not reach Prometheus at http://prom:9090",
    )
    result = evaluate(obs, Thresholds())
    assert kinds(result) == [
        (ViolationKind.DISK_USAGE, 5),
        (ViolationKind.METRICS_UNAVAILABLE, None),
    ]
    assert result.violations[0].severity is Severity.CRITICAL  # 80 % used
    assert "http://prom:9090" in result.violations[1].message


# ---------------------------------------------------------------- regions

# The down-peer region of pd-api.md §4.2: store 5's peer has been down for 2009 s.
REGION_2008 = {
    "id": 2008,
    "start_key": "7480000000000000FF0500000000000000F8",
    "end_key": "7480000000000000FF0700000000000000F8",
    "epoch": {"conf_ver": 5, "version": 61},
    "peers": [
        {"role_name": "Voter", "id": 2009, "store_id": 1},
        {"role_name": "Voter", "id": 2010, "store_id": 4},
        {"role_name": "Voter", "id": 2011, "store_id": 5},
    ],
    "leader": {"role_name": "Voter", "id": 2009, "store_id": 1},
    "down_peers": [
        {"peer": {"role_name": "Voter", "id": 2011, "store_id": 5}, "down_seconds": 2009}
    ],
    "pending_peers": [{"role_name": "Voter", "id": 2011, "store_id": 5}],
    "cpu_usage": 12,
    "written_bytes": 50331648,
    "read_bytes": 1048576,
    "written_keys": 196608,
    "read_keys": 4096,
    "approximate_size": 94,
    "approximate_keys": 861234,
}


def region(region_id: int, down_stores: tuple[int, ...] = (5,)) -> Region:
    body = dict(REGION_2008)
    body["id"] = region_id
    body["peers"] = [
        {"role_name": "Voter", "id": region_id * 10 + s, "store_id": s} for s in (1, 4, 5)
    ]
    body["down_peers"] = [
        {
            "peer": {"role_name": "Voter", "id": region_id * 10 + s, "store_id": s},
            "down_seconds": 60,
        }
        for s in down_stores
    ]
    return Region.model_validate(body)


def with_checks(at: float = T0, **lists: list[Region]) -> Observation:
    checks = {p: RegionCheck.from_regions(p, lists.get(p.name.lower(), [])) for p in RegionProblem}
    return observation(at, checks=checks)


def test_down_peer_regions_give_one_violation_with_count_sample_and_stores() -> None:
    regions = [Region.model_validate(REGION_2008)] + [region(3000 + i) for i in range(24)]
    result = evaluate(with_checks(down_peer=regions), Thresholds())
    v = only(result, ViolationKind.REGION_DOWN_PEER)
    assert v.severity is Severity.WARNING
    assert v.value == 25
    assert v.store_id is None and v.region_id is None
    assert v.region_ids == (2008, 3000, 3001, 3002, 3003, 3004, 3005, 3006, 3007, 3008)
    assert "25 regions have a down peer" in v.message
    assert "store 5 (25)" in v.message
    assert "regions/check/down-peer" in v.message


def test_regions_that_lost_quorum_are_critical() -> None:
    regions = [region(4000), region(4001, down_stores=(4, 5))]
    v = only(evaluate(with_checks(down_peer=regions), Thresholds()), ViolationKind.REGION_DOWN_PEER)
    assert v.severity is Severity.CRITICAL
    assert "1 of them lost a majority" in v.message
    assert "4001" in v.message


def test_each_region_kind_is_separate_and_clears() -> None:
    one = [Region.model_validate(REGION_2008)]
    result = evaluate(
        with_checks(down_peer=one, pending_peer=one, miss_peer=one, extra_peer=one), Thresholds()
    )
    assert {v.kind for v in result.violations} == {
        ViolationKind.REGION_DOWN_PEER,
        ViolationKind.REGION_PENDING_PEER,
        ViolationKind.REGION_MISS_PEER,
        ViolationKind.REGION_EXTRA_PEER,
    }
    assert "1 region has a pending peer" in only(result, ViolationKind.REGION_PENDING_PEER).message
    cleared = evaluate(with_checks(T0 + 15, pending_peer=one), Thresholds(), result.memory)
    assert kinds(cleared) == [(ViolationKind.REGION_PENDING_PEER, None)]


def test_region_min_count_and_grace() -> None:
    regions = [region(5000 + i) for i in range(3)]
    t = Thresholds(region_min_count=4)
    assert evaluate(with_checks(down_peer=regions), t).violations == ()
    t = Thresholds(region_health_grace=30)
    first = evaluate(with_checks(down_peer=regions), t)
    assert first.violations == () and len(first.pending) == 1
    later = evaluate(with_checks(T0 + 30, down_peer=regions), t, first.memory)
    assert kinds(later) == [(ViolationKind.REGION_DOWN_PEER, None)]


def test_failed_region_list_is_no_data() -> None:
    one = [Region.model_validate(REGION_2008)]
    active = evaluate(with_checks(down_peer=one), Thresholds())
    checks = {p: RegionCheck.from_regions(p, []) for p in RegionProblem}
    del checks[RegionProblem.DOWN_PEER]
    obs = observation(
        T0 + 15,
        checks=checks,
        region_check_errors={RegionProblem.DOWN_PEER: "PD is unavailable"},
    )
    held = only(evaluate(obs, Thresholds(), active.memory), ViolationKind.REGION_DOWN_PEER)
    assert held.stale is True


# ---------------------------------------------------------------- hot writes


def hotspot(counts: dict[int, int]) -> HotspotInfo:
    as_leader = {
        str(store_id): {
            "store_bytes": 2516582.4,
            "regions_count": n,
            "statistics": [
                {
                    "store_id": store_id,
                    "stores": [1, 4, 5],
                    "is_leader": True,
                    "region_id": store_id * 1000 + i,
                    "hot_degree": 27,
                    "flow_bytes": 838860.8 - i,
                    "last_update_time": "2026-11-23T14:19:51Z",
                }
                for i in range(n)
            ],
        }
        for store_id, n in counts.items()
    }
    return HotspotInfo.model_validate({"as_peer": {}, "as_leader": as_leader})


@pytest.mark.parametrize(
    ("counts", "flagged"),
    [
        ({1: 3, 4: 1}, [1]),  # 75 % > 50 %
        ({1: 2, 4: 2}, []),  # exactly the share is not over it
        ({1: 3}, []),  # fewer hot regions than hot_write_min_regions
        ({1: 4}, [1]),
        ({1: 3, 4: 3, 5: 3}, []),
    ],
)
def test_hot_write_share(counts: dict[int, int], flagged: list[int]) -> None:
    result = evaluate(observation(hot=hotspot(counts)), Thresholds())
    found = [v for v in result.violations if v.kind is ViolationKind.HOT_WRITE_SKEW]
    assert [v.store_id for v in found] == flagged
    for v in found:
        assert v.value == pytest.approx(counts[1] / sum(counts.values()))
        assert v.threshold == 0.5
        assert v.region_ids[0] == 1000


def test_hot_write_needs_two_up_stores() -> None:
    obs = observation(
        store_items=(store_json(1), store_json(4, "Down", heartbeat_age=4000)),
        hot=hotspot({1: 9}),
    )
    assert [v.kind for v in evaluate(obs, Thresholds()).violations] == [ViolationKind.STORE_DOWN]


def test_memory_round_trips() -> None:
    t = Thresholds()
    memory = evaluate(slow(T0), t).memory
    restored = InvariantMemory.model_validate_json(memory.model_dump_json())
    assert kinds(evaluate(slow(T0 + 60), t, restored)) == [(ViolationKind.WRITE_LATENCY, 4)]


def test_write_idle_store_clears_latency_but_missing_data_does_not() -> None:
    """A drained store serves no writes: fresh data with no requests clears the condition,
    while a failed scrape (no data) must keep it."""
    t = Thresholds()
    active = evaluate(slow(T0 + 60), t, evaluate(slow(T0), t).memory)
    assert kinds(active) == [(ViolationKind.WRITE_LATENCY, 4)]
    idle = StoreMetrics(store_id=4, up=True, write_idle=True, disk_used_ratio=0.4)
    quiet = evaluate(
        observation(T0 + 75, metric_reading=healthy_metrics(T0 + 75, s4=idle)), t, active.memory
    )
    assert quiet.violations == () and quiet.pending == ()
    # The same reading without the idle mark is "no data": the violation is held, stale.
    unknown = StoreMetrics(store_id=4, up=True, disk_used_ratio=0.4)
    held = evaluate(
        observation(T0 + 75, metric_reading=healthy_metrics(T0 + 75, s4=unknown)), t, active.memory
    )
    assert only(held, ViolationKind.WRITE_LATENCY).stale is True
