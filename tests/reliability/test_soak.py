"""Soak: the simulator cycles through its fault scenarios while the bot (`tikvops run`, in its own
process, behind the Slack stand-in) watches; a stand-in user approves every proposal the bot
posts. After each fault is cleared every incident must resolve, and over the run the bot
process's resident memory, open file descriptors, threads and asyncio tasks stay flat. (The
simulator and the stand-in live in the test process and keep every request they saw, so they
are measured apart from the bot.)

The long variant (`--soak` or `TIKVOPS_SOAK=1`) runs an hour (`TIKVOPS_SOAK_SECONDS` changes
it) and prints the samples; the short one runs a few cycles in CI and checks the incidents.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot import callbacks
from sim.server import SimServer
from slackfake.server import SlackFake
from storage import Database, Repositories
from tests.plugins.sim import SimFactory
from tests.reliability.support import ALICE, CHANNEL, BotChild

SCENARIOS = ("disk-filling", "hot-region", "store-down", "slow-store", "pd-flaky")
LONG_SECONDS = float(os.environ.get("TIKVOPS_SOAK_SECONDS", "3600"))
SHORT_CYCLES = 3
BOT_SETTINGS = {
    "poll_interval": 0.3,
    "latency_grace": 0.5,
    "resolve_after": 0.6,
    "disk_grace": 0.0,
    "disconnected_grace": 0.0,
    "region_health_grace": 600.0,
    "hot_write_min_regions": 1,
    "pd_timeout": 2.0,
    "max_drained_stores": 5,
}
MakeFake = Callable[..., Awaitable[SlackFake]]


@dataclass
class Sample:
    cycle: int
    rss_mib: float
    fds: int
    threads: int
    tasks: int


def sample(cycle: int, pid: int, tasks_file: Path) -> Sample:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return Sample(
        cycle=cycle,
        rss_mib=int(status["VmRSS"].split()[0]) / 1024,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        threads=int(status["Threads"]),
        tasks=int(tasks_file.read_text()),
    )


@contextlib.asynccontextmanager
async def auto_approver(fake: SlackFake) -> AsyncIterator[list[str]]:
    """Click Approve (as alice) on every message that shows the button, once each."""
    clicked: list[str] = []

    async def loop() -> None:
        while True:
            for message in list(fake.messages(CHANNEL)):
                for m in [message, *fake.thread(CHANNEL, message.ts)]:
                    if m.ts in clicked or callbacks.APPROVE not in m.action_ids():
                        continue
                    clicked.append(m.ts)
                    with contextlib.suppress(Exception):
                        await fake.click(
                            user=ALICE,
                            channel=CHANNEL,
                            message_ts=m.ts,
                            action_id=callbacks.APPROVE,
                        )
            await asyncio.sleep(0.1)

    task = asyncio.create_task(loop())
    try:
        yield clicked
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def open_kinds(db_path: Path) -> set[str]:
    db = await Database.open(db_path)
    try:
        return {i.kind for i in await Repositories.on(db).incidents.list_open()}
    finally:
        await db.close()


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return False


async def clear_everything(sim: SimServer) -> None:
    """End the fault, and undo what approvals left behind (drained stores)."""
    sim.faults.clear()
    async with httpx.AsyncClient(base_url=sim.pd_url, timeout=5) as http:
        names = (await http.get("/pd/api/v1/schedulers")).json() or []
        for name in names:
            if name.startswith("evict-leader-scheduler"):
                await http.delete(f"/pd/api/v1/schedulers/{name}")


async def one_cycle(db: Path, sim: SimServer, scenario: str) -> tuple[set[str], set[str]]:
    """Inject, let the bot see it (and the approver act), clear; returns (seen, left open)."""
    sim.apply_scenario(scenario)
    seen: set[str] = set()

    async def noticed() -> bool:
        seen.update(await open_kinds(db))
        return bool(seen)

    await wait_for(noticed, 15.0)
    await asyncio.sleep(3.0)  # diagnosis, proposal, approval, execution
    await clear_everything(sim)

    async def all_resolved() -> bool:
        return not await open_kinds(db)

    await wait_for(all_resolved, 30.0)
    sim.clear_requests()  # the simulator's own log; not the bot's memory
    return seen, await open_kinds(db)


@dataclass
class SoakRun:
    samples: list[Sample]
    report: list[tuple[str, set[str], set[str]]]
    clicked: list[str]


async def soak(
    sim_factory: SimFactory,
    make_slack_fake: MakeFake,
    tmp_path: Path,
    *,
    seconds: float,
    cycles: int,
) -> SoakRun:
    sim = await sim_factory(stores=5, regions=150, speed=20.0, auto_tick=True)
    fake = await make_slack_fake()
    db = tmp_path / "tikvops.db"
    tasks_file = tmp_path / "tasks"
    run = SoakRun([], [], [])
    async with (
        BotChild.start(
            sim, fake, db, TIKVOPS_TEST_TASKS_FILE=str(tasks_file), **BOT_SETTINGS
        ) as bot,
        auto_approver(fake) as clicked,
    ):
        run.clicked = clicked
        started = time.monotonic()
        n = 0
        while n < cycles or time.monotonic() - started < seconds:
            scenario = SCENARIOS[n % len(SCENARIOS)]
            seen, left = await one_cycle(db, sim, scenario)
            run.report.append((scenario, seen, left))
            n += 1
            run.samples.append(sample(n, bot.process.pid, tasks_file))
            assert bot.process.returncode is None, bot.text()
    return run


def check_incidents(report: list[tuple[str, set[str], set[str]]]) -> None:
    left = [(scenario, still) for scenario, _, still in report if still]
    assert not left, f"incidents left open after their fault was cleared: {left}"
    noticed = {scenario for scenario, seen, _ in report if seen}
    assert noticed, report  # the bot did see the faults


@pytest.mark.timeout(240)
async def test_short_soak_resolves_every_incident(
    sim_factory: SimFactory, make_slack_fake: MakeFake, tmp_path: Path
) -> None:
    run = await soak(sim_factory, make_slack_fake, tmp_path, seconds=0, cycles=SHORT_CYCLES)
    check_incidents(run.report)
    assert run.clicked  # proposals were made and approved


@pytest.mark.soak
@pytest.mark.timeout(LONG_SECONDS + 600)
async def test_an_hour_of_faults_leaves_the_bot_flat(
    sim_factory: SimFactory, make_slack_fake: MakeFake, tmp_path: Path
) -> None:
    run = await soak(sim_factory, make_slack_fake, tmp_path, seconds=LONG_SECONDS, cycles=10)
    check_incidents(run.report)
    for s in run.samples[:: max(1, len(run.samples) // 20)] + run.samples[-1:]:
        print(
            f"cycle {s.cycle:>5}: RSS {s.rss_mib:7.1f} MiB, fds {s.fds}, threads {s.threads}, "
            f"tasks {s.tasks}"
        )
    warm = run.samples[min(len(run.samples) - 1, 2 * len(SCENARIOS))]  # after two rounds
    last = run.samples[-1]
    summary = (
        f"{len(run.report)} cycles; bot RSS {warm.rss_mib:.1f} -> {last.rss_mib:.1f} MiB, "
        f"fds {warm.fds} -> {last.fds}, threads {warm.threads} -> {last.threads}, "
        f"tasks {warm.tasks} -> {last.tasks}"
    )
    print(summary)
    assert last.rss_mib - warm.rss_mib < 20, summary
    assert last.fds - warm.fds <= 3, summary
    assert last.threads - warm.threads <= 2, summary
    assert last.tasks - warm.tasks <= 3, summary
