"""A job's deadline: a run that hangs is cancelled at its deadline and counted, and the next
run starts instead of being skipped forever behind it (`max_instances=1`). Counts only, never
durations."""

from __future__ import annotations

import asyncio

import pytest

from tests.tikvops.test_scheduling import FAST, until
from tikvops.scheduling import JobScheduler, monitor_deadlines, schedule_bot_jobs


async def test_a_hung_run_is_cancelled_at_its_deadline_and_the_next_runs_happen() -> None:
    started: list[int] = []
    cancelled: list[int] = []
    failures: list[str] = []

    async def tick() -> None:
        started.append(len(started))
        if len(started) == 1:
            try:
                await asyncio.Event().wait()  # the first run hangs forever
            except asyncio.CancelledError:
                cancelled.append(1)
                raise

    scheduler = JobScheduler(on_failure=lambda name, exc: failures.append(name))
    scheduler.add_job("monitor", tick, every=FAST, deadline=0.1)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").succeeded >= 3)
    stats = scheduler.stats("monitor")
    assert cancelled == [1]
    assert stats.timeouts == 1 and stats.failures == 1
    assert stats.last_error == (
        "did not finish within its 0.1 s deadline; stopped so that the next run can start"
    )
    assert failures == ["monitor"]
    assert stats.max_running == 1


async def test_a_timeout_raised_by_the_job_itself_is_an_ordinary_failure() -> None:
    async def tick() -> None:
        raise TimeoutError("PD took too long")

    scheduler = JobScheduler()
    scheduler.add_job("monitor", tick, every=FAST, deadline=5.0)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").failures >= 1)
    stats = scheduler.stats("monitor")
    assert stats.timeouts == 0
    assert stats.last_error == "TimeoutError: PD took too long"


def test_the_monitor_gets_its_deadlines_from_the_poll_interval_and_pd_timeout() -> None:
    assert monitor_deadlines(15.0, 5.0) == (25.0, 40.0)
    assert monitor_deadlines(60.0, 5.0) == (60.0, 120.0)
    scheduler = JobScheduler()

    async def tick() -> None:
        return None

    schedule_bot_jobs(scheduler, tick=tick, poll_interval=15.0, monitor_deadline=40.0)
    assert scheduler.job_names() == ["monitor"]
    with pytest.raises(ValueError, match="the deadline must be positive"):
        scheduler.add_job("other", tick, every=1.0, deadline=0)
