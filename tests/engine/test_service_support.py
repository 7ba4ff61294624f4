"""Helpers for the engine tests (no tests here): an `Engine` wired to a simulator, its clock
and sleep driven by the simulator's virtual time, a recording notifier, and the PD writes the
simulator received.

    async with engine_on(sim, db_path) as h:
        created = await handle_text(h.engine, "drain 4", h.operator)
        ...
        assert h.writes() == [("POST", "/pd/api/v1/schedulers", {...})]
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from engine.model import (
    AuditEvent,
    Diagnosis,
    Execution,
    Identity,
    Incident,
    NotProposed,
    Proposal,
)
from engine.policy import ApprovalPolicy
from engine.service import Engine
from operator_tikv.pd import PDClient, open_pd_client
from sim.server import SimServer
from storage import Database, Repositories

ALICE = Identity.slack("U1ALICE", name="alice")
BOB = Identity.slack("U2BOB", name="bob")
CAROL = Identity.slack("U3CAROL", name="carol")
MALLORY = Identity.slack("U9MALLORY", name="mallory")
OPERATOR = Identity.cli("ops@bastion")

POLICY = ApprovalPolicy(
    approvers=frozenset({"U1ALICE", "U2BOB", "U3CAROL"}),
    approvers_high=frozenset({"U1ALICE", "U2BOB"}),
    allow_local_operator=True,
    proposal_ttl=timedelta(minutes=30),
)

WRITE_METHODS = ("POST", "DELETE", "PUT", "PATCH")


class SimClock:
    """The engine's clock is the simulator's virtual clock."""

    def __init__(self, sim: SimServer) -> None:
        self._sim = sim

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._sim.cluster.now, UTC)


@dataclass
class RecordingNotifier:
    """Records every report the engine makes, in order."""

    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def incident_opened(self, incident: Incident) -> None:
        self.calls.append(("incident_opened", incident))

    async def incident_updated(self, incident: Incident) -> None:
        self.calls.append(("incident_updated", incident))

    async def incident_resolved(self, incident: Incident) -> None:
        self.calls.append(("incident_resolved", incident))

    async def diagnosis_ready(self, incident: Incident, diagnosis: Diagnosis) -> None:
        self.calls.append(("diagnosis_ready", diagnosis))

    async def actions_not_proposed(
        self, incident: Incident, diagnosis: Diagnosis, not_proposed: Sequence[NotProposed]
    ) -> None:
        self.calls.append(("actions_not_proposed", tuple(not_proposed)))

    async def proposal_made(self, proposal: Proposal) -> None:
        self.calls.append(("proposal_made", proposal))

    async def proposal_changed(self, proposal: Proposal, event: AuditEvent) -> None:
        self.calls.append(("proposal_changed", (proposal, event)))

    async def execution_progress(self, proposal: Proposal, execution: Execution) -> None:
        self.calls.append(("execution_progress", (proposal, execution)))

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def changes(self) -> list[str]:
        """The audit actions of every proposal_changed report (`proposal.approve`, ...)."""
        return [arg[1].action for name, arg in self.calls if name == "proposal_changed"]

    def progress_messages(self) -> list[str]:
        out: list[str] = []
        for name, arg in self.calls:
            if name == "execution_progress" and arg[1].progress:
                out.append(arg[1].progress[-1].message)
        return out


@dataclass
class Harness:
    sim: SimServer
    engine: Engine
    repos: Repositories
    db: Database
    pd: PDClient
    notifier: RecordingNotifier
    clock: SimClock
    operator: Identity = OPERATOR

    def writes(self) -> list[tuple[str, str, Any]]:
        """Every write request PD received: (method, path, body)."""
        return [
            (r.method, r.path, r.body)
            for r in self.sim.requests
            if r.store_id is None and r.method in WRITE_METHODS
        ]

    async def audit_actions(self, subject: str | None = None) -> list[str]:
        events = await self.repos.audit.list_recent(limit=500, subject=subject)
        return [e.action for e in reversed(events)]


def engine_kwargs(sim: SimServer, **overrides: Any) -> dict[str, Any]:
    """Engine keyword arguments that run verification on the simulator's virtual time."""

    async def sleep(seconds: float) -> None:
        sim.cluster.advance(seconds)

    options: dict[str, Any] = {
        "policy": POLICY,
        "clock": SimClock(sim),
        "sleep": sleep,
        "monotonic": lambda: sim.cluster.now,
    }
    options.update(overrides)
    return options


@asynccontextmanager
async def engine_on(
    sim: SimServer,
    db_path: Path,
    *,
    notifier: RecordingNotifier | None = None,
    pd_timeout: float = 10.0,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    """An Engine on `sim` and a database at `db_path`, closed (with its tasks) on exit."""
    recorder = notifier or RecordingNotifier()
    db = await Database.open(db_path)
    try:
        repos = Repositories.on(db)
        async with open_pd_client(sim.pd_url, retries=0, http_timeout=pd_timeout) as pd:
            options = engine_kwargs(sim, **overrides)
            engine = Engine(pd=pd, repos=repos, notifier=recorder, **options)
            try:
                yield Harness(
                    sim=sim,
                    engine=engine,
                    repos=repos,
                    db=db,
                    pd=pd,
                    notifier=recorder,
                    clock=options["clock"],
                )
            finally:
                await engine.close()
    finally:
        await db.close()


def leader_region(sim: SimServer, leader: int, voters: tuple[int, ...]) -> int:
    """A region whose leader is on `leader` and whose peers are exactly `voters` (sorted)."""
    for region in sim.cluster.ordered_regions():
        stores = tuple(sorted(region.store_ids()))
        if stores == voters and region.leader_store == leader:
            return int(region.id)
    raise AssertionError(f"no region led by store {leader} on stores {voters}")
