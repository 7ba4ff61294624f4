"""Answers only the asking user sees: through the request's `response_url` (`respond`) when
there is one, else `chat.postEphemeral` (in the thread of the clicked message). A failed
answer is logged, never raised: the work it reports is already done."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.kit import Rendered

logger = logging.getLogger(__name__)

_NETWORK = (SlackClientError, aiohttp.ClientError, TimeoutError, OSError)


async def tell(
    client: AsyncWebClient,
    message: Rendered,
    *,
    user: str | None,
    channel: str | None,
    thread_ts: str | None = None,
    respond: AsyncRespond | None = None,
    in_channel: bool = False,
) -> bool:
    """Show `message` to `user` (or to the channel with `in_channel`). Returns whether it was
    delivered."""
    if respond is not None and respond.response_url:
        try:
            response = await respond(
                text=message.text,
                blocks=message.blocks,
                response_type="in_channel" if in_channel else "ephemeral",
                replace_original=False,
            )
            if response.status_code == 200:
                return True
            logger.warning("response_url answered HTTP %s", response.status_code)
        except _NETWORK as exc:
            logger.warning("response_url failed: %s", exc)
    if channel is None or user is None:
        logger.error("nowhere to send the answer %r", message.text[:200])
        return False
    extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
    try:
        if in_channel:
            await client.chat_postMessage(
                channel=channel, text=message.text, blocks=message.blocks, **extra
            )
        else:
            await client.chat_postEphemeral(
                channel=channel, user=user, text=message.text, blocks=message.blocks, **extra
            )
        return True
    except SlackApiError as exc:
        logger.warning("could not answer %s: %s", user, exc.response.get("error"))
        if exc.response.get("error") in ("invalid_blocks", "msg_blocks_too_long"):
            try:
                await client.chat_postEphemeral(
                    channel=channel, user=user, text=message.plain, **extra
                )
                return True
            except (SlackApiError, *_NETWORK):
                logger.exception("could not answer %s even in plain text", user)
    except _NETWORK as exc:
        logger.warning("could not answer %s: %s", user, exc)
    return False


__all__ = ["tell"]
