"""The Slack Web API client: `AsyncWebClient` pointed at the configured base URL (Bolt has no
setting for it) with retry handlers for connection errors, rate limits (honouring
`Retry-After`) and 5xx answers. The Bolt app, the outbox deliverer and the Socket Mode handler
all share it."""

from __future__ import annotations

from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotConfig


def build_web_client(config: BotConfig, *, timeout: int = 30) -> AsyncWebClient:
    return AsyncWebClient(
        token=config.bot_token,
        base_url=config.api_url,
        timeout=timeout,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=config.connection_retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=config.rate_limit_retries),
            AsyncServerErrorRetryHandler(max_retry_count=config.server_error_retries),
        ],
    )


async def close_web_client(client: AsyncWebClient) -> None:
    """Close the client's aiohttp session if it owns one (it creates one per call by default)."""
    session = getattr(client, "session", None)
    if session is not None and not session.closed:
        await session.close()


__all__ = ["build_web_client", "close_web_client"]
