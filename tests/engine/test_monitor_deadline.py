"""The monitor cycle's deadline on observing: a source that never answers makes the cycle end
with PD unreachable (one incident, the others frozen) instead of hanging, and what the cycle
saw is remembered for answers to people (`engine.knowledge`)."""

from __future__ import annotations

import asyncio

from engine.monitor import Monitor
from operator_tikv.observation import Observation
from storage import Repositories
from tests.engine.monitor_fakes import FakeCluster, build_monitor


class HangingCluster(FakeCluster):
    """Answers normally until `hang` is set, then never."""

    hang: bool = False

    async def observe(self, at: float) -> Observation:
        if self.hang:
            await asyncio.Event().wait()
        return await super().observe(at)


def with_deadline(monitor: Monitor, seconds: float) -> Monitor:
    monitor.cycle_deadline = seconds
    return monitor


async def test_a_hung_observation_ends_the_cycle_as_pd_unreachable(repos: Repositories) -> None:
    cluster = HangingCluster()
    cluster.store(3).state = "Down"
    rig = build_monitor(repos, cluster=cluster, resolve_after=0)
    with_deadline(rig.monitor, 0.2)
    first = await rig.tick()
    assert {i.kind for i in first.open_incidents} == {"store_down"}
    seen_at = rig.clock.now()

    cluster.hang = True
    async with asyncio.timeout(10):  # today's monitor would wait forever
        reports = [await rig.tick() for _ in range(3)]
    assert all(not r.pd_reachable for r in reports)
    error = reports[0].observation.pd_error or ""
    assert "did not finish within the cycle's 0.2 s deadline" in error
    # one pd_unreachable incident; the Down store's incident frozen, not resolved
    assert sorted(i.kind for i in reports[-1].open_incidents) == ["pd_unreachable", "store_down"]
    assert [i.kind for i in rig.notifier.of("opened")] == ["store_down", "pd_unreachable"]
    assert rig.notifier.of("resolved") == []

    known = rig.monitor.knowledge.current
    assert known.pd_failing and known.stores_at == seen_at
    assert [s.id for s in known.stores] == [1, 2, 3]
    assert known.error == error

    cluster.hang = False
    report = await rig.tick()
    assert report.pd_reachable
    assert [i.kind for i in report.open_incidents] == ["store_down"]
    assert not rig.monitor.knowledge.current.pd_failing
