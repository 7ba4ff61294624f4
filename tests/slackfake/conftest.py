"""Fixtures for the stand-in's own tests: a real slack_sdk AsyncWebClient and a minimal,
test-only slack_bolt AsyncApp connected through the real AsyncSocketModeHandler."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from slackfake.server import SlackFake

BOT_TOKEN = "xoxb-test"
APP_TOKEN = "xapp-1-A0TIKVOPS-1-test"


def web_client(fake: SlackFake, token: str = BOT_TOKEN, **kwargs: object) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=fake.api_url, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def client(slack_fake: SlackFake) -> AsyncWebClient:
    return web_client(
        slack_fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )


@dataclass
class BoltRig:
    """A Bolt app wired to the fake; register listeners on ``app``, then ``await connect()``."""

    fake: SlackFake
    app: AsyncApp
    handler: AsyncSocketModeHandler | None = None

    async def connect(self) -> None:
        # ping_interval=1 so that a dropped socket is noticed within about a second.
        self.handler = AsyncSocketModeHandler(self.app, APP_TOKEN, ping_interval=1)
        await self.handler.connect_async()
        await self.fake.wait_for_socket(timeout=5)


@pytest.fixture
async def bolt(slack_fake: SlackFake) -> AsyncIterator[BoltRig]:
    client = web_client(
        slack_fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)]
    )
    rig = BoltRig(slack_fake, AsyncApp(client=client))
    try:
        yield rig
    finally:
        if rig.handler is not None:
            await rig.handler.close_async()
