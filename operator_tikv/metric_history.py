"""Per-store metric series over a recent window, for charts: the monitor's own bounded history
of observations (`MetricHistory`, a ring buffer per metric and store), or Prometheus's
`query_range` (`operator_tikv.chart_queries.PrometheusSeries`) when it is configured. Both
answer `SeriesSource.range` with one list of `(unix seconds, value)` points per PD store id, in
time order.

Memory is bounded: each buffer keeps at most `points` samples (older ones fall off), and at
most `max_stores` stores are kept (a store not seen for a whole window is forgotten first).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from operator_tikv.metrics import StoreTarget
from operator_tikv.observation import Observation, targets_of

Point = tuple[float, float]
Series = Mapping[int, Sequence[Point]]


class ChartMetric(StrEnum):
    """A quantity drawn per store. Values: P99 in milliseconds, a ratio (0..1), counts."""

    WRITE_P99_MS = "write_p99_ms"
    DISK_USED_RATIO = "disk_used_ratio"
    LEADER_COUNT = "leader_count"
    REGION_COUNT = "region_count"


class SeriesSource(Protocol):
    """Where chart data comes from."""

    async def range(self, metric: ChartMetric, *, start: float, end: float) -> Series: ...


class MetricHistory:
    """The monitor's recent observations, per metric and store, in bounded ring buffers.
    `record` is called once per observation (cheap: a few appends per store)."""

    def __init__(self, *, points: int = 240, max_stores: int = 256) -> None:
        if points < 2 or max_stores < 1:
            raise ValueError("a history needs at least 2 points and 1 store")
        self.points = points
        self.max_stores = max_stores
        self._buffers: dict[tuple[ChartMetric, int], deque[Point]] = {}
        self._last_seen: dict[int, float] = {}
        self.targets: tuple[StoreTarget, ...] = ()
        """The stores of the last observation PD answered (for mapping Prometheus series)."""

    def record(self, observation: Observation) -> None:
        """Keep what `observation` says about each store (nothing when PD was unreachable)."""
        if not observation.pd_reachable:
            return
        at = observation.at
        self.targets = tuple(targets_of(observation.stores))
        readings = observation.metrics.stores if observation.metrics is not None else {}
        for store in observation.live_stores:
            self._add(ChartMetric.LEADER_COUNT, store.id, at, float(store.leader_count))
            self._add(ChartMetric.REGION_COUNT, store.id, at, float(store.region_count))
            reading = readings.get(store.id)
            if reading is None:
                continue
            if reading.write_p99_seconds is not None:
                self._add(ChartMetric.WRITE_P99_MS, store.id, at, reading.write_p99_seconds * 1000)
            if reading.disk_used_ratio is not None:
                self._add(ChartMetric.DISK_USED_RATIO, store.id, at, reading.disk_used_ratio)
        self._evict()

    def _add(self, metric: ChartMetric, store_id: int, at: float, value: float) -> None:
        if not math.isfinite(value):
            return
        buffer = self._buffers.get((metric, store_id))
        if buffer is None:
            buffer = self._buffers[(metric, store_id)] = deque(maxlen=self.points)
        buffer.append((at, value))
        self._last_seen[store_id] = max(at, self._last_seen.get(store_id, at))

    def _evict(self) -> None:
        if len(self._last_seen) <= self.max_stores:
            return
        by_age = sorted(self._last_seen, key=lambda sid: self._last_seen[sid])
        for store_id in by_age[: len(self._last_seen) - self.max_stores]:
            del self._last_seen[store_id]
            for metric in ChartMetric:
                self._buffers.pop((metric, store_id), None)

    @property
    def size(self) -> int:
        """Points held in total (bounded by `points * max_stores * len(ChartMetric)`)."""
        return sum(len(b) for b in self._buffers.values())

    async def range(self, metric: ChartMetric, *, start: float, end: float) -> Series:
        out: dict[int, list[Point]] = {}
        for (kind, store_id), buffer in self._buffers.items():
            if kind is not metric:
                continue
            points = [p for p in buffer if start <= p[0] <= end]
            if points:
                out[store_id] = points
        return dict(sorted(out.items()))


__all__ = [
    "ChartMetric",
    "MetricHistory",
    "Point",
    "Series",
    "SeriesSource",
]
