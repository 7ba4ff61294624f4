"""Soak: the simulator cycles through its fault scenarios while the bot (as `tikvops run` builds
it, in this process, behind the Slack stand-in) watches; a stand-in user approves every
proposal the bot posts. After each fault is cleared every incident must resolve, and over the
run the process's resident memory, open file descriptors and asyncio tasks stay flat.

The long variant (`--soak` or `TIKVOPS_SOAK=1`) runs an hour (`TIKVOPS_SOAK_SECONDS` changes
it); the short one runs a few cycles in CI and checks only the incidents and that nothing
fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bot import callbacks
from sim.server import SimServer
from slackfake.server import SlackFake
from tests.plugins.sim import SimFactory
from tests.reliability.support import ALICE, CHANNEL
from tikvops.settings import Settings
from tikvops.stack import SlackOptions, Stack, open_stack

SCENARIOS = ("disk-filling", "hot-region", "store-down", "slow-store", "pd-flaky")
LONG_SECONDS = float(os.environ.get("TIKVOPS_SOAK_SECONDS", "3600"))
SHORT_CYCLES = 3
FAST = SlackOptions(outbox_poll=0.05, outbox_backoff_base=0.05, ping_interval=1.0)
ENGINE = {
    "poll_intervals": {n: 0.1 for n in ("drain", "undrain", "transfer-peer", "split")},
    "deadlines": {"drain": 30.0, "transfer-peer": 30.0, "split": 30.0, "transfer-leader": 30.0},
}


def settings(sim: SimServer, fake: SlackFake, db: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        pd_url=sim.pd_url,
        db=db,
        slack_bot_token=fake.workspace.bot_token,
        slack_app_token=fake.workspace.app_token,
        slack_api_url=fake.api_url,
        slack_app_id=fake.workspace.app_id,
        slack_team_id=fake.workspace.team_id,
        channel=CHANNEL,
        approvers=[ALICE],
        poll_interval=0.3,
        latency_grace=0.5,
        resolve_after=0.6,
        disk_grace=0.0,
        disconnected_grace=0.0,
        region_health_grace=600.0,
        hot_write_min_regions=1,
        pd_timeout=2.0,
        health_addr="127.0.0.1:0",
        max_drained_stores=5,
        anthropic_api_key=None,
    )


@dataclass
class Sample:
    at: float
    rss_mib: float
    fds: int
    tasks: int


def sample() -> Sample:
    gc.collect()
    rss = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return Sample(time.monotonic(), rss, len(os.listdir("/proc/self/fd")), len(asyncio.all_tasks()))


@contextlib.asynccontextmanager
async def auto_approver(fake: SlackFake) -> AsyncIterator[list[str]]:
    """Click Approve (as alice) on every message that shows the button, once each."""
    clicked: list[str] = []

    async def loop() -> None:
        while True:
            for message in list(fake.messages(CHANNEL)):
                candidates = [message, *fake.thread(CHANNEL, message.ts)]
                for m in candidates:
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


async def open_kinds(stack: Stack) -> set[str]:
    return {i.kind for i in await stack.runtime.repos.incidents.list_open()}


async def wait_for(predicate_coro, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate_coro():
            return True
        await asyncio.sleep(0.1)
    return False


async def clear_everything(sim: SimServer) -> None:
    """End the fault, and undo what approvals left behind (drained stores)."""
    sim.faults.clear()
    async with httpx.AsyncClient(base_url=sim.pd_url, timeout=5) as http:
        names = (await http.get("/pd/api/v1/schedulers")).json() or []
        for name in names:
            if name.startswith("evict-leader-scheduler"):
                await http.delete(f"/pd/api/v1/schedulers/{name}")


async def one_cycle(stack: Stack, sim: SimServer, scenario: str) -> tuple[set[str], set[str]]:
    """Inject, let the bot see it (and the approver act), clear; returns (seen, left open)."""
    sim.apply_scenario(scenario)
    seen: set[str] = set()

    async def noticed() -> bool:
        seen.update(await open_kinds(stack))
        return bool(seen)

    await wait_for(noticed, 15.0)
    await asyncio.sleep(2.0)  # diagnosis, proposal, approval, execution
    await stack.wait_idle()
    await clear_everything(sim)

    async def all_resolved() -> bool:
        return not await open_kinds(stack)

    await wait_for(all_resolved, 30.0)
    return seen, await open_kinds(stack)


async def soak(stack: Stack, sim: SimServer, fake: SlackFake, *, seconds: float, cycles: int):  # type: ignore[no-untyped-def]
    samples: list[Sample] = []
    report: list[tuple[str, set[str], set[str]]] = []
    started = time.monotonic()
    async with auto_approver(fake) as clicked:
        n = 0
        while n < cycles or time.monotonic() - started < seconds:
            scenario = SCENARIOS[n % len(SCENARIOS)]
            seen, left = await one_cycle(stack, sim, scenario)
            report.append((scenario, seen, left))
            samples.append(sample())
            n += 1
    return samples, report, clicked


@pytest.fixture
async def bot(
    sim_factory: SimFactory,
    make_slack_fake,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> AsyncIterator[tuple[Stack, SimServer, SlackFake]]:
    sim = await sim_factory(stores=5, regions=150, speed=20.0, auto_tick=True)
    fake = await make_slack_fake()
    async with open_stack(
        settings(sim, fake, tmp_path / "tikvops.db"),
        slack=FAST,
        engine_options=ENGINE,
        serve_health=False,
    ) as stack:
        await fake.wait_for_socket(timeout=10)
        yield stack, sim, fake


def check_incidents(report: list[tuple[str, set[str], set[str]]]) -> None:
    left = [(scenario, still) for scenario, _, still in report if still]
    assert not left, f"incidents left open after their fault was cleared: {left}"
    noticed = {scenario for scenario, seen, _ in report if seen}
    assert noticed, report  # the bot did see the faults


@pytest.mark.timeout(240)
async def test_short_soak_resolves_every_incident(bot) -> None:  # type: ignore[no-untyped-def]
    stack, sim, fake = bot
    _, report, clicked = await soak(stack, sim, fake, seconds=0, cycles=SHORT_CYCLES)
    check_incidents(report)
    assert clicked  # proposals were made and approved


@pytest.mark.soak
@pytest.mark.timeout(LONG_SECONDS + 600)
async def test_an_hour_of_faults_leaves_memory_fds_and_tasks_flat(bot) -> None:  # type: ignore[no-untyped-def]
    stack, sim, fake = bot
    samples, report, _ = await soak(stack, sim, fake, seconds=LONG_SECONDS, cycles=10)
    check_incidents(report)
    warm = samples[min(len(samples) - 1, len(SCENARIOS))]  # after one full round
    last = samples[-1]
    summary = (
        f"{len(report)} cycles; RSS {warm.rss_mib:.1f} -> {last.rss_mib:.1f} MiB, "
        f"fds {warm.fds} -> {last.fds}, tasks {warm.tasks} -> {last.tasks}"
    )
    print(summary)
    assert last.rss_mib - warm.rss_mib < 30, summary
    assert last.fds - warm.fds <= 5, summary
    assert last.tasks - warm.tasks <= 5, summary
