"""Several clusters in `/healthz` and `/metrics`: each cluster's monitor reports its PD to its own
`ClusterPD` (the hooks `engine.monitor` calls) and its cycles and open incidents to its own
`ClusterMetrics`, so every cluster is reported, by name, instead of the first one alone.

What counts for readiness with several clusters is the bot itself: every cluster's monitor keeps
reporting (PD reached, or PD's failure recorded) within `stale_polls` cycles. A cluster whose PD
is down, slow or untrustworthy is reported under `clusters` in `/healthz` (and
`tikvops_cluster_pd_up` is 0), not as a failure of the bot: the other clusters are still watched,
and taking the bot out of service would stop them too. A monitor that stops reporting at all
(stuck, or never started) is a failure of the bot. With one cluster nothing changes: its PD is
the `pd` check, as before.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from tikvops.observability import CYCLE_BUCKETS, BotMetrics, CheckResult

Clock = Callable[[], float]


class ClusterPD:
    """One cluster's PD as its monitor last reported it (`engine.monitor.PDHealth` and
    `PDTrustHealth`), and whether that monitor still reports."""

    def __init__(
        self,
        name: str,
        *,
        poll_interval: float,
        stale_polls: float = 3.0,
        now: Clock = time.time,
        gauge: Gauge | None = None,
    ) -> None:
        self.name = name
        self._now = now
        self._started = now()
        self._limit = poll_interval * stale_polls
        self._last_ok: float | None = None
        self._last_report: float | None = None
        self._error: str | None = None
        self._untrusted: str | None = None
        self._gauge = gauge

    def pd_ok(self, at: float | datetime | None = None) -> None:
        when = self._now() if at is None else at.timestamp() if isinstance(at, datetime) else at
        if self._last_ok is None or when >= self._last_ok:
            self._last_ok = when
            self._error = self._untrusted = None
        self._reported(up=True)

    def pd_failed(self, reason: str) -> None:
        self._error = reason
        self._reported(up=False)

    def pd_untrusted(self, reason: str) -> None:
        self._error = self._untrusted = reason
        self._reported(up=False)

    def _reported(self, *, up: bool) -> None:
        self._last_report = self._now()
        if self._gauge is not None:
            self._gauge.labels(cluster=self.name).set(1 if up else 0)

    def report(self) -> dict[str, Any]:
        """`{"ok", "detail", "monitor"}`: whether PD answered believably within the limit."""
        now = self._now()
        error = f"; last error: {self._error}" if self._error else ""
        if self._last_report is None:
            waited = max(now - self._started, 0.0)
            ok, detail = False, f"no monitor cycle yet ({waited:.0f} s since start)"
        elif self._untrusted is not None:
            ok, detail = False, f"PD's answers cannot be true: {self._untrusted}"
        elif self._last_ok is None:
            ok, detail = False, f"PD not reached since start{error}"
        else:
            age = max(now - self._last_ok, 0.0)
            ok = age <= self._limit
            detail = (
                f"PD reached {age:.0f} s ago"
                if ok
                else f"PD last reached {age:.0f} s ago, more than {self._limit:.0f} s{error}"
            )
        monitor = self._monitor_sentence(now)
        return {"ok": ok, "detail": detail, "monitor": monitor}

    def _monitor_sentence(self, now: float) -> str:
        if self._last_report is None:
            return "waiting for its first cycle"
        age = max(now - self._last_report, 0.0)
        if age <= self._limit:
            return f"reporting (last cycle {age:.0f} s ago)"
        return f"silent for {age:.0f} s (more than {self._limit:.0f} s)"

    @property
    def monitor_stale(self) -> bool:
        """The monitor has not reported for longer than the limit (or never, past it)."""
        since = self._last_report if self._last_report is not None else self._started
        return self._now() - since > self._limit


class ClustersHealth:
    """Every cluster's `ClusterPD`, in configuration order; `check()` is the readiness check
    that replaces `pd` with several clusters, `to_json()` the `clusters` part of `/healthz`."""

    def __init__(
        self,
        clusters: Iterable[tuple[str, float]],
        *,
        stale_polls: float = 3.0,
        now: Clock = time.time,
        metrics: BotMetrics | None = None,
    ) -> None:
        gauge = (
            Gauge(
                "tikvops_cluster_pd_up",
                "1 while the cluster's PD answered its monitor's last cycle, else 0",
                ["cluster"],
                registry=metrics.registry,
            )
            if metrics is not None
            else None
        )
        self.clusters: dict[str, ClusterPD] = {
            name: ClusterPD(name, poll_interval=poll, stale_polls=stale_polls, now=now, gauge=gauge)
            for name, poll in clusters
        }

    def __getitem__(self, name: str) -> ClusterPD:
        return self.clusters[name]

    def check(self) -> CheckResult:
        stale = [c.name for c in self.clusters.values() if c.monitor_stale]
        if stale:
            return CheckResult(
                "monitors", False, f"the monitor of {', '.join(stale)} stopped reporting"
            )
        down = [c.name for c in self.clusters.values() if not c.report()["ok"]]
        detail = f"{len(self.clusters)} cluster monitors reporting"
        if down:
            detail += f"; PD not healthy in {', '.join(down)} (see clusters)"
        return CheckResult("monitors", True, detail)

    def to_json(self) -> dict[str, Any]:
        return {name: c.report() for name, c in self.clusters.items()}


class ClusterMetrics:
    """One cluster's monitor metrics: its cycles and open incidents labelled with its name
    (`tikvops_cluster_cycle_seconds`, `tikvops_cluster_open_incidents`), and the process-wide
    series kept whole (every cluster's cycles; open incidents summed over the clusters)."""

    def __init__(self, metrics: BotMetrics, name: str, shared: SharedClusterSeries) -> None:
        self._metrics = metrics
        self._name = name
        self._shared = shared
        shared.failures.labels(cluster=name)  # every cluster's series from the first scrape

    def observe_cycle(self, seconds: float, ok: bool) -> None:
        self._metrics.observe_cycle(seconds, ok)
        self._shared.cycle.labels(cluster=self._name).observe(max(seconds, 0.0))
        if not ok:
            self._shared.failures.labels(cluster=self._name).inc()

    def set_open_incidents(self, counts_by_kind: Mapping[str, int]) -> None:
        self._shared.open_incidents(self._name, counts_by_kind)


class SharedClusterSeries:
    """The labelled series every `ClusterMetrics` writes, registered once."""

    def __init__(self, metrics: BotMetrics) -> None:
        reg = metrics.registry
        self._metrics = metrics
        self.cycle = Histogram(
            "tikvops_cluster_cycle_seconds",
            "Duration of one monitor cycle, per cluster",
            ["cluster"],
            buckets=CYCLE_BUCKETS,
            registry=reg,
        )
        self.failures = Counter(
            "tikvops_cluster_cycle_failures",
            "Monitor cycles that failed (PD unreachable or too slow), per cluster",
            ["cluster"],
            registry=reg,
        )
        self._open = Gauge(
            "tikvops_cluster_open_incidents",
            "Open incidents, per cluster and kind",
            ["cluster", "kind"],
            registry=reg,
        )
        self._counts: dict[str, Mapping[str, int]] = {}
        self._kinds: dict[str, set[str]] = {}

    def open_incidents(self, cluster: str, counts: Mapping[str, int]) -> None:
        seen = self._kinds.setdefault(cluster, set())
        seen.update(counts)
        for kind in seen:
            self._open.labels(cluster=cluster, kind=kind).set(counts.get(kind, 0))
        self._counts[cluster] = dict(counts)
        total: Tally[str] = Tally()
        for per_cluster in self._counts.values():
            total.update(per_cluster)
        self._metrics.set_open_incidents(total)

    def for_cluster(self, name: str) -> ClusterMetrics:
        return ClusterMetrics(self._metrics, name, self)


__all__ = ["ClusterMetrics", "ClusterPD", "ClustersHealth", "SharedClusterSeries"]
