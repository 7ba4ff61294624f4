"""Crash recovery with real processes: the engine runs in a subprocess
(`tests/reliability/engine_child.py`) against the simulator's PD and a temporary database, is
SIGKILLed at a chosen step of an execution (stopped there deterministically by a checkpoint),
and started again. The restart reconciles against PD: the final state is right and PD received
the write at most once. Each test runs on SQLite and on PostgreSQL (`db_path`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sim.server import SimServer
from storage import Repositories, open_database
from tests.plugins.sim import SimFactory
from tests.reliability.support import BACKENDS, DbTarget, backend_target, db_arg

ROOT = Path(__file__).resolve().parents[2]
EVICT = ("POST", "/pd/api/v1/schedulers")
CHILD_TIMEOUT = 60.0


def evict_posts(sim: SimServer) -> int:
    return sum(1 for r in sim.requests if (r.method, r.path) == EVICT and r.store_id is None)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TIKVOPS_", "SLACK_"))}
    env.update(extra)
    return env


@contextlib.asynccontextmanager
async def clock_running(sim: SimServer) -> AsyncIterator[None]:
    """Move the simulator's virtual time while a child process works (1 s per 20 ms)."""

    async def tick() -> None:
        while True:
            sim.cluster.advance(1.0)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_child(
    *args: str, env: dict[str, str], kill_at_marker: Path | None = None
) -> tuple[int, dict[str, Any] | None]:
    """Run the child; with `kill_at_marker`, SIGKILL it once it writes the marker file."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.engine_child",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        if kill_at_marker is not None:
            async with asyncio.timeout(CHILD_TIMEOUT):
                while not kill_at_marker.exists():
                    if process.returncode is not None:
                        break
                    await asyncio.sleep(0.01)
            assert kill_at_marker.exists(), "the child never reached its pause point"
            process.send_signal(signal.SIGKILL)
        async with asyncio.timeout(CHILD_TIMEOUT):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if kill_at_marker is None:
        assert process.returncode == 0, err.decode()[-2000:]
    return process.returncode or 0, json.loads(lines[-1]) if lines else None


@pytest.fixture(params=BACKENDS)
def db_path(request: pytest.FixtureRequest, tmp_path: Path) -> DbTarget:
    """The engine's database: a SQLite file, or a fresh PostgreSQL database."""
    return backend_target(request, tmp_path)


async def stored(db_path: DbTarget) -> dict[str, Any]:
    db = await open_database(db_path)
    try:
        repos = Repositories.on(db)
        proposal = await repos.proposals.get("P-1")
        execution = await repos.executions.get("P-1")
        assert proposal is not None
        return {
            "state": proposal.state.value,
            "execution": execution.status.value if execution else None,
            "outcome": proposal.outcome,
            "audit": [e.action for e in reversed(await repos.audit.list_recent(limit=200))],
        }
    finally:
        await db.close()


@pytest.mark.parametrize(
    ("step", "sent_before_kill", "final_state", "final_execution", "posts"),
    [
        # ("started", before the preflight, is covered in-process in tests/engine)
        ("before_request", 0, "failed", "reconciled_failed", 0),
        ("after_request", 1, "succeeded", "reconciled_succeeded", 1),
        ("verifying", 1, "succeeded", "reconciled_succeeded", 1),
    ],
)
async def test_sigkill_at_each_step_then_restart_reconciles_without_resending(
    sim_factory: SimFactory,
    tmp_path: Path,
    db_path: DbTarget,
    step: str,
    sent_before_kill: int,
    final_state: str,
    final_execution: str,
    posts: int,
) -> None:
    sim = await sim_factory(stores=4)
    marker = tmp_path / "paused"
    params = json.dumps({"store_id": 4})
    async with clock_running(sim):
        code, _ = await run_child(
            "run",
            sim.pd_url,
            db_arg(db_path),
            "drain",
            params,
            env=child_env(TIKVOPS_TEST_PAUSE_AT=step, TIKVOPS_TEST_MARKER=str(marker)),
            kill_at_marker=marker,
        )
        assert code == -signal.SIGKILL
        assert marker.read_text() == step
        killed = await stored(db_path)
        assert killed["state"] == "executing"
        assert evict_posts(sim) == sent_before_kill

        code, report = await run_child("restart", sim.pd_url, db_arg(db_path), env=child_env())
    assert report is not None
    assert report["proposals"] == [
        {
            "id": "P-1",
            "state": final_state,
            "outcome": report["proposals"][0]["outcome"],
            "execution": final_execution,
        }
    ]
    assert evict_posts(sim) == posts
    final = await stored(db_path)
    assert final["state"] == final_state
    if posts:
        assert sim.cluster.store(4).leader_count == 0
        assert "→ 0" in final["outcome"]
        assert "execution.reconciling" in final["audit"]
    else:
        assert 4 not in sim.cluster.schedulers.evicted_stores()
        assert "nothing was sent" in final["outcome"] or "not sent again" in final["outcome"]
    assert final["audit"].count("proposal.start") == 1


async def test_approved_but_never_started_runs_once_after_restart(
    sim_factory: SimFactory, db_path: DbTarget
) -> None:
    sim = await sim_factory(stores=4)
    params = json.dumps({"store_id": 4})
    async with clock_running(sim):
        _, report = await run_child(
            "approve-only", sim.pd_url, db_arg(db_path), "drain", params, env=child_env()
        )
        assert report is not None
        assert report["proposals"][0]["state"] == "approved"
        assert evict_posts(sim) == 0

        _, report = await run_child("restart", sim.pd_url, db_arg(db_path), env=child_env())
        assert report is not None
        assert report["proposals"][0]["state"] == "succeeded"
        assert report["proposals"][0]["execution"] == "succeeded"
        assert sim.cluster.store(4).leader_count == 0
    assert evict_posts(sim) == 1
