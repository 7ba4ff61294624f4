"""Reading the little the rules need beyond one observation: read-only, bounded PD requests
(at most `MAX_GATHER_REQUESTS`, none listing every region), failures kept as notes."""

from __future__ import annotations

import asyncio
from typing import Any

from operator_tikv.errors import PDError
from operator_tikv.invariants import ViolationKind
from operator_tikv.models.config import ReplicationConfig
from operator_tikv.models.operator import OperatorInfo
from operator_tikv.models.region import Region, RegionsInfo
from operator_tikv.observation import Observation
from operator_tikv.playbooks import facts
from operator_tikv.playbooks.model import (
    MAX_GATHER_REQUESTS,
    PlaybookContext,
    PlaybookLimits,
    PlaybookPD,
    Problem,
)

_STORE_KINDS_NEEDING_SCHEDULE = {
    ViolationKind.STORE_DOWN.value,
    ViolationKind.STORE_DISCONNECTED.value,
    ViolationKind.DISK_USAGE.value,
    ViolationKind.REGION_DOWN_PEER.value,
    ViolationKind.REGION_MISS_PEER.value,
    ViolationKind.REGION_PENDING_PEER.value,
    ViolationKind.REGION_EXTRA_PEER.value,
}


async def gather(
    problem: Problem,
    observation: Observation,
    pd: PlaybookPD | None,
    limits: PlaybookLimits | None = None,
) -> PlaybookContext:
    """Read what the rules for `problem` need; at most `MAX_GATHER_REQUESTS` PD reads, all
    read-only. Never raises for PD failures: they become notes."""
    limits = limits or PlaybookLimits()
    if pd is None or not observation.pd_reachable:
        return PlaybookContext()
    notes: list[str] = []
    calls: dict[str, Any] = {}

    kind = problem.kind
    if kind in {ViolationKind.WRITE_LATENCY.value, ViolationKind.HOT_WRITE_SKEW.value}:
        calls["evicted"] = pd.evicted_leader_store_ids()
    if kind in {ViolationKind.WRITE_LATENCY.value, ViolationKind.DISK_USAGE.value}:
        calls["replication"] = pd.get_replication_config()
    if kind in _STORE_KINDS_NEEDING_SCHEDULE:
        calls["schedule"] = pd.get_schedule_config()
    if kind == ViolationKind.HOT_WRITE_SKEW.value and problem.store_id is not None:
        for peer in facts.hot_peers(observation, problem.store_id)[: limits.hot_regions_read]:
            calls[f"region:{peer.region_id}"] = pd.get_region(peer.region_id)
    if kind == ViolationKind.DISK_USAGE.value and problem.store_id is not None:
        calls["store_regions"] = pd.get_store_regions(problem.store_id)
        calls["operators"] = pd.list_operators()
    assert len(calls) <= MAX_GATHER_REQUESTS

    results = await asyncio.gather(*calls.values(), return_exceptions=True)
    found: dict[str, Any] = {}
    for name, result in zip(calls, results, strict=True):
        if isinstance(result, PDError):
            notes.append(f"Could not read {_READ_NAMES.get(name, name)} from PD: {result}")
        elif isinstance(result, BaseException):
            raise result
        else:
            found[name] = result

    regions = {int(n.split(":")[1]): r for n, r in found.items() if n.startswith("region:")}
    largest: tuple[Region, ...] | None = None
    if "store_regions" in found:
        info: RegionsInfo = found["store_regions"]
        ordered = sorted(info.regions, key=lambda r: (-r.approximate_size, r.id))
        largest = tuple(ordered[: limits.disk_candidates])
    evicted = found.get("evicted")
    replication: ReplicationConfig | None = found.get("replication")
    operators: list[OperatorInfo] | None = found.get("operators")
    operator_regions = (
        tuple(sorted({op.region_id for op in operators})) if operators is not None else None
    )
    return PlaybookContext(
        evicted_store_ids=tuple(sorted(evicted)) if evicted is not None else None,
        max_replicas=replication.max_replicas if replication is not None else None,
        schedule=found.get("schedule"),
        regions=regions,
        largest_regions=largest,
        operator_region_ids=operator_regions,
        notes=tuple(notes),
        requests=len(calls),
    )


_READ_NAMES = {
    "evicted": "the evict-leader scheduler's stores",
    "replication": "the replication config (max-replicas)",
    "schedule": "the schedule config",
    "store_regions": "the store's regions",
    "operators": "the running operators",
}
