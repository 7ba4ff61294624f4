"""PromQL for each invariant, the join of series to PD store ids, and the Prometheus source.

The queries follow tikv-metrics.md §5: one instant query per quantity, one series per TiKV
`instance`. Series are joined to store ids through PD's store list (§4): the `instance`
label is looked up as the store's `status_address` (tiup, tidb-ansible), then as its gRPC
`address` (blackbox probes), then as the pod name that tidb-operator writes into `instance`
(the first DNS label of `store.address`, when unique). Never by host alone: several TiKVs
often share a host (tiup playground puts all of them on 127.0.0.1). Series that match no
store are reported in `MetricsReading.unmatched_instances` instead of being guessed.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from operator_tikv.metrics import (
    MetricsReading,
    SourceName,
    StoreMetrics,
    StoreTarget,
    finite_or_none,
)
from operator_tikv.prometheus import PrometheusClient, VectorResult

WRITE_HISTOGRAM = "tikv_storage_engine_async_request_duration_seconds"
STORE_SIZE = "tikv_store_size_bytes"
REGION_COUNT = "tikv_raftstore_region_count"


def _selector(job: str, **labels: str) -> str:
    pairs = [f'job="{_escape(job)}"'] + [f'{k}="{_escape(v)}"' for k, v in labels.items()]
    return "{" + ",".join(pairs) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def store_up(job: str = "tikv") -> str:
    """Scrape health per instance: 1 when Prometheus could read the store's /metrics."""
    return f"up{_selector(job)}"


def write_p99(job: str = "tikv", window: str = "1m") -> str:
    """P99 of TiKV's async write duration per instance, in seconds (NaN: no writes)."""
    buckets = f"{WRITE_HISTOGRAM}_bucket{_selector(job, type='write')}"
    return f"histogram_quantile(0.99, sum by (instance, le) (rate({buckets}[{window}])))"


def disk_used_ratio(job: str = "tikv") -> str:
    """1 - available/capacity per instance: the fill ratio TiKV and PD act on."""
    available = f"sum by (instance) ({STORE_SIZE}{_selector(job, type='available')})"
    capacity = f"sum by (instance) ({STORE_SIZE}{_selector(job, type='capacity')})"
    return f"1 - {available} / {capacity}"


def store_capacity_bytes(job: str = "tikv") -> str:
    """Capacity and available bytes per instance (label `type`), for display."""
    return (
        f'sum by (instance, type) ({STORE_SIZE}{{job="{_escape(job)}",type=~"capacity|available"}})'
    )


def region_counts(job: str = "tikv") -> str:
    """Leader and region counts per instance (label `type` = `leader` or `region`)."""
    selector = f'{{job="{_escape(job)}",type=~"leader|region"}}'
    return f"sum by (instance, type) ({REGION_COUNT}{selector})"


def hot_write_leaders(job: str = "pd") -> str:
    """Hot write regions led per store, from the PD leader (absent series = 0 hot regions).

    Kept for dashboards and for clusters whose PD metrics are scraped; the invariant reads
    PD's hotspot API instead, which needs no Prometheus.
    """
    leader = f'(etcd_server_is_leader{{job="{_escape(job)}"}} == 1)'
    series = f'pd_hotspot_status{{job="{_escape(job)}",type="hot_write_region_as_leader"}}'
    return f"{series} and on(instance) {leader}"


def unhealthy_region_counts(job: str = "pd") -> str:
    """PD's region health counters by type (hyphenated values), from the PD leader only."""
    kinds = "miss-peer-region-count|down-peer-region-count|pending-peer-region-count|" + (
        "offline-peer-region-count|extra-peer-region-count"
    )
    leader = f'(etcd_server_is_leader{{job="{_escape(job)}"}} == 1)'
    series = f'pd_regions_status{{job="{_escape(job)}",type=~"{kinds}"}}'
    return f"max by (type) ({series} and on(instance) {leader})"


def _dns_label(address: str) -> str | None:
    """`basic-tikv-0` from `basic-tikv-0.basic-tikv-peer.ns.svc:20160`; None for IPs."""
    host = address.rsplit(":", 1)[0] if ":" in address else address
    host = host.strip("[]")
    if not host or host.replace(".", "").isdigit() or ":" in host:
        return None
    return host.split(".", 1)[0]


@dataclass(frozen=True)
class InstanceIndex:
    """Maps a Prometheus `instance` label to a PD store id (tikv-metrics.md §4)."""

    by_status: dict[str, int]
    by_address: dict[str, int]
    by_pod: dict[str, int]

    @classmethod
    def build(cls, targets: Iterable[StoreTarget]) -> InstanceIndex:
        by_status: dict[str, int] = {}
        by_address: dict[str, int] = {}
        pods: dict[str, set[int]] = {}
        for target in targets:
            if target.status_address:
                by_status[target.status_address] = target.store_id
            if target.address:
                by_address[target.address] = target.store_id
                label = _dns_label(target.address)
                if label is not None:
                    pods.setdefault(label, set()).add(target.store_id)
        by_pod = {label: next(iter(ids)) for label, ids in pods.items() if len(ids) == 1}
        return cls(by_status=by_status, by_address=by_address, by_pod=by_pod)

    def store_for(self, instance: str) -> int | None:
        for table in (self.by_status, self.by_address, self.by_pod):
            found = table.get(instance)
            if found is not None:
                return found
        return None


@dataclass
class _Accumulator:
    up: bool | None = None
    p99: float | None = None
    idle: bool = False
    ratio: float | None = None
    capacity: float | None = None
    available: float | None = None
    leaders: int | None = None
    regions: int | None = None


class PrometheusSource:
    """`MetricsSource` over Prometheus: a fixed number of instant queries per read.

    `job` is the Prometheus job that scrapes TiKV (`tikv` under tiup, tidb-ansible and
    tidb-operator); `window` is the rate window of the P99 (`1m` suits 15 s scrapes).
    """

    name: SourceName = "prometheus"

    def __init__(self, client: PrometheusClient, *, job: str = "tikv", window: str = "1m") -> None:
        self.client = client
        self.job = job
        self.window = window

    async def region_counts(self) -> dict[str, int]:
        """PD's unhealthy-region counts by `pd_regions_status` type, from the PD leader's series
        (job `pd`). A type PD has not reported is missing from the answer. Raises
        `PrometheusError` when the query fails."""
        result = await self.client.query_vector(unhealthy_region_counts())
        counts: dict[str, int] = {}
        for series in result.series:
            kind = series.labels.get("type")
            value = series.value
            if kind and math.isfinite(value) and value >= 0:
                counts[kind] = int(value)
        return counts

    async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading:
        """Run the queries concurrently and join them to `targets` by `instance`.

        Raises `PrometheusError` when any query fails: a partial picture would make the
        missing quantity look healthy.
        """
        # return_exceptions: every query finishes before the first failure is raised, so no
        # request outlives the read.
        outcomes = await asyncio.gather(
            self.client.query_vector(store_up(self.job)),
            self.client.query_vector(write_p99(self.job, self.window)),
            self.client.query_vector(disk_used_ratio(self.job)),
            self.client.query_vector(store_capacity_bytes(self.job)),
            self.client.query_vector(region_counts(self.job)),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        up, p99, ratio, sizes, counts = cast("list[VectorResult]", outcomes)
        index = InstanceIndex.build(targets)
        acc: dict[int, _Accumulator] = {t.store_id: _Accumulator() for t in targets}
        unmatched: set[str] = set()
        # instance label -> accumulator, resolved once per distinct instance (each query
        # repeats the same instances).
        slots: dict[str, _Accumulator | None] = {}

        def each(result: VectorResult) -> Iterator[tuple[_Accumulator, Mapping[str, str], float]]:
            for labels, sample in result.series:
                instance = labels.get("instance", "")
                try:
                    slot = slots[instance]
                except KeyError:
                    store_id = index.store_for(instance)
                    slot = slots[instance] = acc.get(store_id) if store_id is not None else None
                if slot is None:
                    unmatched.add(instance)
                    continue
                yield slot, labels, sample.value

        for slot, _, value in each(up):
            slot.up = value == 1.0
        for slot, _, value in each(p99):
            slot.p99 = finite_or_none(value)
            # histogram_quantile over all-zero rates is NaN: the series exists, no writes came
            slot.idle = math.isnan(value)
        for slot, _, value in each(ratio):
            slot.ratio = value if math.isfinite(value) else None
        for slot, labels, value in each(sizes):
            kind = labels.get("type")
            if kind == "capacity":
                slot.capacity = value
            elif kind == "available":
                slot.available = value
        for slot, labels, value in each(counts):
            if not math.isfinite(value):
                continue
            kind = labels.get("type")
            if kind == "leader":
                slot.leaders = int(value)
            elif kind == "region":
                slot.regions = int(value)

        stores = {store_id: _to_metrics(store_id, slot, self.job) for store_id, slot in acc.items()}
        return MetricsReading(
            source=self.name,
            at=at,
            stores=stores,
            unmatched_instances=tuple(sorted(unmatched)),
        )


def _to_metrics(store_id: int, slot: _Accumulator, job: str) -> StoreMetrics:
    error: str | None = None
    if slot.up is None:
        error = f'Prometheus has no up{{job="{job}"}} series for this store'
    elif not slot.up:
        error = "Prometheus could not scrape this store's /metrics (up == 0)"
    ratio = slot.ratio
    if ratio is not None:
        ratio = min(1.0, max(0.0, ratio))
    return StoreMetrics(
        store_id=store_id,
        up=slot.up,
        write_p99_seconds=slot.p99,
        write_idle=slot.idle,
        disk_used_ratio=ratio,
        capacity_bytes=slot.capacity,
        available_bytes=slot.available,
        leader_count=slot.leaders,
        region_count=slot.regions,
        error=error,
    )
