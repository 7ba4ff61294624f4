"""SimServer: the simulated cluster behind real sockets.

One aiohttp server answers PD's HTTP API (`/pd/api/v1/...`), PD's `/metrics` and the `/sim/...`
control API on the PD port; each TiKV store serves its own `/metrics` on its own port (its
`status_address`). Listening sockets are opened and closed synchronously, so a stopped store or a
partitioned PD refuses connections the moment the fault is injected. With `auto_tick=True` a
background task advances virtual time by wall time x `speed`; with `auto_tick=False` time moves
only through `server.cluster.advance(seconds)`, which makes tests deterministic.

    server = SimServer(stores=3, regions=1000, speed=1.0, seed=0, auto_tick=False)
    await server.start()            # 127.0.0.1, free ports
    server.pd_url                   # "http://127.0.0.1:PORT"
    server.status_addresses         # {1: "127.0.0.1:PORT", ...}
    server.faults.stop_store(2)
    server.cluster.advance(30)
    server.requests                 # [RequestRecord(...), ...]
    await server.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
import ssl
import time
from typing import Any

from aiohttp import web

from sim.api_cluster import ClusterApi
from sim.api_operators import OperatorApi
from sim.cluster import Cluster
from sim.control_api import ControlApi
from sim.faults import Faults
from sim.gojson import encode_indent
from sim.pderrors import REDIRECT_FAILED, SimError
from sim.requestlog import RequestLog, RequestRecord, decode_body
from sim.responses import (
    ErrcodeError,
    RawError,
    errcode_body,
    json_body,
    method_not_allowed,
    not_found_text,
    plain_error,
)
from sim.scenarios import ScenarioResult, apply_scenario
from sim.tikv_metrics import render_store_metrics

log = logging.getLogger(__name__)

_STORE_KEY = web.AppKey("store_id", int)
_PD = 0  # listener key of the PD port; stores use their id
FREEZE_REGIONS = 20_000  # from this size, gc.freeze() the cluster after start-up


class _Listener:
    """A listening socket and the asyncio server serving it (once started)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.server: asyncio.Server | None = None
        self.closed = False


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class SimServer:
    """A simulated TiKV cluster reachable over HTTP like a real PD and real TiKV stores."""

    def __init__(
        self,
        stores: int = 3,
        regions: int = 1000,
        speed: float = 1.0,
        seed: int = 0,
        auto_tick: bool = True,
        *,
        start_time: float | None = None,
        peer_down_seconds: float = 600.0,
        tick_interval: float = 0.1,
        request_log_limit: int = 100_000,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.cluster = Cluster(
            stores, regions, seed=seed, start_time=start_time, peer_down_seconds=peer_down_seconds
        )
        self.speed = float(speed)
        self.auto_tick = auto_tick
        self.tick_interval = tick_interval
        self.faults = Faults(self, self.cluster)
        self._log = RequestLog(request_log_limit)
        self._host = "127.0.0.1"
        self._ports: dict[int, int] = {}
        self._listeners: dict[int, _Listener] = {}
        self._runners: dict[int, web.AppRunner] = {}
        self._pending: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._started = False
        self._frozen = False
        self._ssl: ssl.SSLContext | None = None  # --tls-dir: HTTPS with client certificates

    # ----- public API ------------------------------------------------------------------------

    @property
    def pd_url(self) -> str:
        self._require_started()
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self._host}:{self._ports[_PD]}"

    @property
    def pd_port(self) -> int:
        self._require_started()
        return self._ports[_PD]

    @property
    def status_addresses(self) -> dict[int, str]:
        self._require_started()
        return {sid: f"{self._host}:{self._ports[sid]}" for sid in sorted(self.cluster.stores)}

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request received so far (PD port and store /metrics), oldest first."""
        return self._log.records()

    def clear_requests(self) -> None:
        self._log.clear()

    def apply_scenario(self, name: str) -> ScenarioResult:
        """Inject a named scenario (see sim.scenarios); returns the affected store/region."""
        return apply_scenario(name, self.cluster, self.faults)

    def state(self) -> dict[str, Any]:
        cluster = self.cluster
        return {
            "now": cluster.now,
            "elapsed": cluster.now - cluster.started_at,
            "speed": self.speed,
            "auto_tick": self.auto_tick,
            "pd_url": self.pd_url if self._started else None,
            "stores": [
                {
                    "id": s.id,
                    "state_name": cluster.state_name(s),
                    "running": s.running,
                    "leader_count": s.leader_count,
                    "region_count": s.region_count,
                    "write_p99_ms": s.write_p99_ms,
                    "used_ratio": round(cluster.used_ratio(s), 4),
                    "status_address": s.status_address,
                }
                for s in sorted(cluster.stores.values(), key=lambda s: s.id)
            ],
            "regions": len(cluster.regions),
            "operators": len(cluster.operators.running),
            "schedulers": cluster.schedulers.names(),
            "faults": self.faults.describe(),
        }

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        """Bind the PD port (0 = any free port) and one /metrics port per store, then serve.
        With `ssl_context` (`sim.tls.server_context`) every port speaks HTTPS."""
        if self._started:
            raise RuntimeError("SimServer already started")
        self._host = host
        self._ssl = ssl_context
        pd_app = self._pd_app()
        self._runners[_PD] = web.AppRunner(pd_app, shutdown_timeout=1.0, access_log=None)
        for store_id in self.cluster.stores:
            app = web.Application(middlewares=[self._store_middleware])
            app[_STORE_KEY] = store_id
            app.router.add_get("/metrics", self._store_metrics)
            self._runners[store_id] = web.AppRunner(app, shutdown_timeout=1.0, access_log=None)
        for runner in self._runners.values():
            await runner.setup()
        try:
            await self._serve(_PD, port)
            for store_id in self.cluster.stores:
                await self._serve(store_id, 0)
                self.cluster.stores[store_id].status_address = f"{host}:{self._ports[store_id]}"
        except BaseException:
            await self._shutdown()
            raise
        self._started = True
        if len(self.cluster.regions) >= FREEZE_REGIONS and not self._frozen:
            # keep the (static) cluster out of the cyclic GC's full scans: no long pauses
            gc.freeze()
            self._frozen = True
        if self.auto_tick:
            self._ticker = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        """Stop ticking, release hanging requests, close every listener and connection."""
        await self._shutdown()

    async def __aenter__(self) -> SimServer:
        if not self._started:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----- listeners (used by faults) --------------------------------------------------------

    def close_store_listener(self, store_id: int) -> None:
        self._close(store_id)

    def open_store_listener(self, store_id: int) -> None:
        self._open(store_id)

    def close_pd_listener(self) -> None:
        self._close(_PD)

    def open_pd_listener(self) -> None:
        self._open(_PD)

    def _close(self, key: int) -> None:
        listener = self._listeners.pop(key, None)
        if listener is None:
            return
        listener.closed = True
        if listener.server is not None:
            listener.server.close()
        else:
            listener.sock.close()
        runner = self._runners.get(key)
        if runner is not None and runner.server is not None:
            for conn in list(runner.server.connections):
                conn.force_close()

    def _open(self, key: int) -> None:
        if key in self._listeners or key not in self._ports:
            return
        listener = _Listener(_bind(self._host, self._ports[key]))
        self._listeners[key] = listener
        task = asyncio.get_running_loop().create_task(self._start_listener(key, listener))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _serve(self, key: int, port: int) -> None:
        listener = _Listener(_bind(self._host, port))
        self._ports[key] = listener.sock.getsockname()[1]
        self._listeners[key] = listener
        await self._start_listener(key, listener)

    async def _start_listener(self, key: int, listener: _Listener) -> None:
        if listener.closed:
            return
        runner = self._runners[key]
        assert runner.server is not None
        server = await asyncio.get_running_loop().create_server(
            runner.server, sock=listener.sock, ssl=self._ssl
        )
        if self._listeners.get(key) is not listener:  # closed while we were starting
            server.close()
        else:
            listener.server = server

    async def _shutdown(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self.faults.release_all()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for key in list(self._listeners):
            listener = self._listeners[key]
            self._close(key)
            if listener.server is not None:
                await listener.server.wait_closed()
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()
        self._started = False
        if self._frozen:
            gc.unfreeze()
            self._frozen = False

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError("SimServer is not started; call `await server.start()` first")

    async def _tick_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.tick_interval)
            now = loop.time()
            try:
                self.cluster.advance((now - last) * self.speed)
            except Exception:
                log.exception("simulator tick failed")
            last = now

    # ----- PD app ----------------------------------------------------------------------------

    def _pd_app(self) -> web.Application:
        app = web.Application(
            middlewares=[self._log_middleware, self._fault_middleware, self._error_middleware],
            client_max_size=16 * 1024 * 1024,
        )
        cluster_api = ClusterApi(self.cluster, lambda: self.pd_url)
        operator_api = OperatorApi(self.cluster, lambda: self.cluster.pd_started_at)
        app.add_routes(operator_api.routes())
        app.add_routes(cluster_api.routes())
        control = ControlApi(self)
        sim_app = web.Application(middlewares=[control.middleware])
        sim_app.add_routes(control.routes())
        app.add_subapp("/sim", sim_app)
        return app

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/sim/") or request.path == "/sim":
            response: web.StreamResponse = await handler(request)
            return response
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query={k: request.query.getall(k) for k in request.query},
            body=decode_body(await request.read()),
            status=None,
            at=self.cluster.now,
            wall=time.time(),
        )
        self._log.append(record)
        response = await handler(request)
        record.status = response.status
        return response

    @web.middleware
    async def _fault_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/pd/"):
            faults = self.faults
            if faults.timeouts_active:
                await faults.wait_if_timing_out()
            status = faults.should_fail()
            if status is not None:
                return plain_error(status, REDIRECT_FAILED)
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _error_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except SimError as exc:
            return json_body(exc.message, exc.status)
        except ErrcodeError as exc:
            return errcode_body(exc.status, exc.code, exc.msg, exc.data)
        except RawError as exc:
            return exc.response
        except web.HTTPNotFound:
            return not_found_text()
        except web.HTTPMethodNotAllowed:
            return method_not_allowed()
        except web.HTTPException:
            raise
        except Exception as exc:
            log.exception("simulator handler failed: %s %s", request.method, request.path)
            return web.Response(
                body=encode_indent(f"simulator error: {exc}").encode(),
                status=500,
                headers={"Content-Type": "application/json; charset=UTF-8"},
            )

    # ----- store /metrics --------------------------------------------------------------------

    @web.middleware
    async def _store_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        store_id = request.app[_STORE_KEY]
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query={k: request.query.getall(k) for k in request.query},
            body=None,
            status=None,
            at=self.cluster.now,
            store_id=store_id,
            wall=time.time(),
        )
        self._log.append(record)
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPNotFound:
            response = not_found_text()
        except web.HTTPMethodNotAllowed:
            response = method_not_allowed()
        record.status = response.status
        return response

    async def _store_metrics(self, request: web.Request) -> web.Response:
        store_id = request.app[_STORE_KEY]
        cluster = self.cluster
        store = cluster.stores[store_id]
        if not store.running:
            # a stopped TiKV answers nothing: drop the connection without a response
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()
        text = render_store_metrics(
            store, cluster.metrics[store_id], cluster.now, store.available_bytes(cluster.now)
        )
        return web.Response(
            body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )
