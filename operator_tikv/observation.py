"""One observation of a cluster: what PD and the metrics source said at one moment.

`observe()` makes a bounded number of requests that does not grow with the number of
regions: PD's store list (1), PD's region counts (its own `/metrics`, 1; 2 more when the PD
answering is not the leader), PD's hot write regions (1), and the metrics source (a fixed
number of PromQL queries, or one scrape per store). An unhealthy-region list
(`/regions/check/{state}`, whose size follows the unhealthy regions) is read only when it
changes what the bot says, and summarised off the event loop (`operator_tikv.region_watch`).
It never lists every region.

Each part fails on its own: a failure is recorded in the observation (`pd_error`,
`region_check_errors`, `hot_write_error`, `metrics_error`) so the invariants can tell "no
data" from "healthy". If PD's store list cannot be read, PD counts as unreachable and the
other PD requests are not made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from operator_tikv.errors import PDError
from operator_tikv.metrics import MetricsError, MetricsReading, MetricsSource, StoreTarget
from operator_tikv.models.hotspot import HotspotInfo
from operator_tikv.models.store import StoreInfo, StoreStateName
from operator_tikv.region_checks import RegionCheck, RegionProblem
from operator_tikv.region_watch import RegionWatch, RegionWatchPD

__all__ = [
    "Observation",
    "ObservationPD",
    "RegionCheck",
    "RegionProblem",
    "RegionWatch",
    "observe",
    "targets_of",
]


class ObservationPD(RegionWatchPD, Protocol):
    """The PD reads an observation needs (`operator_tikv.pd.PDClient` provides them)."""

    async def list_stores(self) -> Sequence[StoreInfo]: ...

    async def get_hotspot_write(self) -> HotspotInfo: ...


class Observation(BaseModel):
    """What was seen at `at` (unix seconds). Missing parts carry the reason they are missing."""

    model_config = ConfigDict(frozen=True)

    at: float
    pd_url: str
    pd_error: str | None = Field(default=None, description="why PD's store list was unreadable")
    stores: tuple[StoreInfo, ...] = ()
    region_checks: Mapping[RegionProblem, RegionCheck] = Field(default_factory=dict)
    region_check_errors: Mapping[RegionProblem, str] = Field(default_factory=dict)
    region_counts_source: str | None = Field(
        default=None, description="where the region counts came from"
    )
    region_counts_error: str | None = Field(
        default=None, description="why PD's region counts could not be read (lists were)"
    )
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
    regions: RegionWatch | None = None,
) -> Observation:
    """Take one observation. Never raises for PD or metrics failures: they are recorded.

    Pass the same `regions` watch on every call to keep its list summaries between
    observations (the monitor does); without one, every needed list is read and waited for.
    """
    try:
        stores = tuple(await pd.list_stores())
    except PDError as exc:
        return Observation(
            at=at,
            pd_url=pd_url,
            pd_error=str(exc),
            metrics_source=metrics.name if metrics else None,
        )

    watch = regions if regions is not None else RegionWatch(list_budget=None)
    regions_task = watch.check(pd, stores)
    hot_task = asyncio.gather(pd.get_hotspot_write(), return_exceptions=True)
    metrics_task = asyncio.gather(
        *([metrics.read(targets_of(stores), at)] if metrics else []), return_exceptions=True
    )
    report, (hot,), metric_results = await asyncio.gather(regions_task, hot_task, metrics_task)

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
        region_checks=report.checks,
        region_check_errors=report.errors,
        region_counts_source=report.counts_source,
        region_counts_error=report.counts_error,
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
