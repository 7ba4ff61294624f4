"""The monitor against the simulator over real HTTP (PD API and each store's /metrics), with
virtual time moved by the test: faults open incidents, healing resolves them, a PD partition
opens its own incident and freezes the rest, and a restarted monitor continues what was open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from engine.model import IncidentStatus, Severity
from engine.monitor import ClusterSource, Monitor
from engine.relay import EventRelay, NotifierSink
from operator_tikv.invariants import Thresholds
from operator_tikv.pd import open_pd_client
from operator_tikv.scrape import ScrapeSource
from sim.server import SimServer
from storage import Repositories
from tests.engine.monitor_fakes import RecordingNotifier

STEP = 15.0


class SimClock:
    """The engine's Clock reading the simulator's virtual time."""

    def __init__(self, server: SimServer) -> None:
        self.server = server

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.server.cluster.now, UTC)


@asynccontextmanager
async def watching(
    server: SimServer, repos: Repositories, notifier: RecordingNotifier
) -> AsyncIterator[Monitor]:
    async with (
        open_pd_client(server.pd_url, retries=0) as pd,
        httpx.AsyncClient(timeout=3.0) as http,
    ):
        source = ClusterSource(pd, ScrapeSource(http, timeout=3.0), pd_url=server.pd_url)
        monitor = Monitor(
            source=source,
            incidents=repos.incidents,
            clock=SimClock(server),
            thresholds=Thresholds(write_p99_ms=100.0, write_p99_grace=30.0),
            resolve_after=60.0,
        )
        sink = NotifierSink(notifier, repos.events, start_after=await repos.events.head())
        relays[monitor] = EventRelay(repos.events, sink, name="test")
        try:
            yield monitor
        finally:
            await source.regions.close()  # the list worker process, as tikvops run closes it


relays: dict[Monitor, EventRelay] = {}
"""The relay that tells each watching monitor's notifier the events its ticks wrote."""


async def run(server: SimServer, monitor: Monitor, ticks: int, step: float = STEP) -> None:
    for _ in range(ticks):
        server.cluster.advance(step)
        try:
            await monitor.tick()
        finally:
            await relays[monitor].drain()


def opened(notifier: RecordingNotifier) -> list[str]:
    return [f"{i.kind}/{i.subject}" for i in notifier.of("opened")]


async def test_a_slow_store_opens_one_incident_that_lasts(
    sim: SimServer, repos: Repositories
) -> None:
    notifier = RecordingNotifier()
    async with watching(sim, repos, notifier) as monitor:
        await run(sim, monitor, 2)
        assert notifier.events == []
        sim.apply_scenario("slow-store")
        await run(sim, monitor, 15)
    assert opened(notifier) == ["write_latency/store:2"]
    [incident] = notifier.of("opened")
    assert incident.severity is Severity.WARNING
    assert incident.value is not None and incident.value > 100.0
    assert [e for e, _ in notifier.events] == ["opened"]
    [still] = await repos.incidents.list_open()
    assert still.id == incident.id and still.clear_since is None
    # The store's addresses as PD reports them: its gRPC address for people, its status
    # address (the metrics target Grafana's `instance` variable names) for dashboard links.
    store = sim.cluster.stores[2]
    assert incident.details["address"] == store.address
    assert incident.details["status_address"] == store.status_address


async def test_a_filling_disk_worsens_then_healing_resolves_it(
    sim: SimServer, repos: Repositories
) -> None:
    notifier = RecordingNotifier()
    async with watching(sim, repos, notifier) as monitor:
        await run(sim, monitor, 1)
        sim.apply_scenario("disk-filling")  # store 1: 75 % now, 92 % in 30 minutes
        await run(sim, monitor, 1)
        [incident] = notifier.of("opened")
        assert (incident.kind, incident.subject) == ("disk_usage", "store:1")
        assert incident.severity is Severity.WARNING
        await run(sim, monitor, 30, step=60.0)
        worse = [i for i in notifier.of("updated") if i.severity is Severity.CRITICAL]
        assert worse and worse[0].worst_severity is Severity.CRITICAL
        assert len(notifier.of("updated")) < 10  # reported as it grows, not on every tick

        sim.faults.clear()
        await run(sim, monitor, 5)
    [resolved] = notifier.of("resolved")
    assert resolved.id == incident.id and resolved.worst_severity is Severity.CRITICAL
    assert await repos.incidents.list_open() == []


async def test_a_stopped_store_is_disconnected_then_down_then_recovers(
    sim_factory: Any, repos: Repositories
) -> None:
    """One cause, one incident: the stopped store's missing metrics, Disconnected, then Down
    are escalations of the same incident, its regions are consequences on it, and it resolves
    once the store is back and its regions caught up."""
    # every region has a replica on the stopped store: PD lists them all as down and pending
    # on each tick, so a small cluster keeps the test quick
    sim: SimServer = await sim_factory(regions=100)
    notifier = RecordingNotifier()
    async with watching(sim, repos, notifier) as monitor:
        await run(sim, monitor, 1)
        sim.faults.stop_store(3)
        await run(sim, monitor, 3)
        [first] = notifier.of("opened")
        assert first.fingerprint == "store_health:store:3"
        [current] = await repos.incidents.list_open()
        assert current.kind == "store_disconnected" and current.title == "Store 3 disconnected"
        await run(sim, monitor, 1, step=1800.0)  # past max-store-down-time
        await run(sim, monitor, 1)
        [down] = await repos.incidents.list_open()
        assert down.id == first.id and down.kind == "store_down"
        assert down.severity is Severity.CRITICAL and down.title == "Store 3 down"
        kinds = {c["kind"] for c in down.details["consequences"]}
        assert "region_down_peer" in kinds and "region_pending_peer" in kinds
        before = len(notifier.incidents)
        await run(sim, monitor, 20)  # a steady fault adds no incidents
        later = notifier.incidents[before:]
        assert [e for e, _ in later if e == "opened"] == []
        assert down.id not in {i.id for e, i in later if e == "resolved"}

        sim.faults.start_store(3)
        await run(sim, monitor, 12)
        assert [i.id for i in notifier.of("resolved")] == [first.id]
    incidents = await repos.incidents.list(limit=100)
    assert [i.id for i in incidents] == [first.id]  # never a second incident for the store


async def test_a_pd_partition_opens_its_own_incident_and_freezes_the_others(
    sim: SimServer, repos: Repositories
) -> None:
    notifier = RecordingNotifier()
    async with watching(sim, repos, notifier) as monitor:
        sim.faults.fill_disk(2, 0.75)
        await run(sim, monitor, 2)
        assert opened(notifier) == ["disk_usage/store:2"]

        sim.faults.partition()
        sim.faults.fill_disk(2, 0.30)  # recovers while PD cannot be reached
        await run(sim, monitor, 10)
        assert opened(notifier) == ["disk_usage/store:2", "pd_unreachable/cluster"]
        open_now = {i.kind: i for i in await repos.incidents.list_open()}
        assert set(open_now) == {"disk_usage", "pd_unreachable"}
        assert open_now["disk_usage"].clear_since is None
        assert "refused" in open_now["pd_unreachable"].details["message"].lower() or (
            "connect" in open_now["pd_unreachable"].details["message"].lower()
        )

        sim.faults.heal()
        await run(sim, monitor, 8)
        resolved = sorted(i.kind for i in notifier.of("resolved"))
        assert resolved == ["disk_usage", "pd_unreachable"]


async def test_a_restarted_monitor_continues_without_duplicates(
    sim: SimServer, repos: Repositories
) -> None:
    first = RecordingNotifier()
    sim.faults.slow_store(2, 300.0)
    sim.faults.fill_disk(1, 0.75)
    async with watching(sim, repos, first) as monitor:
        await run(sim, monitor, 5)
    assert sorted(opened(first)) == ["disk_usage/store:1", "write_latency/store:2"]
    ids = sorted(i.id for i in await repos.incidents.list_open())

    second = RecordingNotifier()
    async with watching(sim, repos, second) as monitor:
        # the new process's first scrape has no P99 yet (no data): nothing may resolve
        await run(sim, monitor, 1, step=1.0)
        assert sorted(i.id for i in await repos.incidents.list_open()) == ids
        await run(sim, monitor, 10)
    assert second.events == []
    assert sorted(i.id for i in await repos.incidents.list_open()) == ids
    assert all(
        i.status is IncidentStatus.OPEN and i.clear_since is None
        for i in await repos.incidents.list_open()
    )
