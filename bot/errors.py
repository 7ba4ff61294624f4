"""The Slack edge's own errors: what callers outside `bot` may catch, with sentences that say
what to fix (slack_sdk and aiohttp errors are translated here, at the boundary)."""

from __future__ import annotations


class BotError(Exception):
    """Base of the bot's errors; `str(error)` is the user-facing sentence."""


class SlackStartError(BotError):
    """The bot could not connect to Slack at start-up. `code` is Slack's error code when Slack
    answered (`invalid_auth`, `not_allowed_token_type`...), None when it could not be reached."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


__all__ = ["BotError", "SlackStartError"]
