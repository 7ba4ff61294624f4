"""What people see in Slack when PD misbehaves: the running bot (`open_stack`, over a real
Socket Mode connection to the local Slack stand-in) in front of `HostilePD`.

- PD trickles: one "PD unreachable" message in the channel, and `/tikv status` answers
  (ephemeral) from what the monitor knows: "PD unreachable since …", stores "as of …";
- PD answers an empty store list while a store is Down: one new message saying PD's answer is
  not trustworthy; none of the open incidents is edited to resolved, and when PD answers
  properly again no incident is posted a second time (one extra message in all).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from slackfake.server import SlackFake
from slackfake.store import Message
from tests.bot.render_text import text_of
from tests.plugins.sim import SimFactory
from tests.reliability.hostile_pd import Hostile, HostilePD
from tikvops.settings import Settings
from tikvops.stack import SlackOptions, Stack, open_stack

CHANNEL = "C0OPS"
ALICE = "U0ALICE"
WAIT = 40.0
FAST_SLACK = SlackOptions(outbox_poll=0.05, outbox_backoff_base=0.05, ping_interval=1.0)


@dataclass
class Live:
    stack: Stack
    fake: SlackFake
    pd: HostilePD

    def top(self) -> list[Message]:
        return self.fake.messages(CHANNEL)

    def texts(self) -> list[str]:
        return [text_of(m.blocks) or m.text for m in self.top()]


@asynccontextmanager
async def live(
    sim_factory: SimFactory,
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    db: Path,
    *,
    down: int | None = None,
) -> AsyncIterator[Live]:
    sim = await sim_factory(stores=4)
    if down is not None:
        sim.faults.stop_store(down)
        sim.cluster.advance(1900)  # past max-store-down-time
    fake = await make_slack_fake(channels={CHANNEL: "tikv-ops"}, users={ALICE: "alice"})
    async with HostilePD(sim.pd_url) as pd:
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            pd_url=pd.url,
            db=db,
            poll_interval=0.3,
            pd_timeout=0.5,
            pd_retries=1,
            resolve_after=0,
            region_health_grace=600,
            health_addr="127.0.0.1:0",
            anthropic_api_key=None,
            approvers=[ALICE],
            slack_bot_token=fake.workspace.bot_token,
            slack_app_token=fake.workspace.app_token,
            slack_api_url=fake.api_url,
            slack_app_id=fake.workspace.app_id,
            slack_team_id=fake.workspace.team_id,
            channel=CHANNEL,
        )
        async with open_stack(settings, slack=FAST_SLACK) as stack:
            await fake.wait_for_socket()
            yield Live(stack, fake, pd)


async def until(condition: Callable[[], Any], what: str, within: float = WAIT) -> None:
    try:
        async with asyncio.timeout(within):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"within {within:g} s: {what}")


async def test_status_in_slack_with_a_trickling_pd_comes_from_what_the_monitor_knows(
    sim_factory: SimFactory,
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    tmp_path: Path,
) -> None:
    async with live(sim_factory, make_slack_fake, tmp_path / "db.sqlite") as bot:
        await until(lambda: bot.stack.monitor.ticks >= 1, "a first cycle read the stores")
        bot.pd.trickle_every = 0.1  # within the 0.5 s per-read idle timeout
        bot.pd.mode = Hostile.TRICKLE
        await until(
            lambda: any("PD unreachable" in t for t in bot.texts()), "a PD unreachable message"
        )
        await bot.fake.slash_command(user=ALICE, text="status", channel=CHANNEL)
        await until(lambda: bot.fake.ephemerals(user=ALICE), "an answer to /tikv status")
        [answer] = bot.fake.ephemerals(user=ALICE)
        shown = text_of(answer.blocks)
        assert "PD unreachable since" in shown
        assert "no complete answer within" in shown
        assert "Stores as of" in shown and "the monitor's last good read of PD" in shown
        for store_id in (1, 2, 3, 4):
            assert f"\n{store_id} " in shown
        assert [t for t in bot.texts() if "PD unreachable" in t][:1]
        assert len(bot.top()) == 1  # the one message about PD, nothing else


async def test_an_empty_store_list_posts_one_message_and_resolves_nothing(
    sim_factory: SimFactory,
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
    tmp_path: Path,
) -> None:
    async with live(sim_factory, make_slack_fake, tmp_path / "db.sqlite", down=4) as bot:
        await until(lambda: any("Store 4 down" in t for t in bot.texts()), "store 4 down posted")
        runs = bot.stack.scheduler.stats("monitor").runs
        await until(lambda: bot.stack.scheduler.stats("monitor").runs >= runs + 3, "cycles")
        before = {m.ts: text_of(m.blocks) for m in bot.top()}

        bot.pd.mode = Hostile.EMPTY_STORES  # {"count": 1, "stores": []}
        await until(lambda: len(bot.top()) == len(before) + 1, "one new message")
        [new] = [m for m in bot.top() if m.ts not in before]
        said = text_of(new.blocks)
        assert "PD unreachable" in said and "PD answer not trustworthy" in said
        assert "count 1 but lists 0 stores" in said
        runs = bot.stack.scheduler.stats("monitor").runs
        await until(lambda: bot.stack.scheduler.stats("monitor").runs >= runs + 5, "cycles")
        for ts in before:
            message = bot.fake.message(CHANNEL, ts)
            assert message is not None and "Resolved at" not in text_of(message.blocks)

        bot.pd.mode = Hostile.PASS
        await until(
            lambda: "Resolved at" in text_of(bot.fake.message(CHANNEL, new.ts).blocks),  # type: ignore[union-attr]
            "the PD message is edited to resolved",
        )
        runs = bot.stack.scheduler.stats("monitor").runs
        await until(lambda: bot.stack.scheduler.stats("monitor").runs >= runs + 5, "cycles")
        await bot.stack.wait_idle()
        assert len(bot.top()) == len(before) + 1  # nothing posted twice
        for ts in before:
            message = bot.fake.message(CHANNEL, ts)
            assert message is not None and "Resolved at" not in text_of(message.blocks)
