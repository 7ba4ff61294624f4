"""Helpers for the reliability tests (not a test module): the bot as a child process
(`tests.reliability.bot_child`, i.e. `tikvops run`) against a simulator and the Slack stand-in
served by the test process, and small readers of the channel, the database and PD's log.

    async with BotChild.start(sim, fake, db_path) as bot:
        ...
        await bot.kill()          # SIGKILL, now

Everything waits on conditions with a bound, never on fixed durations.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot import callbacks
from engine.model import AuditEvent, Execution, Proposal
from sim.requestlog import RequestRecord
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from storage import PostgresUrl, Repositories, open_database

ROOT = Path(__file__).resolve().parents[2]
CHANNEL = "C0OPS"
ALICE = "U0ALICE"  # an approver
BOB = "U0BOB"  # proposes; not an approver
WAIT = 30.0

#: How many generated inputs each bad-input target tried (printed by conftest.py at the end).
INPUT_COUNTS: Counter[str] = Counter()


def pd_writes(sim: SimServer) -> list[RequestRecord]:
    return [r for r in sim.requests if r.path.startswith("/pd/") and r.method not in ("GET",)]


#: A SQLite file, or a PostgreSQL database (`tests.plugins.postgres`).
DbTarget = Path | PostgresUrl
BACKENDS = ["sqlite", "postgresql"]


def backend_target(request: Any, tmp_path: Path) -> DbTarget:
    """For a fixture parametrized over `BACKENDS`: a SQLite file in `tmp_path`, or a fresh
    PostgreSQL database of the session's server (skipped without PostgreSQL outside CI)."""
    if request.param == "sqlite":
        return tmp_path / "tikvops.db"
    return PostgresUrl(request.getfixturevalue("postgres_schema_url"))


def db_arg(db: DbTarget) -> str:
    """`db` as a child process's setting (a PostgreSQL URL with its password)."""
    return db.dsn if isinstance(db, PostgresUrl) else str(db)


def child_env(sim: SimServer, fake: SlackFake, db: DbTarget, **extra: Any) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")) and "proxy" not in k.lower()
    }
    settings: dict[str, Any] = {
        "pd_url": sim.pd_url,
        "db": db_arg(db),
        "channel": CHANNEL,
        "approvers": ALICE,
        "slack_app_id": fake.workspace.app_id,
        "slack_team_id": fake.workspace.team_id,
        "health_addr": "127.0.0.1:0",
        "poll_interval": 3600,
        "proposal_ttl": 3600,
        "log_level": "WARNING",
    }
    settings.update(extra)
    for key, value in settings.items():
        name = key if key.startswith(("SLACK_", "TIKVOPS_TEST_")) else f"TIKVOPS_{key.upper()}"
        env[name] = str(value)
    env["SLACK_BOT_TOKEN"] = fake.workspace.bot_token
    env["SLACK_APP_TOKEN"] = fake.workspace.app_token
    env["SLACK_API_URL"] = fake.api_url
    return env


@dataclass
class BotChild:
    process: asyncio.subprocess.Process
    output: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, sim: SimServer, fake: SlackFake, db: DbTarget, **settings: Any
    ) -> AsyncIterator[BotChild]:
        """Start the child and wait until it runs with its socket connected."""
        connections = fake.connections_opened
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.reliability.bot_child",
            cwd=ROOT,
            env=child_env(sim, fake, db, **settings),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        child = cls(process)
        assert process.stdout is not None and process.stderr is not None
        child._readers = [
            asyncio.create_task(child._drain(process.stdout)),
            asyncio.create_task(child._drain(process.stderr)),
        ]
        try:
            try:
                await fake.wait_for(
                    lambda: (
                        process.returncode is not None
                        or (
                            any(line.startswith("tikvops run: started") for line in child.output)
                            and fake.connections_opened > connections
                            and fake.active_sockets > 0
                        )
                    ),
                    timeout=WAIT,
                )
            except TimeoutError:
                raise AssertionError("bot did not start:\n" + child.text()) from None
            assert process.returncode is None, "bot exited at start:\n" + child.text()
            yield child
        finally:
            await child.stop()

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.output.append(line.decode(errors="replace").rstrip())

    def text(self) -> str:
        return "\n".join(self.output[-80:])

    async def kill(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; then the output readers end."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(20):
                    await self.process.wait()
            except TimeoutError:
                await self.kill()
        await asyncio.gather(*self._readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def clock_running(sim: SimServer, step: float = 1.0) -> AsyncIterator[None]:
    """Move the simulator's virtual time while a child works (`step` s per 20 ms)."""

    async def tick() -> None:
        while True:
            sim.cluster.advance(step)
            await asyncio.sleep(0.02)

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def proposal_message(fake: SlackFake, seen: set[str] | None = None) -> Message:
    """The first channel message (not in `seen`) with an Approve button."""
    seen = seen or set()

    def find() -> Message | None:
        for message in fake.messages(CHANNEL):
            if message.ts not in seen and callbacks.APPROVE in message.action_ids():
                return message
        return None

    found: Message = await fake.wait_for(find, timeout=WAIT)
    return found


def thread_text(fake: SlackFake, parent: Message) -> str:
    parts = []
    for message in fake.thread(CHANNEL, parent.ts):
        parts.append(message.text)
        parts.append(json.dumps(message.blocks or []))
    return "\n".join(parts)


@dataclass
class Stored:
    proposal: Proposal | None
    execution: Execution | None
    audit: list[AuditEvent]
    outbox_pending: int

    @property
    def actions(self) -> list[str]:
        return [e.action for e in self.audit]


async def read_db(db_path: DbTarget, proposal_id: str = "P-1") -> Stored:
    """What the database holds (a separate connection; WAL lets it read beside the bot)."""
    db = await open_database(db_path)
    try:
        repos = Repositories.on(db)
        proposal = await repos.proposals.get(proposal_id)
        execution = await repos.executions.get(proposal_id)
        audit = list(reversed(await repos.audit.list_recent(limit=500)))
        row = await db.fetchone("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
        pending = int(row[0]) if row else 0
        return Stored(proposal, execution, audit, pending)
    finally:
        await db.close()


async def wait_db(
    db_path: DbTarget, check: Callable[[Stored], bool], *, timeout: float = WAIT
) -> Stored:
    """Poll the database until `check` holds; returns what it read last."""
    last: Stored | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                last = await read_db(db_path)
                if check(last):
                    return last
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"database never reached the expected state: {last}") from None
