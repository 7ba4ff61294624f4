"""Pytest fixtures for the local Slack stand-in (slackfake).

``slack_fake``: a started SlackFake with the default workspace (team T0TIKV, app A0TIKVOPS,
tokens ``xoxb-test`` / ``xapp-1-A0TIKVOPS-1-test``, channel C0OPS #tikv-ops, users U0ALICE alice
and U0BOB bob, user group S0ONCALL @oncall = [alice], bot U0TIKVBOT / B0TIKVBOT), listening on
127.0.0.1 with a free port and stopped at teardown.

``make_slack_fake``: an async factory for differently configured fakes, e.g.
``fake = await make_slack_fake(users={"U1": "carol"}, ack_timeout=0.5)``.

Proxy variables are removed for the test, because slack_sdk would send loopback traffic to them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from slackfake.server import SlackFake

_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def slack_fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SlackFake]:
    _no_proxy(monkeypatch)
    fake = SlackFake()
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def make_slack_fake(
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Callable[..., Awaitable[SlackFake]]]:
    _no_proxy(monkeypatch)
    started: list[SlackFake] = []

    async def make(**kwargs: Any) -> SlackFake:
        fake = SlackFake(**kwargs)
        await fake.start(host="127.0.0.1", port=0)
        started.append(fake)
        return fake

    try:
        yield make
    finally:
        for fake in reversed(started):
            await fake.stop()
