"""The vocabulary of the invariants: violation kinds, severities, thresholds, the violations
themselves and the memory carried from one evaluation to the next (`operator_tikv.invariants`
computes them; the engine, playbooks and renderers read them).

Kinds, subjects and severities:

- `pd_unreachable` (cluster, critical): PD's store list could not be read.
- `store_down` (store, critical): PD's `state_name` is Down; immediate.
- `store_disconnected` (store, warning): `state_name` Disconnected for `disconnected_grace`.
- `store_metrics_missing` (store, warning): PD says Up, the metrics source has nothing for it.
- `write_latency` (store, warning): write P99 > `write_p99_ms` for `write_p99_grace`.
- `disk_usage` (store, warning; critical from `disk_critical_ratio`): used ratio >
  `disk_used_ratio` for `disk_grace`. From TiKV's metrics, else from PD's store status.
- `region_down_peer` (cluster, warning; critical when a listed region lost a majority of its
  voters), `region_pending_peer`, `region_miss_peer`, `region_extra_peer` (cluster, warning):
  at least `region_min_count` regions in PD's list, for `region_health_grace`.
- `hot_write_skew` (store, warning): one store leads more than `hot_write_share` of the hot
  write regions, once there are at least `hot_write_min_regions` and two Up stores.
- `metrics_unavailable` (cluster, warning): the metrics source failed as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


class ViolationKind(StrEnum):
    PD_UNREACHABLE = "pd_unreachable"
    STORE_DOWN = "store_down"
    STORE_DISCONNECTED = "store_disconnected"
    STORE_METRICS_MISSING = "store_metrics_missing"
    WRITE_LATENCY = "write_latency"
    DISK_USAGE = "disk_usage"
    REGION_DOWN_PEER = "region_down_peer"
    REGION_PENDING_PEER = "region_pending_peer"
    REGION_MISS_PEER = "region_miss_peer"
    REGION_EXTRA_PEER = "region_extra_peer"
    HOT_WRITE_SKEW = "hot_write_skew"
    METRICS_UNAVAILABLE = "metrics_unavailable"


class Thresholds(BaseModel):
    """Thresholds and grace periods (seconds), built from plain settings values."""

    model_config = ConfigDict(frozen=True)

    write_p99_ms: float = Field(default=100.0, gt=0)
    write_p99_grace: float = Field(default=60.0, ge=0)
    disk_used_ratio: float = Field(default=0.70, gt=0, lt=1)
    disk_critical_ratio: float = Field(
        default=0.80, gt=0, le=1, description="PD's default low-space-ratio"
    )
    disk_grace: float = Field(default=0.0, ge=0)
    disconnected_grace: float = Field(default=0.0, ge=0)
    region_health_grace: float = Field(default=0.0, ge=0)
    region_min_count: int = Field(default=1, ge=1, description="regions needed per kind")
    region_sample_size: int = Field(default=10, ge=1)
    hot_write_share: float = Field(default=0.5, gt=0, le=1)
    hot_write_min_regions: int = Field(default=4, ge=1)


class Violation(BaseModel):
    """A condition that breaks an invariant. `value` and `threshold` use `unit`."""

    model_config = ConfigDict(frozen=True)

    kind: ViolationKind
    severity: Severity
    store_id: int | None = None
    region_id: int | None = None
    value: float | None = None
    threshold: float | None = None
    unit: str = ""
    first_seen: float = Field(description="unix seconds the condition was first seen")
    message: str
    region_ids: tuple[int, ...] = Field(default=(), description="sample of affected regions")
    stale: bool = Field(
        default=False, description="not re-checked in this observation (no data): last known"
    )
    peer_stores: Mapping[int, int] = Field(
        default_factory=dict,
        description="region kinds: store id -> regions whose down/pending peer is on it (as "
        "last listed; empty when no list was read or the kind names no peer)",
    )
    quorum_lost: tuple[int, ...] = Field(
        default=(), description="down peers: example regions that lost a majority of voters"
    )
    quorum_lost_count: int = Field(default=0, ge=0, description="all such regions, as listed")

    @property
    def subject(self) -> str:
        if self.store_id is not None:
            return f"store:{self.store_id}"
        if self.region_id is not None:
            return f"region:{self.region_id}"
        return "cluster"

    @property
    def key(self) -> str:
        """Deduplication key: kind and subject."""
        return f"{self.kind.value}/{self.subject}"


class Remembered(BaseModel):
    """What the invariants remember about one condition between observations."""

    model_config = ConfigDict(frozen=True)

    first_seen: float
    last: Violation
    active: bool = Field(description="grace period over: reported as a violation")


class InvariantMemory(BaseModel):
    """Remembered conditions by key. Start with `InvariantMemory()`."""

    model_config = ConfigDict(frozen=True)

    entries: Mapping[str, Remembered] = Field(default_factory=dict)


class Evaluation(BaseModel):
    model_config = ConfigDict(frozen=True)

    violations: tuple[Violation, ...]
    pending: tuple[Violation, ...]
    memory: InvariantMemory
