"""The bot's periodic jobs on apscheduler 3.x (`AsyncIOScheduler`): the monitor tick, expiry of
unanswered proposals, reminders for proposals waiting too long, and (optionally) following
executions that another process left behind.

`JobScheduler` wraps the scheduler so that every job

- runs at most once at a time (`max_instances=1`): a tick still running when the next is due
  makes apscheduler skip that run (counted as `skipped`), never run two at once;
- catches up sensibly after a pause (`coalesce=True`: several missed runs become one; a run
  late by less than `misfire_grace` seconds still happens);
- never kills the scheduler when it fails: the error is logged with its traceback and counted
  (`JobStats.failures`, `last_error`), and the next run happens as planned;
- with a `deadline`, never runs longer than that: a run still going after `deadline` seconds is
  cancelled and counted as a failure (`JobStats.timeouts`), so a hung run (a PD that answers
  one byte at a time) cannot keep every later run from starting. The monitor's tick has its
  own, shorter deadline on observing (`engine.cycle_deadline`); this one is the backstop.

Jobs added with `leader_only=True` run only while `leader()` says this replica leads
(`engine.leadership.Leadership.is_leader`; with several replicas on one PostgreSQL database
exactly one leads): a due run on a follower is passed over (counted in `JobStats.not_leader`).
When the replica steps down, `stop_leader_runs()` cancels the leader-only runs in progress;
when it becomes the leader, `run_leader_jobs_now()` makes them due at once.

`start()` needs a running event loop; `stop()` stops scheduling new runs, waits (up to a
timeout) for the runs in progress to finish, then shuts apscheduler down and cancels anything
left. The work itself lives elsewhere (`engine.monitor.Monitor.tick`, `Engine.expire_due`,
`ProposalReminders.run`); `schedule_bot_jobs()` registers them with their intervals.

Reminders: a proposal still `proposed` `reminder_interval` seconds after it was made (or after
its last reminder) is reported again (a `proposal.changed` event with an audit event
`proposal.reminder` (appended to the audit log, so a restart does not repeat a reminder early).
The proposal itself does not change. No reminder is sent while someone owns the proposal's
incident or it is silenced (`engine.attending.reminders_paused`): the owner knows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.attending import reminders_paused
from engine.clock import format_duration, format_time
from engine.events import EventKind, proposal_event
from engine.model import SYSTEM, AuditEvent, Proposal, ProposalState
from engine.ports import AuditLog, Clock, IncidentRepo, ProposalRepo

logger = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[object]]

DEFAULT_STOP_TIMEOUT = 10.0
SILENCE_CHECK_EVERY = 15.0
"""Seconds between checks for incident silences that ran out or were broken
(`engine.attending.Attending.end_due`)."""
EXPIRE_EVERY = 30.0
"""Seconds between expiry runs (a proposal expires at most this late)."""
FOLLOW_EVERY = 60.0
"""Seconds between runs of the optional job that follows executions left by other processes."""


@dataclass
class JobStats:
    """What one job has done since the scheduler started."""

    runs: int = 0  # started
    succeeded: int = 0
    failures: int = 0
    skipped: int = 0  # due while the previous run was still going
    missed: int = 0  # too late to run (beyond the misfire grace)
    running: int = 0
    max_running: int = 0  # never above 1: max_instances=1
    timeouts: int = 0  # cancelled after the job's deadline (also counted in failures)
    not_leader: int = 0  # due on a replica that was not the leader (leader-only jobs)
    cancelled: int = 0  # stopped because the replica stepped down
    last_error: str | None = None


class SchedulerHealth(Protocol):
    """Optional readiness hook (`tikvops.observability.Health.scheduler`)."""

    def scheduler(self, running: bool) -> None: ...


class JobScheduler:
    """Periodic async jobs on one `AsyncIOScheduler` (see the module docstring)."""

    def __init__(
        self,
        *,
        misfire_grace: float | None = None,
        health: SchedulerHealth | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
        stop_timeout: float = DEFAULT_STOP_TIMEOUT,
        leader: Callable[[], bool] | None = None,
    ) -> None:
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._leader = leader
        self._leader_only: set[str] = set()
        self._runs: dict[asyncio.Task[Any], str] = {}
        self._stepping_down: set[asyncio.Task[Any]] = set()
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        self._misfire_grace = misfire_grace
        self._health = health
        self._on_failure = on_failure
        self._jobs: dict[str, JobFn] = {}
        self._deadlines: dict[str, float | None] = {}
        self._stats: dict[str, JobStats] = {}
        self._running: set[asyncio.Task[Any]] = set()
        self._started = False
        self.stop_timeout = stop_timeout

    @property
    def running(self) -> bool:
        return self._started

    def stats(self, name: str) -> JobStats:
        return self._stats[name]

    def job_names(self) -> list[str]:
        return list(self._jobs)

    def add_job(
        self,
        name: str,
        fn: JobFn,
        *,
        every: float,
        run_now: bool = True,
        misfire_grace: float | None = None,
        deadline: float | None = None,
        leader_only: bool = False,
    ) -> None:
        """Run `fn` every `every` seconds (first run at start when `run_now`), each run
        cancelled after `deadline` seconds when given; with `leader_only`, only while this
        replica leads. Job names are unique. Add jobs before or after `start()`."""
        if every <= 0:
            raise ValueError(f"job {name!r}: the interval must be positive, got {every}")
        if deadline is not None and deadline <= 0:
            raise ValueError(f"job {name!r}: the deadline must be positive, got {deadline}")
        if name in self._jobs:
            raise ValueError(f"job {name!r} is already scheduled")
        self._jobs[name] = fn
        self._deadlines[name] = deadline
        if leader_only:
            self._leader_only.add(name)
        self._stats[name] = JobStats()
        grace = misfire_grace if misfire_grace is not None else self._misfire_grace
        options: dict[str, Any] = {}
        if run_now:
            options["next_run_time"] = datetime.now(UTC)
        self._scheduler.add_job(
            self._run,
            "interval",
            args=(name,),
            seconds=every,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(1, round(grace if grace is not None else every)),
            replace_existing=False,
            **options,
        )

    def start(self) -> None:
        """Start scheduling (inside a running event loop)."""
        if self._started:
            return
        asyncio.get_running_loop()  # fail clearly outside a loop
        self._scheduler.start()
        self._started = True
        self._set_health(True)
        logger.info("scheduler started with jobs: %s", ", ".join(self._jobs) or "none")

    async def stop(self) -> None:
        """Stop scheduling, let runs in progress finish (up to `stop_timeout` seconds), then
        shut down."""
        if not self._started:
            return
        self._started = False
        self._scheduler.pause()
        running = [t for t in self._running if not t.done()]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.stop_timeout)
            if pending:
                logger.warning(
                    "%d job run(s) still going after %.0f s; cancelling them",
                    len(pending),
                    self.stop_timeout,
                )
        self._scheduler.shutdown(wait=False)
        await asyncio.sleep(0)  # apscheduler shuts down on the next loop iteration
        leftovers = [t for t in self._running if not t.done()]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        self._set_health(False)
        logger.info("scheduler stopped")

    async def __aenter__(self) -> JobScheduler:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def leads(self) -> bool:
        """Whether leader-only jobs may run now."""
        return self._leader is None or self._leader()

    def run_leader_jobs_now(self) -> None:
        """This replica just became the leader: make every leader-only job due now."""
        if not self._started:
            return
        now = datetime.now(UTC)
        for name in self._leader_only:
            self._scheduler.modify_job(name, next_run_time=now)

    async def stop_leader_runs(self) -> int:
        """This replica stepped down: cancel the leader-only runs in progress and wait for
        them to end; returns how many were cancelled."""
        mine = [t for t, name in self._runs.items() if name in self._leader_only and not t.done()]
        for task in mine:
            self._stats[self._runs[task]].cancelled += 1
            self._stepping_down.add(task)
            task.cancel()
        if mine:
            await asyncio.gather(*mine, return_exceptions=True)
            logger.warning("stopped %d leader-only job run(s): no longer the leader", len(mine))
        return len(mine)

    async def _run(self, name: str) -> None:
        stats = self._stats[name]
        if name in self._leader_only and not self.leads():
            stats.not_leader += 1
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
            self._runs[task] = name
        stats.runs += 1
        stats.running += 1
        stats.max_running = max(stats.max_running, stats.running)
        deadline = self._deadlines.get(name)
        try:
            async with asyncio.timeout(deadline) as bound:
                await self._jobs[name]()
        except asyncio.CancelledError:
            if task is None or task not in self._stepping_down:
                raise
            # Cancelled by `stop_leader_runs`: an expected end, not a failure of the job.
            self._stepping_down.discard(task)
            task.uncancel()
        except TimeoutError as exc:
            if not bound.expired():
                self._failed(name, stats, exc)
            else:
                stats.timeouts += 1
                self._failed(name, stats, exc, timed_out=deadline)
        except Exception as exc:
            self._failed(name, stats, exc)
        else:
            stats.succeeded += 1
        finally:
            stats.running -= 1
            if task is not None:
                self._running.discard(task)
                self._runs.pop(task, None)

    def _failed(
        self, name: str, stats: JobStats, exc: BaseException, *, timed_out: float | None = None
    ) -> None:
        stats.failures += 1
        if timed_out is not None:
            stats.last_error = (
                f"did not finish within its {timed_out:g} s deadline; stopped so that the "
                "next run can start"
            )
            logger.error("scheduled job %r %s", name, stats.last_error)
        else:
            stats.last_error = f"{type(exc).__name__}: {exc}"
            logger.exception("scheduled job %r failed; it runs again at its next time", name)
        if self._on_failure is not None:
            try:
                self._on_failure(name, exc)
            except Exception:
                logger.exception("the failure hook of job %r failed", name)

    def _on_event(self, event: JobEvent) -> None:
        stats = self._stats.get(event.job_id)
        if stats is None:
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            stats.skipped += 1
        elif event.code == EVENT_JOB_MISSED:
            stats.missed += 1

    def _set_health(self, running: bool) -> None:
        if self._health is not None:
            self._health.scheduler(running)


class ProposalReminders:
    """Reminds the surfaces of proposals waiting for a decision (see the module docstring)."""

    def __init__(
        self,
        *,
        proposals: ProposalRepo,
        audit: AuditLog,
        clock: Clock,
        after: float,
        incidents: IncidentRepo | None = None,
    ) -> None:
        if after <= 0:
            raise ValueError("the reminder interval must be positive")
        self.incidents = incidents
        self.proposals = proposals
        self.audit = audit
        self.clock = clock
        self.after = timedelta(seconds=after)

    async def run(self) -> list[Proposal]:
        """Send the reminders that are due; returns the proposals reminded about."""
        now = self.clock.now()
        reminded: list[Proposal] = []
        for proposal in await self.proposals.list(states=[ProposalState.PROPOSED], limit=500):
            waiting = now - proposal.created_at
            if waiting < self.after or proposal.expires_at <= now:
                continue
            if await self._incident_attended(proposal, now):
                continue  # someone owns its incident, or it is silenced: no channel pings
            last = await self.audit.list_recent(
                subject=proposal.id, action_prefix="proposal.reminder", limit=1
            )
            since = last[0].at if last else proposal.created_at
            if now - since < self.after:
                continue
            reminder = AuditEvent(
                at=now,
                actor=SYSTEM,
                action="proposal.reminder",
                subject=proposal.id,
                detail={
                    "waiting_seconds": int(waiting.total_seconds()),
                    "expires_at": proposal.expires_at.isoformat(),
                    "state": proposal.state.value,
                },
                reason=(
                    f"{proposal.id} has waited {format_duration(waiting)} for a decision; "
                    f"it expires at {format_time(proposal.expires_at, now)}"
                ),
            )
            told = proposal_event(EventKind.PROPOSAL_CHANGED, proposal, audit=reminder)
            await self.audit.append(reminder, events=[told])
            reminded.append(proposal)
        return reminded

    async def _incident_attended(self, proposal: Proposal, now: datetime) -> bool:
        if self.incidents is None or proposal.incident_id is None:
            return False
        incident = await self.incidents.get(proposal.incident_id)
        return incident is not None and reminders_paused(incident, now)


class Expiring(Protocol):
    """What the expiry job calls (`engine.service.Engine.expire_due`)."""

    async def expire_due(self) -> object: ...


def monitor_deadlines(poll_interval: float, pd_timeout: float) -> tuple[float, float]:
    """(observing deadline of one monitor cycle, deadline of the whole tick).

    A cycle reads PD's store list (at most `pd_timeout` in total), then the region lists (up to
    four times that: they can be long) alongside the metrics: `5 x pd_timeout`, and never less
    than the poll interval. The whole tick (storage and reports included) gets one more poll
    interval before the scheduler cancels it."""
    observe = max(poll_interval, 5 * pd_timeout)
    return observe, observe + poll_interval


def schedule_bot_jobs(
    scheduler: JobScheduler,
    *,
    tick: JobFn,
    poll_interval: float,
    engine: Expiring | None = None,
    reminders: ProposalReminders | None = None,
    expire_every: float = EXPIRE_EVERY,
    reminder_check_every: float | None = None,
    follow: JobFn | None = None,
    follow_every: float = FOLLOW_EVERY,
    monitor_deadline: float | None = None,
) -> None:
    """Register the bot's jobs, all leader-only (one replica runs them): `monitor` (every
    `poll_interval`, first run at once), `expire` (every `expire_every`), `remind` (every
    `reminder_check_every`, default a tenth of the reminder interval, at least 15 s and at
    most 60 s) and, when given, `follow` (every `follow_every`): follows executions no live
    process is driving any more.

    Executions started by this process are followed by the engine itself until verified;
    executions interrupted by a stop are reconciled at start-up (`Engine.reconcile()`, run by
    the caller before the scheduler starts), so `follow` is only for work another process left
    behind while this one keeps running. `monitor_deadline`: seconds a tick may run before it
    is cancelled (see `monitor_deadlines`)."""
    scheduler.add_job(
        "monitor", tick, every=poll_interval, deadline=monitor_deadline, leader_only=True
    )
    if engine is not None:
        scheduler.add_job("expire", engine.expire_due, every=expire_every, leader_only=True)
    if follow is not None:
        scheduler.add_job("follow", follow, every=follow_every, run_now=False, leader_only=True)
    if reminders is not None:
        check = reminder_check_every
        if check is None:
            check = min(60.0, max(15.0, reminders.after.total_seconds() / 10))
        scheduler.add_job("remind", reminders.run, every=check, run_now=False, leader_only=True)


__all__ = [
    "DEFAULT_STOP_TIMEOUT",
    "EXPIRE_EVERY",
    "FOLLOW_EVERY",
    "SILENCE_CHECK_EVERY",
    "Expiring",
    "JobScheduler",
    "JobStats",
    "ProposalReminders",
    "SchedulerHealth",
    "monitor_deadlines",
    "schedule_bot_jobs",
]
