"""Socket Mode server side: the ``GET /link/`` websocket, envelope delivery and ack tracking.

Sends ``hello`` on connect, pushes envelopes to the newest usable connection and waits for the
matching ``{"envelope_id": …}`` ack (Slack's 3 s limit), records every delivery and ack, and can
send ``disconnect``, close sockets, or drop them without a close frame. aiohttp answers the
client's PINGs by itself (autoping).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from slackfake import payloads
from slackfake.errors import AckTimeout, NoSocketConnection
from slackfake.faults import Faults
from slackfake.records import Ack, Delivery

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Connection:
    """One accepted websocket."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    opened_at: float
    retired: bool = False  # got a disconnect message: no new envelopes
    lose_acks_for: set[str] = field(default_factory=set)

    @property
    def usable(self) -> bool:
        return not self.retired and not self.ws.closed


@dataclass
class _Waiter:
    envelope: dict[str, Any]
    future: asyncio.Future[Ack]


class SocketHub:
    """All Socket Mode connections of the one fake app."""

    def __init__(self, app_id: str, faults: Faults | None = None) -> None:
        self.app_id = app_id
        self.faults: Faults | None = faults
        self.tickets: set[str] = set()
        self.connections: list[Connection] = []
        self.total_connections = 0
        self.deliveries: list[Delivery] = []
        self.acks: list[Ack] = []
        self.disconnects_sent: list[str] = []
        self.timeouts: list[str] = []  # envelope ids whose ack never came (or was lost)
        self._envelopes: dict[str, dict[str, Any]] = {}
        self._waiters: dict[str, list[_Waiter]] = {}
        self._changed = asyncio.Event()
        self._next_id = 0

    # ----- websocket endpoint ----------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        if ticket not in self.tickets:
            return web.Response(
                status=401, text="unknown ticket: call apps.connections.open for a fresh URL"
            )
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._next_id += 1
        self.total_connections += 1
        conn = Connection(id=self._next_id, ws=ws, request=request, opened_at=time.time())
        try:
            # hello goes out before the connection can be picked for an envelope.
            await ws.send_json(payloads.hello(self.app_id, len(self.active()) + 1))
            self.connections.append(conn)
            self._notify()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_text(conn, str(msg.data))
        except (ConnectionError, RuntimeError) as exc:  # client vanished mid-send
            log.debug("socket %s ended: %s", conn.id, exc)
        finally:
            if conn in self.connections:
                self.connections.remove(conn)
            self._notify()
        return ws

    def _on_text(self, conn: Connection, data: str) -> None:
        try:
            message = json.loads(data)
        except json.JSONDecodeError:
            log.warning("socket %s sent non-JSON text: %.200s", conn.id, data)
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            log.debug("socket %s sent a frame that is not an ack: %.200s", conn.id, data)
            return
        envelope_id = str(message["envelope_id"])
        payload = message.get("payload")
        lost = envelope_id in conn.lose_acks_for
        ack = Ack(
            envelope_id,
            payload if isinstance(payload, dict) else None,
            connection_id=conn.id,
            at=time.time(),
            lost=lost,
        )
        self.acks.append(ack)
        self._notify()
        waiters = self._waiters.get(envelope_id, [])
        if lost:
            conn.lose_acks_for.discard(envelope_id)
            self._abort(conn)
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(_LostAck())
            return
        for waiter in waiters:
            if not waiter.future.done():
                waiter.future.set_result(ack)
                return

    # ----- delivery --------------------------------------------------------------------
    def active(self) -> list[Connection]:
        return [c for c in self.connections if not c.ws.closed]

    async def wait_for_connection(self, within: float) -> Connection:
        """The newest usable connection, waiting up to ``within`` s for one to appear."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            usable = [c for c in self.connections if c.usable]
            if usable:
                return usable[-1]
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoSocketConnection(within)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))

    async def push(
        self, envelope: dict[str, Any], *, ack_timeout: float, connect_timeout: float
    ) -> Ack:
        """Deliver an envelope and wait for its ack; raises AckTimeout or NoSocketConnection."""
        envelope_id = str(envelope["envelope_id"])
        self._envelopes[envelope_id] = envelope
        conn = await self.wait_for_connection(connect_timeout)
        loop = asyncio.get_running_loop()
        waiter = _Waiter(envelope, loop.create_future())
        self._waiters.setdefault(envelope_id, []).append(waiter)
        copies = 1
        if self.faults is not None:
            if self.faults.lost_acks_pending > 0:
                self.faults.lost_acks_pending -= 1
                conn.lose_acks_for.add(envelope_id)
            if self.faults.duplicates_pending > 0:
                self.faults.duplicates_pending -= 1
                copies = 2
        try:
            for _ in range(copies):
                self.deliveries.append(Delivery(envelope, conn.id, time.time()))
                await conn.ws.send_json(envelope)
            self._notify()
            return await asyncio.wait_for(waiter.future, ack_timeout)
        except _LostAck:
            self.timeouts.append(envelope_id)
            raise AckTimeout(
                envelope_id, str(envelope.get("type")), ack_timeout, lost=True
            ) from None
        except TimeoutError:
            self.timeouts.append(envelope_id)
            raise AckTimeout(envelope_id, str(envelope.get("type")), ack_timeout) from None
        except ConnectionError as exc:
            log.info("delivery of %s failed: %s", envelope_id, exc)
            self.timeouts.append(envelope_id)
            raise AckTimeout(envelope_id, str(envelope.get("type")), ack_timeout) from exc
        finally:
            self._waiters[envelope_id].remove(waiter)
            if not self._waiters[envelope_id]:
                del self._waiters[envelope_id]

    async def redeliver(
        self,
        envelope_id: str,
        *,
        reason: str,
        ack_timeout: float,
        connect_timeout: float,
    ) -> Ack:
        """Send a delivered envelope again with the same envelope_id. Events API envelopes get
        ``retry_attempt`` + 1 and ``retry_reason``, like Slack's retries."""
        original = self._envelopes.get(envelope_id)
        if original is None:
            raise KeyError(f"no envelope {envelope_id} was ever pushed")
        again = dict(original)
        if again.get("type") == "events_api":
            again["retry_attempt"] = int(original.get("retry_attempt", 0)) + 1
            again["retry_reason"] = reason
        return await self.push(again, ack_timeout=ack_timeout, connect_timeout=connect_timeout)

    def envelope(self, envelope_id: str) -> dict[str, Any] | None:
        return self._envelopes.get(envelope_id)

    # ----- connection control ----------------------------------------------------------
    async def disconnect(self, reason: str) -> int:
        """Send a ``disconnect`` message on every usable connection; returns how many."""
        targets = [c for c in self.connections if c.usable]
        for conn in targets:
            conn.retired = True
            self.disconnects_sent.append(reason)
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.send_json(payloads.disconnect(reason, len(self.active())))
        self._notify()
        return len(targets)

    async def close_all(self, code: int = 1001, message: bytes = b"server closing") -> int:
        """Close every connection with a close frame (server-initiated close)."""
        targets = self.active()
        for conn in targets:
            conn.retired = True
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.ws.close(code=code, message=message)
        self._notify()
        return len(targets)

    def drop_all(self) -> int:
        """Abort every connection's TCP stream without a close frame."""
        targets = self.active()
        for conn in targets:
            self._abort(conn)
        self._notify()
        return len(targets)

    def _abort(self, conn: Connection) -> None:
        conn.retired = True
        transport = conn.request.transport
        if transport is not None:
            transport.abort()

    def _notify(self) -> None:
        self._changed.set()

    async def shutdown(self) -> None:
        for waiters in list(self._waiters.values()):
            for waiter in waiters:
                if not waiter.future.done():
                    waiter.future.cancel()
        await self.close_all(code=1001, message=b"slackfake stopping")


class _LostAck(Exception):
    """Internal: the ack arrived on a connection whose acks are being lost."""
