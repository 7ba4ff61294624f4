"""Fixtures for the Slack bot tests: the simulator as PD, the Slack stand-in, and the real bot
(`SlackBot`: Bolt `AsyncApp` over a real Socket Mode websocket) wired to the real engine on a
temporary SQLite file.

`bot_harness` is a factory: `h = await bot_harness(approvers=[...])` starts a bot against the
shared `fake` (Slack), `cluster` (simulator) and database file; `await h.stop()` stops it
(keeping the database), and `await bot_harness(...)` again starts a new one on the same
database (restart tests). Everything started is stopped at teardown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.app import SlackBot
from bot.client import build_web_client, close_web_client
from bot.config import BotConfig
from bot.notifier import SlackNotifier
from engine.clock import SystemClock
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message
from tikvops.runtime import Runtime, open_runtime
from tikvops.settings import Settings

ALICE = "U0ALICE"  # approver (also through the @oncall group S0ONCALL)
BOB = "U0BOB"  # not an approver
CAROL = "U0CAROL"  # approver by user ID
GUEST = "U0GUEST"  # a guest account (is_restricted)
CHANNEL = "C0OPS"
OTHER_CHANNEL = "C0OTHER"


@pytest.fixture
async def cluster(sim_factory: Callable[..., Awaitable[SimServer]]) -> SimServer:
    """PD for the bot tests: a 4-store simulated cluster (a drain needs 3 other Up stores)
    whose time runs 20x faster than the wall clock, so drains finish in well under a second."""
    return await sim_factory(stores=4, regions=120, speed=20.0, seed=7, auto_tick=True)


@pytest.fixture
async def make_web_client() -> AsyncIterator[Callable[[BotConfig], AsyncWebClient]]:
    """`build_web_client(config)`, closed at teardown (its shared HTTP session with it)."""
    made: list[AsyncWebClient] = []

    def make(config: BotConfig) -> AsyncWebClient:
        client = build_web_client(config)
        made.append(client)
        return client

    yield make
    for client in made:
        await close_web_client(client)


@pytest.fixture
async def fake(make_slack_fake: Callable[..., Awaitable[SlackFake]]) -> SlackFake:
    return await make_slack_fake(
        channels={CHANNEL: "tikv-ops", OTHER_CHANNEL: "random"},
        users={
            ALICE: "alice",
            BOB: "bob",
            CAROL: "carol",
            GUEST: {"name": "guest", "is_restricted": True},
        },
        usergroups={"S0ONCALL": [ALICE]},
    )


@dataclass
class Harness:
    fake: SlackFake
    sim: SimServer
    bot: SlackBot
    runtime: Runtime
    notifier: SlackNotifier
    stack: AsyncExitStack
    stopped: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> Any:
        return self.runtime.engine

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.stack.aclose()

    async def settle(self) -> None:
        """Wait for background work (handlers, executions), turn the events into outbox
        items and deliver the outbox."""
        await self.bot.tasks.wait_idle()
        await self.engine.wait_idle()
        await self.bot.tasks.wait_idle()
        await self.bot.relay.drain()
        await self.bot.deliverer.run_once()
        while await self.bot.deliverer.run_once():
            pass

    def top(self) -> list[Message]:
        return self.fake.messages(CHANNEL)

    def thread(self, ts: str) -> list[Message]:
        return self.fake.thread(CHANNEL, ts)


def settings_for(sim: SimServer, db: Path, *, approvers: list[str], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "pd_url": sim.pd_url,
        "db": db,
        "channel": CHANNEL,
        "approvers": approvers,
        "proposal_ttl": 1800.0,
        "pd_timeout": 3.0,
        "pd_retries": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def bot_harness(
    fake: SlackFake, cluster: SimServer, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    started: list[Harness] = []

    async def make(
        *,
        approvers: list[str] | None = None,
        command_channels: tuple[str, ...] = (),
        app_id: str = "A0TIKVOPS",
        team_id: str = "T0TIKV",
        outbox_poll: float = 0.05,
        engine_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> Harness:
        stack = AsyncExitStack()
        clock = SystemClock()
        config_settings = settings_for(
            cluster,
            tmp_path / "tikvops.db",
            approvers=approvers if approvers is not None else [CAROL, "S0ONCALL"],
            **settings,
        )
        runtime = await stack.enter_async_context(
            open_runtime(
                config_settings,
                clock=clock,
                engine_options={
                    "poll_intervals": {"drain": 0.05, "undrain": 0.05, "transfer-leader": 0.05},
                    "deadlines": {"drain": 20.0, "undrain": 10.0, "transfer-leader": 10.0},
                    **(engine_options or {}),
                },
            )
        )
        config = BotConfig(
            bot_token="xoxb-test",
            app_token="xapp-1-A0TIKVOPS-1-test",
            channel=CHANNEL,
            api_url=fake.api_url,
            app_id=app_id,
            team_id=team_id,
            command_channels=command_channels,
            outbox_poll=outbox_poll,
            outbox_backoff_base=0.05,
            outbox_backoff_cap=0.5,
            rate_limit_retries=2,
            server_error_retries=0,  # 5xx are retried by the outbox (its back-off is short here)
            ping_interval=0.5,  # the SDK notices a dead socket within a few pings
        )
        bot = SlackBot(
            config,
            engine=runtime.engine,
            repos=runtime.repos,
            clock=clock,
            policy=runtime.policy,
        )
        try:
            await bot.start()
        except BaseException:
            await stack.aclose()
            raise
        stack.push_async_callback(bot.stop)
        await fake.wait_for_socket()
        harness = Harness(
            fake=fake, sim=cluster, bot=bot, runtime=runtime, notifier=bot.notifier, stack=stack
        )
        started.append(harness)
        return harness

    try:
        yield make
    finally:
        for harness in reversed(started):
            await harness.stop()
