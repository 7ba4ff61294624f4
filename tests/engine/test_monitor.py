"""The monitor tick against an in-process fake cluster and the real SQLite repositories:
incidents open, update and resolve; flapping is damped; PD unreachable and missing metrics
freeze incidents instead of resolving them; restarts continue incidents; the notifier sees
exactly the meaningful events; self-observation hooks are called."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.clock import FakeClock
from engine.model import IncidentStatus, Severity
from operator_tikv.invariants import Thresholds
from storage import Repositories
from tests.engine.monitor_fakes import FakeCluster, RecordingNotifier, build_monitor


async def all_incidents(repos: Repositories) -> list[Any]:
    return list(reversed(await repos.incidents.list(limit=1000)))


async def test_a_slow_store_opens_after_its_grace_then_resolves(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60)  # latency grace 30 s
    await rig.tick()
    rig.cluster.store(2).p99_ms = 250.0
    await rig.tick()  # seen: grace starts
    await rig.tick()  # 15 s: still pending
    assert rig.notifier.events == []
    await rig.tick()  # 30 s: grace over
    [opened] = rig.notifier.of("opened")
    assert opened.kind == "write_latency" and opened.subject == "store:2"
    assert opened.severity is Severity.WARNING
    assert opened.value == pytest.approx(250.0) and opened.threshold == 100.0
    assert opened.details["address"] == "127.0.0.1:20162"
    assert "250 ms" in opened.details["message"]
    first_seen = datetime.fromtimestamp(opened.details["first_seen"], tz=rig.clock.now().tzinfo)
    assert (opened.opened_at - first_seen).total_seconds() == 30

    rig.cluster.store(2).p99_ms = 20.0
    for _ in range(4):  # 15, 30, 45 s clear
        await rig.tick()
    assert rig.notifier.of("resolved") == []
    await rig.tick()  # 60 s clear
    [resolved] = rig.notifier.of("resolved")
    assert resolved.id == opened.id and resolved.status is IncidentStatus.RESOLVED
    assert rig.notifier.events == [("opened", opened.id), ("resolved", opened.id)]


async def test_a_recurrence_after_resolution_is_a_new_incident(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=30)
    rig.cluster.store(3).state = "Down"
    await rig.tick()
    rig.cluster.store(3).state = "Up"
    await rig.tick()
    await rig.tick()
    await rig.tick()
    rig.cluster.store(3).state = "Down"
    await rig.tick()
    first, second = await all_incidents(repos)
    assert first.status is IncidentStatus.RESOLVED and second.is_open
    assert first.id != second.id and first.fingerprint == second.fingerprint
    assert [e for e, _ in rig.notifier.events] == ["opened", "resolved", "opened"]


async def test_flapping_is_one_incident_with_no_update_noise(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60)
    for i in range(40):
        rig.cluster.store(1).state = "Down" if i % 2 == 0 else "Up"
        await rig.tick()
    [incident] = await all_incidents(repos)
    assert incident.is_open
    assert rig.notifier.events == [("opened", incident.id)]

    rig.cluster.store(1).state = "Up"
    for _ in range(6):
        await rig.tick()
    assert rig.notifier.events == [("opened", incident.id), ("resolved", incident.id)]


async def test_a_thousand_ticks_of_a_steady_fault(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60)
    rig.cluster.store(2).p99_ms = 400.0
    rig.cluster.store(3).state = "Down"
    for _ in range(1000):
        await rig.tick()
    incidents = await all_incidents(repos)
    assert sorted(i.fingerprint for i in incidents) == [
        "store_health:store:3",
        "write_latency:store:2",
    ]
    assert all(i.is_open for i in incidents)
    assert sorted(e for e, _ in rig.notifier.events) == ["opened", "opened"]
    # saved about once a minute, not on every one of the 1,000 ticks (15 000 s)
    assert all(i.version <= 15_000 / 60 + 2 for i in incidents)
    latency = next(i for i in incidents if i.kind == "write_latency")
    assert latency.last_seen_at >= rig.clock.now() - timedelta(seconds=60)


async def test_updates_are_reported_only_for_meaningful_changes(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60, thresholds=Thresholds(disk_used_ratio=0.7))
    store = rig.cluster.store(1)
    for ratio in (0.72, 0.73, 0.74, 0.76, 0.78, 0.85, 0.86, 0.74, 0.75):
        store.disk = ratio
        await rig.tick()
    kinds = [e for e, _ in rig.notifier.events]
    assert kinds == ["opened", "updated", "updated", "updated"]
    seen = [(i.severity, i.value) for i in rig.notifier.of("updated")]
    assert seen == [
        (Severity.WARNING, 0.78),  # +6 points since 0.72
        (Severity.CRITICAL, 0.85),  # crosses the critical ratio
        (Severity.WARNING, 0.74),  # back to warning
    ]
    [incident] = await all_incidents(repos)
    assert incident.worst_severity is Severity.CRITICAL


async def test_a_restart_continues_open_incidents(repos: Repositories) -> None:
    clock = FakeClock()
    cluster = FakeCluster()
    cluster.store(2).p99_ms = 300.0
    cluster.store(3).state = "Down"
    first = build_monitor(repos, cluster=cluster, clock=clock, resolve_after=60)
    for _ in range(4):
        await first.tick()
    before = {i.fingerprint: i.id for i in await all_incidents(repos)}
    assert len(before) == 2

    # a new process: fresh memory, same database; 1 s later, well inside the 30 s grace
    second = build_monitor(repos, cluster=cluster, clock=clock, resolve_after=60)
    await second.tick(advance=1)
    after = {i.fingerprint: i.id for i in await all_incidents(repos)}
    assert after == before
    assert second.notifier.events == []
    assert all(i.clear_since is None for i in await repos.incidents.list_open())


async def test_a_restart_while_clearing_keeps_the_clearing_time(repos: Repositories) -> None:
    clock = FakeClock()
    cluster = FakeCluster()
    cluster.store(3).state = "Down"
    first = build_monitor(repos, cluster=cluster, clock=clock, resolve_after=60)
    await first.tick()
    cluster.store(3).state = "Up"
    await first.tick()  # clearing from here
    [clearing] = await repos.incidents.list_open()
    assert clearing.clear_since == clock.now()

    second = build_monitor(repos, cluster=cluster, clock=clock, resolve_after=60)
    await second.tick(advance=30)
    assert second.notifier.events == []
    await second.tick(advance=30)
    assert second.notifier.events == [("resolved", clearing.id)]


async def test_pd_unreachable_opens_its_own_incident_and_freezes_the_others(
    repos: Repositories,
) -> None:
    rig = build_monitor(repos, resolve_after=60)
    rig.cluster.store(3).state = "Down"
    rig.cluster.store(2).disk = 0.75
    await rig.tick()
    rig.cluster.store(2).disk = 0.40
    await rig.tick()  # the disk incident starts clearing
    opened = {i.kind: i.id for i in rig.notifier.of("opened")}
    assert set(opened) == {"store_down", "disk_usage"}

    rig.cluster.pd_down = True
    rig.cluster.store(3).state = "Up"  # recovers while nobody can see it
    rig.cluster.store(1).state = "Down"  # breaks while nobody can see it
    for _ in range(40):  # 10 minutes without PD
        await rig.tick()
    [pd] = [i for i in rig.notifier.of("opened") if i.kind == "pd_unreachable"]
    assert pd.severity is Severity.CRITICAL and pd.subject == "cluster"
    assert "connection refused" in pd.details["message"]
    assert rig.notifier.events[2:] == [("opened", pd.id)]
    open_kinds = sorted(i.kind for i in await repos.incidents.list_open())
    assert open_kinds == ["disk_usage", "pd_unreachable", "store_down"]

    rig.cluster.pd_down = False
    await rig.tick()
    new = [i for i in rig.notifier.of("opened") if i.kind == "store_down"]
    assert [i.subject for i in new] == ["store:3", "store:1"]  # store 1 opens only now
    for _ in range(4):
        await rig.tick()
    resolved = sorted(i.kind + "/" + i.subject for i in rig.notifier.of("resolved"))
    assert resolved == ["disk_usage/store:2", "pd_unreachable/cluster", "store_down/store:3"]


async def test_missing_store_metrics_do_not_resolve_its_latency_incident(
    repos: Repositories,
) -> None:
    rig = build_monitor(repos, resolve_after=60)
    rig.cluster.store(2).p99_ms = 300.0
    for _ in range(3):
        await rig.tick()
    [latency] = rig.notifier.of("opened")

    rig.cluster.store(2).metrics = False  # its /metrics stops answering
    for _ in range(20):
        await rig.tick()
    open_now = {i.kind: i for i in await repos.incidents.list_open()}
    assert set(open_now) == {"write_latency", "store_metrics_missing"}
    assert open_now["write_latency"].clear_since is None

    rig.cluster.store(2).metrics = True
    rig.cluster.store(2).p99_ms = None  # answering again, but no writes in the window
    for _ in range(20):
        await rig.tick()
    assert "write_latency" in {i.kind for i in await repos.incidents.list_open()}

    rig.cluster.store(2).p99_ms = 20.0
    for _ in range(5):
        await rig.tick()
    assert latency.id in {i.id for i in rig.notifier.of("resolved")}


async def test_the_metrics_source_failing_freezes_latency_incidents(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60)
    rig.cluster.store(2).p99_ms = 300.0
    for _ in range(3):
        await rig.tick()
    rig.cluster.metrics_down = True
    rig.cluster.store(2).p99_ms = 20.0
    for _ in range(20):
        await rig.tick()
    kinds = sorted(i.kind for i in await repos.incidents.list_open())
    assert kinds == ["metrics_unavailable", "write_latency"]


async def test_unhealthy_regions_are_one_cluster_incident(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=60)
    rig.cluster.down_peer_regions = list(range(100, 140))
    await rig.tick()
    rig.cluster.down_peer_regions = list(range(100, 200))
    await rig.tick()
    [incident] = await repos.incidents.list_open()
    assert incident.kind == "region_down_peer" and incident.subject == "cluster"
    assert incident.value == 100.0
    assert len(incident.details["region_ids"]) == 10
    assert [e for e, _ in rig.notifier.events] == ["opened", "updated"]


async def test_a_store_that_leaves_pd_resolves_its_incidents(repos: Repositories) -> None:
    rig = build_monitor(repos, resolve_after=30)
    rig.cluster.store(3).state = "Down"
    await rig.tick()
    del rig.cluster.stores[3]
    for _ in range(3):  # clear at 15 s, quiet for 30 s
        await rig.tick()
    assert [e for e, _ in rig.notifier.events] == ["opened", "resolved"]


class FakeMetrics:
    def __init__(self) -> None:
        self.cycles: list[bool] = []
        self.open: list[dict[str, int]] = []

    def observe_cycle(self, seconds: float, ok: bool) -> None:
        assert seconds >= 0
        self.cycles.append(ok)

    def set_open_incidents(self, counts_by_kind: Any) -> None:
        self.open.append(dict(counts_by_kind))


class FakeHealth:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pd_ok(self, at: Any = None) -> None:
        self.calls.append("ok")

    def pd_failed(self, reason: str) -> None:
        self.calls.append(f"failed: {reason}")


async def test_self_observation_hooks(repos: Repositories) -> None:
    metrics, health = FakeMetrics(), FakeHealth()
    rig = build_monitor(repos, metrics=metrics, health=health)
    await rig.tick()
    rig.cluster.store(3).state = "Down"
    await rig.tick()
    rig.cluster.pd_down = True
    await rig.tick()
    assert metrics.cycles == [True, True, True]
    assert metrics.open == [{}, {"store_down": 1}, {"store_down": 1, "pd_unreachable": 1}]
    assert health.calls[:2] == ["ok", "ok"]
    assert health.calls[2].startswith("failed: cannot reach PD")


async def test_a_failing_tick_is_recorded_and_raised(repos: Repositories) -> None:
    class Broken:
        async def observe(self, at: float) -> Any:
            raise RuntimeError("bug in the source")

    metrics = FakeMetrics()
    rig = build_monitor(repos, metrics=metrics)
    rig.monitor.source = Broken()
    with pytest.raises(RuntimeError, match="bug in the source"):
        await rig.tick()
    assert metrics.cycles == [False]


async def test_a_failing_notifier_does_not_break_the_tick(repos: Repositories) -> None:
    class Exploding(RecordingNotifier):
        async def incident_opened(self, incident: Any) -> None:
            raise RuntimeError("slack is down")

    rig = build_monitor(repos, notifier=Exploding())
    rig.cluster.store(3).state = "Down"
    report = await rig.tick()
    assert [e.kind.value for e in report.events] == ["opened"]
    assert len(await repos.incidents.list_open()) == 1


async def test_a_storage_failure_mid_tick_loses_no_report(repos: Repositories) -> None:
    from engine.errors import StorageError

    class Flaky:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.fail_next_create = False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

        async def create(self, incident: Any, **kw: Any) -> Any:
            if self.fail_next_create:
                self.fail_next_create = False
                raise StorageError("database is locked")
            self.fail_next_create = True  # the second create of this tick fails
            return await self.inner.create(incident, **kw)

    rig = build_monitor(repos)
    flaky = Flaky(repos.incidents)
    rig.monitor.tracker.repo = flaky
    rig.cluster.store(2).state = "Down"
    rig.cluster.store(3).disk = 0.95  # a second, independent cause
    with pytest.raises(StorageError):
        await rig.tick()
    [first] = await repos.incidents.list_open()
    assert rig.notifier.events == [("opened", first.id)]  # reported though the tick failed

    flaky.fail_next_create = False
    await rig.tick()
    second = [i for i in await repos.incidents.list_open() if i.id != first.id]
    assert rig.notifier.events == [("opened", first.id), ("opened", second[0].id)]


async def test_cluster_source_counts_regions_from_prometheus_when_pd_cannot() -> None:
    """With Prometheus as the metrics source it is also the second source of region counts;
    a scrape source is not one (its pages have no PD counts)."""
    import httpx

    from engine.monitor import ClusterSource
    from operator_tikv.pd import PDClient
    from operator_tikv.prometheus import PrometheusClient
    from operator_tikv.queries import PrometheusSource
    from operator_tikv.scrape import ScrapeSource

    async with httpx.AsyncClient() as http:
        pd = PDClient(http, "http://pd.test:2379")
        prometheus = PrometheusSource(PrometheusClient("http://prom.test:9090", http))
        with_prometheus = ClusterSource(pd, prometheus, pd_url=pd.base_url)
        with_scrapes = ClusterSource(pd, ScrapeSource(http), pd_url=pd.base_url)
        assert with_prometheus.regions.counts_fallback is prometheus
        assert with_scrapes.regions.counts_fallback is None
        assert with_prometheus.regions.reader.mode == "process"
