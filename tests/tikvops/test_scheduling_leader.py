"""Leader-only jobs: they run only while the replica leads, runs in progress are cancelled when
it steps down (not counted as failures), and becoming the leader makes them due at once.
Assertions are on counts and order, never on durations."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tikvops.scheduling import JobScheduler, schedule_bot_jobs

FAST = 0.02


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(FAST / 2)


async def test_leader_only_jobs_run_only_while_leading() -> None:
    leading = [False]
    runs: list[str] = []

    async def monitor() -> None:
        runs.append("monitor")

    async def everywhere() -> None:
        runs.append("everywhere")

    scheduler = JobScheduler(leader=lambda: leading[0])
    scheduler.add_job("monitor", monitor, every=FAST, leader_only=True)
    scheduler.add_job("everywhere", everywhere, every=FAST)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").not_leader >= 3)
        assert "monitor" not in runs and "everywhere" in runs
        leading[0] = True
        scheduler.run_leader_jobs_now()
        await until(lambda: "monitor" in runs)
        leading[0] = False
        passed = scheduler.stats("monitor").not_leader
        await until(lambda: scheduler.stats("monitor").not_leader > passed + 2)
        count = runs.count("monitor")
    assert runs.count("monitor") == count  # nothing ran after it stopped leading
    assert scheduler.stats("monitor").failures == 0


async def test_stepping_down_cancels_the_leader_runs_in_progress() -> None:
    started = asyncio.Event()
    ended: list[str] = []

    async def hung_tick() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            ended.append("cancelled")

    async def other() -> None:
        await asyncio.Event().wait()

    scheduler = JobScheduler(leader=lambda: True, stop_timeout=0.1)
    scheduler.add_job("monitor", hung_tick, every=60, leader_only=True)
    scheduler.add_job("not-leader-only", other, every=60)
    async with scheduler:
        await started.wait()
        assert await scheduler.stop_leader_runs() == 1
        assert ended == ["cancelled"]
        stats = scheduler.stats("monitor")
        assert (stats.cancelled, stats.failures, stats.running) == (1, 0, 0)
        assert scheduler.stats("not-leader-only").running == 1  # left alone


async def test_the_bot_jobs_are_all_leader_only() -> None:
    async def tick() -> None:
        return None

    class Engine:
        async def expire_due(self) -> None:
            return None

    scheduler = JobScheduler(leader=lambda: False)
    schedule_bot_jobs(scheduler, tick=tick, poll_interval=FAST, engine=Engine(), follow=tick)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").not_leader >= 1)
        await until(lambda: scheduler.stats("expire").not_leader >= 1)
    for name in scheduler.job_names():
        assert scheduler.stats(name).succeeded == 0, name
