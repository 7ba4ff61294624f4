"""Finding a message the outbox already posted, so that a post whose answer was lost is never
made twice.

Every `chat.postMessage` of the outbox carries Slack message metadata naming the outbox item:
`{"event_type": "tikvops_message", "event_payload": {"outbox_key": <key>}}`, the key being
`idempotency_key(item)` (the item's ID and creation time, stable across attempts and restarts,
unique across databases). When a send is uncertain (the connection dropped, a timeout, a 5xx,
the bot killed mid-send), the deliverer asks `MessageLookup.find` before posting again: it reads
the recent messages of the channel (`conversations.history`) or of the thread
(`conversations.replies`) with `include_all_metadata=true`, from shortly before the item was
created, at most `max_pages` pages, and returns the messages carrying the key.

Slack scopes: `channels:history` to read a public channel, `groups:history` a private one; a
bot token reads only conversations the bot is a member of. A copy made inactive (`SUPERSEDED`)
gets other metadata, so it is never found again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from engine.model import JsonDict, OutboxItem

EVENT_TYPE = "tikvops_message"
"""Metadata event type of every message the outbox posts."""

SUPERSEDED = "tikvops_superseded"
"""Metadata event type of a copy made inactive (a duplicate); lookups skip it."""

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def idempotency_key(item: OutboxItem) -> str:
    """The key a post of `item` carries: its ID and creation time in microseconds, so that an
    item of another (older or reset) database with the same ID never matches."""
    created = int(item.created_at.timestamp() * 1_000_000)
    return f"{item.id}.{created}"


def post_metadata(key: str) -> JsonDict:
    return {"event_type": EVENT_TYPE, "event_payload": {"outbox_key": key}}


def superseded_metadata(key: str, current_ts: str) -> JsonDict:
    return {"event_type": SUPERSEDED, "event_payload": {"outbox_key": key, "current": current_ts}}


def is_channel_id(channel: str) -> bool:
    """Slack's history methods take channel IDs (`C…`, `G…`, `D…`), not names."""
    return bool(_CHANNEL_ID.match(channel))


@dataclass(frozen=True, order=True)
class Posted:
    """A message found (or posted): ordered by `ts`, i.e. by when Slack stored it."""

    ts: str
    channel: str
    thread_ts: str | None = None


@dataclass(frozen=True)
class Found:
    """What a lookup saw: the messages carrying the key (oldest first), and whether the whole
    window was read (False: `max_pages` ran out before the window's start)."""

    messages: list[Posted]
    complete: bool


class MessageLookup:
    """Reads a bounded recent window of a channel or thread for messages carrying a key.

    Errors are the SDK's own (`SlackApiError`, connection errors): the caller decides which are
    worth a retry. A thread that no longer exists holds no message: found nothing."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        page_size: int = 200,
        max_pages: int = 5,
        skew: timedelta = timedelta(minutes=10),
    ) -> None:
        self._client = client
        self._page_size = page_size
        self._max_pages = max_pages
        self._skew = skew

    async def find(
        self, key: str, *, channel: str, thread_ts: str | None, since: datetime
    ) -> Found:
        """Messages in `channel` (in the thread `thread_ts` if given) posted after `since`
        (less the allowed clock skew) whose metadata carries `key`."""
        oldest = f"{max((since - self._skew).timestamp(), 0.0):.6f}"
        found: list[Posted] = []
        cursor: str | None = None
        for _ in range(self._max_pages):
            try:
                page = await self._page(channel, thread_ts, oldest, cursor)
            except SlackApiError as exc:
                if thread_ts is not None and _error(exc) == "thread_not_found":
                    return Found(messages=[], complete=True)
                raise
            found += [m for m in _messages(page, key, channel)]
            cursor = _next_cursor(page)
            if not cursor:
                return Found(messages=sorted(found), complete=True)
        return Found(messages=sorted(found), complete=False)

    async def _page(
        self, channel: str, thread_ts: str | None, oldest: str, cursor: str | None
    ) -> Any:
        if thread_ts is None:
            return await self._client.conversations_history(
                channel=channel,
                oldest=oldest,
                limit=self._page_size,
                include_all_metadata=True,
                cursor=cursor,
            )
        return await self._client.conversations_replies(
            channel=channel,
            ts=thread_ts,
            oldest=oldest,
            limit=self._page_size,
            include_all_metadata=True,
            cursor=cursor,
        )


def _messages(page: Any, key: str, channel: str) -> list[Posted]:
    messages = page.get("messages") if hasattr(page, "get") else None
    if not isinstance(messages, list):
        return []
    out: list[Posted] = []
    for message in messages:
        if not isinstance(message, dict) or not carries(message, key):
            continue
        ts = message.get("ts")
        if isinstance(ts, str):
            thread = message.get("thread_ts")
            thread_ts = thread if isinstance(thread, str) and thread != ts else None
            out.append(Posted(ts=ts, channel=channel, thread_ts=thread_ts))
    return out


def carries(message: dict[str, Any], key: str) -> bool:
    """Is `message` (as Slack returns it) a live post of the outbox item with `key`?"""
    metadata = message.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
        return False
    payload = metadata.get("event_payload")
    return isinstance(payload, dict) and payload.get("outbox_key") == key


def _next_cursor(page: Any) -> str | None:
    if not page.get("has_more"):
        return None
    meta = page.get("response_metadata")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return cursor if isinstance(cursor, str) and cursor else None


def _error(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "")
    except AttributeError:
        return ""


__all__ = [
    "EVENT_TYPE",
    "SUPERSEDED",
    "Found",
    "MessageLookup",
    "Posted",
    "carries",
    "idempotency_key",
    "is_channel_id",
    "post_metadata",
    "superseded_metadata",
]
