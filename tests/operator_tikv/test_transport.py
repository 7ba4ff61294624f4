"""`AiohttpTransport` under an `httpx.AsyncClient`, against a real server on 127.0.0.1: bodies,
headers, gzip, redirects, keep-alive, and httpx's own exceptions for each failure."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from operator_tikv.errors import PDUnavailableError
from operator_tikv.pd import PDClient
from operator_tikv.transport import env_proxy, open_aiohttp_transport


class Server:
    """An aiohttp app on a free loopback port that remembers the connections it saw."""

    def __init__(self) -> None:
        self.peers: set[Any] = set()
        self.url = ""

    async def echo(self, request: web.Request) -> web.Response:
        self.peers.add(request.transport)
        body = await request.read()
        return web.json_response(
            {
                "method": request.method,
                "query": dict(request.query),
                "body": body.decode(),
                "content_type": request.headers.get("Content-Type"),
                "content_length": request.headers.get("Content-Length"),
                "host": request.headers.get("Host"),
                "custom": request.headers.get("X-Custom"),
            },
            status=int(request.query.get("status", "200")),
            headers={"X-Reply": "yes"},
        )

    async def gzipped(self, request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b"hello " * 100),
            headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
        )

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/echo")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.Response(text="late")

    async def hang_up(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(0.1)
        return web.Response(text="never sent")


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/echo", srv.echo)
    app.router.add_get("/gzip", srv.gzipped)
    app.router.add_get("/redirect", srv.redirect)
    app.router.add_get("/slow", srv.slow)
    app.router.add_get("/hang-up", srv.hang_up)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    srv.url = f"http://127.0.0.1:{port}"
    try:
        yield srv
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        open_aiohttp_transport() as transport,
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.5)) as client,
    ):
        yield client


async def test_get_with_params_status_and_headers(server: Server, http: httpx.AsyncClient) -> None:
    response = await http.get(
        server.url + "/echo", params={"a": "1", "status": "418"}, headers={"X-Custom": "v"}
    )
    assert response.status_code == 418
    assert response.headers["X-Reply"] == "yes"
    assert response.reason_phrase == "I'm a Teapot"
    seen = response.json()
    assert seen["method"] == "GET"
    assert seen["query"] == {"a": "1", "status": "418"}
    assert seen["custom"] == "v"
    assert seen["host"] == server.url.removeprefix("http://")


async def test_post_form_and_json_bodies(server: Server, http: httpx.AsyncClient) -> None:
    form = (await http.post(server.url + "/echo", data={"query": 'up{job="tikv"}'})).json()
    assert form["body"] == "query=up%7Bjob%3D%22tikv%22%7D"
    assert form["content_type"] == "application/x-www-form-urlencoded"
    assert form["content_length"] == str(len(form["body"]))
    sent = {"name": "evict-leader-scheduler", "store_id": 4}
    body = (await http.post(server.url + "/echo", json=sent)).json()
    assert json.loads(body["body"]) == sent
    assert body["content_type"] == "application/json"
    empty = (await http.delete(server.url + "/echo")).json()
    assert empty["method"] == "DELETE" and empty["body"] == ""


async def test_gzip_is_decoded_once_by_httpx(server: Server, http: httpx.AsyncClient) -> None:
    response = await http.get(server.url + "/gzip")
    assert response.text == "hello " * 100


async def test_redirects_are_left_to_httpx(server: Server, http: httpx.AsyncClient) -> None:
    response = await http.get(server.url + "/redirect")
    assert response.status_code == 302
    assert response.headers["Location"] == "/echo"
    followed = await http.get(server.url + "/redirect", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["method"] == "GET"


async def test_connections_are_kept_alive(server: Server, http: httpx.AsyncClient) -> None:
    for _ in range(5):
        await http.get(server.url + "/echo")
    assert len(server.peers) == 1


async def test_read_timeout_is_httpx_read_timeout(server: Server, http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.ReadTimeout):
        await http.get(server.url + "/slow", timeout=0.2)


async def test_refused_connection_is_connect_error(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


async def test_hang_up_is_remote_protocol_error(server: Server, http: httpx.AsyncClient) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get(server.url + "/hang-up")


async def test_pd_client_maps_failures_over_the_transport(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        pd = PDClient(http, f"http://127.0.0.1:{port}", retries=0)
        with pytest.raises(PDUnavailableError) as info:
            await pd.list_stores()
    assert "ConnectError" in str(info.value)


@pytest.mark.parametrize(
    ("env", "url", "proxy"),
    [
        ({}, "http://pd:2379", None),
        ({"HTTP_PROXY": "http://proxy:3128"}, "http://pd:2379", "http://proxy:3128"),
        ({"HTTP_PROXY": "http://proxy:3128"}, "https://pd:2379", None),
        ({"ALL_PROXY": "http://proxy:3128"}, "https://pd:2379", "http://proxy:3128"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "pd"}, "http://pd:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "*"}, "http://pd:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": ".svc"}, "http://pd.ns.svc:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "svc"}, "http://pd.ns.svc:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "pd:2379"}, "http://pd:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "pd:9"}, "http://pd:2379", "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "xpd"}, "http://pd:2379", "http://p:1"),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "::1"}, "http://[::1]:2379", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, "http://127.0.0.1:1", None),
    ],
)
def test_environment_proxies_as_httpx_reads_them(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, proxy: str | None
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    parsed = httpx.URL(url)
    assert env_proxy(parsed.scheme, parsed.host, parsed.port) == proxy
