"""Socket Mode, thin: starts and stops Bolt's `AsyncSocketModeHandler` (aiohttp) and passes the
envelope ID of every request on to the app as a header, so that a redelivered envelope can be
recognised (`bot.middleware`). Reconnects (Slack's `disconnect`, dropped sockets, stale pings)
are the SDK's own."""

from __future__ import annotations

import logging
from collections.abc import Callable
from time import time

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import build_headers
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.payload import ENVELOPE_HEADER

logger = logging.getLogger(__name__)


class EnvelopeHandler(AsyncSocketModeHandler):
    """Bolt's handler, plus the envelope ID in the request headers."""

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        start = time()
        headers = dict(build_headers(req) or {})
        headers[ENVELOPE_HEADER] = req.envelope_id
        bolt_req = AsyncBoltRequest(mode="socket_mode", body=req.payload, headers=headers)
        response = await self.app.async_dispatch(bolt_req)
        await send_async_response(client, req, response, start)


class SocketRunner:
    """Opens the Socket Mode connection (`start`) and closes it (`stop`). Must be started
    inside the running event loop. `on_state(connected)` is told when it connects or stops."""

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        ping_interval: float = 10.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        self._app = app
        self._app_token = app_token
        self._ping_interval = ping_interval
        self._on_state = on_state
        self._handler: EnvelopeHandler | None = None

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
        self._handler = handler
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
        except BaseException:
            self._handler = None
            await handler.close_async()  # type: ignore[no-untyped-call]
            raise
        logger.info("Socket Mode connected")
        self._tell(True)

    async def stop(self) -> None:
        handler = self._handler
        if handler is None:
            return
        self._handler = None
        await handler.close_async()  # type: ignore[no-untyped-call]
        logger.info("Socket Mode closed")
        self._tell(False)

    def _tell(self, connected: bool) -> None:
        if self._on_state is not None:
            try:
                self._on_state(connected)
            except Exception:
                logger.exception("connection state hook failed")


__all__ = ["EnvelopeHandler", "SocketRunner"]
