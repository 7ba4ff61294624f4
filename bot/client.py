"""The Slack Web API client: `AsyncWebClient` pointed at the configured base URL (Bolt has no
setting for it) with retry handlers for connection errors, rate limits (honouring
`Retry-After`) and 5xx answers. The Bolt app, the outbox deliverer and the Socket Mode handler
all share it.

A `chat.postMessage` is never retried by the client after a connection error or a 5xx: Slack
may have stored the message before the answer was lost, and a blind retry would post it
twice. The outbox deliverer retries posts itself, after looking the message up
(`bot.delivery_lookup`). A 429 is retried (Slack did not take the message).

Its calls share one `aiohttp.ClientSession` (so one pool of keep-alive connections): without
one, slack_sdk opens a new session and TCP connection per call. The session comes from the one
session factory (`operator_tikv.sessions.new_session`) and is created by the first call,
inside the running event loop, and closed by `close_web_client`; calls made after that still
work, each on a session of its own (slack_sdk's default). `SessionRespond` sends a
request's answers to its `response_url` on the same session (Bolt's `respond` opens a new one
per answer)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import FormData
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient
from typing_extensions import override

from bot.config import BotConfig
from operator_tikv.sessions import new_session

NOT_RETRIED_BLINDLY = frozenset({"chat.postMessage"})
"""Methods whose effect may have happened when the answer is lost: never retried by the client
after a connection error or a 5xx."""


def api_method(url: str) -> str:
    """The Web API method a request URL calls (`…/api/chat.postMessage` → `chat.postMessage`)."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class _SkipBlindRetries(AsyncRetryHandler):
    """A slack_sdk retry handler that never retries `NOT_RETRIED_BLINDLY` methods; put it
    before the handler it narrows (`class X(_SkipBlindRetries, SomeSdkHandler)`)."""

    @override
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if api_method(request.url) in NOT_RETRIED_BLINDLY:
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


class SafeConnectionErrorRetryHandler(_SkipBlindRetries, AsyncConnectionErrorRetryHandler):
    """slack_sdk's connection-error retry, except for `NOT_RETRIED_BLINDLY` methods."""


class SafeServerErrorRetryHandler(_SkipBlindRetries, AsyncServerErrorRetryHandler):
    """slack_sdk's 500/503 retry, except for `NOT_RETRIED_BLINDLY` methods."""


SLACK_KEEPALIVE = 15.0
"""Seconds an idle connection to Slack is kept (aiohttp's default, as before)."""

SLACK_CONNECTIONS = 100
"""At most this many connections to Slack at once (aiohttp's default, as before)."""


class SharedSessionWebClient(AsyncWebClient):
    """`AsyncWebClient` whose calls share one lazily created `aiohttp.ClientSession`."""

    _session_closed = False

    def _ensure_session(self) -> None:
        # No await between the check and the assignment: concurrent first calls share one.
        if self.session is None and not self._session_closed:
            self.session = new_session(
                keepalive=SLACK_KEEPALIVE,
                connections=SLACK_CONNECTIONS,
                timeout=self.timeout,
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

    def shared_session(self) -> aiohttp.ClientSession | None:
        """The shared session (created if need be); None once it was closed."""
        self._ensure_session()
        return self.session

    async def close_session(self) -> None:
        """Close the shared session; later calls each open (and close) their own."""
        self._session_closed = True
        session, self.session = self.session, None
        if session is not None and not session.closed:
            await session.close()


class SessionRespond(AsyncRespond):
    """Bolt's `respond` for one request, sending on a shared `aiohttp.ClientSession`."""

    def __init__(self, response_url: str | None, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url)
        self._session = session

    @override
    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        if self.response_url is None:
            raise ValueError("respond is unsupported here as there is no response_url")
        # `send_dict` drops the None fields and turns Block/Attachment objects into dicts.
        body: dict[str, Any] = (
            dict(text)
            if isinstance(text, dict)
            else {
                "text": text,
                "blocks": blocks or None,
                "attachments": attachments or None,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "thread_ts": thread_ts,
                "metadata": metadata,
            }
        )
        webhook = AsyncWebhookClient(url=self.response_url, session=self._session)
        return await webhook.send_dict(body)


def respond_via(respond: AsyncRespond, client: AsyncWebClient) -> AsyncRespond:
    """`respond` on the client's shared session when it has one (else Bolt's own)."""
    if isinstance(client, SharedSessionWebClient) and respond.response_url:
        session = client.shared_session()
        if session is not None:
            return SessionRespond(respond.response_url, session)
    return respond


def build_web_client(config: BotConfig, *, timeout: int = 30) -> SharedSessionWebClient:
    return SharedSessionWebClient(
        token=config.bot_token,
        base_url=config.api_url,
        timeout=timeout,
        retry_handlers=[
            SafeConnectionErrorRetryHandler(max_retry_count=config.connection_retries),
            AsyncRateLimitErrorRetryHandler(max_retry_count=config.rate_limit_retries),
            SafeServerErrorRetryHandler(max_retry_count=config.server_error_retries),
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


__all__ = [
    "NOT_RETRIED_BLINDLY",
    "SafeConnectionErrorRetryHandler",
    "SafeServerErrorRetryHandler",
    "SessionRespond",
    "SharedSessionWebClient",
    "api_method",
    "build_web_client",
    "close_web_client",
    "respond_via",
]
