"""Owed Slack messages with several replicas: three deliverers, each with its own connection to
one database (PostgreSQL; SQLite too, where they are processes sharing a file), deliver every
item exactly once to the Slack stand-in and in order per thread, whichever of them takes it;
a deliverer that died holding an item (its lease lapsing) leaves it to another, which looks
Slack up first and does not post it twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.client import build_web_client, close_web_client
from bot.delivery_lookup import idempotency_key, post_metadata
from bot.outbox import Deliverer
from bot.queue import SlackOutbox
from bot.render.kit import rendered, section
from bot.retry import Backoff
from engine.clock import FakeClock
from slackfake.server import SlackFake
from storage import PostgresUrl, Repositories, SqlDatabase, open_database
from tests.bot.test_outbox import CHANNEL, config

LEASE = timedelta(seconds=30)
KEYS = ("incident:I-1", "incident:I-2", "proposal:P-9")
PER_KEY = 8


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | PostgresUrl:
    if request.param == "sqlite":
        return tmp_path / "tikvops.db"
    return PostgresUrl(request.getfixturevalue("postgres_schema_url"))


@pytest.fixture
async def databases(target: Path | PostgresUrl) -> AsyncIterator[list[SqlDatabase]]:
    opened = [await open_database(target) for _ in range(3)]
    try:
        yield opened
    finally:
        for db in opened:
            await db.close()


@pytest.fixture
async def client(slack_fake: SlackFake) -> AsyncIterator[AsyncWebClient]:
    made = build_web_client(config(slack_fake.api_url))
    yield made
    await close_web_client(made)


def deliverer(db: SqlDatabase, client: AsyncWebClient, clock: FakeClock) -> Deliverer:
    repos = Repositories.on(db)
    return Deliverer(
        repos.outbox,
        repos.slack_refs,
        client,
        clock,
        backoff=Backoff(base=1.0, cap=60.0, jitter=0.0),
        lease=LEASE,
    )


def texts(fake: SlackFake) -> list[str]:
    return [m.text for m in fake.messages(CHANNEL)]


async def test_three_deliverers_send_each_item_once_in_order_per_thread(
    databases: list[SqlDatabase], client: AsyncWebClient, slack_fake: SlackFake
) -> None:
    clock = FakeClock()
    queue = SlackOutbox(Repositories.on(databases[0]).outbox, clock)
    for n in range(PER_KEY):
        for key in KEYS:
            await queue.post(
                key, rendered(f"{key} #{n}", [section(f"{key} #{n}")]), channel=CHANNEL
            )
    replicas = [deliverer(db, client, clock) for db in databases]

    async def work(replica: Deliverer) -> int:
        sent = 0
        while await Repositories.on(databases[0]).outbox.depth():
            sent += await replica.run_once()
            await asyncio.sleep(0)
        return sent

    counts = await asyncio.gather(*(work(r) for r in replicas))
    posted = texts(slack_fake)
    assert sorted(posted) == sorted(f"{k} #{n}" for k in KEYS for n in range(PER_KEY))
    assert len(posted) == len(set(posted)), "nothing posted twice"
    for key in KEYS:
        assert [t for t in posted if t.startswith(key)] == [f"{key} #{n}" for n in range(PER_KEY)]
    assert sum(counts) == len(KEYS) * PER_KEY
    assert len(slack_fake.calls("chat.postMessage")) == len(KEYS) * PER_KEY


async def test_an_item_held_by_a_dead_deliverer_goes_out_once_after_its_lease(
    databases: list[SqlDatabase], client: AsyncWebClient, slack_fake: SlackFake
) -> None:
    clock = FakeClock()
    repos = Repositories.on(databases[0])
    queue = SlackOutbox(repos.outbox, clock)
    await queue.post("incident:I-1", rendered("first", [section("first")]), channel=CHANNEL)
    await queue.post("incident:I-1", rendered("second", [section("second")]), channel=CHANNEL)
    # A replica claims the first item, posts it, and dies before recording the delivery.
    [held] = await repos.outbox.claim(clock.now(), lease=LEASE, limit=1)
    metadata = post_metadata(idempotency_key(held))
    await client.chat_postMessage(channel=CHANNEL, text="first", metadata=metadata)
    survivor = deliverer(databases[1], client, clock)
    assert await survivor.run_once() == 0  # leased: neither it nor the reply behind it moves
    assert texts(slack_fake) == ["first"]
    clock.advance(LEASE)
    while await repos.outbox.depth():
        await survivor.run_once()
    assert texts(slack_fake) == ["first", "second"]  # found, not posted again; then the next
    stored = await repos.outbox.get(held.id)
    assert stored is not None and stored.result is not None and stored.result.get("recovered")
