"""A hostile PD for tests (not a test module): an aiohttp server on 127.0.0.1 in front of the
simulator's PD port that misbehaves the way PDs behind proxies do.

    async with HostilePD(sim.pd_url) as pd:
        pd.mode = Hostile.TRICKLE           # 200 and headers, then one byte every 2 s
        pd.only = lambda method, path: method == "GET"   # which requests the mode applies to
        pd.mode = Hostile.PASS              # forward everything again

Modes (applied to requests for which `only(method, path)` is true, all by default):

- `TRICKLE`: the real answer's status and headers at once, then its body one byte every
  `trickle_every` seconds (2 s by default);
- `HANG`: accept the request and never answer;
- `EMPTY_STORES`: `GET /stores` answers `{"count": empty_count, "stores": []}`;
- `DROP_STORES`: `GET /stores` answers the real list without the stores in `dropped` (with a
  matching `count`): stores vanishing without becoming Tombstone;
- `HUGE`: 200 with a body of `huge_bytes` (50 MB by default), announced in `Content-Length`
  when `declare_length`, else chunked;
- `HTML`: 200 with an HTML login page.

`seen` counts requests by (method, path, what was done); `hung_up` counts trickled or huge
answers the client stopped reading before the end; `sent_bytes` is what the huge answers
wrote before the client hung up.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from collections.abc import Callable
from enum import StrEnum
from types import TracebackType

import aiohttp
from aiohttp import web

STORES = "/pd/api/v1/stores"


class Hostile(StrEnum):
    PASS = "pass"
    TRICKLE = "trickle"
    HANG = "hang"
    EMPTY_STORES = "empty-stores"
    DROP_STORES = "drop-stores"
    HUGE = "huge"
    HTML = "html"


class HostilePD:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = Hostile.PASS
        self.only: Callable[[str, str], bool] = lambda method, path: True
        self.trickle_every = 2.0
        self.empty_count = 1
        self.dropped: set[int] = set()
        self.huge_bytes = 50 * 1024 * 1024
        self.declare_length = False
        self.seen: Counter[tuple[str, str, str]] = Counter()
        self.hung_up: Counter[str] = Counter()
        self.sent_bytes: list[int] = []
        self._closing = asyncio.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, method: str | None = None, done: str | None = None) -> int:
        return sum(
            n
            for (m, _path, d), n in self.seen.items()
            if (method is None or m == method) and (done is None or d == done)
        )

    async def __aenter__(self) -> HostilePD:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock).start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._sock.close()

    # ------------------------------------------------------------------ handling

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.mode if self.only(request.method, request.path) else Hostile.PASS
        if mode in (Hostile.EMPTY_STORES, Hostile.DROP_STORES) and not (
            request.method == "GET" and request.path == STORES
        ):
            mode = Hostile.PASS
        self.seen[(request.method, request.path, mode.value)] += 1
        if mode is Hostile.HANG:
            await self._closing.wait()
            return web.Response(status=503)
        if mode is Hostile.HTML:
            return web.Response(
                text="<html><body><h1>Sign in</h1><form>...</form></body></html>",
                content_type="text/html",
            )
        if mode is Hostile.HUGE:
            return await self._huge(request)
        if mode is Hostile.EMPTY_STORES:
            return web.json_response({"count": self.empty_count, "stores": []})
        status, headers, body = await self._forward(request)
        if mode is Hostile.DROP_STORES and status == 200:
            answer = json.loads(body)
            kept = [s for s in answer["stores"] if s["store"]["id"] not in self.dropped]
            return web.json_response({"count": len(kept), "stores": kept})
        if mode is Hostile.TRICKLE:
            return await self._trickle(request, status, headers, body)
        return web.Response(status=status, body=body, headers=headers)

    async def _forward(self, request: web.Request) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            data=await request.read() or None,
            headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
        ) as upstream:
            body = await upstream.read()
            headers = {"Content-Type": upstream.headers.get("Content-Type", "application/json")}
            return upstream.status, headers, body

    async def _trickle(
        self, request: web.Request, status: int, headers: dict[str, str], body: bytes
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        try:
            for i in range(len(body)):
                await response.write(body[i : i + 1])
                try:
                    await asyncio.wait_for(self._closing.wait(), self.trickle_every)
                    return response  # shutting down
                except TimeoutError:
                    pass
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            self.hung_up["trickle"] += 1
        return response

    async def _huge(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        if self.declare_length:
            response.content_length = self.huge_bytes
        await response.prepare(request)
        chunk = b"[" + b"0," * (512 * 1024 - 1)
        sent = 0
        try:
            while sent < self.huge_bytes and not self._closing.is_set():
                piece = chunk[: self.huge_bytes - sent]
                await response.write(piece)
                sent += len(piece)
            await response.write_eof()
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            self.hung_up["huge"] += 1
        self.sent_bytes.append(sent)
        return response
