"""A PD stand-in for fault tests (not a test module): an aiohttp proxy on 127.0.0.1 in front of
the simulator's PD port that can misbehave in ways the simulator does not offer.

    async with PDProxy(sim.pd_url) as proxy:
        proxy.mode = Mode.MALFORMED      # 200 answers whose JSON is cut short
        proxy.mode = Mode.REFUSED        # the port is closed: connection refused
        proxy.mode = Mode.PASS           # forward everything again

Modes apply to requests whose method is in `proxy.methods` (all by default); others pass.
`proxy.seen` counts requests by (method, path, what was done).
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from enum import StrEnum
from types import TracebackType

import aiohttp
from aiohttp import web


class Mode(StrEnum):
    PASS = "pass"
    REFUSED = "refused"  # nothing listens on the port
    HANG = "hang"  # accept, never answer (the client times out)
    ERROR_5XX = "5xx"  # 503 with a non-PD body
    SLOW = "slow"  # forward after `delay` seconds
    MALFORMED = "malformed"  # 200 with the real body cut in half
    GARBAGE = "garbage"  # 200 with a body that is not JSON at all


class PDProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = Mode.PASS
        self.methods: frozenset[str] = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH"})
        self.delay = 0.0
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._runner: web.AppRunner | None = None
        self._site: web.SockSite | None = None
        self._session: aiohttp.ClientSession | None = None
        self._hung: list[asyncio.Event] = []
        self._forwarding: set[asyncio.Task[web.Response]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> PDProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        await self._listen()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for event in self._hung:
            event.set()
        await asyncio.gather(*self._forwarding, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
        self._sock.close()

    async def _listen(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        self._sock.listen(128)
        self._site = web.SockSite(self._runner, self._sock)
        await self._site.start()

    async def refuse(self) -> None:
        """Close the port and every open connection: new connections are refused."""
        self.mode = Mode.REFUSED
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None
        # a fresh socket bound to the same port, not listening: connect() is refused
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))

    async def restore(self) -> None:
        """Back to forwarding everything, listening again if the port was closed."""
        self.mode = Mode.PASS
        for event in self._hung:
            event.set()
        self._hung.clear()
        if self._site is None:
            await self._listen()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.mode if request.method in self.methods else Mode.PASS
        self.seen[(request.method, request.path, mode.value)] += 1
        if mode is Mode.HANG:
            event = asyncio.Event()
            self._hung.append(event)
            await event.wait()
            return web.Response(status=503, text="proxy released a hung request")
        if mode is Mode.ERROR_5XX:
            return web.Response(status=503, text="<html>upstream connect error</html>")
        if mode is Mode.GARBAGE:
            return web.Response(status=200, body=b"\x00\xffnot json at all{{{")
        body = await request.read()
        # PD goes on with a request whose client gave up: forward even if this handler is
        # cancelled by the client's disconnect.
        task = asyncio.get_running_loop().create_task(self._forward(request, body, mode))
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)
        return await asyncio.shield(task)

    async def _forward(self, request: web.Request, body: bytes, mode: Mode) -> web.Response:
        if mode is Mode.SLOW:
            await asyncio.sleep(self.delay)
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=body or None,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        ) as upstream:
            content = await upstream.read()
            status = upstream.status
            content_type = upstream.headers.get("Content-Type", "application/json")
        if mode is Mode.MALFORMED and status == 200 and len(content) > 2:
            content = content[: len(content) // 2]
        return web.Response(status=status, body=content, headers={"Content-Type": content_type})
