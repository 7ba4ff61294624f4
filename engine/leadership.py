"""Which replica is the leader: the one that runs the jobs only one replica may run (the monitor,
reminders, expiry, following interrupted executions).

`LeaderLock` is the port: one lock shared by every replica (a PostgreSQL advisory lock held on a
dedicated connection, `storage.leader`). `SoleLeader` is the lock of a bot that is alone (the
SQLite database): always held. `Leadership` is the election: a follower tries to take the lock
every `poll` seconds; the leader confirms it every `poll / 2` seconds, each confirmation bounded
by `poll / 2`, and steps down (`on_demoted`: stop the leader-only jobs) as soon as a
confirmation fails or is late, so a leader that lost its connection stops within `poll` of the
loss. A replica that takes the lock waits `takeover_delay` (default `poll`) before it starts
leading (`on_promoted`: reconcile what was left executing, start the jobs): by then a leader
that lost the lock has stepped down, and the new one leads within two poll intervals of the
loss. `is_leader` is also false once the last confirmation is older than `poll` (a paused
process does not keep believing it leads).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[object]]


class LeaderLock(Protocol):
    """The lock every replica of one bot competes for."""

    name: str
    """What holds it, for messages (`PostgreSQL advisory lock 7234 on db:5432/tikvops`)."""

    async def acquire(self) -> bool:
        """Try to take the lock without waiting; True when this replica holds it now. Raises
        `engine.errors.StorageError` when the lock's server cannot be reached."""
        ...

    async def confirm(self) -> bool:
        """Whether this replica still holds the lock (False once its connection is lost)."""
        ...

    async def release(self) -> None:
        """Let the lock go (closing its connection); never raises."""
        ...


class SoleLeader:
    """The lock of a replica that is alone (SQLite: one process per database file)."""

    name = "sole replica (SQLite)"

    async def acquire(self) -> bool:
        return True

    async def confirm(self) -> bool:
        return True

    async def release(self) -> None:
        return None


class Leadership:
    """The election loop of one replica (see the module docstring)."""

    def __init__(
        self,
        lock: LeaderLock,
        *,
        poll: float,
        on_promoted: Hook | None = None,
        on_demoted: Hook | None = None,
        takeover_delay: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if poll <= 0:
            raise ValueError(f"the leader poll interval must be positive, got {poll}")
        self.lock = lock
        self.poll = poll
        self.takeover_delay = poll if takeover_delay is None else takeover_delay
        self._on_promoted = on_promoted
        self._on_demoted = on_demoted
        self._now = now
        self._leading = False
        self._confirmed_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._hooks = asyncio.Lock()
        self.promotions = 0
        self.demotions = 0
        self.last_change: str = "not started"
        self.last_demotion: str | None = None  # why it last stepped down

    # ------------------------------------------------------------------ state

    @property
    def is_leader(self) -> bool:
        """Leading, with the lock confirmed less than `poll` seconds ago."""
        if not self._leading or self._confirmed_at is None:
            return False
        return self._now() - self._confirmed_at <= self.poll

    def describe(self) -> str:
        """One sentence for `/healthz`."""
        if self.is_leader:
            return f"leader: holds the {self.lock.name}"
        return f"follower: {self.last_change}"

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Compete in the background. Without a takeover delay (a replica alone) the first
        attempt is made before this returns, so such a replica leads from the start."""
        if self._task is not None:
            return
        if self.takeover_delay == 0:
            await self._attempt()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="leadership")

    async def stop(self) -> None:
        """Stop competing: step down (running `on_demoted`) and release the lock."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._demote("this replica is stopping")
        await self.lock.release()

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        while True:
            if self._leading:
                await asyncio.sleep(self.poll / 2)
                if not await self._check():  # stepped down: let a healthier replica go first
                    await asyncio.sleep(self.poll)
            else:
                await self._attempt()
                if not self._leading:
                    await asyncio.sleep(self.poll)

    async def _attempt(self) -> None:
        try:
            got = await asyncio.wait_for(self.lock.acquire(), self.poll)
        except (TimeoutError, Exception) as exc:
            self.last_change = f"cannot reach the {self.lock.name}: {_why(exc)}"
            logger.warning("leader election: %s; trying again in %g s", self.last_change, self.poll)
            return
        if not got:
            self.last_change = f"another replica holds the {self.lock.name}"
            return
        if self.takeover_delay > 0:
            # A leader that just lost the lock steps down within `poll`: let it.
            await asyncio.sleep(self.takeover_delay)
        if not await self._confirmed():
            await self.lock.release()
            return
        await self._promote()

    async def _check(self) -> bool:
        """Confirm the lock; step down when that fails. True while still leading."""
        if await self._confirmed():
            return True
        await self._demote(f"lost the {self.lock.name}: {self.last_change}")
        await self.lock.release()
        return False

    async def _confirmed(self) -> bool:
        started = self._now()
        try:
            held = await asyncio.wait_for(self.lock.confirm(), self.poll / 2)
        except (TimeoutError, Exception) as exc:
            self.last_change = f"confirming it failed ({_why(exc)})"
            return False
        if not held:
            self.last_change = "the lock's connection was lost"
            return False
        self._confirmed_at = started
        return True

    async def _promote(self) -> None:
        async with self._hooks:
            if self._leading:
                return
            self._leading = True
            self.promotions += 1
            self.last_change = "leading"
            logger.warning("this replica is now the leader (%s)", self.lock.name)
            if self._on_promoted is not None:
                try:
                    await self._on_promoted()
                except Exception:
                    logger.exception("starting the leader's work failed; it runs on schedule")

    async def _demote(self, why: str) -> None:
        async with self._hooks:
            if not self._leading:
                return
            self._leading = False
            self._confirmed_at = None
            self.demotions += 1
            self.last_change = why
            self.last_demotion = why
            logger.warning("this replica is no longer the leader: %s", why)
            if self._on_demoted is not None:
                try:
                    await self._on_demoted()
                except Exception:
                    logger.exception("stopping the leader's work failed")


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


__all__ = ["LeaderLock", "Leadership", "SoleLeader"]
