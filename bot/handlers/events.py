"""Events: a mention of the bot gets a short pointer to `/tikv` in the thread (once, however
often Slack retries the event: `bot.redelivery.once`). (Events authored
by the bot itself never reach here: `bot.middleware.RequestGuard` drops them.)"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import messages
from bot.deps import BotDeps
from bot.redelivery import once

logger = logging.getLogger(__name__)


def register(app: AsyncApp, deps: BotDeps) -> None:
    async def on_mention(ack: AsyncAck, event: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        channel = event.get("channel")
        if not isinstance(channel, str) or not channel:
            return
        thread = next(
            (t for t in (event.get("thread_ts"), event.get("ts")) if isinstance(t, str) and t),
            None,
        )
        text = messages.mention_reply(deps.config.command)

        async def answer() -> None:
            try:
                await deps.client.chat_postMessage(channel=channel, thread_ts=thread, text=text)
            except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError):
                logger.warning("could not answer a mention in %s", channel, exc_info=True)

        deps.tasks.spawn(once(context, answer), "answer mention")

    app.event("app_mention")(on_mention)


__all__ = ["register"]
