"""Direct /metrics scraping: the parser on realistic TiKV text, P99 from bucket deltas."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx
from hypothesis import given
from hypothesis import strategies as st

from operator_tikv.metrics import StoreTarget
from operator_tikv.scrape import (
    ScrapeParseError,
    ScrapeSource,
    bucket_delta,
    histogram_quantile,
    parse_metrics_text,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "metrics"
PAGE1 = (FIXTURES / "tikv_v8.5_store1_scrape1.txt").read_text()
PAGE2 = (FIXTURES / "tikv_v8.5_store1_scrape2.txt").read_text()
RESTARTED = (FIXTURES / "tikv_v8.5_store1_after_restart.txt").read_text()

GIB = 1024**3
S1 = StoreTarget(store_id=1, address="127.0.0.1:20160", status_address="127.0.0.1:20180")
S4 = StoreTarget(store_id=4, address="127.0.0.1:20161", status_address="127.0.0.1:20181")


def test_parser_reads_tikv_text_format() -> None:
    parsed = parse_metrics_text(PAGE1)
    assert parsed.capacity_bytes == 500 * GIB
    assert parsed.available_bytes == 125 * GIB
    assert parsed.leader_count == 1203
    assert parsed.region_count == 3610
    # 32 TiKV buckets written without exponent (le="0.00001" .. le="21474.83648") plus +Inf.
    assert len(parsed.write_buckets) == 33
    assert min(parsed.write_buckets) == pytest.approx(0.00001)
    assert max(b for b in parsed.write_buckets if b != float("inf")) == pytest.approx(21474.83648)
    # Cumulative: only type="write" is read, not the snapshot histogram.
    assert parsed.write_buckets[float("inf")] == 120000 + 230000 + 80000 + 9000 + 700 + 40 + 3


def test_parser_reads_python_client_formatting() -> None:
    text = (
        "# TYPE tikv_store_size_bytes gauge\n"
        'tikv_store_size_bytes{type="capacity"} 5.36870912e+11\n'
        'tikv_store_size_bytes{type="available"} 1.34217728e+11\n'
        "# TYPE tikv_storage_engine_async_request_duration_seconds histogram\n"
        'tikv_storage_engine_async_request_duration_seconds_bucket{le="1e-05",type="write"} 1.0\n'
        'tikv_storage_engine_async_request_duration_seconds_bucket{le="+Inf",type="write"} 2.0\n'
        'tikv_storage_engine_async_request_duration_seconds_count{type="write"} 2.0\n'
        'tikv_storage_engine_async_request_duration_seconds_sum{type="write"} 0.1\n'
    )
    parsed = parse_metrics_text(text)
    assert parsed.capacity_bytes == 536870912000
    assert parsed.write_buckets == {0.00001: 1.0, float("inf"): 2.0}
    assert parsed.leader_count is None


def test_parser_rejects_broken_text() -> None:
    with pytest.raises(ScrapeParseError):
        parse_metrics_text('tikv_store_size_bytes{type="capacity" 12\n')


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    buckets = {0.1: 50.0, 0.2: 90.0, 0.4: 100.0, float("inf"): 100.0}
    # rank 99 lies in (0.2, 0.4], which holds 10 observations above 90.
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.2 + 0.2 * 9 / 10)
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1)
    # The first bucket starts at 0.
    assert histogram_quantile(0.2, buckets) == pytest.approx(0.1 * 20 / 50)


def test_histogram_quantile_edges() -> None:
    assert histogram_quantile(0.99, {}) is None
    assert histogram_quantile(0.99, {0.1: 0.0, float("inf"): 0.0}) is None  # no writes
    assert histogram_quantile(0.99, {0.1: 5.0}) is None  # no +Inf bucket
    # A dip (per-bucket rounding in an exporter) is smoothed the way Prometheus does it.
    dipped = {0.1: 0.0, 0.2: 100.0, 0.4: 99.0, float("inf"): 100.0}
    assert histogram_quantile(0.99, dipped) == pytest.approx(0.1 + 0.1 * 99 / 100)
    # Everything above the largest finite bound: the bound itself, as PromQL answers.
    assert histogram_quantile(0.99, {0.1: 0.0, 0.2: 0.0, float("inf"): 10.0}) == 0.2


def test_bucket_delta_detects_resets() -> None:
    assert bucket_delta({0.1: 5.0, float("inf"): 9.0}, {0.1: 7.0, float("inf"): 12.0}) == {
        0.1: 2.0,
        float("inf"): 3.0,
    }
    assert bucket_delta({0.1: 5.0, float("inf"): 9.0}, {0.1: 1.0, float("inf"): 1.0}) is None
    assert bucket_delta({0.1: 5.0}, {0.2: 5.0}) is None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@respx.mock
async def test_first_scrape_has_no_p99_second_has_it(http: httpx.AsyncClient) -> None:
    route = respx.get("http://127.0.0.1:20180/metrics").mock(
        side_effect=[httpx.Response(200, text=PAGE1), httpx.Response(200, text=PAGE2)]
    )
    source = ScrapeSource(http)
    first = (await source.read([S1], at=100.0)).stores[1]
    assert first.up is True
    assert first.write_p99_seconds is None
    assert first.disk_used_ratio == pytest.approx(0.75)
    assert first.leader_count == 1203
    second = (await source.read([S1], at=115.0)).stores[1]
    # Between the pages: 1000 writes, 980 at <= 20.48 ms and 20 in (81.92, 163.84] ms.
    # Rank 990 is half-way into that bucket: 81.92 + 81.92 / 2 ms.
    assert second.write_p99_seconds == pytest.approx(0.12288)
    assert second.disk_used_ratio == pytest.approx(1 - 124 / 500)
    assert route.call_count == 2


@respx.mock
async def test_counter_reset_gives_no_p99_then_recovers(http: httpx.AsyncClient) -> None:
    respx.get("http://127.0.0.1:20180/metrics").mock(
        side_effect=[
            httpx.Response(200, text=PAGE2),
            httpx.Response(200, text=RESTARTED),
            httpx.Response(200, text=PAGE1),
        ]
    )
    source = ScrapeSource(http)
    await source.read([S1], at=0)
    after_restart = (await source.read([S1], at=15)).stores[1]
    assert after_restart.up is True
    assert after_restart.write_p99_seconds is None
    assert after_restart.leader_count == 0
    later = (await source.read([S1], at=30)).stores[1]
    assert later.write_p99_seconds is not None


@respx.mock
async def test_failed_scrape_is_no_data_and_breaks_the_delta_chain(
    http: httpx.AsyncClient,
) -> None:
    respx.get("http://127.0.0.1:20180/metrics").mock(
        side_effect=[
            httpx.Response(200, text=PAGE1),
            httpx.ConnectError("Connection refused"),
            httpx.Response(200, text=PAGE2),
        ]
    )
    source = ScrapeSource(http)
    await source.read([S1], at=0)
    dead = (await source.read([S1], at=15)).stores[1]
    assert dead.up is False
    assert dead.write_p99_seconds is None
    assert dead.disk_used_ratio is None
    assert dead.leader_count is None
    assert dead.error is not None and "127.0.0.1:20180" in dead.error
    back = (await source.read([S1], at=30)).stores[1]
    assert back.write_p99_seconds is None  # needs two good scrapes in a row


@respx.mock
async def test_http_error_timeout_and_garbage_are_no_data(http: httpx.AsyncClient) -> None:
    respx.get("http://127.0.0.1:20180/metrics").respond(500, text="oops")
    respx.get("http://127.0.0.1:20181/metrics").mock(side_effect=httpx.ReadTimeout("slow"))
    source = ScrapeSource(http, timeout=0.5)
    reading = await source.read([S1, S4], at=0)
    assert reading.stores[1].up is False
    assert reading.stores[1].error is not None and "HTTP 500" in reading.stores[1].error
    assert reading.stores[4].up is False
    assert reading.stores[4].error is not None and "0.5 s" in reading.stores[4].error

    respx.get("http://127.0.0.1:20180/metrics").respond(
        200, text='tikv_store_size_bytes{type="capacity" 1\n'
    )
    garbage = (await source.read([S1], at=1)).stores[1]
    assert garbage.up is False
    assert garbage.error is not None and "unreadable" in garbage.error

    respx.get("http://127.0.0.1:20180/metrics").respond(200, text="<html>node</html>\n")
    elsewhere = (await source.read([S1], at=2)).stores[1]
    assert not elsewhere.has_data
    assert elsewhere.error is not None and "none of TiKV's metrics" in elsewhere.error


async def test_store_without_status_address_is_unknown(http: httpx.AsyncClient) -> None:
    reading = await ScrapeSource(http).read(
        [StoreTarget(store_id=3, address="10.0.0.3:20160")], at=0
    )
    assert reading.stores[3].up is None
    assert reading.stores[3].error is not None and "status_address" in reading.stores[3].error


@respx.mock
async def test_scrapes_run_concurrently(http: httpx.AsyncClient) -> None:
    in_flight = 0
    peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return httpx.Response(200, text=PAGE1)

    targets = [
        StoreTarget(store_id=i, address=f"127.0.0.1:{20160 + i}", status_address=f"h{i}:20180")
        for i in range(1, 9)
    ]
    for t in targets:
        respx.get(f"http://{t.status_address}/metrics").mock(side_effect=slow)
    reading = await ScrapeSource(http, max_concurrency=4).read(targets, at=0)
    assert set(reading.stores) == {t.store_id for t in targets}
    assert peak == 4


TIKV_BOUNDS = [0.00001 * 2**i for i in range(32)]


@given(
    st.lists(
        st.floats(min_value=0.000001, max_value=30.0, allow_nan=False), min_size=1, max_size=300
    ),
    st.sampled_from([0.5, 0.9, 0.99]),
)
def test_quantile_lies_in_the_bucket_of_the_true_quantile(values: list[float], q: float) -> None:
    buckets = {b: float(sum(v <= b for v in values)) for b in TIKV_BOUNDS}
    buckets[float("inf")] = float(len(values))
    ordered = sorted(values)
    true = ordered[max(0, math.ceil(q * len(values)) - 1)]
    upper = next((b for b in TIKV_BOUNDS if true <= b), TIKV_BOUNDS[-1])
    lower = max((b for b in TIKV_BOUNDS if b < upper), default=0.0)
    estimate = histogram_quantile(q, buckets)
    assert estimate is not None
    assert lower - 1e-12 <= estimate <= upper + 1e-12


@respx.mock
async def test_no_writes_between_scrapes_is_idle_not_no_data(http: httpx.AsyncClient) -> None:
    respx.get("http://127.0.0.1:20180/metrics").mock(
        side_effect=[httpx.Response(200, text=PAGE1), httpx.Response(200, text=PAGE1)]
    )
    source = ScrapeSource(http)
    first = (await source.read([S1], at=100.0)).stores[1]
    assert first.write_idle is False  # one scrape says nothing about the window yet
    second = (await source.read([S1], at=115.0)).stores[1]
    assert second.write_p99_seconds is None
    assert second.write_idle is True


@respx.mock
async def test_a_failed_scrape_is_never_idle(http: httpx.AsyncClient) -> None:
    respx.get("http://127.0.0.1:20180/metrics").mock(
        side_effect=[httpx.Response(200, text=PAGE1), httpx.ConnectError("refused")]
    )
    source = ScrapeSource(http)
    await source.read([S1], at=100.0)
    failed = (await source.read([S1], at=115.0)).stores[1]
    assert failed.write_idle is False and failed.up is False
