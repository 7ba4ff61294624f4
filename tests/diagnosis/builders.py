"""Builders for diagnosis and playbook tests: PD-shaped stores and regions, observations,
incidents, an in-memory read-only PD, and Messages API responses shaped like the real ones.

Stores and regions go through the real models from PD-shaped JSON (`model_validate`), so a test
cannot build something the PD client would never return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from engine.model import Incident, Severity
from operator_tikv.errors import PDUnavailableError, RegionNotFoundError
from operator_tikv.metrics import MetricsReading, StoreMetrics
from operator_tikv.models.config import ReplicationConfig, ScheduleConfig
from operator_tikv.models.hotspot import HotspotInfo
from operator_tikv.models.operator import OperatorInfo
from operator_tikv.models.region import Region, RegionsInfo
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation, RegionCheck, RegionProblem

NOW = 1_795_400_000.0
GIB = 1024**3


def store(
    sid: int,
    state: str = "Up",
    *,
    leaders: int = 100,
    regions: int = 300,
    capacity_gib: float = 100.0,
    used: float = 0.3,
    heartbeat_age: float = 5.0,
    slow_score: float = 1.0,
    receiving_snaps: int = 0,
) -> StoreInfo:
    capacity = int(capacity_gib * GIB)
    meta: dict[str, Any] = {
        "id": sid,
        "address": f"tikv-{sid}:20160",
        "status_address": f"tikv-{sid}:20180",
        "state_name": state,
        "last_heartbeat": int((NOW - heartbeat_age) * 1e9),
    }
    if state == "Offline":
        meta["state"] = 1
    return StoreInfo.model_validate(
        {
            "store": meta,
            "status": {
                "capacity": f"{capacity_gib}GiB",
                "available": f"{capacity * (1 - used) / GIB:.4f}GiB",
                "used_size": f"{capacity * used / GIB:.4f}GiB",
                "leader_count": leaders,
                "region_count": regions,
                "slow_score": slow_score,
                "receiving_snap_count": receiving_snaps,
            },
        }
    )


def region(
    rid: int,
    stores: Sequence[int],
    leader: int | None = None,
    *,
    down: Sequence[int] = (),
    pending: Sequence[int] = (),
    learners: Sequence[int] = (),
    roles: Mapping[int, str] | None = None,
    size: int = 96,
    keys: int = 800_000,
    version: int = 5,
) -> Region:
    """`stores` hold voters (role names overridden by `roles`, e.g. `{4: "IncomingVoter"}`),
    `learners` hold learner peers (as PD lists them: `role` 1, `is_learner`)."""
    peers: list[dict[str, Any]] = [
        {"id": rid * 10 + i, "store_id": s, "role_name": (roles or {}).get(s, "Voter")}
        for i, s in enumerate(stores)
    ]
    peers += [
        {
            "id": rid * 10 + len(stores) + i,
            "store_id": s,
            "role": 1,
            "role_name": "Learner",
            "is_learner": True,
        }
        for i, s in enumerate(learners)
    ]
    by_store = {p["store_id"]: p for p in peers}
    leader_store = stores[0] if leader is None else leader
    return Region.model_validate(
        {
            "id": rid,
            "start_key": f"7480{rid:08X}",
            "end_key": f"7480{rid + 1:08X}",
            "epoch": {"conf_ver": 5, "version": version},
            "peers": peers,
            "leader": by_store.get(leader_store, {"role_name": ""}),
            "down_peers": [{"peer": by_store[s], "down_seconds": 700} for s in down],
            "pending_peers": [by_store[s] for s in pending],
            "approximate_size": size,
            "approximate_keys": keys,
        }
    )


def hotspot(leaders: Mapping[int, Sequence[tuple[int, float, Sequence[int]]]]) -> HotspotInfo:
    """`{store: [(region_id, bytes_per_s, region_stores), ...]}` as PD's write hotspot JSON."""
    as_leader = {}
    for sid, peers in leaders.items():
        stats = [
            {
                "store_id": sid,
                "region_id": rid,
                "stores": list(stores),
                "is_leader": True,
                "hot_degree": 10,
                "flow_bytes": flow,
                "flow_keys": flow / 100,
                "flow_query": flow / 1000,
            }
            for rid, flow, stores in peers
        ]
        as_leader[str(sid)] = {
            "store_bytes": sum(p[1] for p in peers),
            "total_flow_bytes": sum(p[1] for p in peers),
            "regions_count": len(peers),
            "statistics": stats,
        }
    return HotspotInfo.model_validate({"as_peer": {}, "as_leader": as_leader})


def metrics(
    p99_ms: Mapping[int, float] | None = None, disk: Mapping[int, float] | None = None
) -> MetricsReading:
    ids = set(p99_ms or {}) | set(disk or {})
    return MetricsReading(
        source="scrape",
        at=NOW,
        stores={
            sid: StoreMetrics(
                store_id=sid,
                up=True,
                write_p99_seconds=(p99_ms or {}).get(sid, 20.0) / 1000.0 if p99_ms else None,
                disk_used_ratio=(disk or {}).get(sid),
                leader_count=100,
                region_count=300,
            )
            for sid in ids
        },
    )


def observation(
    stores: Sequence[StoreInfo] = (),
    *,
    checks: Mapping[RegionProblem, Sequence[Region]] | None = None,
    hot: HotspotInfo | None = None,
    reading: MetricsReading | None = None,
    pd_error: str | None = None,
    metrics_error: str | None = None,
) -> Observation:
    region_checks = {
        problem: RegionCheck.from_regions(problem, list((checks or {}).get(problem, ())))
        for problem in RegionProblem
    }
    if pd_error is not None:
        return Observation(at=NOW, pd_url="http://pd:2379", pd_error=pd_error)
    return Observation(
        at=NOW,
        pd_url="http://pd:2379",
        stores=tuple(stores),
        region_checks=region_checks,
        hot_write=hot or HotspotInfo(),
        metrics=reading,
        metrics_source="scrape" if reading is not None or metrics_error else None,
        metrics_error=metrics_error,
    )


def incident(
    kind: str,
    subject: str,
    *,
    value: float | None = None,
    threshold: float | None = None,
    message: str = "",
    region_ids: Sequence[int] = (),
    iid: str = "I-1",
) -> Incident:
    at = datetime.fromtimestamp(NOW, UTC) - timedelta(minutes=2)
    details: dict[str, Any] = {"message": message or f"{kind} on {subject}", "unit": ""}
    prefix, _, ident = subject.partition(":")
    if prefix == "store":
        details["store_id"] = int(ident)
    if region_ids:
        details["region_ids"] = list(region_ids)
    details["tracking"] = {"notified_value": value}
    return Incident(
        id=iid,
        fingerprint=f"{kind}:{subject}",
        kind=kind,
        subject=subject,
        severity=Severity.WARNING,
        worst_severity=Severity.WARNING,
        title=f"{kind} {subject}",
        value=value,
        threshold=threshold,
        details=details,
        opened_at=at,
        updated_at=at,
        last_seen_at=at,
    )


class FakePD:
    """An in-memory read-only PD with the calls of `operator_tikv.playbooks.PlaybookPD`.
    `calls` records every call; names in `failing` raise PDUnavailableError."""

    def __init__(
        self,
        regions: Sequence[Region] = (),
        *,
        evicted: Sequence[int] = (),
        max_replicas: int = 3,
        schedule: Mapping[str, Any] | None = None,
        operators: Sequence[int] = (),
        failing: Sequence[str] = (),
    ) -> None:
        """`operators`: regions with an operator PD is running."""
        self.regions = {r.id: r for r in regions}
        self.operators = list(operators)
        self.evicted = list(evicted)
        self.max_replicas = max_replicas
        self.schedule = ScheduleConfig.model_validate(dict(schedule or {}))
        self.failing = set(failing)
        self.calls: list[str] = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.failing:
            raise PDUnavailableError(f"PD is unavailable ({name})", method="GET", path="/x")

    async def get_region(self, region_id: int) -> Region:
        self._call("get_region")
        if region_id not in self.regions:
            raise RegionNotFoundError(f"region {region_id} not found", status=404)
        return self.regions[region_id]

    async def get_store_regions(self, store_id: int) -> RegionsInfo:
        self._call("get_store_regions")
        found = [r for r in self.regions.values() if store_id in r.store_ids]
        return RegionsInfo(count=len(found), regions=found)

    async def evicted_leader_store_ids(self) -> list[int]:
        self._call("evicted_leader_store_ids")
        return list(self.evicted)

    async def get_replication_config(self) -> ReplicationConfig:
        self._call("get_replication_config")
        return ReplicationConfig(max_replicas=self.max_replicas)

    async def get_schedule_config(self) -> ScheduleConfig:
        self._call("get_schedule_config")
        return self.schedule

    async def list_operators(self) -> list[OperatorInfo]:
        self._call("list_operators")
        started = "2026-11-23 14:19:58.731284606 +0000 UTC m=+37198.731412939"
        return [  # PD answers Operator.String() per running operator (pd-api.md §1.2)
            OperatorInfo.model_validate(
                f"balance-region {{mv peer: store [1] to [4]}} (kind:region, region:{rid}(5, 5), "
                f"createAt:{started}, startAt:{started}, currentStep:0, size:96, "
                "steps:[0:{add learner peer 9 on store 4}], timeout:[10m0s])"
            )
            for rid in self.operators
        ]


# --------------------------------------------------------------------------- Messages API


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "tool_use",
    model: str = "claude-sonnet-4-5-20250929",
) -> dict[str, Any]:
    """A Messages API response body as the API sends it."""
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2095,
            "output_tokens": 503,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }


def tool_use(data: Mapping[str, Any], name: str = "propose_remediation") -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": name, "input": data}


def text(words: str) -> dict[str, Any]:
    return {"type": "text", "text": words}


def proposal(actions: list[dict[str, Any]], kind: str = "slow_store") -> dict[str, Any]:
    """A `propose_remediation` input."""
    return {
        "kind": kind,
        "summary": "Writes on store 2 are slow (P99 300 ms) while the others are at 20 ms.",
        "causes": [{"statement": "The disk of store 2 is slow", "confidence": 0.7}],
        "evidence": [{"fact": "write P99 on store 2 is 300 ms", "value": 300, "unit": "ms"}],
        "confidence": 0.7,
        "actions": actions,
    }


def api_error(kind: str, text_: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": text_}}
