"""Who runs an execution: a claim per proposal, held by the process that runs it (from before its
gate until its run ends) and taken by a reconciler before it touches an unfinished execution, so
reconciliation only ever settles the runs of dead processes.

`RunClaims` is the port. Among replicas on PostgreSQL it is a session advisory lock per proposal
on a connection of the replica's own (`storage.claims.PgRunClaims`): the server lets a claim go
the moment its holder's session ends (a killed process at once, a lost host after TCP
keepalives), and nobody can take a claim whose holder is alive. `LocalClaims` is the claim of a
process alone on its database (SQLite: one process per file): claims held in this process only,
so what a previous process left unfinished is free to reconcile and a run of this process is not.

A claim is exclusive among every runner and reconciler of every process, including two in one
process. A runner checks `Claim.held()` right before its PD write and sends nothing once the
claim is lost (`ClaimLost`): its connection to the database went away, so a reconciler may be
settling the run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from engine.errors import EngineError
from engine.model import Execution

CLAIM_WAIT = 5.0
"""How long `claim_run` waits for a claim another runner holds while the proposal has no
execution record (that runner is at its gate: it wins it, or lets the claim go, at once)."""
_CLAIM_RETRY = 0.05


class ClaimLost(EngineError):
    """This process no longer holds the claim on a run: another process may be reconciling it,
    so this run stops and sends nothing more."""

    def __init__(self, message: str, *, proposal_id: str) -> None:
        super().__init__(message)
        self.proposal_id = proposal_id


class ClaimBusy(EngineError):
    """Another process kept the claim on a proposal that has no execution record yet."""


class Claim(Protocol):
    """One held claim on the run of one proposal."""

    proposal_id: str

    async def held(self) -> bool:
        """Whether this process still holds it (a round trip to the lock's server among
        replicas); False once its connection was lost. Never raises."""
        ...

    async def release(self) -> None:
        """Let it go (idempotent); never raises."""
        ...


class RunClaims(Protocol):
    """The claims of one process (see the module docstring)."""

    name: str
    """What holds them, for messages."""

    shared: bool
    """True when other processes share the database (claims are checked across processes and a
    periodic reconciliation may follow runs whose process died)."""

    async def claim(self, proposal_id: str) -> Claim | None:
        """Take the claim on `proposal_id` without waiting; None when another runner or
        reconciler (of any process, this one included) holds it. Raises
        `engine.errors.StorageError` when the claims' server cannot be reached."""
        ...

    async def close(self) -> None:
        """Let every claim go; never raises."""
        ...


class _LocalClaim:
    def __init__(self, owner: LocalClaims, proposal_id: str) -> None:
        self.proposal_id = proposal_id
        self._owner = owner
        self._released = False

    async def held(self) -> bool:
        return not self._released

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self._owner.held.discard(self.proposal_id)


class LocalClaims:
    """`RunClaims` of a process alone on its database (see the module docstring)."""

    name = "claims of this process (SQLite: one process per database file)"
    shared = False

    def __init__(self) -> None:
        self.held: set[str] = set()

    async def claim(self, proposal_id: str) -> Claim | None:
        if proposal_id in self.held:
            return None
        self.held.add(proposal_id)
        return _LocalClaim(self, proposal_id)

    async def close(self) -> None:
        self.held.clear()


async def claim_run(
    claims: RunClaims,
    proposal_id: str,
    existing: Callable[[str], Awaitable[Execution | None]],
) -> Claim | Execution:
    """The claim a runner takes before its gate. While another process holds it: that run's
    execution record is the answer once there is one (`existing`); until then that runner is
    at its gate, so wait for it (up to `CLAIM_WAIT`, then `ClaimBusy`)."""
    deadline = time.monotonic() + CLAIM_WAIT
    while True:
        claim = await claims.claim(proposal_id)
        if claim is not None:
            return claim
        found = await existing(proposal_id)
        if found is not None:
            return found
        if time.monotonic() >= deadline:
            raise ClaimBusy(
                f"another tikvops process has been starting proposal {proposal_id} for "
                f"{CLAIM_WAIT:g} s without recording its run; nothing was sent. Look at the "
                f"proposal again (`/tikv proposal {proposal_id}`) before retrying"
            )
        await asyncio.sleep(_CLAIM_RETRY)


__all__ = [
    "CLAIM_WAIT",
    "Claim",
    "ClaimBusy",
    "ClaimLost",
    "LocalClaims",
    "RunClaims",
    "claim_run",
]
