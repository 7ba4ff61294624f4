"""The App Home tab and link buttons: `app_home_opened` (tab `home`) publishes the user's view
through `bot.home.HomePublisher` (rate-limited, off the listener); a click on a link button
(`link:*`, `bot.render.links`) only needs its acknowledgement, since Slack opens the URL."""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot.home import HomePublisher
from bot.render.links import LINK_PREFIX

logger = logging.getLogger(__name__)


def register(app: AsyncApp, home: HomePublisher | None) -> None:
    async def on_home_opened(ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        user = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(user, str) or not user:
            return
        if home is None:
            logger.info("App Home opened by %s, but no home publisher is configured", user)
            return
        home.opened(user)

    async def on_link(ack: AsyncAck) -> None:
        await ack()

    app.event("app_home_opened")(on_home_opened)
    app.block_action(re.compile("^" + re.escape(LINK_PREFIX)))(on_link)


__all__ = ["register"]
