"""The Slack Web API client: `AsyncWebClient` pointed at the configured base URL (Bolt has no
setting for it) with retry handlers for connection errors, rate limits (honouring
`Retry-After`) and 5xx answers. The Bolt app, the outbox deliverer and the Socket Mode handler
all share it.

Its calls share one `aiohttp.ClientSession` (so one pool of keep-alive connections): without
one, slack_sdk opens a new session and TCP connection per call. The session is created by the
first call, inside the running event loop, and closed by `close_web_client`; calls made after
that still work, each on a session of its own (slack_sdk's default)."""

from __future__ import annotations

import aiohttp
from aiohttp import FormData
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import BotConfig


class SharedSessionWebClient(AsyncWebClient):
    """`AsyncWebClient` whose calls share one lazily created `aiohttp.ClientSession`."""

    _session_closed = False

    def _ensure_session(self) -> None:
        # No await between the check and the assignment: concurrent first calls share one.
        if self.session is None and not self._session_closed:
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=self.trust_env_in_session,
            )

    async def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict | None = None,  # type: ignore[type-arg]
        data: dict | FormData | None = None,  # type: ignore[type-arg]
        params: dict | None = None,  # type: ignore[type-arg]
        json: dict | None = None,  # type: ignore[type-arg]
        headers: dict | None = None,  # type: ignore[type-arg]
        auth: dict | None = None,  # type: ignore[type-arg]
    ) -> AsyncSlackResponse:
        self._ensure_session()
        return await super().api_call(
            api_method,
            http_verb=http_verb,
            files=files,
            data=data,
            params=params,
            json=json,
            headers=headers,
            auth=auth,
        )

    async def close_session(self) -> None:
        """Close the shared session; later calls each open (and close) their own."""
        self._session_closed = True
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()


def build_web_client(config: BotConfig, *, timeout: int = 30) -> SharedSessionWebClient:
    return SharedSessionWebClient(
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
    """Close the client's aiohttp session if it has one."""
    if isinstance(client, SharedSessionWebClient):
        await client.close_session()
        return
    session = getattr(client, "session", None)
    if session is not None and not session.closed:
        await session.close()


__all__ = ["SharedSessionWebClient", "build_web_client", "close_web_client"]
