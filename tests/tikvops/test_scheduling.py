"""The job scheduler: failing runs are counted and the next run still happens, a slow run is
never overlapped, stop() lets runs finish, and the reminder job. Intervals are short, but the
assertions are on counts and order, never on how long anything took."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest

from engine.clock import FakeClock
from engine.events import EventKind
from engine.model import Identity, ProposalOrigin, ProposalState, RiskLevel
from engine.transitions import ProposalEvent, propose, transition
from storage import Repositories
from tests.engine.monitor_fakes import build_monitor
from tests.plugins.storage import alice
from tikvops.scheduling import JobScheduler, ProposalReminders, schedule_bot_jobs

FAST = 0.02


async def until(condition: Callable[[], bool]) -> None:
    """Wait (yielding to the loop) until `condition()` holds; the test timeout bounds it."""
    while not condition():
        await asyncio.sleep(FAST / 2)


class FakeHealth:
    def __init__(self) -> None:
        self.states: list[bool] = []

    def scheduler(self, running: bool) -> None:
        self.states.append(running)


async def test_a_failing_run_is_counted_and_the_next_run_still_happens() -> None:
    calls: list[int] = []
    failures: list[str] = []

    async def job() -> None:
        calls.append(len(calls))
        if len(calls) <= 2:
            raise RuntimeError(f"tick {len(calls)} broke")

    scheduler = JobScheduler(on_failure=lambda name, exc: failures.append(f"{name}: {exc}"))
    scheduler.add_job("monitor", job, every=FAST)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").succeeded >= 2)
    stats = scheduler.stats("monitor")
    assert stats.failures == 2
    assert stats.last_error == "RuntimeError: tick 2 broke"
    assert failures == ["monitor: tick 1 broke", "monitor: tick 2 broke"]
    assert stats.runs == stats.failures + stats.succeeded
    assert not scheduler.running


async def test_a_slow_run_is_never_overlapped() -> None:
    gate = asyncio.Event()
    active = 0
    most = 0
    finished = 0

    async def slow_tick() -> None:
        nonlocal active, most, finished
        active += 1
        most = max(most, active)
        try:
            await gate.wait()
        finally:
            active -= 1
            finished += 1

    scheduler = JobScheduler()
    scheduler.add_job("monitor", slow_tick, every=FAST)
    async with scheduler:
        await until(lambda: scheduler.stats("monitor").skipped >= 3)
        assert scheduler.stats("monitor").runs == 1  # the first run is still going
        gate.set()
        await until(lambda: finished >= 3)
    assert most == 1
    assert scheduler.stats("monitor").max_running == 1
    assert scheduler.stats("monitor").failures == 0


async def test_stop_lets_a_run_in_progress_finish() -> None:
    gate = asyncio.Event()
    started = asyncio.Event()
    outcome: list[str] = []

    async def job() -> None:
        started.set()
        try:
            await gate.wait()
            outcome.append("finished")
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    health = FakeHealth()
    scheduler = JobScheduler(health=health)
    scheduler.add_job("monitor", job, every=60)
    scheduler.start()
    await started.wait()
    stopping = asyncio.create_task(scheduler.stop())
    await asyncio.sleep(0)
    assert not stopping.done()
    gate.set()
    await stopping
    assert outcome == ["finished"]
    assert health.states == [True, False]


async def test_stop_cancels_a_run_that_does_not_finish_in_time() -> None:
    started = asyncio.Event()
    outcome: list[str] = []

    async def stuck() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    scheduler = JobScheduler(stop_timeout=0)
    scheduler.add_job("monitor", stuck, every=60)
    scheduler.start()
    await started.wait()
    await scheduler.stop()
    assert outcome == ["cancelled"]
    await scheduler.stop()  # stopping twice is harmless


async def test_run_now_false_waits_for_the_first_interval() -> None:
    runs: list[str] = []

    async def first() -> None:
        runs.append("first")

    async def later() -> None:
        runs.append("later")

    scheduler = JobScheduler()
    scheduler.add_job("first", first, every=3600)
    scheduler.add_job("later", later, every=3600, run_now=False)
    async with scheduler:
        await until(lambda: runs == ["first"])
        await asyncio.sleep(FAST)
    assert runs == ["first"]
    assert scheduler.job_names() == ["first", "later"]


def test_bad_jobs_are_refused() -> None:
    async def job() -> None:
        return None

    scheduler = JobScheduler()
    with pytest.raises(ValueError, match="positive"):
        scheduler.add_job("x", job, every=0)
    scheduler.add_job("x", job, every=1)
    with pytest.raises(ValueError, match="already scheduled"):
        scheduler.add_job("x", job, every=1)


async def test_the_monitor_runs_on_the_scheduler(repos: Repositories) -> None:
    rig = build_monitor(repos)
    rig.cluster.store(3).state = "Down"
    expired: list[int] = []

    class Engine:
        async def expire_due(self) -> list[object]:
            expired.append(1)
            return []

    followed: list[int] = []

    async def follow() -> None:
        followed.append(1)

    scheduler = JobScheduler()
    schedule_bot_jobs(
        scheduler,
        tick=rig.monitor.tick,
        poll_interval=FAST,
        engine=Engine(),
        expire_every=FAST,
        follow=follow,
        follow_every=FAST,
    )
    async with scheduler:
        await until(lambda: rig.monitor.ticks >= 3 and len(expired) >= 2 and len(followed) >= 1)
    assert scheduler.job_names() == ["monitor", "expire", "follow"]
    assert [e.kind for e in await repos.events.after(0)] == [EventKind.INCIDENT_OPENED]
    assert len(await repos.incidents.list_open()) == 1


# --------------------------------------------------------------------------- reminders


async def waiting_proposal(repos: Repositories, clock: FakeClock, pid: str = "P-1") -> None:
    result = propose(
        proposal_id=pid,
        action="drain",
        params={"store_id": 2},
        risk=RiskLevel.HIGH,
        origin=ProposalOrigin.PLAYBOOK,
        proposed_by=Identity.playbook("write_latency"),
        now=clock.now(),
        ttl=timedelta(hours=1),
    )
    await repos.proposals.create(result)


async def reminder_events(repos: Repositories) -> list[tuple[str, str]]:
    """The reminders told to the surfaces: `proposal.changed` events of a reminder."""
    return [
        (e.subject, e.audit.action)
        for e in await repos.events.after(0)
        if e.kind is EventKind.PROPOSAL_CHANGED
        and e.audit is not None
        and e.audit.action == "proposal.reminder"
    ]


async def test_reminders_for_proposals_waiting_too_long(repos: Repositories) -> None:
    clock = FakeClock()
    await waiting_proposal(repos, clock)

    def reminders() -> ProposalReminders:
        return ProposalReminders(
            proposals=repos.proposals,
            audit=repos.audit,
            clock=clock,
            after=600,
        )

    job = reminders()
    clock.advance(300)
    assert await job.run() == []
    clock.advance(300)
    assert [p.id for p in await job.run()] == ["P-1"]
    clock.advance(300)
    assert await job.run() == []
    clock.advance(300)
    assert [p.id for p in await job.run()] == ["P-1"]
    assert await reminders().run() == []  # a restart does not remind early
    assert await reminder_events(repos) == [("P-1", "proposal.reminder")] * 2
    audit = await repos.audit.list_recent(subject="P-1", action_prefix="proposal.reminder")
    assert len(audit) == 2 and audit[0].reason is not None and "20 min" in audit[0].reason
    stored = await repos.proposals.get("P-1")
    assert stored is not None and stored.state is ProposalState.PROPOSED and stored.version == 1


async def test_no_reminders_for_decided_or_expired_proposals(repos: Repositories) -> None:
    clock = FakeClock()
    await waiting_proposal(repos, clock, "P-1")
    await waiting_proposal(repos, clock, "P-2")
    current = await repos.proposals.get("P-2")
    assert current is not None
    await repos.proposals.apply(
        transition(current, ProposalEvent.REJECT, actor=alice(), now=clock.now())
    )
    job = ProposalReminders(proposals=repos.proposals, audit=repos.audit, clock=clock, after=600)
    clock.advance(3600)  # P-1 is past its expiry (not yet expired by the engine)
    assert await job.run() == []
    assert await reminder_events(repos) == []
