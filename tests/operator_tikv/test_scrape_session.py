"""`ScrapeSource` over `open_scrape_session` (aiohttp), against TiKV stand-ins on 127.0.0.1:
the same readings and failure messages as over httpx, and one kept-alive connection per store."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from operator_tikv.metrics import StoreTarget
from operator_tikv.scrape import ScrapeSource, open_scrape_session

FIXTURES = Path(__file__).parent.parent / "fixtures" / "metrics"
PAGE1 = (FIXTURES / "tikv_v8.5_store1_scrape1.txt").read_text()
PAGE2 = (FIXTURES / "tikv_v8.5_store1_scrape2.txt").read_text()


class Stores:
    """One /metrics listener per store; `answers[store]` is what it serves next."""

    def __init__(self) -> None:
        self.answers: dict[int, list[Any]] = {}
        self.addresses: dict[int, str] = {}
        self.peers: dict[int, set[Any]] = {}
        self._runners: list[web.AppRunner] = []

    async def start(self, store_id: int) -> None:
        async def metrics(request: web.Request) -> web.Response:
            self.peers.setdefault(store_id, set()).add(request.transport)
            answer = self.answers[store_id].pop(0)
            if answer == "slow":
                await asyncio.sleep(2)
            if isinstance(answer, int):
                return web.Response(status=answer, text="oops")
            return web.Response(text=str(answer), content_type="text/plain")

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.addresses[store_id] = f"127.0.0.1:{port}"

    def target(self, store_id: int) -> StoreTarget:
        return StoreTarget(
            store_id=store_id,
            address=f"127.0.0.1:{20160 + store_id}",
            status_address=self.addresses[store_id],
        )

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()


@pytest.fixture
async def stores() -> AsyncIterator[Stores]:
    running = Stores()
    try:
        yield running
    finally:
        await running.stop()


async def test_readings_and_p99_over_kept_alive_connections(stores: Stores) -> None:
    for store_id in (1, 2):
        await stores.start(store_id)
        stores.answers[store_id] = [PAGE1, PAGE2, PAGE2]
    targets = [stores.target(1), stores.target(2)]
    async with open_scrape_session() as session:
        source = ScrapeSource(session, timeout=1.0)
        first = await source.read(targets, at=100.0)
        second = await source.read(targets, at=115.0)
        third = await source.read(targets, at=130.0)
    assert first.stores[1].up is True and first.stores[1].leader_count == 1203
    assert first.stores[1].write_p99_seconds is None
    assert second.stores[2].write_p99_seconds == pytest.approx(0.12288)
    assert second.stores[2].disk_used_ratio == pytest.approx(1 - 124 / 500)
    assert third.stores[1].write_idle is True  # the same page twice: no writes in between
    # three cycles, one connection per store
    assert {store: len(peers) for store, peers in stores.peers.items()} == {1: 1, 2: 1}


async def test_failures_are_no_data_with_the_reason(stores: Stores) -> None:
    for store_id, answer in ((1, 500), (2, "slow"), (3, 'tikv_store_size_bytes{type="x" 1\n')):
        await stores.start(store_id)
        stores.answers[store_id] = [answer]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = StoreTarget(
            store_id=4,
            address="127.0.0.1:20164",
            status_address=f"127.0.0.1:{probe.getsockname()[1]}",
        )
        async with open_scrape_session() as session:
            reading = await ScrapeSource(session, timeout=0.3).read(
                [stores.target(1), stores.target(2), stores.target(3), refused], at=0.0
            )
    errors = {store_id: m.error or "" for store_id, m in reading.stores.items()}
    assert all(m.up is False for m in reading.stores.values())
    assert "answered HTTP 500" in errors[1]
    assert "did not answer within 0.3 s" in errors[2]
    assert "unreadable /metrics text" in errors[3]
    assert errors[4].startswith("could not read http://127.0.0.1:")
