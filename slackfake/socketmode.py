"""Socket Mode server side: the ``GET /link/`` websocket, envelope delivery and ack tracking.

An app may hold several connections at once (one per replica of a bot); like Slack, the hub
hands each envelope to exactly one of them, in turn (round-robin over the usable ones, oldest
first), and waits for the matching ``{"envelope_id": …}`` ack (Slack's 3 s limit). An Events
API envelope that is not acknowledged in time is sent again, up to ``event_retries`` times,
with ``retry_attempt`` + 1 and ``retry_reason: "timeout"``, to another connection when there
is one; Slack does not redeliver slash commands or interactions (the user sees an error), so
neither does the hub. Every delivery and ack is recorded with its connection. It sends
``hello`` on connect and can send ``disconnect``, close sockets, or drop them without a close
frame. aiohttp answers the client's PINGs by itself (autoping).
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
        self._turn = 0  # round-robin position over the usable connections
        self.event_retries = 0

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

    def usable(self) -> list[Connection]:
        """Connections that may take a new envelope, oldest first."""
        return [c for c in self.connections if c.usable]

    async def wait_for_connection(
        self, within: float, *, avoid: frozenset[int] = frozenset(), via: int | None = None
    ) -> Connection:
        """The next usable connection in turn, waiting up to ``within`` s for one to appear.
        ``avoid``: connection ids to pass over while another is usable (a redelivery goes
        elsewhere); ``via``: only that connection will do."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            usable = self.usable()
            if via is not None:
                usable = [c for c in usable if c.id == via]
            preferred = [c for c in usable if c.id not in avoid] or usable
            if preferred:
                conn = preferred[self._turn % len(preferred)]
                self._turn += 1
                return conn
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise NoSocketConnection(within)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.1))

    async def push(
        self,
        envelope: dict[str, Any],
        *,
        ack_timeout: float,
        connect_timeout: float,
        retries: int | None = None,
        via: int | None = None,
    ) -> Ack:
        """Deliver an envelope to one connection and wait for its ack; raises AckTimeout (after
        the redeliveries, see the module docstring) or NoSocketConnection. ``retries``
        overrides ``event_retries`` for this envelope (Events API only); ``via`` delivers the
        first attempt on that connection."""
        if retries is None:
            retries = self.event_retries if envelope.get("type") == "events_api" else 0
        tried: list[int] = []  # connection ids, one per attempt
        attempt = envelope
        while True:
            conn = await self.wait_for_connection(
                connect_timeout, avoid=frozenset(tried[-1:]), via=None if tried else via
            )
            try:
                return await self._push_on(conn, attempt, ack_timeout)
            except AckTimeout:
                tried.append(conn.id)
                if len(tried) > retries:
                    raise
                log.info(
                    "envelope %s not acknowledged on connection %s; redelivering",
                    envelope["envelope_id"],
                    conn.id,
                )
                attempt = _retry_of(attempt, "timeout")

    async def _push_on(self, conn: Connection, envelope: dict[str, Any], ack_timeout: float) -> Ack:
        envelope_id = str(envelope["envelope_id"])
        self._envelopes[envelope_id] = envelope
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
        return await self.push(
            _retry_of(original, reason),
            ack_timeout=ack_timeout,
            connect_timeout=connect_timeout,
            retries=0,
        )

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


def _retry_of(envelope: dict[str, Any], reason: str) -> dict[str, Any]:
    """The same envelope sent again; an Events API one with ``retry_attempt`` + 1 and
    ``retry_reason`` (Slack's retries)."""
    again = dict(envelope)
    if again.get("type") == "events_api":
        again["retry_attempt"] = int(envelope.get("retry_attempt", 0)) + 1
        again["retry_reason"] = reason
    return again


class _LostAck(Exception):
    """Internal: the ack arrived on a connection whose acks are being lost."""
