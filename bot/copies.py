"""Copies of a post in Slack: looking the outbox item's message up by its key (before posting
an uncertain item, and once after), and when two copies exist anyway, keeping the oldest and
editing every other into a short inactive note linking to it."""

from __future__ import annotations

import logging

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.delivery_lookup import Found, MessageLookup, Posted, is_channel_id, superseded_metadata
from bot.render.duplicate import superseded
from bot.slack_errors import GONE_ERRORS, error_code, needed, transient
from engine.model import OutboxItem

logger = logging.getLogger("bot.outbox")


class Copies:
    """Finds and resolves copies of the outbox's posts (one per `Deliverer`). `channel_ids`
    maps the channel names items were posted to onto the IDs Slack answered with."""

    def __init__(self, client: AsyncWebClient, lookup: MessageLookup) -> None:
        self._client = client
        self._lookup = lookup
        self.channel_ids: dict[str, str] = {}
        self._warned: set[str] = set()

    async def find(
        self,
        item: OutboxItem,
        key: str,
        channel: str,
        thread_ts: str | None,
        *,
        before_post: bool,
    ) -> Found | None:
        """Look the item's message up; None when Slack does not let us (then the caller posts
        anyway: a message delivered twice beats one never delivered). Transient failures
        are raised before posting (the item is retried later, nothing posted)."""
        channel_id = channel if is_channel_id(channel) else self.channel_ids.get(channel)
        if channel_id is None:
            self._warn_once(
                f"name:{channel}",
                "outbox item %s: cannot look up an earlier copy in %r before its ID is known "
                "(set TIKVOPS_CHANNEL to the channel ID, e.g. C0123ABCD); checking after posting",
                item.id,
                channel,
                level=logging.WARNING,
            )
            return None
        try:
            found = await self._lookup.find(
                key, channel=channel_id, thread_ts=thread_ts, since=item.created_at
            )
        except SlackApiError as exc:
            if transient(exc):
                if before_post:
                    raise  # retried later; nothing posted
                logger.warning(
                    "outbox item %s: could not check for an earlier copy after posting: %s",
                    item.id,
                    error_code(exc),
                )
                return None
            self._warn_once(
                f"lookup:{error_code(exc)}",
                "outbox item %s: could not look for an earlier copy of the message in %s: "
                "Slack answered %s%s. Without it a message whose answer was lost may be posted "
                "twice; give the app the channels:history (public channel) or groups:history "
                "(private channel) scope and invite it to the channel.",
                item.id,
                channel_id,
                error_code(exc),
                f" (needs {exc.response.get('needed')})" if needed(exc) else "",
            )
            return None
        if not found.complete:
            logger.warning(
                "outbox item %s: read %s's most recent messages without reaching the time the "
                "item was queued; an earlier copy older than those would not be seen",
                item.id,
                channel_id,
            )
        return found

    async def keep_one(self, item: OutboxItem, key: str, copies: list[Posted]) -> Posted:
        """The oldest copy is the item's message; every other one becomes an inactive note."""
        current, *others = sorted(copies)
        if not others:
            return current
        link = await self._permalink(current)
        note = superseded(link)
        for other in others:
            logger.warning(
                "outbox item %s: message %s in %s is a second copy of %s; making it inactive",
                item.id,
                other.ts,
                other.channel,
                current.ts,
            )
            try:
                await self._client.chat_update(
                    channel=other.channel,
                    ts=other.ts,
                    text=note.text,
                    blocks=note.blocks,
                    metadata=superseded_metadata(key, current.ts),
                )
            except SlackApiError as exc:
                if error_code(exc) not in GONE_ERRORS:
                    raise  # retried: the next attempt finds both copies again
                logger.warning("outbox item %s: copy %s is gone already", item.id, other.ts)
        return current

    async def _permalink(self, message: Posted) -> str | None:
        try:
            response = await self._client.chat_getPermalink(
                channel=message.channel, message_ts=message.ts
            )
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError):
            logger.warning("could not get the permalink of %s", message.ts, exc_info=True)
            return None
        link = response.get("permalink")
        return link if isinstance(link, str) else None

    def _warn_once(
        self, what: str, message: str, *args: object, level: int = logging.ERROR
    ) -> None:
        """Log `message` at `level` the first time `what` happens, at DEBUG afterwards."""
        logger.log(logging.DEBUG if what in self._warned else level, message, *args)
        self._warned.add(what)


__all__ = ["Copies"]
