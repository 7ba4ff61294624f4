"""Direct metrics source for clusters without Prometheus: scrape each TiKV's `/metrics`.

Every store's `status_address` is fetched concurrently with a timeout and parsed with
`prometheus_client`'s text parser (only the lines of the few metrics we use are parsed, so a
real TiKV's ~10k-line page stays cheap). From one scrape we get disk usage and region
counts; the write P99 needs two: it is computed from the histogram bucket deltas between the
previous scrape of the same store and this one, the way `histogram_quantile(rate(...))`
does. The first scrape, a counter reset, or a window without writes gives no P99 ("no
data"). A failed scrape gives a reading with `up=False` and every value `None`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

from operator_tikv.metrics import (
    MetricsReading,
    SourceName,
    StoreMetrics,
    StoreTarget,
    disk_ratio,
)
from operator_tikv.queries import REGION_COUNT, STORE_SIZE, WRITE_HISTOGRAM

_WANTED = (WRITE_HISTOGRAM, STORE_SIZE, REGION_COUNT)
_BUCKET = f"{WRITE_HISTOGRAM}_bucket"


class ScrapeParseError(ValueError):
    """A /metrics page that the Prometheus text parser cannot read."""


@dataclass(frozen=True)
class ParsedStoreMetrics:
    """What one /metrics page says, before any delta with an earlier page."""

    write_buckets: Mapping[float, float]  # upper bound (le) -> cumulative count, type="write"
    capacity_bytes: float | None
    available_bytes: float | None
    leader_count: int | None
    region_count: int | None


def _wanted_lines(text: str) -> str:
    """Keep only the lines (samples and their # HELP/# TYPE) of the metrics we read."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            parts = stripped.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE") and parts[2] in _WANTED:
                kept.append(stripped)
            continue
        if stripped.startswith(_WANTED):
            kept.append(stripped)
    return "\n".join(kept) + "\n"


def parse_metrics_text(text: str) -> ParsedStoreMetrics:
    """Parse a TiKV /metrics page (text format 0.0.4) into the values the invariants need."""
    buckets: dict[float, float] = {}
    sizes: dict[str, float] = {}
    counts: dict[str, float] = {}
    try:
        families = list(text_string_to_metric_families(_wanted_lines(text)))
    except ValueError as exc:
        raise ScrapeParseError(f"unreadable /metrics text: {exc}") from exc
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == _BUCKET and labels.get("type") == "write":
                try:
                    bound = float(labels.get("le", ""))
                except ValueError:
                    continue
                # Sum over any other labels, as `sum by (le)` does.
                buckets[bound] = buckets.get(bound, 0.0) + float(sample.value)
            elif sample.name == STORE_SIZE:
                kind = labels.get("type", "")
                sizes[kind] = sizes.get(kind, 0.0) + float(sample.value)
            elif sample.name == REGION_COUNT:
                kind = labels.get("type", "")
                counts[kind] = counts.get(kind, 0.0) + float(sample.value)
    return ParsedStoreMetrics(
        write_buckets=buckets,
        capacity_bytes=sizes.get("capacity"),
        available_bytes=sizes.get("available"),
        leader_count=_int_or_none(counts.get("leader")),
        region_count=_int_or_none(counts.get("region")),
    )


def _int_or_none(value: float | None) -> int | None:
    if value is None or not math.isfinite(value):
        return None
    return int(value)


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Quantile `q` of a cumulative histogram {upper bound: count}, like PromQL's.

    Linear interpolation inside the bucket holding the rank (the first bucket starts at 0);
    a rank in the +Inf bucket gives the highest finite bound. Counts that dip (rounding in an
    exporter, float error in deltas) are made monotonic first, as Prometheus does. None when
    there are no observations or no +Inf bucket.
    """
    if not buckets or math.inf not in buckets:
        return None
    bounds = sorted(buckets)
    counts = list(itertools.accumulate((buckets[b] for b in bounds), max))
    total = counts[-1]
    if total <= 0 or math.isnan(total):
        return None
    rank = q * total
    for i, bound in enumerate(bounds):
        if counts[i] >= rank:
            if math.isinf(bound):
                return bounds[i - 1] if i > 0 else None
            lower = bounds[i - 1] if i > 0 else 0.0
            below = counts[i - 1] if i > 0 else 0.0
            in_bucket = counts[i] - below
            if in_bucket <= 0:
                return bound
            return lower + (bound - lower) * (rank - below) / in_bucket
    return None  # pragma: no cover - the +Inf bucket always holds the rank


def bucket_delta(
    previous: Mapping[float, float], current: Mapping[float, float]
) -> dict[float, float] | None:
    """Per-bucket increase between two scrapes; None on a counter reset or changed buckets."""
    if set(previous) != set(current):
        return None
    delta = {bound: current[bound] - previous[bound] for bound in current}
    if any(value < 0 for value in delta.values()):
        return None
    return delta


@dataclass
class _History:
    status_address: str
    buckets: Mapping[float, float]


@dataclass
class ScrapeSource:
    """`MetricsSource` that reads every TiKV's status address directly.

    One instance keeps the previous bucket counts per store between reads, so reuse it across
    monitor cycles. `quantile` is 0.99. `max_concurrency` bounds parallel scrapes.
    """

    http: httpx.AsyncClient
    timeout: float = 3.0
    scheme: str = "http"
    max_concurrency: int = 16
    quantile: float = 0.99
    name: SourceName = "scrape"
    _history: dict[int, _History] = field(default_factory=dict)

    async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading:
        semaphore = asyncio.Semaphore(self.max_concurrency)

        async def one(target: StoreTarget) -> StoreMetrics:
            async with semaphore:
                return await self._read_store(target)

        results = await asyncio.gather(*(one(t) for t in targets))
        wanted = {t.store_id for t in targets}
        for store_id in list(self._history):
            if store_id not in wanted:
                del self._history[store_id]
        return MetricsReading(source=self.name, at=at, stores={m.store_id: m for m in results})

    async def _read_store(self, target: StoreTarget) -> StoreMetrics:
        if not target.status_address:
            return StoreMetrics(
                store_id=target.store_id,
                up=None,
                error="PD lists no status_address for this store, so its /metrics is unknown",
            )
        url = f"{self.scheme}://{target.status_address}/metrics"
        try:
            response = await self.http.get(url, timeout=self.timeout)
            response.raise_for_status()
            parsed = parse_metrics_text(response.text)
        except httpx.TimeoutException:
            return self._failed(target, f"{url} did not answer within {self.timeout:g} s")
        except httpx.HTTPStatusError as exc:
            return self._failed(target, f"{url} answered HTTP {exc.response.status_code}")
        except httpx.HTTPError as exc:
            return self._failed(target, f"could not read {url}: {exc or type(exc).__name__}")
        except ScrapeParseError as exc:
            return self._failed(target, f"{url}: {exc}")
        return self._reading(target, parsed)

    def _failed(self, target: StoreTarget, error: str) -> StoreMetrics:
        # A failed scrape breaks the delta chain: the next good scrape starts afresh.
        self._history.pop(target.store_id, None)
        return StoreMetrics(store_id=target.store_id, up=False, error=error)

    def _reading(self, target: StoreTarget, parsed: ParsedStoreMetrics) -> StoreMetrics:
        previous = self._history.get(target.store_id)
        p99: float | None = None
        idle = False
        if previous is not None and previous.status_address == target.status_address:
            delta = bucket_delta(previous.buckets, parsed.write_buckets)
            if delta is not None:
                p99 = histogram_quantile(self.quantile, delta)
                idle = p99 is None and delta.get(math.inf, 0.0) == 0.0
        if parsed.write_buckets:
            self._history[target.store_id] = _History(
                target.status_address, dict(parsed.write_buckets)
            )
        else:
            self._history.pop(target.store_id, None)
        found_any = bool(parsed.write_buckets) or any(
            value is not None
            for value in (parsed.capacity_bytes, parsed.leader_count, parsed.region_count)
        )
        return StoreMetrics(
            store_id=target.store_id,
            up=True,
            error=None
            if found_any
            else f"{self.scheme}://{target.status_address}/metrics has none of TiKV's metrics "
            "(is it a TiKV status address?)",
            write_p99_seconds=p99,
            write_idle=idle,
            disk_used_ratio=disk_ratio(parsed.capacity_bytes, parsed.available_bytes),
            capacity_bytes=parsed.capacity_bytes,
            available_bytes=parsed.available_bytes,
            leader_count=parsed.leader_count,
            region_count=parsed.region_count,
        )
