"""Sending one outbox item's message to Slack (`bot.outbox.Deliverer` decides what and when):
a post made at most once, and an edit, each falling back to the plain-text version when Slack
refuses the blocks.

Posts are idempotent: every post carries message metadata with the item's key
(`bot.delivery_lookup`). An item whose post may already exist (`Sender.uncertain`: an earlier
attempt's outcome is unknown, or an earlier process may have sent it) is looked up by its key
before it is posted, and checked once more after posting; should two copies exist, the oldest
is kept and the others made inactive (`bot.copies`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.copies import Copies
from bot.delivery_lookup import MessageLookup, Posted, idempotency_key, post_metadata
from bot.slack_errors import BLOCK_ERRORS, details, error_code, may_have_posted
from engine.model import JsonDict, MessageRef, OutboxItem

logger = logging.getLogger("bot.outbox")


@dataclass(frozen=True)
class Sent:
    """Where the item's message is; `recovered`: found in Slack, not posted by this call."""

    channel: str
    ts: str
    recovered: bool = False


class Sender:
    """Posts and edits outbox items' messages (see the module docstring)."""

    def __init__(self, client: AsyncWebClient, lookup: MessageLookup) -> None:
        self._client = client
        self._copies = Copies(client, lookup)
        # Items whose post may exist in Slack (their outcome is unknown).
        self.uncertain: set[int] = set()

    async def post(
        self, item: OutboxItem, channel: str, thread_ts: str | None, payload: JsonDict
    ) -> Sent:
        """Post `payload` once: an uncertain item is looked up first (and not posted if Slack
        has it), and checked for a second copy after posting."""
        key = idempotency_key(item)
        uncertain = item.id in self.uncertain
        if uncertain:
            found = await self._copies.find(item, key, channel, thread_ts, before_post=True)
            if found is not None and found.messages:
                current = await self._copies.keep_one(item, key, found.messages)
                logger.warning(
                    "outbox item %s: Slack already has its message %s in %s (its answer was "
                    "lost); not posting it again",
                    item.id,
                    current.ts,
                    current.channel,
                )
                return Sent(current.channel, current.ts, recovered=True)
        response = await self._post_message(item, key, channel, thread_ts, payload)
        sent = Sent(str(response.get("channel") or channel), str(response["ts"]))
        if sent.channel != channel:
            self._copies.channel_ids[channel] = sent.channel
        if not uncertain:
            return sent
        # The item was uncertain: if an earlier copy shows up now, keep exactly one.
        mine = Posted(ts=sent.ts, channel=sent.channel, thread_ts=thread_ts)
        try:
            after = await self._copies.find(item, key, sent.channel, thread_ts, before_post=False)
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning(
                "outbox item %s: could not check for an earlier copy after posting: %s",
                item.id,
                exc,
            )
            return sent
        seen = after.messages if after is not None else []
        copies = sorted({copy.ts: copy for copy in [*seen, mine]}.values())
        if len(copies) == 1:
            return sent
        current = await self._copies.keep_one(item, key, copies)
        return Sent(current.channel, current.ts, recovered=current.ts != sent.ts)

    async def _post_message(
        self,
        item: OutboxItem,
        key: str,
        channel: str,
        thread_ts: str | None,
        payload: JsonDict,
    ) -> Any:
        extra: JsonDict = {"thread_ts": thread_ts} if thread_ts else {}
        try:
            return await self._chat_post(
                item,
                channel=channel,
                text=str(payload["text"]),
                blocks=payload.get("blocks") or None,
                unfurl_links=False,
                unfurl_media=False,
                metadata=post_metadata(key),
                **extra,
            )
        except SlackApiError as exc:
            if error_code(exc) not in BLOCK_ERRORS or not payload.get("blocks"):
                raise
            logger.error(
                "outbox item %s: Slack refused the blocks (%s: %s); sending the plain-text "
                "version instead",
                item.id,
                error_code(exc),
                details(exc),
            )
            return await self._chat_post(
                item,
                channel=channel,
                text=_plain(payload),
                unfurl_links=False,
                metadata=post_metadata(key),
                **extra,
            )

    async def _chat_post(self, item: OutboxItem, **arguments: Any) -> Any:
        """One `chat.postMessage`. The item is uncertain from the moment the request may
        reach Slack until Slack answers that it did not post it."""
        was_uncertain = item.id in self.uncertain
        self.uncertain.add(item.id)
        try:
            return await self._client.chat_postMessage(**arguments)
        except SlackApiError as exc:
            if not was_uncertain and not may_have_posted(exc):
                self.uncertain.discard(item.id)
            raise
        except aiohttp.ClientConnectorError:
            # No connection was made: the request never reached Slack.
            if not was_uncertain:
                self.uncertain.discard(item.id)
            raise

    async def update(self, item: OutboxItem, ref: MessageRef, payload: JsonDict) -> Any:
        try:
            return await self._client.chat_update(
                channel=ref.channel,
                ts=ref.ts,
                text=str(payload["text"]),
                blocks=payload.get("blocks") or [],
            )
        except SlackApiError as exc:
            if error_code(exc) not in BLOCK_ERRORS or not payload.get("blocks"):
                raise
            logger.error(
                "outbox item %s: Slack refused the blocks of an update (%s: %s); sending the "
                "plain-text version instead",
                item.id,
                error_code(exc),
                details(exc),
            )
            return await self._client.chat_update(
                channel=ref.channel, ts=ref.ts, text=_plain(payload), blocks=[]
            )


def _plain(payload: JsonDict) -> str:
    return str(payload.get("plain") or payload.get("text") or "tikvops")


__all__ = ["Sender", "Sent"]
