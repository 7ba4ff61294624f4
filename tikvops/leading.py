"""This replica's part in leader election, wired to the running bot: the lock for the database
setting (`storage.leader.open_leader_lock`: a PostgreSQL advisory lock, or always held on
SQLite), and what changes when the replica starts or stops leading.

Promoted: the leader gauge goes to 1, executions left unfinished by dead processes are
reconciled against PD (`Engine.reconcile()`: read, never re-sent; the same start-up
reconciliation a lone bot runs before anything else; a run whose claim a live replica holds,
`engine.claims`, is left to it), and the leader-only jobs (monitor, expiry, reminders, and among
replicas `follow`: settling the runs of replicas that died since) are made due now. Only the
leader reconciles: a follower never does.
Demoted: the gauge goes to 0 and the leader-only runs in progress are cancelled before another
replica can take over (`engine.leadership` bounds the timing).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from engine.leadership import Leadership, SoleLeader
from storage import PostgresUrl
from storage.leader import open_leader_lock
from tikvops.observability import BotMetrics, Health
from tikvops.scheduling import JobScheduler

logger = logging.getLogger(__name__)


class Reconciles(Protocol):
    async def reconcile(self) -> list[Any]: ...


class ReplicaRole:
    """Leader election for one running stack (see the module docstring)."""

    def __init__(
        self,
        db: str | Path | PostgresUrl,
        *,
        poll: float,
        engine: Reconciles,
        metrics: BotMetrics,
        health: Health,
    ) -> None:
        lock = open_leader_lock(db)
        self.alone = isinstance(lock, SoleLeader)
        self.leadership = Leadership(
            lock,
            poll=poll,
            takeover_delay=0 if self.alone else None,
            on_promoted=self._promoted,
            on_demoted=self._demoted,
        )
        self._engine = engine
        self._metrics = metrics
        self.scheduler: JobScheduler | None = None
        self.reconciled = 0
        health.role(lambda: (self.is_leader(), self.leadership.describe()))
        metrics.leader(False)

    def is_leader(self) -> bool:
        return self.leadership.is_leader

    async def start(self) -> None:
        """Alone (SQLite): lead (and reconcile) before this returns. Among replicas: compete
        in the background."""
        await self.leadership.start()

    async def stop(self) -> None:
        await self.leadership.stop()

    async def _promoted(self) -> None:
        self._metrics.leader(True)
        reconciled = await self._engine.reconcile()
        self.reconciled += len(reconciled)
        if reconciled:
            logger.info("reconciled %d interrupted execution(s) against PD", len(reconciled))
        if self.scheduler is not None:
            self.scheduler.run_leader_jobs_now()

    async def _demoted(self) -> None:
        self._metrics.leader(False)
        if self.scheduler is not None:
            await self.scheduler.stop_leader_runs()


__all__ = ["ReplicaRole"]
