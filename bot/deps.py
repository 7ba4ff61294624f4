"""What the handlers need, in one object built by `bot.app.SlackBot` (or by tests)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot import payload
from bot.config import BotConfig
from bot.identity import IdentityResolver
from bot.tasks import BackgroundTasks
from engine.model import DEFAULT_CLUSTER
from engine.ports import AuditLog, Clock, SlackRefs
from engine.service import Engine


@dataclass
class BotDeps:
    config: BotConfig
    engine: Engine
    identities: IdentityResolver
    audit: AuditLog
    clock: Clock
    tasks: BackgroundTasks
    client: AsyncWebClient
    refs: SlackRefs
    """Where each proposal's message lives (clicks are checked against it)."""

    def cluster_of(self, body: Mapping[str, Any], named: str | None = None) -> str:
        """The cluster a refusal decided at the Slack edge is about: with one cluster, that one;
        with several, the one the command `named`, or whose incident channel `body` came from,
        else none in particular (`default`)."""
        if not self.engine.multi_cluster:
            return self.engine.cluster
        found = named or self.engine.cluster_of_channel(payload.channel_id(body))
        return found or DEFAULT_CLUSTER

    @property
    def channel_mention(self) -> str:
        """How to name the incidents channel in a sentence (`<#C123>` links it)."""
        return self.channel_mention_of(None)

    def channel_mention_of(self, cluster: str | None) -> str:
        """How to name `cluster`'s incident channel (the configured one for one cluster, or
        when `cluster` has none of its own) in a sentence."""
        channel = dict(self.config.cluster_channels).get(cluster or "", self.config.channel)
        if channel[:1] in ("C", "G") and channel[1:].isalnum() and channel.isupper():
            return f"<#{channel}>"
        return f"#{channel.lstrip('#')}"


__all__ = ["BotDeps"]
