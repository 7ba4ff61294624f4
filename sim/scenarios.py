"""Named fault scenarios, each with what a monitoring bot should detect.

Store and region choices are deterministic (they depend only on the cluster size and seed), so a
test can assert on them. Scenarios add to faults already injected; call `faults.clear()` first
for a clean slate.

- ``store-down``: the highest-numbered store (store 3 in a 3-store cluster) stops.
  Detect: its /metrics refuses connections at once (Prometheus `up == 0`); PD keeps it `Up` for
  20 s, then shows `state_name` "Disconnected", and "Down" after `max-store-down-time` (30m);
  ~10 s after the stop its leaders are re-elected on the other stores (its `leader_count` drops
  to 0); after 60 s its peers are listed in `pending_peers`, after 10 minutes in `down_peers`
  with `down_seconds` (`/regions/check/down-peer`).
- ``two-stores-down``: the two highest-numbered stores stop at the same moment (stores 2 and 3
  in a 3-store cluster). Detect: both as in ``store-down``; regions with a replica on each of
  them lost a majority of their voters (with 3 replicas on 3 stores, every region): no leader is
  elected for them, and once their peers are down (`down_peers` after `peer_down_seconds`) the
  down-peer list shows the quorum loss.
- ``slow-store``: store 2 (store 1 in a 1-store cluster) writes slowly.
  Detect: write P99 from `tikv_storage_engine_async_request_duration_seconds{type="write"}`
  deltas (or rate()) is about 250 ms on store 2 and about 20 ms on the others
  (histogram_quantile reports ~0.25-0.28 s because of bucket interpolation).
- ``disk-filling``: store 1's disk fills with other files.
  Detect: `1 - available/capacity` (PD `status.available`/`capacity`, or
  `tikv_store_size_bytes{type="available"|"capacity"}`) jumps to 0.75 (above PD's
  high-space-ratio 0.7) and keeps growing to 0.92 over 30 virtual minutes, crossing
  low-space-ratio 0.8 after about 9 minutes.
- ``hot-region``: the region in the middle of the key space gets 24 MiB/s of writes.
  Detect: `/hotspot/regions/write` lists it under `as_leader[<its leader store>]` (and
  `as_peer` for each of its stores); PD's `pd_hotspot_status{type="hot_write_region_as_leader"}`
  is 1 for that store.
- ``pd-flaky``: every 2nd PD API request answers 503 (text/plain
  `[PD:apiutil:ErrRedirect]redirect failed`) for 10 virtual minutes.
  Detect: intermittent PD failures; a client that retries once sees every read succeed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.cluster import Cluster
    from sim.faults import Faults


@dataclass(frozen=True)
class ScenarioResult:
    """What a scenario did: the affected store/region and what should be detected."""

    name: str
    summary: str
    expect: str
    store_id: int | None = None
    region_id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "expect": self.expect,
            "store_id": self.store_id,
            "region_id": self.region_id,
            "details": self.details,
        }


def _store_down(cluster: Cluster, faults: Faults) -> ScenarioResult:
    store_id = max(cluster.stores)
    faults.stop_store(store_id)
    return ScenarioResult(
        "store-down",
        f"store {store_id} stopped",
        f"store {store_id}: /metrics refused at once; PD state_name Disconnected after 20 s and "
        f"Down after max-store-down-time; its leaders move away ~10 s after the stop; its peers "
        f"are pending after 60 s and down peers after {int(cluster.peer_down_seconds)} s",
        store_id=store_id,
    )


def _two_stores_down(cluster: Cluster, faults: Faults) -> ScenarioResult:
    if len(cluster.stores) < 2:
        raise ValueError("two-stores-down needs at least 2 stores")
    stopped = sorted(cluster.stores)[-2:]
    for store_id in stopped:
        faults.stop_store(store_id)
    lost = sum(
        1
        for region in cluster.regions.values()
        if 2 * sum(p.store_id in stopped for p in region.peers if p.is_voter_like)
        >= len([p for p in region.peers if p.is_voter_like])
    )
    first, second = stopped
    return ScenarioResult(
        "two-stores-down",
        f"stores {first} and {second} stopped",
        f"stores {first} and {second} Disconnected after 20 s and Down after "
        f"max-store-down-time; {lost} regions lost a majority of their voters (down-peer list "
        f"after {int(cluster.peer_down_seconds)} s)",
        store_id=second,
        details={"stores": stopped, "quorum_lost_regions": lost},
    )


def _slow_store(cluster: Cluster, faults: Faults) -> ScenarioResult:
    store_id = 2 if 2 in cluster.stores else min(cluster.stores)
    faults.slow_store(store_id, 250.0)
    return ScenarioResult(
        "slow-store",
        f"store {store_id} write P99 250 ms",
        f"store {store_id}: write P99 ~250 ms while the other stores stay ~20 ms",
        store_id=store_id,
        details={"write_p99_ms": 250.0, "others_write_p99_ms": 20.0},
    )


def _disk_filling(cluster: Cluster, faults: Faults) -> ScenarioResult:
    store_id = min(cluster.stores)
    faults.fill_disk(store_id, 0.75)
    faults.fill_disk(store_id, 0.92, over_seconds=1800.0)
    return ScenarioResult(
        "disk-filling",
        f"store {store_id} disk 75 % full and growing to 92 % over 30 minutes",
        f"store {store_id}: used ratio 0.75 now (> high-space-ratio 0.7), 0.92 after 30 "
        "virtual minutes (> low-space-ratio 0.8 after ~9 minutes)",
        store_id=store_id,
        details={"start_ratio": 0.75, "end_ratio": 0.92, "over_seconds": 1800.0},
    )


def _hot_region(cluster: Cluster, faults: Faults) -> ScenarioResult:
    ordered = cluster.ordered_regions()
    region = ordered[len(ordered) // 2]
    leader = faults.hot_region(region.id, "write")
    return ScenarioResult(
        "hot-region",
        f"region {region.id} is write-hot (24 MiB/s), leader on store {leader}",
        f"/hotspot/regions/write lists region {region.id} under as_leader[{leader}]",
        store_id=leader,
        region_id=region.id,
        details={"kind": "write", "flow_bytes": 24.0 * 1024 * 1024},
    )


def _pd_flaky(cluster: Cluster, faults: Faults) -> ScenarioResult:
    faults.pd_errors(status=503, seconds=600.0, every=2)
    return ScenarioResult(
        "pd-flaky",
        "every 2nd PD API request answers 503 for 10 virtual minutes",
        "intermittent PD 503s; one retry succeeds",
        details={"status": 503, "every": 2, "seconds": 600.0},
    )


SCENARIOS: dict[str, Callable[[Cluster, Faults], ScenarioResult]] = {
    "store-down": _store_down,
    "two-stores-down": _two_stores_down,
    "slow-store": _slow_store,
    "disk-filling": _disk_filling,
    "hot-region": _hot_region,
    "pd-flaky": _pd_flaky,
}


def apply_scenario(name: str, cluster: Cluster, faults: Faults) -> ScenarioResult:
    try:
        scenario = SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {name!r}; known scenarios: {known}") from None
    return scenario(cluster, faults)
