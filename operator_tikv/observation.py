"""One observation of a cluster: what PD and the metrics source said at one moment.

`observe()` makes a bounded number of requests that does not grow with the number of
regions: PD's store list (1), PD's unhealthy-region lists for down, pending, missing and extra
peers (4; their size follows the unhealthy regions, not the cluster; they are read as
`RegionBrief`s, not full models, because during a store failure they are long), PD's hot write
regions (1), and the metrics source (a fixed number of PromQL queries, or one scrape per store). It
never lists every region.

Each part fails on its own: a failure is recorded in the observation (`pd_error`,
`region_check_errors`, `hot_write_error`, `metrics_error`) so the invariants can tell "no
data" from "healthy". If PD's store list cannot be read, PD counts as unreachable and the
other PD requests are not made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from operator_tikv.errors import PDError
from operator_tikv.metrics import MetricsError, MetricsReading, MetricsSource, StoreTarget
from operator_tikv.models.hotspot import HotspotInfo
from operator_tikv.models.region import Region, RegionBrief, RegionCheckState, RegionsBrief
from operator_tikv.models.store import StoreInfo, StoreStateName


class RegionProblem(StrEnum):
    """The unhealthy-region lists the invariants watch (PD `/regions/check/{state}`)."""

    DOWN_PEER = "down-peer"
    PENDING_PEER = "pending-peer"
    MISS_PEER = "miss-peer"
    EXTRA_PEER = "extra-peer"


class ObservationPD(Protocol):
    """The PD reads an observation needs (`operator_tikv.pd.PDClient` provides them)."""

    async def list_stores(self) -> Sequence[StoreInfo]: ...

    async def check_regions_brief(
        self, state: RegionCheckState, *, peers: bool = True
    ) -> RegionsBrief: ...

    async def get_hotspot_write(self) -> HotspotInfo: ...


class RegionCheck(BaseModel):
    """One unhealthy-region list, reduced to what an SRE reads first."""

    model_config = ConfigDict(frozen=True)

    problem: RegionProblem
    region_ids: tuple[int, ...] = Field(description="every listed region id, ascending")
    peer_stores: Mapping[int, int] = Field(
        default_factory=dict,
        description="store id -> regions whose down/pending peer is on that store",
    )
    quorum_lost: tuple[int, ...] = Field(
        default=(), description="regions whose down voters are at least half of their voters"
    )

    @property
    def count(self) -> int:
        return len(self.region_ids)

    @classmethod
    def from_regions(cls, problem: RegionProblem, regions: Sequence[Region]) -> RegionCheck:
        """The check of full `Region` models (tests and tools; the monitor reads briefs)."""
        return cls.from_briefs(problem, [RegionBrief.of(region) for region in regions])

    @classmethod
    def from_briefs(cls, problem: RegionProblem, regions: Sequence[RegionBrief]) -> RegionCheck:
        peer_stores: dict[int, int] = {}
        quorum_lost: list[int] = []
        for region in regions:
            if problem is RegionProblem.DOWN_PEER:
                stores = set(region.down_store_ids)
                if region.quorum_lost:
                    quorum_lost.append(region.id)
            elif problem is RegionProblem.PENDING_PEER:
                stores = set(region.pending_store_ids)
            else:
                continue
            for store_id in stores:
                peer_stores[store_id] = peer_stores.get(store_id, 0) + 1
        return cls(
            problem=problem,
            region_ids=tuple(sorted({r.id for r in regions})),
            peer_stores=peer_stores,
            quorum_lost=tuple(sorted(quorum_lost)),
        )


class Observation(BaseModel):
    """What was seen at `at` (unix seconds). Missing parts carry the reason they are missing."""

    model_config = ConfigDict(frozen=True)

    at: float
    pd_url: str
    pd_error: str | None = Field(default=None, description="why PD's store list was unreadable")
    stores: tuple[StoreInfo, ...] = ()
    region_checks: Mapping[RegionProblem, RegionCheck] = Field(default_factory=dict)
    region_check_errors: Mapping[RegionProblem, str] = Field(default_factory=dict)
    hot_write: HotspotInfo | None = None
    hot_write_error: str | None = None
    metrics: MetricsReading | None = None
    metrics_source: str | None = Field(default=None, description="configured source, if any")
    metrics_error: str | None = None

    @property
    def pd_reachable(self) -> bool:
        return self.pd_error is None

    @property
    def live_stores(self) -> tuple[StoreInfo, ...]:
        """Every store but Tombstones (PD hides those by default anyway)."""
        return tuple(s for s in self.stores if s.state_name is not StoreStateName.TOMBSTONE)

    def store(self, store_id: int) -> StoreInfo | None:
        for info in self.stores:
            if info.id == store_id:
                return info
        return None


def targets_of(stores: Sequence[StoreInfo]) -> list[StoreTarget]:
    """Metric targets for every store that is not a Tombstone."""
    return [
        StoreTarget(store_id=s.id, address=s.address, status_address=s.status_address)
        for s in stores
        if s.state_name is not StoreStateName.TOMBSTONE
    ]


async def observe(
    pd: ObservationPD,
    metrics: MetricsSource | None,
    *,
    at: float,
    pd_url: str,
) -> Observation:
    """Take one observation. Never raises for PD or metrics failures: they are recorded."""
    try:
        stores = tuple(await pd.list_stores())
    except PDError as exc:
        return Observation(
            at=at,
            pd_url=pd_url,
            pd_error=str(exc),
            metrics_source=metrics.name if metrics else None,
        )

    problems = list(RegionProblem)
    checks_task = asyncio.gather(
        # only the down-peer check needs each region's voters (for quorum)
        *(
            pd.check_regions_brief(RegionCheckState(p.value), peers=p is RegionProblem.DOWN_PEER)
            for p in problems
        ),
        return_exceptions=True,
    )
    hot_task = asyncio.gather(pd.get_hotspot_write(), return_exceptions=True)
    metrics_task = asyncio.gather(
        *([metrics.read(targets_of(stores), at)] if metrics else []), return_exceptions=True
    )
    checks, (hot,), metric_results = await asyncio.gather(checks_task, hot_task, metrics_task)

    region_checks: dict[RegionProblem, RegionCheck] = {}
    region_errors: dict[RegionProblem, str] = {}
    for problem, result in zip(problems, checks, strict=True):
        if isinstance(result, RegionsBrief):
            region_checks[problem] = RegionCheck.from_briefs(problem, result.regions)
        else:
            region_errors[problem] = _describe(result)

    hot_write = hot if isinstance(hot, HotspotInfo) else None
    hot_error = None if hot_write is not None else _describe(hot)

    reading: MetricsReading | None = None
    metrics_error: str | None = None
    if metric_results:
        (outcome,) = metric_results
        if isinstance(outcome, MetricsReading):
            reading = outcome
        else:
            metrics_error = _describe(outcome)

    return Observation(
        at=at,
        pd_url=pd_url,
        stores=stores,
        region_checks=region_checks,
        region_check_errors=region_errors,
        hot_write=hot_write,
        hot_write_error=hot_error,
        metrics=reading,
        metrics_source=metrics.name if metrics else None,
        metrics_error=metrics_error,
    )


def _describe(result: object) -> str:
    """The message of an expected failure; anything else is a bug and is raised again."""
    if isinstance(result, PDError | MetricsError):
        return str(result)
    if isinstance(result, BaseException):
        raise result
    return f"unexpected answer: {type(result).__name__}"
