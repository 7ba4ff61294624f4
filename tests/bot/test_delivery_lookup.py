"""Finding a post by its outbox key against the Slack stand-in: only live posts of that key,
in the channel or in one thread, within the window, at most `max_pages` pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery_lookup import (
    MessageLookup,
    Posted,
    idempotency_key,
    is_channel_id,
    post_metadata,
    superseded_metadata,
)
from engine.model import OutboxItem
from slackfake.server import SlackFake

CHANNEL = "C0OPS"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def client(slack_fake: SlackFake) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack_fake.api_url, retry_handlers=[])


def item(item_id: int, created: datetime) -> OutboxItem:
    return OutboxItem(
        id=item_id,
        kind="slack",
        key="incident:I-1",
        payload={},
        created_at=created,
        next_attempt_at=created,
    )


def test_the_key_names_the_item_and_when_it_was_queued() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert idempotency_key(item(7, now)) == idempotency_key(item(7, now))
    # The same ID from another (reset) database is another item.
    assert idempotency_key(item(7, now)) != idempotency_key(item(7, now + timedelta(seconds=1)))
    assert idempotency_key(item(7, now)) != idempotency_key(item(8, now))


def test_history_needs_channel_ids() -> None:
    assert is_channel_id("C0OPS") and is_channel_id("G01ABCDEF")
    assert not is_channel_id("tikv-ops") and not is_channel_id("#tikv-ops")


async def test_finds_only_live_posts_with_the_key_in_the_channel(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    mine = await client.chat_postMessage(channel=CHANNEL, text="a", metadata=post_metadata("k1"))
    await client.chat_postMessage(channel=CHANNEL, text="b", metadata=post_metadata("k2"))
    await client.chat_postMessage(channel=CHANNEL, text="c")
    copy = await client.chat_postMessage(channel=CHANNEL, text="d", metadata=post_metadata("k1"))
    await client.chat_update(
        channel=CHANNEL, ts=copy["ts"], text="inactive", metadata=superseded_metadata("k1", "x")
    )
    found = await MessageLookup(client).find("k1", channel=CHANNEL, thread_ts=None, since=LONG_AGO)
    assert found.complete
    assert found.messages == [Posted(ts=mine["ts"], channel=CHANNEL)]


async def test_finds_a_reply_in_its_thread_and_nothing_in_a_vanished_thread(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    parent = (await client.chat_postMessage(channel=CHANNEL, text="parent"))["ts"]
    reply = await client.chat_postMessage(
        channel=CHANNEL, text="reply", thread_ts=parent, metadata=post_metadata("k1")
    )
    lookup = MessageLookup(client)
    found = await lookup.find("k1", channel=CHANNEL, thread_ts=parent, since=LONG_AGO)
    assert found.messages == [Posted(ts=reply["ts"], channel=CHANNEL, thread_ts=parent)]
    # The channel's history holds no thread replies.
    top = await lookup.find("k1", channel=CHANNEL, thread_ts=None, since=LONG_AGO)
    assert top.messages == []
    gone = await lookup.find("k1", channel=CHANNEL, thread_ts="1.000001", since=LONG_AGO)
    assert gone.messages == [] and gone.complete


async def test_reads_only_the_window_since_the_item_was_queued(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="old", metadata=post_metadata("k1"))
    later = datetime.now(UTC) + timedelta(hours=1)
    lookup = MessageLookup(client, skew=timedelta(minutes=10))
    found = await lookup.find("k1", channel=CHANNEL, thread_ts=None, since=later)
    assert found.messages == []
    [call] = slack_fake.calls("conversations.history")
    assert call.params["include_all_metadata"] in ("1", "true", True)
    assert float(call.params["oldest"]) == pytest.approx(
        (later - timedelta(minutes=10)).timestamp()
    )


async def test_reads_at_most_max_pages(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel=CHANNEL, text="first", metadata=post_metadata("k1"))
    for n in range(5):
        await client.chat_postMessage(channel=CHANNEL, text=f"later {n}")
    lookup = MessageLookup(client, page_size=2, max_pages=2)
    found = await lookup.find("k1", channel=CHANNEL, thread_ts=None, since=LONG_AGO)
    assert not found.complete and found.messages == []  # the post is older than four messages
    assert len(slack_fake.calls("conversations.history")) == 2
    whole = await MessageLookup(client, page_size=2, max_pages=5).find(
        "k1", channel=CHANNEL, thread_ts=None, since=LONG_AGO
    )
    assert whole.complete and [m.channel for m in whole.messages] == [CHANNEL]


async def test_slack_refusals_are_the_callers_to_judge(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    slack_fake.faults.error("conversations.history", "missing_scope", needed="channels:history")
    with pytest.raises(SlackApiError) as refused:
        await MessageLookup(client).find("k1", channel=CHANNEL, thread_ts=None, since=LONG_AGO)
    assert refused.value.response["needed"] == "channels:history"
