"""Redelivery protection off the ack path (`bot.redelivery`) and the Web API client's shared HTTP
session (`bot.client`), in isolation. The whole path over a real socket (including a restart)
is in `test_app.py`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.client import (
    SessionRespond,
    SharedSessionWebClient,
    build_web_client,
    close_web_client,
    respond_via,
)
from bot.config import BotConfig
from bot.redelivery import CLAIM, Claim, RecentKeys, first_delivery, once
from engine.errors import StorageError
from storage import Repositories
from tests.plugins.storage import T0

TTL = timedelta(minutes=10)
RESPONDED: list[dict[str, Any]] = []


def test_recent_keys_recognise_any_key_until_it_expires() -> None:
    recent = RecentKeys(TTL)
    assert recent.repeat(["env:1", "req:a"], T0) is False
    assert recent.repeat(["env:1", "req:a"], T0) is True  # the same envelope again
    assert recent.repeat(["env:2", "req:a"], T0) is True  # a new envelope, same request
    assert recent.repeat(["env:2"], T0) is False  # a repeat is not remembered
    assert recent.repeat([], T0) is False
    assert recent.repeat(["env:1"], T0 + TTL) is False  # expired: new again
    assert len(recent) == 1  # only env:1 (again); the expired keys are gone


def test_recent_keys_forget_the_oldest_beyond_the_limit() -> None:
    recent = RecentKeys(TTL, limit=3)
    for n in range(5):
        assert recent.repeat([f"k{n}"], T0 + timedelta(seconds=n)) is False
    assert len(recent) == 3
    assert recent.repeat(["k4"], T0 + timedelta(seconds=5)) is True
    assert recent.repeat(["k0"], T0 + timedelta(seconds=5)) is False


class CountingDedup:
    """A `DedupRepo` that counts calls and can fail."""

    def __init__(self, answer: bool = False, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.answer = answer
        self.error = error

    async def seen(self, request_id: str, *, now: datetime, ttl: timedelta) -> bool:
        return await self.seen_any([request_id], now=now, ttl=ttl)

    async def seen_any(self, request_ids: Sequence[str], *, now: datetime, ttl: timedelta) -> bool:
        self.calls.append(tuple(request_ids))
        await asyncio.sleep(0)
        if self.error is not None:
            raise self.error
        return self.answer

    async def purge(self, now: datetime) -> int:
        return 0


async def test_a_claim_checks_all_keys_once_in_one_call() -> None:
    dedup = CountingDedup()
    claim = Claim(dedup, ["env:1", "req:a"], now=T0, ttl=TTL)
    results = await asyncio.gather(*(claim.first() for _ in range(5)))
    assert results == [True] * 5
    assert dedup.calls == [("env:1", "req:a")]


async def test_a_claim_says_repeat_when_the_store_does() -> None:
    assert await Claim(CountingDedup(answer=True), ["env:1"], now=T0, ttl=TTL).first() is False


async def test_a_claim_counts_as_first_when_the_store_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dedup = CountingDedup(error=StorageError("the database is locked"))
    assert await Claim(dedup, ["env:1"], now=T0, ttl=TTL).first() is True
    assert "could not check env:1 for redelivery" in caplog.text


async def test_a_claim_without_keys_asks_nothing() -> None:
    dedup = CountingDedup(answer=True)
    assert await Claim(dedup, [], now=T0, ttl=TTL).first() is True
    assert dedup.calls == []


async def test_claims_survive_a_restart_through_the_database(repos: Repositories) -> None:
    keys = ["slack-envelope:E1", "slack-request:action:1.2:U1"]
    assert await Claim(repos.dedup, keys, now=T0, ttl=TTL).first() is True
    # a new process: new memory, new claim objects, the same database
    assert RecentKeys(TTL).repeat(keys, T0) is False
    later = T0 + timedelta(minutes=1)
    assert await Claim(repos.dedup, keys, now=later, ttl=TTL).first() is False
    assert await Claim(repos.dedup, keys[1:], now=later, ttl=TTL).first() is False


async def test_once_runs_the_work_only_on_the_first_delivery() -> None:
    ran: list[str] = []

    async def work(name: str) -> None:
        ran.append(name)

    first: dict[str, Any] = {CLAIM: Claim(CountingDedup(), ["env:1"], now=T0, ttl=TTL)}
    repeat: dict[str, Any] = {CLAIM: Claim(CountingDedup(answer=True), ["env:1"], now=T0, ttl=TTL)}
    await once(first, lambda: work("first"))
    await once(repeat, lambda: work("repeat"))  # no coroutine is left un-awaited either
    await once({}, lambda: work("no claim"))
    assert ran == ["first", "no claim"]
    assert await first_delivery({}) is True
    once(repeat, lambda: work("never started")).close()  # refused at shutdown: no warning
    assert ran == ["first", "no claim"]


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[int]]]:
    """A Web API stand-in that records the client port of every call (one port per TCP
    connection)."""
    ports: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        ports.append(int(peer[1]) if peer else -1)
        if request.path.startswith("/respond"):
            RESPONDED.append(await request.json())
            return web.Response(text="ok")
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/api/{method}", handle)
    app.router.add_post("/respond/{id}", handle)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield str(server.make_url("/api/")), ports
    finally:
        await server.close()


def session_of(client: SharedSessionWebClient) -> ClientSession | None:
    return client.session


def closed(session: ClientSession) -> bool:
    return session.closed


def _config(api_url: str) -> BotConfig:
    return BotConfig(
        bot_token="xoxb-test",
        app_token="xapp-1-A0TIKVOPS-1-test",
        channel="C0OPS",
        api_url=api_url,
        connection_retries=0,
        rate_limit_retries=0,
        server_error_retries=0,
    )


async def test_web_api_calls_share_one_session_and_connection(
    api: tuple[str, list[int]],
) -> None:
    url, ports = api
    client = build_web_client(_config(url))
    assert isinstance(client, SharedSessionWebClient)
    assert session_of(client) is None  # nothing is opened before the first call
    try:
        for _ in range(5):
            await client.auth_test()
        session = session_of(client)
        assert session is not None and not closed(session)
        await asyncio.gather(*(client.auth_test() for _ in range(20)))
        assert session_of(client) is session
    finally:
        await close_web_client(client)
    assert closed(session) and session_of(client) is None
    assert len(ports) == 25
    assert len(set(ports[:5])) == 1  # one keep-alive connection for sequential calls
    assert len(set(ports)) <= 20
    # after close, calls still work, each on a session of its own that is closed again
    await client.auth_test()
    assert session_of(client) is None and len(ports) == 26


async def test_answers_to_response_urls_use_the_shared_session(
    api: tuple[str, list[int]],
) -> None:
    url, ports = api
    RESPONDED.clear()
    client = build_web_client(_config(url))
    response_url = url.replace("/api/", "/respond/1")
    try:
        bolts = AsyncRespond(response_url=response_url)
        respond = respond_via(bolts, client)
        assert isinstance(respond, SessionRespond) and respond.response_url == response_url
        first = await respond(
            text="4 stores",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*4 stores*"}}],
            response_type="ephemeral",
            replace_original=False,
        )
        second = await respond(text="again")
        assert first.status_code == 200 and second.status_code == 200
    finally:
        await close_web_client(client)
    assert RESPONDED == [
        {
            "text": "4 stores",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*4 stores*"}}],
            "response_type": "ephemeral",
            "replace_original": False,
        },
        {"text": "again"},
    ]
    assert len(set(ports)) == 1  # both answers on one connection
    # without a response_url, or once the client is closed, Bolt's own respond is kept
    assert respond_via(AsyncRespond(response_url=None), client).response_url is None
    assert not isinstance(respond_via(bolts, client), SessionRespond)
