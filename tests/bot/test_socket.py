"""The Socket Mode websocket runs on a session of the one session factory
(`operator_tikv.sessions.new_session`), against the Slack stand-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from bot import socket as socket_module
from tests.bot.conftest import BOB, CHANNEL, Harness

Make = Callable[..., Awaitable[Harness]]


async def test_the_websocket_runs_on_a_factory_session_and_the_sdks_own_is_closed(
    bot_harness: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[aiohttp.ClientSession] = []
    factory = socket_module.new_session

    def recording(**kwargs: Any) -> aiohttp.ClientSession:
        session = factory(**kwargs)
        made.append(session)
        return session

    sdk_own: list[aiohttp.ClientSession] = []

    class Recording(socket_module.EnvelopeHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            sdk_own.append(self.client.aiohttp_client_session)

    monkeypatch.setattr(socket_module, "new_session", recording)
    monkeypatch.setattr(socket_module, "EnvelopeHandler", Recording)
    h = await bot_harness()
    runner = h.bot.socket
    [ours] = made
    assert runner.session is ours and runner.connected
    assert isinstance(ours.cookie_jar, aiohttp.DummyCookieJar)  # the factory's sessions
    # the session the SDK built for itself is not used, and closed at once
    [theirs] = sdk_own
    assert theirs is not ours and theirs.closed
    # requests arrive over it: a command is acked and answered
    assert dict(await h.fake.slash_command(user=BOB, text="stores", channel=CHANNEL)) == {}
    await h.settle()
    assert [m.text for m in h.fake.ephemerals(user=BOB)] == ["4 stores"]
    await h.bot.stop()
    h.stopped = True
    assert ours.closed and runner.session is None
