"""Hostile peers at the client boundary: answers that trickle (headers, then a byte every 2 s),
hang, are huge, or cannot be true. Each read ends within its total deadline or size cap with
our own error type, and a write is still sent exactly once.

PD runs behind `HostilePD` (a loopback aiohttp server in front of the simulator); Prometheus
and a TiKV `/metrics` port are small loopback aiohttp apps of their own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
from aiohttp import web

from operator_tikv.errors import (
    PDResponseTooLargeError,
    PDUnavailableError,
    PDUntrustworthyError,
)
from operator_tikv.limits import MIB
from operator_tikv.metrics import PrometheusProtocolError, PrometheusUnavailable, StoreTarget
from operator_tikv.models import PDWrite
from operator_tikv.models.region import parse_regions_brief
from operator_tikv.pd import DEADLINE_OUTCOME, BodyLimits, PDClient
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.scrape import ScrapeSource, open_scrape_session
from operator_tikv.transport import open_aiohttp_transport
from tests.plugins.sim import SimFactory
from tests.reliability.hostile_pd import Hostile, HostilePD

GUARD = 15.0  # today's code never ends these reads: fail the test instead of hanging
DEADLINE = 0.5


@asynccontextmanager
async def client(
    url: str, *, via: str = "aiohttp", limits: BodyLimits | None = None, retries: int = 2
) -> AsyncIterator[PDClient]:
    timeout = httpx.Timeout(5.0, connect=1.0)  # the per-read idle timeout never fires
    if via == "aiohttp":
        async with (
            open_aiohttp_transport() as transport,
            httpx.AsyncClient(timeout=timeout, transport=transport) as http,
        ):
            yield PDClient(http, url, retries=retries, deadline=DEADLINE, limits=limits)
    else:
        async with httpx.AsyncClient(timeout=timeout) as http:
            yield PDClient(http, url, retries=retries, deadline=DEADLINE, limits=limits)


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("via", ["aiohttp", "httpx"])
@pytest.mark.parametrize("mode", [Hostile.TRICKLE, Hostile.HANG])
async def test_a_read_that_trickles_or_hangs_fails_at_its_total_deadline(
    sim_factory: SimFactory, via: str, mode: Hostile
) -> None:
    sim = await sim_factory(stores=3)
    async with HostilePD(sim.pd_url) as pd, client(pd.url, via=via) as client_:
        pd.mode = mode
        async with asyncio.timeout(GUARD):
            with pytest.raises(PDUnavailableError) as info:
                await client_.list_stores()
        message = str(info.value)
        assert "no complete answer within 0.5 s" in message
        assert "GET /pd/api/v1/stores" in message
        # the deadline covers the whole call: no retry after it passed
        assert pd.count("GET") == 1
        assert client_.stats[("GET", "/pd/api/v1/stores", DEADLINE_OUTCOME)] == 1
        if mode is Hostile.TRICKLE:
            # the bot hung up: the next byte PD tried to send found the connection closed
            await until(lambda: pd.hung_up["trickle"] == 1)
        pd.mode = Hostile.PASS
        assert len(await client_.list_stores()) == 3  # and the client still works


async def test_a_write_whose_answer_trickles_is_sent_once_and_marked_outcome_unknown(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(stores=3)
    async with HostilePD(sim.pd_url) as pd, client(pd.url) as client_:
        pd.mode = Hostile.TRICKLE
        pd.only = lambda method, path: method == "POST"
        async with asyncio.timeout(GUARD):
            with pytest.raises(PDUnavailableError) as info:
                await client_.execute(PDWrite.add_evict_leader(2))
    assert info.value.outcome_unknown
    assert pd.count("POST") == 1
    assert [r.method for r in sim.requests if r.method == "POST"] == ["POST"]


@pytest.mark.parametrize("declare_length", [False, True])
async def test_a_huge_store_list_fails_with_our_error_without_being_read_whole(
    sim_factory: SimFactory, declare_length: bool
) -> None:
    sim = await sim_factory(stores=3)
    limits = BodyLimits(region_lists=8 * MIB, lists=1 * MIB, other=64 * 1024)
    async with HostilePD(sim.pd_url) as pd, client(pd.url, limits=limits) as client_:
        pd.mode = Hostile.HUGE
        pd.declare_length = declare_length
        async with asyncio.timeout(GUARD):
            with pytest.raises(PDResponseTooLargeError) as info:
                await client_.list_stores()
        message = str(info.value)
        assert "larger than the 1 MiB accepted" in message
        assert "GET /pd/api/v1/stores" in message
        assert "TIKVOPS_PD_URL" in message  # what to do next
        assert pd.count("GET") == 1  # not retried: the same answer would come again
        await until(lambda: len(pd.sent_bytes) == 1)
    assert pd.hung_up["huge"] == 1
    # far less than the 50 MB PD meant to send (what remains is loopback socket buffers)
    assert pd.sent_bytes[0] < 20 * MIB


async def test_region_lists_get_a_more_generous_cap_than_store_lists(
    sim_factory: SimFactory,
) -> None:
    sim = await sim_factory(stores=3)
    limits = BodyLimits(region_lists=8 * MIB, lists=1 * MIB, other=64 * 1024)
    async with HostilePD(sim.pd_url) as pd, client(pd.url, limits=limits) as client_:
        pd.mode = Hostile.HUGE
        pd.huge_bytes = 3 * MIB
        async with asyncio.timeout(GUARD):
            with pytest.raises(PDResponseTooLargeError):
                await client_.list_stores()
            body = await client_.get_region_check_body("miss-peer")
    # 3 MiB is read whole for a region list: it fails as unreadable JSON, not as too large
    assert len(body) >= 3 * MIB
    with pytest.raises(ValueError):
        parse_regions_brief(body)


@pytest.mark.parametrize(
    ("count", "says"),
    [
        (1, "its store list says count 1 but lists 0 stores"),
        (0, "it lists no stores at all"),
    ],
)
async def test_an_empty_store_list_is_not_believed(
    sim_factory: SimFactory, count: int, says: str
) -> None:
    sim = await sim_factory(stores=3)
    async with HostilePD(sim.pd_url) as pd, client(pd.url) as client_:
        pd.mode = Hostile.EMPTY_STORES
        pd.empty_count = count
        with pytest.raises(PDUntrustworthyError) as info:
            await client_.list_stores()
    assert str(info.value).startswith(f"PD answer not trustworthy: {says}")


# --------------------------------------------------------------------------- Prometheus


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STOP = web.AppKey("stop", asyncio.Event)


@asynccontextmanager
async def serving(path: str, handler: Handler) -> AsyncIterator[str]:
    stop = asyncio.Event()
    app = web.Application()
    app[STOP] = stop
    app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await runner.cleanup()


async def trickle(request: web.Request) -> web.StreamResponse:
    body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    stop = request.app[STOP]
    try:
        for i in range(len(body)):
            await response.write(body[i : i + 1])
            try:
                await asyncio.wait_for(stop.wait(), 2.0)
                break
            except TimeoutError:
                pass
    except ConnectionError:
        pass
    return response


async def huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(request)
    stop = request.app[STOP]
    try:
        for _ in range(100):  # 100 x 512 KiB = 50 MiB
            if stop.is_set():
                break
            await response.write(b"# " + b"x" * (512 * 1024 - 3) + b"\n")
    except ConnectionError:
        pass
    return response


@pytest.mark.parametrize("via", ["aiohttp", "httpx"])
async def test_prometheus_that_trickles_is_unavailable_at_the_deadline(via: str) -> None:
    async with serving("/api/v1/query", trickle) as url:
        timeout = httpx.Timeout(5.0)
        if via == "aiohttp":
            async with (
                open_aiohttp_transport() as transport,
                httpx.AsyncClient(timeout=timeout, transport=transport) as http,
            ):
                prom = PrometheusClient(url, http, timeout=5.0, deadline=DEADLINE)
                async with asyncio.timeout(GUARD):
                    with pytest.raises(PrometheusUnavailable) as info:
                        await prom.query("up")
        else:
            async with httpx.AsyncClient(timeout=timeout) as http:
                prom = PrometheusClient(url, http, timeout=5.0, deadline=DEADLINE)
                async with asyncio.timeout(GUARD):
                    with pytest.raises(PrometheusUnavailable) as info:
                        await prom.query("up")
    assert "no complete answer within 0.5 s" in str(info.value)


async def test_prometheus_that_answers_a_huge_body_is_refused() -> None:
    async with serving("/api/v1/query", huge) as url, httpx.AsyncClient() as http:
        prom = PrometheusClient(url, http, timeout=5.0, max_body=1 * MIB)
        async with asyncio.timeout(GUARD):
            with pytest.raises(PrometheusProtocolError) as info:
                await prom.query("up")
    assert "too large to read" in str(info.value)
    assert "larger than the 1 MiB accepted" in str(info.value)


# --------------------------------------------------------------------------- /metrics


@pytest.mark.parametrize("via", ["aiohttp", "httpx"])
async def test_a_metrics_page_that_trickles_is_a_failed_scrape_at_the_deadline(via: str) -> None:
    async with serving("/metrics", trickle) as url:
        address = url.removeprefix("http://")
        targets = [StoreTarget(store_id=1, address="a:20160", status_address=address)]
        if via == "aiohttp":
            async with open_scrape_session() as session:
                source = ScrapeSource(session, timeout=DEADLINE, max_body=1 * MIB)
                async with asyncio.timeout(GUARD):
                    slow = await source.read(targets, 0.0)
        else:
            async with httpx.AsyncClient(timeout=httpx.Timeout(5.0)) as http:
                source = ScrapeSource(http, timeout=DEADLINE, max_body=1 * MIB)
                async with asyncio.timeout(GUARD):
                    slow = await source.read(targets, 0.0)
    store = slow.stores[1]
    assert store.up is False
    assert store.error is not None and "did not answer within 0.5 s" in store.error


@pytest.mark.parametrize("via", ["aiohttp", "httpx"])
async def test_a_huge_metrics_page_is_abandoned(via: str) -> None:
    async with serving("/metrics", huge) as url:
        address = url.removeprefix("http://")
        targets = [StoreTarget(store_id=1, address="a:20160", status_address=address)]
        if via == "aiohttp":
            async with open_scrape_session() as session:
                source = ScrapeSource(session, timeout=10.0, max_body=1 * MIB)
                async with asyncio.timeout(GUARD):
                    reading = await source.read(targets, 0.0)
        else:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
                source = ScrapeSource(http, timeout=10.0, max_body=1 * MIB)
                async with asyncio.timeout(GUARD):
                    reading = await source.read(targets, 0.0)
    store = reading.stores[1]
    assert store.up is False
    assert store.error is not None and "larger than the 1 MiB accepted" in store.error


async def test_many_slow_stores_share_one_deadline_per_read() -> None:
    async with serving("/metrics", trickle) as url:
        address = url.removeprefix("http://")
        targets = [
            StoreTarget(store_id=i, address=f"a{i}:20160", status_address=address)
            for i in range(1, 6)
        ]
        async with open_scrape_session() as session:
            # one at a time, 0.3 s each: five stores would take 1.5 s without the shared bound
            source = ScrapeSource(session, timeout=0.3, max_concurrency=1, deadline=0.5)
            async with asyncio.timeout(GUARD):
                reading = await source.read(targets, 0.0)
    errors = [reading.stores[i].error or "" for i in range(1, 6)]
    assert all(reading.stores[i].up is False for i in range(1, 6))
    assert "did not answer within 0.3 s" in errors[0]
    assert all(
        "was not read within the 0.5 s every scrape of a cycle shares" in e for e in errors[2:]
    )
