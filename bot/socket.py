"""Socket Mode, thin: starts and stops Bolt's `AsyncSocketModeHandler` (aiohttp) and passes the
envelope ID of every request on to the app as a header, so that a redelivered envelope can be
recognised (`bot.middleware`). Reconnects (Slack's `disconnect`, dropped sockets, stale pings)
are the SDK's own.

Every envelope is acknowledged, whatever it carries: one the SDK cannot turn into a request (no
payload, a null or list payload, no type) is acked as it arrives, and a request the app
answered with an error status (or that raised) is acked anyway, because an envelope left
unacknowledged is redelivered by Slack or shown to the user as an error. What the user is told
is the app's business (`bot.handlers.unsupported`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import time

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.errors import SlackStartError
from bot.payload import ENVELOPE_HEADER
from bot.slack_errors import TRANSIENT_ERRORS
from operator_tikv.sessions import new_session

logger = logging.getLogger(__name__)


_CONTROL = frozenset({"hello", "disconnect"})

SOCKET_KEEPALIVE = 30.0
"""Seconds an idle connection of the websocket's session is kept (it holds one socket)."""


def unreadable(message: object) -> bool:
    """Whether a Socket Mode frame is an envelope (it has an envelope ID) that the SDK will not
    hand to the app (`SocketModeRequest.from_dict` needs a type and a dict or string payload)."""
    if not isinstance(message, dict) or not message.get("envelope_id"):
        return False
    if message.get("type") in _CONTROL:
        return False
    return not ("type" in message and isinstance(message.get("payload"), dict | str))


class EnvelopeHandler(AsyncSocketModeHandler):
    """Bolt's handler, plus the envelope ID in the request headers, and an ack for every
    envelope (see the module docstring)."""

    def __init__(self, app: AsyncApp, app_token: str, **kwargs: object) -> None:
        super().__init__(app, app_token, **kwargs)  # type: ignore[arg-type]
        self.client.message_listeners.append(self._ack_unreadable)  # type: ignore[arg-type]

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        start = time()
        try:
            headers = dict(build_headers(req) or {})
            headers[ENVELOPE_HEADER] = req.envelope_id
            bolt_req = AsyncBoltRequest(mode="socket_mode", body=req.payload, headers=headers)
            response = await self.app.async_dispatch(bolt_req)
        except Exception:
            logger.exception("a %s envelope could not be handled; acknowledged", req.type)
            response = BoltResponse(status=200, body="")
        if response.status != 200:
            logger.warning(
                "a %s envelope ended with status %s; acknowledged anyway", req.type, response.status
            )
            response = BoltResponse(status=200, body="")
        await send_async_response(client, req, response, start)

    async def _ack_unreadable(
        self, client: SocketModeClient, message: dict[str, object], raw: str | None
    ) -> None:
        if not unreadable(message):
            return
        envelope_id = str(message["envelope_id"])
        logger.warning(
            "acknowledged an unreadable %s envelope %s (payload: %s)",
            str(message.get("type"))[:40],
            envelope_id[:80],
            type(message.get("payload")).__name__,
        )
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=envelope_id))


class SocketRunner:
    """Opens the Socket Mode connection (`start`) and closes it (`stop`). Must be started
    inside the running event loop.

    `start` first asks Slack for a connection URL once (`apps.connections.open`): if Slack
    refuses the app token (`invalid_auth`, wrong token type...) it raises `SlackStartError`,
    since retrying cannot help. If Slack cannot be reached or is overloaded, the SDK keeps
    trying in the background and `start` returns (the outbox keeps messages until Slack is
    back). `on_state(connected)` is told whenever the connection comes up or goes down."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        ping_interval: float = 10.0,
        on_state: Callable[[bool], None] | None = None,
        connect_timeout: float = 10.0,
    ) -> None:
        self._app = app
        self._app_token = app_token
        self._ping_interval = ping_interval
        self._on_state = on_state
        self._connect_timeout = connect_timeout
        self._handler: EnvelopeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._last_state: bool | None = None

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session the websocket runs on (None before `start` and after `stop`)."""
        handler = self._handler
        return None if handler is None else handler.client.aiohttp_client_session

    @property
    def connected(self) -> bool:
        handler = self._handler
        if handler is None:
            return False
        session = handler.client.current_session
        return session is not None and not session.closed

    async def start(self) -> None:
        if self._handler is not None:
            return
        handler = EnvelopeHandler(
            self._app,
            self._app_token,
            web_client=self._app.client,
            ping_interval=self._ping_interval,
        )
        # The SDK's `SocketModeClient.__init__` builds its own `aiohttp.ClientSession()` with no
        # parameter to pass one in; the websocket goes over a session of the one factory instead
        # (the SDK's unused one is closed here). The SDK passes the proxy to `ws_connect` itself.
        sdk_session = handler.client.aiohttp_client_session
        handler.client.aiohttp_client_session = new_session(keepalive=SOCKET_KEEPALIVE)
        await sdk_session.close()
        self._handler = handler
        reachable = False
        try:
            response = await self._app.client.apps_connections_open(app_token=self._app_token)
            handler.client.wss_uri = str(response["url"])
            reachable = True
        except SlackApiError as exc:
            if not _is_transient(exc):
                self._handler = None
                await handler.close_async()  # type: ignore[no-untyped-call]
                raise _start_error(exc) from exc
            logger.warning("Slack is busy (%s); connecting in the background", _code(exc))
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            logger.warning(
                "Slack cannot be reached (%s: %s); connecting in the background",
                type(exc).__name__,
                exc,
            )
        loop = asyncio.get_running_loop()
        self._connecting = loop.create_task(self._connect(handler), name="socket mode connect")
        self._watcher = loop.create_task(self._watch(), name="socket mode state")
        if reachable:
            done, _ = await asyncio.wait({self._connecting}, timeout=self._connect_timeout)
            if not done:
                logger.warning("Socket Mode not connected yet; still trying in the background")

    async def _connect(self, handler: EnvelopeHandler) -> None:
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Socket Mode connection failed")
            return
        logger.info("Socket Mode connected")
        self._report()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(max(self._ping_interval / 2, 0.1))
            self._report()

    async def stop(self) -> None:
        handler = self._handler
        if handler is None:
            return
        self._handler = None
        for task in (self._watcher, self._connecting):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._watcher, self._connecting) if t is not None),
            return_exceptions=True,
        )
        self._watcher = self._connecting = None
        await handler.close_async()  # type: ignore[no-untyped-call]
        logger.info("Socket Mode closed")
        self._report(force=False)

    def _report(self, force: bool | None = None) -> None:
        state = self.connected if force is None else force
        if state == self._last_state:
            return
        self._last_state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                logger.exception("connection state hook failed")


def _code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "unknown_error")
    except AttributeError:
        return "unknown_error"


def _is_transient(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return status == 429 or status >= 500 or _code(exc) in TRANSIENT_ERRORS


def _start_error(exc: BaseException) -> BaseException:
    """A connection failure as a `SlackStartError` with a sentence; anything else unchanged."""
    if isinstance(exc, SlackApiError):
        code = _code(exc)
        return SlackStartError(
            f"Slack refused the Socket Mode connection ({code}): check SLACK_APP_TOKEN (an "
            "app-level xapp- token with connections:write) and that Socket Mode is on for the "
            "app",
            code=code,
        )
    if isinstance(exc, SlackClientError | aiohttp.ClientError | OSError | TimeoutError):
        return SlackStartError(
            f"Slack could not be reached ({type(exc).__name__}: {exc}); check the network "
            "and SLACK_API_URL"
        )
    return exc


__all__ = ["EnvelopeHandler", "SocketRunner", "unreadable"]
