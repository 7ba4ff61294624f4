"""Reconciliation touches only the runs of dead processes: two engines (two replicas) on one
real PostgreSQL and the simulator, each with its own run claims (`storage.claims`). A run paused
before its PD write while its replica lives is left alone by the other replica's reconciliation
and completes with exactly one write; once the runner's session is gone (what its death looks
like to the server), the other replica settles the run ("nothing was sent") and the runner, let
go, sends nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest

from engine.errors import ExecutionFinished
from engine.model import ExecutionStatus, ProposalState
from engine.results import ProposalCreated
from engine.service import Engine
from operator_tikv.pd import open_pd_client
from sim.server import SimServer
from storage import PostgresUrl, Repositories, open_database
from storage.claims import PgRunClaims
from tests.engine.test_service_support import ALICE, OPERATOR, engine_kwargs
from tests.engine.words import handle_text
from tests.plugins.sim import SimFactory

Checkpoint = Callable[[str], Awaitable[None]]


class Replica:
    def __init__(self, engine: Engine, repos: Repositories, claims: PgRunClaims) -> None:
        self.engine = engine
        self.repos = repos
        self.claims = claims


@asynccontextmanager
async def replica(
    sim: SimServer, url: str, *, checkpoint: Checkpoint | None = None
) -> AsyncIterator[Replica]:
    db = await open_database(PostgresUrl(url))
    claims = PgRunClaims(url)
    try:
        repos = Repositories.on(db)
        async with open_pd_client(sim.pd_url, retries=0, http_timeout=10.0) as pd:
            options: dict[str, Any] = engine_kwargs(sim, auto_execute=False, claims=claims)
            if checkpoint is not None:
                options["checkpoint"] = checkpoint
            engine = Engine(pd=pd, repos=repos, **options)
            try:
                yield Replica(engine, repos, claims)
            finally:
                await engine.close()
    finally:
        await claims.close()
        await db.close()


class Pause:
    """A checkpoint that holds the run at `step` until `go` is set."""

    def __init__(self, step: str) -> None:
        self.step = step
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def __call__(self, name: str) -> None:
        if name == self.step:
            self.reached.set()
            await self.go.wait()


def posts(sim: SimServer) -> int:
    return len([r for r in sim.requests if r.store_id is None and r.method == "POST"])


async def cut(url: str, pid: int | None) -> None:
    """End a session from outside: what the server sees when its replica dies."""
    assert pid is not None
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def start_paused(runner: Replica, pause: Pause) -> tuple[str, asyncio.Task[Any]]:
    created = await handle_text(runner.engine, "drain 4", OPERATOR)
    assert isinstance(created, ProposalCreated), created
    await runner.engine.approve(created.proposal.id, ALICE)
    task = asyncio.create_task(runner.engine.execute(created.proposal.id))
    async with asyncio.timeout(20):
        await pause.reached.wait()
    return created.proposal.id, task


@pytest.mark.parametrize("step", ["started", "before_request"])
async def test_a_run_whose_replica_lives_is_left_to_it_and_writes_once(
    sim_factory: SimFactory, postgres_schema_url: str, step: str
) -> None:
    sim = await sim_factory(stores=4)
    pause = Pause(step)
    async with (
        replica(sim, postgres_schema_url, checkpoint=pause) as runner,
        replica(sim, postgres_schema_url) as leader,
    ):
        pid, task = await start_paused(runner, pause)

        # The other replica starts leading and reconciles, and follows periodically.
        assert await leader.engine.reconcile() == []
        assert await leader.engine.executor.follow() == []
        held = await leader.repos.executions.get(pid)
        assert held is not None and not held.is_finished

        pause.go.set()
        execution = await task
        await runner.engine.wait_idle()
        assert execution.status is ExecutionStatus.SUCCEEDED
        proposal = await leader.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.SUCCEEDED
        assert posts(sim) == 1
        assert sim.cluster.store(4).leader_count == 0
        # Its claim went with the run: a later reconciliation finds nothing to do.
        assert await leader.engine.reconcile() == []
        assert posts(sim) == 1


@pytest.mark.parametrize("step", ["started", "before_request"])
async def test_a_run_whose_replica_died_is_settled_and_its_runner_sends_nothing(
    sim_factory: SimFactory, postgres_schema_url: str, step: str
) -> None:
    sim = await sim_factory(stores=4)
    pause = Pause(step)
    async with (
        replica(sim, postgres_schema_url, checkpoint=pause) as runner,
        replica(sim, postgres_schema_url) as leader,
    ):
        pid, task = await start_paused(runner, pause)
        await cut(postgres_schema_url, runner.claims.backend_pid)

        settled = await leader.engine.reconcile()
        assert [e.proposal_id for e in settled] == [pid]
        assert settled[0].status is ExecutionStatus.RECONCILED_FAILED
        proposal = await leader.repos.proposals.get(pid)
        assert proposal is not None and proposal.state is ProposalState.FAILED

        # The runner was only cut off, not dead: let go, it must not write.
        pause.go.set()
        execution = await task
        assert execution.status is ExecutionStatus.RECONCILED_FAILED
        await asyncio.sleep(0.2)
        assert posts(sim) == 0
        assert sim.cluster.store(4).leader_count > 0
        stored = await leader.repos.executions.get(pid)
        assert stored is not None and stored.status is ExecutionStatus.RECONCILED_FAILED


async def test_a_finished_execution_record_is_never_changed(
    sim_factory: SimFactory, postgres_schema_url: str
) -> None:
    sim = await sim_factory(stores=4)
    pause = Pause("started")
    async with replica(sim, postgres_schema_url, checkpoint=pause) as runner:
        pid, task = await start_paused(runner, pause)
        await cut(postgres_schema_url, runner.claims.backend_pid)
        async with replica(sim, postgres_schema_url) as leader:
            await leader.engine.reconcile()
        finished = await runner.repos.executions.get(pid)
        assert finished is not None and finished.is_finished
        with pytest.raises(ExecutionFinished):
            await runner.repos.executions.update(
                finished.model_copy(update={"status": ExecutionStatus.REQUEST_SENT})
            )
        pause.go.set()
        await task
        assert posts(sim) == 0
