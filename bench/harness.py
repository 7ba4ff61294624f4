"""The bot as a separate process for the benchmarks: `python -m tikvops run` against a
simulator and the local Slack stand-in, both served by the benchmark process on 127.0.0.1.

    async with slack_fake(users=...) as fake, in_process_sim(stores=4) as sim:
        async with bot_process(sim.pd_url, fake, tmp, poll_interval=5) as bot:
            ...  # bot.pid, bot.health_url, bot.cpu_seconds(), bot.rss_mib()

Everything listens on loopback with free ports and stops on exit (the bot with SIGTERM, then
SIGKILL if it does not stop within 20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT
from sim.server import SimServer
from slackfake.server import SlackFake

CHANNEL = "C0OPS"
ALICE = "U0ALICE"

#: Settings every benchmark bot gets (overridable): a simulator's start-up leaves some extra
#: and pending peers for a while, which is not what is measured.
BASE_SETTINGS: dict[str, Any] = {
    "channel": CHANNEL,
    "approvers": ALICE,
    "region_health_grace": 600,
    "proposal_ttl": 3600,
    "log_level": "WARNING",
}

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class BotProcess:
    process: asyncio.subprocess.Process
    health_url: str
    started_at: float
    ready_at: float
    lines: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the bot process so far (from /proc/PID/stat)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def bot_env(pd_url: str, fake: SlackFake, db: Path, **settings: Any) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")) and "proxy" not in k.lower()
    }
    values = {**BASE_SETTINGS, **settings, "pd_url": pd_url, "db": str(db)}
    for key, value in values.items():
        env[f"TIKVOPS_{key.upper()}"] = str(value)
    env["SLACK_BOT_TOKEN"] = fake.workspace.bot_token
    env["SLACK_APP_TOKEN"] = fake.workspace.app_token
    env["SLACK_API_URL"] = fake.api_url
    env["TIKVOPS_SLACK_APP_ID"] = fake.workspace.app_id
    env["TIKVOPS_SLACK_TEAM_ID"] = fake.workspace.team_id
    env["PYTHONPATH"] = str(ROOT)
    return env


async def _drain(stream: asyncio.StreamReader, lines: list[str]) -> None:
    while True:
        line = await stream.readline()
        if not line:
            return
        lines.append(line.decode(errors="replace").rstrip())


@contextlib.asynccontextmanager
async def bot_process(
    pd_url: str, fake: SlackFake, db: Path, **settings: Any
) -> AsyncIterator[BotProcess]:
    """Start `tikvops run` and wait until it says it started and its socket is connected."""
    port = free_port()
    settings.setdefault("health_addr", f"127.0.0.1:{port}")
    env = bot_env(pd_url, fake, db, **settings)
    started = time.time()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "run_bot.py"),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    assert process.stdout is not None and process.stderr is not None
    readers = [
        asyncio.create_task(_drain(process.stderr, lines)),
    ]
    try:
        async with asyncio.timeout(60):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    await asyncio.sleep(0.2)
                    raise RuntimeError("tikvops run exited:\n" + "\n".join(lines))
                line = raw.decode().rstrip()
                lines.append(line)
                if line.startswith("tikvops run: started"):
                    break
        readers.append(asyncio.create_task(_drain(process.stdout, lines)))
        await fake.wait_for_socket(timeout=30)
        host = settings["health_addr"]
        yield BotProcess(process, f"http://{host}", started, time.time(), lines)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


@contextlib.asynccontextmanager
async def slack_fake(**kwargs: Any) -> AsyncIterator[SlackFake]:
    fake = SlackFake(**kwargs)
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()


@contextlib.asynccontextmanager
async def in_process_sim(**kwargs: Any) -> AsyncIterator[SimServer]:
    options: dict[str, Any] = {"stores": 4, "regions": 1000, "auto_tick": True, "speed": 1.0}
    options.update(kwargs)
    server = SimServer(**options)
    await server.start(host="127.0.0.1", port=0)
    try:
        yield server
    finally:
        await server.stop()


def users(count: int) -> dict[str, str]:
    """`count` extra workspace users U0000..., plus alice and bob."""
    table = {f"U{n:04d}": f"user{n}" for n in range(count)}
    table.update({ALICE: "alice", "U0BOB": "bob"})
    return table
