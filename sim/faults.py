"""Fault injection: the Python API behind `server.faults` and the `/sim/...` control endpoints.

Store faults act on the cluster model (and, for a stopped store, close its /metrics listener).
PD faults act on the PD port: injected 5xx answers, requests that hang until the fault ends, or a
full partition (the listening socket is closed, so connections are refused, while the cluster
state is kept). Durations are virtual seconds: they end when the cluster's clock passes them
(`cluster.advance`, or the background ticker when auto_tick is on), or on `heal()` / `clear()`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sim.cluster import BASE_WRITE_P99_MS, Cluster

if TYPE_CHECKING:
    from sim.server import SimServer


@dataclass
class PdErrorFault:
    status: int
    until: float | None
    every: int
    seen: int = 0


class Faults:
    """Inject and clear faults; every method is synchronous and takes effect at once."""

    def __init__(self, server: SimServer, cluster: Cluster) -> None:
        self._server = server
        self._cluster = cluster
        self.errors: PdErrorFault | None = None
        self.timeout_until: float | None = None
        self.timeouts_active = False
        self.partitioned = False
        self.partition_until: float | None = None
        self._release: asyncio.Event | None = None
        cluster.listeners.append(self.expire)

    # ----- stores ----------------------------------------------------------------------------

    def stop_store(self, store_id: int) -> None:
        """Stop a TiKV: heartbeats stop and its /metrics stops answering (connection refused)."""
        self._cluster.stop_store(store_id)
        self._server.close_store_listener(store_id)

    def start_store(self, store_id: int) -> None:
        """Start a stopped TiKV again (a fresh process on the same status port)."""
        self._cluster.start_store(store_id)
        self._server.open_store_listener(store_id)

    def slow_store(self, store_id: int, write_p99_ms: float = 250.0) -> None:
        """Make a store's write latency P99 about `write_p99_ms` (others stay ~20 ms)."""
        self._cluster.set_write_latency(store_id, write_p99_ms)

    def fill_disk(self, store_id: int, ratio: float, over_seconds: float = 0.0) -> None:
        """Fill a store's disk to `ratio` (1 - available/capacity), at once or over time."""
        self._cluster.fill_disk(store_id, ratio, over_seconds)

    def hot_region(self, region_id: int, kind: str = "write") -> int:
        """Make a region hot; returns its current leader store."""
        return self._cluster.set_hot(region_id, kind).leader_store

    def cool_region(self, region_id: int) -> None:
        self._cluster.set_hot(region_id, on=False)

    # ----- PD --------------------------------------------------------------------------------

    def pd_errors(self, status: int = 503, seconds: float | None = None, every: int = 1) -> None:
        """Answer PD API requests with `status` (every `every`-th one) for `seconds` or until
        healed."""
        if not 400 <= status <= 599:
            raise ValueError(f"status must be a 4xx or 5xx code, got {status}")
        if every < 1:
            raise ValueError("every must be at least 1")
        until = self._cluster.now + seconds if seconds is not None else None
        self.errors = PdErrorFault(status, until, every)

    def pd_timeouts(self, seconds: float | None = None) -> None:
        """PD API requests get no answer (they hang) for `seconds` or until healed."""
        self.timeouts_active = True
        self.timeout_until = self._cluster.now + seconds if seconds is not None else None
        if self._release is None or self._release.is_set():
            self._release = asyncio.Event()

    def partition(self, seconds: float | None = None) -> None:
        """Cut PD off: its port refuses connections for `seconds` or until healed."""
        self.partitioned = True
        self.partition_until = self._cluster.now + seconds if seconds is not None else None
        self._server.close_pd_listener()

    def heal(self) -> None:
        """End every PD fault (errors, timeouts, partition)."""
        self.errors = None
        self._end_timeouts()
        if self.partitioned:
            self.partitioned = False
            self.partition_until = None
            self._server.open_pd_listener()

    def clear(self) -> None:
        """End every fault: heal PD, restart stopped stores, normal latency and disk, no hot
        regions."""
        self.heal()
        cluster = self._cluster
        for store in cluster.stores.values():
            if not store.running:
                self.start_store(store.id)
            if store.write_p99_ms != BASE_WRITE_P99_MS:
                cluster.set_write_latency(store.id, BASE_WRITE_P99_MS)
            if store.fill_to or store.fill_from:
                cluster.fill_disk(store.id, 0.0)
                store.fill_from = store.fill_to = 0.0
        for region_id in list(cluster.hot):
            cluster.set_hot(region_id, on=False)

    # ----- used by the PD middleware -----------------------------------------------------------

    def should_fail(self) -> int | None:
        """The status to inject for this request, if any."""
        fault = self.errors
        if fault is None:
            return None
        fault.seen += 1
        if (fault.seen - 1) % fault.every == 0:
            return fault.status
        return None

    async def wait_if_timing_out(self) -> None:
        """Hang while timeouts are injected (released by heal, expiry or server stop)."""
        while self.timeouts_active and self._release is not None:
            await self._release.wait()

    def _end_timeouts(self) -> None:
        self.timeouts_active = False
        self.timeout_until = None
        if self._release is not None:
            self._release.set()

    def expire(self) -> None:
        """End faults whose virtual deadline has passed (called after each advance)."""
        now = self._cluster.now
        if self.errors is not None and self.errors.until is not None and now >= self.errors.until:
            self.errors = None
        if self.timeouts_active and self.timeout_until is not None and now >= self.timeout_until:
            self._end_timeouts()
        if self.partitioned and self.partition_until is not None and now >= self.partition_until:
            self.partitioned = False
            self.partition_until = None
            self._server.open_pd_listener()

    def release_all(self) -> None:
        """Server stop: let every hanging request finish."""
        self._end_timeouts()

    def describe(self) -> dict[str, Any]:
        cluster = self._cluster
        return {
            "pd_errors": None
            if self.errors is None
            else {
                "status": self.errors.status,
                "until": self.errors.until,
                "every": self.errors.every,
            },
            "pd_timeouts": {"until": self.timeout_until} if self.timeouts_active else None,
            "partitioned": {"until": self.partition_until} if self.partitioned else None,
            "stopped_stores": sorted(s.id for s in cluster.stores.values() if not s.running),
            "slow_stores": {
                str(s.id): s.write_p99_ms
                for s in cluster.stores.values()
                if s.write_p99_ms != BASE_WRITE_P99_MS
            },
            "disk_used_ratio": {
                str(s.id): round(cluster.used_ratio(s), 4) for s in cluster.stores.values()
            },
            "hot_regions": {str(rid): hot.kind for rid, hot in sorted(cluster.hot.items())},
        }
