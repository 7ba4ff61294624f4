"""Per-store metric readings, the `MetricsSource` protocol, and the errors of metric sources.

Two sources implement `MetricsSource`: `operator_tikv.queries.PrometheusSource` (PromQL over a
Prometheus server) and `operator_tikv.scrape.ScrapeSource` (each TiKV's own `/metrics`). Both
return one `MetricsReading` keyed by PD store id. Every value is optional: `None` means "no
data" (the series is missing, the scrape failed, no writes happened in the window), which is
never the same as healthy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

SourceName = Literal["prometheus", "scrape"]


class MetricsError(Exception):
    """A metrics source could not give any reading at all (not a single store's missing data)."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class PrometheusError(MetricsError):
    """Prometheus answered with an error, or could not be asked.

    `status_code` is the HTTP status (None when no response arrived); `error_type` and `detail`
    are Prometheus's own `errorType` and `error` when it sent them.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        error_type: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.error_type = error_type
        self.detail = detail


class PrometheusUnavailable(PrometheusError):
    """No usable answer: connection refused, timeout, 503 (`timeout`/`canceled`/`unavailable`),
    or a non-JSON error page from a proxy. Worth retrying later."""


class PrometheusQueryError(PrometheusError):
    """Prometheus rejected the query: 400 `bad_data` or 422 `execution`. Retrying won't help."""


class PrometheusProtocolError(PrometheusError):
    """Prometheus answered 2xx with a body that is not the documented envelope."""


class StoreTarget(BaseModel):
    """What a metrics source needs to know about one PD store to find its series."""

    model_config = ConfigDict(frozen=True)

    store_id: int
    address: str = Field(description="TiKV gRPC address from PD (`store.address`)")
    status_address: str = Field(
        default="", description="TiKV status address (`store.status_address`), serves /metrics"
    )


class StoreMetrics(BaseModel):
    """One store's metric values at one moment. `None` fields are "no data"."""

    model_config = ConfigDict(frozen=True)

    store_id: int
    up: bool | None = Field(
        default=None,
        description="the metrics endpoint answered (True), failed (False), or unknown (None)",
    )
    write_p99_seconds: float | None = Field(
        default=None, description="P99 of async write duration; None without writes or history"
    )
    disk_used_ratio: float | None = Field(
        default=None, description="1 - available/capacity, as TiKV and PD compute fullness"
    )
    write_idle: bool = Field(
        default=False,
        description="fresh data shows no write requests in the window (e.g. a drained store): "
        "there is no write P99, and nothing slow to report",
    )
    capacity_bytes: float | None = None
    available_bytes: float | None = None
    leader_count: int | None = None
    region_count: int | None = None
    error: str | None = Field(default=None, description="why this store has no data, if known")

    @property
    def has_data(self) -> bool:
        return any(
            value is not None
            for value in (
                self.write_p99_seconds,
                self.disk_used_ratio,
                self.leader_count,
                self.region_count,
            )
        )


class MetricsReading(BaseModel):
    """The result of one read of a metrics source."""

    model_config = ConfigDict(frozen=True)

    source: SourceName
    at: float = Field(description="unix seconds the reading refers to")
    stores: Mapping[int, StoreMetrics] = Field(default_factory=dict)
    unmatched_instances: tuple[str, ...] = Field(
        default=(), description="series labels that matched no PD store (a join problem)"
    )

    def for_store(self, store_id: int) -> StoreMetrics:
        """The store's reading, or an all-`None` reading when the source has nothing for it."""
        found = self.stores.get(store_id)
        if found is not None:
            return found
        return StoreMetrics(store_id=store_id, error=f"{self.source}: no series for this store")


class MetricsSource(Protocol):
    """Reads per-store metrics for the given stores.

    Raises `MetricsError` only when the whole source is unusable (Prometheus down); a single
    store without data is reported as a `StoreMetrics` with `None` values and an `error`.
    """

    name: SourceName

    async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading: ...


def finite_or_none(value: float | None) -> float | None:
    """`None` for NaN (no data); infinities are kept (they are real "above every bucket")."""
    if value is None or math.isnan(value):
        return None
    return value


def disk_ratio(capacity: float | None, available: float | None) -> float | None:
    """1 - available/capacity, or None when either is unknown or capacity is not positive."""
    if capacity is None or available is None:
        return None
    if math.isnan(capacity) or math.isnan(available) or capacity <= 0:
        return None
    return min(1.0, max(0.0, 1.0 - available / capacity))
