"""TiKV's Prometheus metrics for one simulated store, in TiKV's own text format.

Metric names, label names and bucket layouts are TiKV's (reference/tikv-metrics.md §1).
Histograms accumulate lazily: between two reads (or a latency change) the store is assumed to have
served `rate * elapsed` requests whose latency follows a log-normal distribution with the store's
current P99, so `histogram_quantile(0.99, rate(..._bucket[1m]))` over two scrapes reports that P99
(within one bucket's interpolation error, as with real TiKV). Values are printed the way
rust-prometheus prints them: integral numbers bare, `le` last, no exponents.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sim.gotext import format_rust_float

if TYPE_CHECKING:
    from sim.model import Store

_SIGMA = 0.6
_Z99 = 2.3263478740408408


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    bounds = []
    value = start
    for _ in range(count):
        bounds.append(value)
        value *= factor
    return tuple(bounds)


ASYNC_REQUEST_BUCKETS = exponential_buckets(0.00001, 2.0, 32)
GRPC_BUCKETS = exponential_buckets(0.00005, 2.0, 22)
SCHEDULER_BUCKETS = exponential_buckets(0.00001, 2.0, 26)

_cdf_cache: dict[tuple[int, float], tuple[float, ...]] = {}


def _cdf(bounds: tuple[float, ...], p99: float) -> tuple[float, ...]:
    key = (id(bounds), round(p99, 9))
    cached = _cdf_cache.get(key)
    if cached is None:
        median = p99 / math.exp(_SIGMA * _Z99)
        scale = _SIGMA * math.sqrt(2.0)
        cached = tuple(
            0.5 * (1.0 + math.erf((math.log(b) - math.log(median)) / scale)) for b in bounds
        )
        if len(_cdf_cache) > 4096:
            _cdf_cache.clear()
        _cdf_cache[key] = cached
    return cached


class Histogram:
    """Cumulative bucket counts fed with log-normal latencies of a given P99."""

    __slots__ = ("bounds", "buckets", "count", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0.0] * len(bounds)
        self.count = 0.0
        self.total = 0.0

    def observe_many(self, n: float, p99: float) -> None:
        if n <= 0 or p99 <= 0:
            return
        cdf = _cdf(self.bounds, p99)
        buckets = self.buckets
        for i, fraction in enumerate(cdf):
            buckets[i] += n * fraction
        self.count += n
        median = p99 / math.exp(_SIGMA * _Z99)
        self.total += n * median * math.exp(_SIGMA * _SIGMA / 2.0)


# (metric name, label pairs, bucket layout, ops per second per leader, P99 as a function of
#  the store's write P99 in seconds)
_HISTOGRAMS: tuple[
    tuple[str, tuple[tuple[str, str], ...], tuple[float, ...], float, Callable[[float], float]],
    ...,
] = (
    (
        "tikv_storage_engine_async_request_duration_seconds",
        (("type", "write"),),
        ASYNC_REQUEST_BUCKETS,
        0.5,
        lambda w: w,
    ),
    (
        "tikv_storage_engine_async_request_duration_seconds",
        (("type", "snapshot"),),
        ASYNC_REQUEST_BUCKETS,
        1.0,
        lambda w: 0.002,
    ),
    (
        "tikv_grpc_msg_duration_seconds",
        (("priority", "medium"), ("type", "kv_prewrite")),
        GRPC_BUCKETS,
        0.25,
        lambda w: w * 1.2 + 0.001,
    ),
    (
        "tikv_grpc_msg_duration_seconds",
        (("priority", "medium"), ("type", "kv_commit")),
        GRPC_BUCKETS,
        0.25,
        lambda w: w * 1.1 + 0.001,
    ),
    (
        "tikv_scheduler_command_duration_seconds",
        (("type", "prewrite"),),
        SCHEDULER_BUCKETS,
        0.25,
        lambda w: w * 1.05,
    ),
    (
        "tikv_scheduler_command_duration_seconds",
        (("type", "commit"),),
        SCHEDULER_BUCKETS,
        0.25,
        lambda w: w,
    ),
    ("tikv_raftstore_append_log_duration_seconds", (), SCHEDULER_BUCKETS, 0.5, lambda w: w * 0.6),
    ("tikv_raftstore_apply_log_duration_seconds", (), SCHEDULER_BUCKETS, 0.5, lambda w: w * 0.3),
)

_HELP = {
    "tikv_storage_engine_async_request_duration_seconds": (
        "Bucketed histogram of processing successful asynchronous requests."
    ),
    "tikv_grpc_msg_duration_seconds": "Bucketed histogram of grpc server messages",
    "tikv_scheduler_command_duration_seconds": "Bucketed histogram of command execution",
    "tikv_raftstore_append_log_duration_seconds": (
        "Bucketed histogram of peer appending log duration."
    ),
    "tikv_raftstore_apply_log_duration_seconds": (
        "Bucketed histogram of peer applying log duration."
    ),
}

_THREADS = (
    ("raftstore_1_0", 0.05, 0.0005),
    ("apply_0", 0.03, 0.0004),
    ("grpc_server_0", 0.02, 0.0003),
    ("sched_worker_pool_0", 0.02, 0.0002),
)


class StoreMetrics:
    """Counters and histograms of one TiKV process (a restart starts a new one)."""

    def __init__(self, now: float, start_timestamp: float) -> None:
        self.last = now
        self.start_timestamp = start_timestamp
        self.histograms = [Histogram(spec[2]) for spec in _HISTOGRAMS]
        self.async_requests = 0.0
        self.cpu_seconds = 0.0
        self.io_write_bytes = 0.0
        self.thread_cpu = [0.0] * len(_THREADS)

    def flush(self, now: float, store: Store) -> None:
        """Account for the requests served since the last flush."""
        elapsed = now - self.last
        self.last = now
        if elapsed <= 0 or not store.running:
            return
        leaders = store.leader_count
        write_p99 = store.write_p99_ms / 1000.0
        for hist, spec in zip(self.histograms, _HISTOGRAMS, strict=True):
            # Storage writes are served by region leaders only: a store drained of leaders
            # records no write requests (as in TiKV), the other families keep a baseline.
            base = 0.0 if spec[1] == (("type", "write"),) else 2.0
            ops = (base + leaders * spec[3]) * elapsed
            hist.observe_many(ops, spec[4](write_p99))
        writes = (2.0 + leaders * 0.5) * elapsed
        self.async_requests += writes
        self.io_write_bytes += writes * 4096
        self.cpu_seconds += (0.3 + leaders * 0.002) * elapsed
        for i, (_, base, per_leader) in enumerate(_THREADS):
            self.thread_cpu[i] += (base + leaders * per_leader) * elapsed


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class TextWriter:
    """Prometheus text format 0.0.4, one family at a time."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def family(self, name: str, kind: str, help_text: str) -> None:
        if name in self._declared:
            return
        self._declared.add(name)
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: Iterable[tuple[str, str]], value: float) -> None:
        self.lines.append(f"{name}{_labels(sorted(labels))} {format_rust_float(value)}")

    def histogram(self, name: str, labels: tuple[tuple[str, str], ...], hist: Histogram) -> None:
        ordered = sorted(labels)
        for bound, acc in zip(hist.bounds, hist.buckets, strict=True):
            pairs = [*ordered, ("le", format_rust_float(bound))]
            self.lines.append(f"{name}_bucket{_labels(pairs)} {math.floor(acc)}")
        count = math.floor(hist.count)
        self.lines.append(f"{name}_bucket{_labels([*ordered, ('le', '+Inf')])} {count}")
        self.lines.append(f"{name}_sum{_labels(ordered)} {format_rust_float(hist.total)}")
        self.lines.append(f"{name}_count{_labels(ordered)} {count}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render_store_metrics(store: Store, metrics: StoreMetrics, now: float, available: int) -> str:
    """The /metrics body of one TiKV store at virtual time `now`."""
    metrics.flush(now, store)
    out = TextWriter()
    for hist, (name, labels, _, _, _) in zip(metrics.histograms, _HISTOGRAMS, strict=True):
        out.family(name, "histogram", _HELP[name])
        out.histogram(name, labels, hist)
    out.family(
        "tikv_storage_engine_async_request_total",
        "counter",
        "Total number of engine asynchronous requests",
    )
    out.sample(
        "tikv_storage_engine_async_request_total",
        (("status", "all"), ("type", "write")),
        math.floor(metrics.async_requests),
    )
    used = store.used_bytes()
    sizes = (
        ("capacity", store.capacity),
        ("available", available),
        ("used", used),
        ("kv_size", int(used * 0.88)),
        ("raft_size", int(used * 0.1)),
        ("snap_size", int(used * 0.02)),
        ("import_size", 0),
    )
    out.family("tikv_store_size_bytes", "gauge", "Size of storage.")
    for kind, value in sizes:
        out.sample("tikv_store_size_bytes", (("type", kind),), value)
    out.family(
        "tikv_raftstore_region_count", "gauge", "Number of regions collected in region_collector"
    )
    out.sample("tikv_raftstore_region_count", (("type", "region"),), store.region_count)
    out.sample("tikv_raftstore_region_count", (("type", "leader"),), store.leader_count)
    out.sample("tikv_raftstore_region_count", (("type", "buckets"),), 0)
    out.family("tikv_raftstore_leader_missing", "gauge", "Total number of leader missed region.")
    out.sample("tikv_raftstore_leader_missing", (), 0)
    out.family("tikv_io_bytes", "counter", "Bytes of disk tikv io")
    out.sample(
        "tikv_io_bytes",
        (("op", "write"), ("type", "foreground_write")),
        math.floor(metrics.io_write_bytes),
    )
    out.family(
        "tikv_thread_cpu_seconds_total",
        "gauge",
        "Total user and system CPU time spent in seconds by threads.",
    )
    for i, (name, _, _) in enumerate(_THREADS):
        tid = str(1000 + store.id * 100 + i)
        out.sample(
            "tikv_thread_cpu_seconds_total",
            (("name", name), ("tid", tid)),
            round(metrics.thread_cpu[i], 2),
        )
    out.family("tikv_server_cpu_cores_quota", "gauge", "Total CPU cores quota for TiKV server")
    out.sample("tikv_server_cpu_cores_quota", (), 8)
    out.family(
        "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds."
    )
    out.sample("process_cpu_seconds_total", (), round(metrics.cpu_seconds, 2))
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
    out.sample("process_resident_memory_bytes", (), 2 * 1024**3 + store.region_count * 4096)
    out.family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    )
    out.sample("process_start_time_seconds", (), int(metrics.start_timestamp))
    return out.text()
