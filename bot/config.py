"""The bot's configuration as plain values (the composition root maps `tikvops.settings` onto
it): tokens, the Web API base URL, the app and workspace every request must come from, the
channel for incidents and proposals, the channels where `/tikv` is accepted, and timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from bot.render.links import Links

DEFAULT_API_URL = "https://slack.com/api/"


@dataclass(frozen=True)
class BotConfig:
    """`app_id`/`team_id`: requests from any other app or workspace, or naming none, are
    ignored (None: not checked). `command_channels`: channel IDs or names where `/tikv` is
    accepted (empty: any). `approver_groups`: the user-group IDs (`S…`) named in the approval
    policy, whose members are looked up (cached for `group_ttl`)."""

    bot_token: str
    app_token: str
    channel: str
    api_url: str = DEFAULT_API_URL
    app_id: str | None = None
    team_id: str | None = None
    command: str = "/tikv"
    command_channels: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    group_ttl: timedelta = timedelta(minutes=5)
    dedup_ttl: timedelta = timedelta(hours=24)
    ping_interval: float = 10.0
    rate_limit_retries: int = 3
    connection_retries: int = 2
    server_error_retries: int = 2
    outbox_poll: float = 2.0
    outbox_backoff_base: float = 1.0
    outbox_backoff_cap: float = 300.0
    outbox_lease: float | None = None  # replicas: seconds a claimed outbox item is ours
    links: Links = field(default_factory=Links)
    """Dashboard and Query links on incident cards (`bot.render.links`)."""
    # Several clusters: (cluster, its incident channel) pairs; a record's messages go to its
    # cluster's channel (`channel` for a cluster not listed).
    cluster_channels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.bot_token.startswith("xoxb-"):
            raise ValueError("the bot token must start with xoxb-")
        if not self.app_token.startswith("xapp-"):
            raise ValueError("the app-level token must start with xapp- (Socket Mode)")
        if not self.api_url.endswith("/"):
            object.__setattr__(self, "api_url", self.api_url + "/")


__all__ = ["DEFAULT_API_URL", "BotConfig"]
