"""The playbooks' types: the problem asked about, the knobs, the PD reads they may make, the
extra facts gathered, and the result (summary, causes, evidence, confidence, actions)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from operator_tikv.invariants import Violation
from operator_tikv.models.config import ReplicationConfig, ScheduleConfig
from operator_tikv.models.operator import OperatorInfo
from operator_tikv.models.region import Region, RegionsInfo
from operator_tikv.observation import Observation

PLAYBOOKS_VERSION = "playbooks-3"
"""Recorded with every playbook diagnosis; bump when a rule changes what it proposes."""

MAX_GATHER_REQUESTS = 4
"""Upper bound on the PD requests `gather` makes for one problem."""

DEFAULT_MAX_STORE_DOWN_MIN = 30.0
DEFAULT_LOW_SPACE_RATIO = 0.8
DEFAULT_MAX_REPLICAS = 3


class DiagnosisKind(StrEnum):
    """What kind of problem a diagnosis says it is (scored by the evaluation set)."""

    SLOW_STORE = "slow_store"
    HOT_REGION = "hot_region"
    DISK_FULL = "disk_full"
    STORE_DOWN = "store_down"
    STORE_DISCONNECTED = "store_disconnected"
    UNHEALTHY_REGIONS = "unhealthy_regions"
    PD_UNREACHABLE = "pd_unreachable"
    METRICS_GAP = "metrics_gap"
    UNKNOWN = "unknown"


KIND_MEANINGS: Mapping[DiagnosisKind, str] = {
    DiagnosisKind.SLOW_STORE: "one store serves writes slowly (disk, host, write stall)",
    DiagnosisKind.HOT_REGION: "writes concentrate on a few hot regions led by one store",
    DiagnosisKind.DISK_FULL: "a store is running out of disk space",
    DiagnosisKind.STORE_DOWN: "a store is Down (no heartbeat past max-store-down-time)",
    DiagnosisKind.STORE_DISCONNECTED: "a store stopped sending heartbeats recently",
    DiagnosisKind.UNHEALTHY_REGIONS: "regions have down, pending, missing or extra peers",
    DiagnosisKind.PD_UNREACHABLE: "PD itself cannot be reached",
    DiagnosisKind.METRICS_GAP: "store metrics cannot be read; the cluster may be fine",
    DiagnosisKind.UNKNOWN: "none of the above, or not enough data to say",
}
"""One line per kind, for Claude's tool description and the evaluation table."""


# --------------------------------------------------------------------------- inputs


class Problem(BaseModel):
    """What a playbook is asked about: an incident, in operator_tikv's own terms."""

    model_config = ConfigDict(frozen=True)

    kind: str = Field(description="the invariant's kind, e.g. write_latency")
    store_id: int | None = None
    region_id: int | None = None
    value: float | None = None
    threshold: float | None = None
    region_ids: tuple[int, ...] = ()
    title: str = ""

    @classmethod
    def from_violation(cls, violation: Violation) -> Problem:
        return cls(
            kind=violation.kind.value,
            store_id=violation.store_id,
            region_id=violation.region_id,
            value=violation.value,
            threshold=violation.threshold,
            region_ids=violation.region_ids,
            title=violation.message,
        )

    @classmethod
    def from_fields(
        cls,
        kind: str,
        subject: str,
        *,
        value: float | None = None,
        threshold: float | None = None,
        details: Mapping[str, Any] | None = None,
        title: str = "",
    ) -> Problem:
        """From an incident's fields: `subject` is `store:<id>`, `region:<id>` or `cluster`;
        `details` may hold `store_id` and `region_ids` (anything malformed is ignored)."""
        details = details or {}
        prefix, _, ident = subject.partition(":")
        store_id = _as_id(ident) if prefix == "store" else None
        region_id = _as_id(ident) if prefix == "region" else None
        if store_id is None:
            store_id = _as_id(details.get("store_id"))
        raw_ids = details.get("region_ids")
        region_ids: tuple[int, ...] = ()
        if isinstance(raw_ids, list | tuple):
            region_ids = tuple(i for i in (_as_id(r) for r in raw_ids[:50]) if i is not None)
        return cls(
            kind=kind,
            store_id=store_id,
            region_id=region_id,
            value=value,
            threshold=threshold,
            region_ids=region_ids,
            title=title,
        )


def _as_id(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value) or None
    return None


class PlaybookLimits(BaseModel):
    """Knobs of the rules (defaults match the preflight defaults and PD's)."""

    model_config = ConfigDict(frozen=True)

    max_drained_stores: int = Field(default=1, ge=1)
    hot_split_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="a hot region carrying at least this share of its store's hot write flow "
        "is split rather than moved",
    )
    slow_cluster_share: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="when at least this share of the other stores are slow too, the slowness "
        "is cluster-wide and no store is drained",
    )
    disk_candidates: int = Field(default=20, ge=1, description="largest regions considered")
    disk_moves: int = Field(default=1, ge=1, le=5, description="transfer-peers proposed at most")
    hot_regions_read: int = Field(default=1, ge=1, le=2)


class PlaybookPD(Protocol):
    """The read-only PD calls `gather` makes (`operator_tikv.pd.PDClient` provides them)."""

    async def get_region(self, region_id: int) -> Region: ...

    async def get_store_regions(self, store_id: int) -> RegionsInfo: ...

    async def evicted_leader_store_ids(self) -> list[int]: ...

    async def get_replication_config(self) -> ReplicationConfig: ...

    async def get_schedule_config(self) -> ScheduleConfig: ...

    async def list_operators(self) -> list[OperatorInfo]:
        """The operators PD is running now (one request, however many regions exist)."""
        ...


class PlaybookContext(BaseModel):
    """What `gather` read beyond the observation. `None` means "not read" (see `notes`)."""

    model_config = ConfigDict(frozen=True)

    evicted_store_ids: tuple[int, ...] | None = None
    max_replicas: int | None = None
    schedule: ScheduleConfig | None = None
    regions: Mapping[int, Region] = Field(default_factory=dict)
    largest_regions: tuple[Region, ...] | None = Field(
        default=None, description="the subject store's largest regions, largest first"
    )
    operator_region_ids: tuple[int, ...] | None = Field(
        default=None, description="regions with an operator PD is running now, ascending"
    )
    notes: tuple[str, ...] = ()
    requests: int = 0


# --------------------------------------------------------------------------- outputs


class Cause(BaseModel):
    model_config = ConfigDict(frozen=True)

    statement: str
    confidence: float | None = Field(default=None, ge=0, le=1)


class Fact(BaseModel):
    model_config = ConfigDict(frozen=True)

    fact: str
    value: float | None = None
    unit: str | None = None
    source: str | None = None


class Suggestion(BaseModel):
    """A registered action with parameters already validated by the registry."""

    model_config = ConfigDict(frozen=True)

    action: str
    params: dict[str, JsonValue]
    reason: str


class PlaybookResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    playbook: str = Field(description="which rule set answered, e.g. slow-store")
    kind: DiagnosisKind
    summary: str
    causes: tuple[Cause, ...] = ()
    evidence: tuple[Fact, ...] = ()
    confidence: float = Field(default=0.5, ge=0, le=1)
    actions: tuple[Suggestion, ...] = ()
    notes: tuple[str, ...] = Field(default=(), description="data the rules could not read")


Rule = Callable[[Problem, Observation, PlaybookContext, PlaybookLimits], PlaybookResult]
"""A playbook rule: pure, from the problem, the observation and the gathered facts."""
