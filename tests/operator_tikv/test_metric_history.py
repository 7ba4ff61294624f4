"""Chart series: the monitor's bounded history of observations (what is kept, for how long,
for how many stores), and `PrometheusSeries` over `query_range` (respx: the instance → store
mapping, NaN dropped, the step, and the fall back to the history when Prometheus fails)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from operator_tikv.chart_queries import PrometheusSeries, promql_for
from operator_tikv.metric_history import ChartMetric, MetricHistory
from operator_tikv.metrics import MetricsReading, PrometheusUnavailable, StoreMetrics
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation
from operator_tikv.prometheus import PrometheusClient

URL = "http://pd.test:2379"
BASE = "http://prom.test:9090"


def store(store_id: int, leaders: int, regions: int, state: str = "Up") -> StoreInfo:
    return StoreInfo.model_validate(
        {
            "store": {
                "id": store_id,
                "address": f"tikv{store_id}:20160",
                "status_address": f"tikv{store_id}:20180",
                "state_name": state,
            },
            "status": {"leader_count": leaders, "region_count": regions},
        }
    )


def observation(at: float, p99: dict[int, float | None], leaders: dict[int, int]) -> Observation:
    stores = tuple(store(sid, n, n * 3) for sid, n in leaders.items())
    metrics = MetricsReading(
        source="scrape",
        at=at,
        stores={
            sid: StoreMetrics(store_id=sid, write_p99_seconds=v, disk_used_ratio=0.5)
            for sid, v in p99.items()
        },
    )
    return Observation(at=at, pd_url=URL, stores=stores, metrics=metrics)


async def test_history_keeps_each_metric_per_store_in_time_order() -> None:
    history = MetricHistory()
    history.record(observation(100.0, {1: 0.005, 4: 0.25}, {1: 10, 4: 7}))
    history.record(observation(115.0, {1: 0.006, 4: None}, {1: 12, 4: 0}))
    p99 = await history.range(ChartMetric.WRITE_P99_MS, start=0.0, end=200.0)
    assert p99 == {1: [(100.0, 5.0), (115.0, 6.0)], 4: [(100.0, 250.0)]}  # None: no point
    leaders = await history.range(ChartMetric.LEADER_COUNT, start=0.0, end=200.0)
    assert leaders == {1: [(100.0, 10.0), (115.0, 12.0)], 4: [(100.0, 7.0), (115.0, 0.0)]}
    regions = await history.range(ChartMetric.REGION_COUNT, start=110.0, end=200.0)
    assert regions == {1: [(115.0, 36.0)], 4: [(115.0, 0.0)]}
    assert [t.status_address for t in history.targets] == ["tikv1:20180", "tikv4:20180"]


async def test_an_unreachable_pd_records_nothing() -> None:
    history = MetricHistory()
    history.record(Observation(at=1.0, pd_url=URL, pd_error="timed out"))
    assert history.size == 0


async def test_history_is_bounded_in_points_and_stores() -> None:
    history = MetricHistory(points=5, max_stores=3)
    for i in range(50):
        history.record(observation(float(i), {1: 0.001}, {1: i}))
    leaders = await history.range(ChartMetric.LEADER_COUNT, start=0.0, end=100.0)
    assert [t for t, _ in leaders[1]] == [45.0, 46.0, 47.0, 48.0, 49.0]
    # New stores push the least recently seen ones out.
    for sid in range(2, 8):
        history.record(observation(100.0 + sid, {sid: 0.001}, {sid: 1}))
    leaders = await history.range(ChartMetric.LEADER_COUNT, start=0.0, end=1000.0)
    assert sorted(leaders) == [5, 6, 7]
    assert history.size <= 5 * 3 * len(ChartMetric)


@pytest.fixture
async def prometheus() -> AsyncIterator[PrometheusClient]:
    async with httpx.AsyncClient() as http:
        yield PrometheusClient(BASE + "/", http, timeout=5)


def matrix(*series: tuple[str, list[tuple[float, str]]]) -> dict[str, object]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"instance": instance}, "values": [[t, v] for t, v in values]}
                for instance, values in series
            ],
        },
    }


@respx.mock
async def test_prometheus_series_map_instances_to_stores(prometheus: PrometheusClient) -> None:
    history = MetricHistory()
    history.record(observation(1.0, {1: 0.001, 4: 0.001}, {1: 1, 4: 1}))
    route = respx.post(f"{BASE}/api/v1/query_range").respond(
        json=matrix(
            ("tikv1:20180", [(1000.0, "5"), (1060.0, "6")]),
            ("tikv4:20180", [(1000.0, "NaN"), (1060.0, "250")]),
            ("somewhere-else:20180", [(1000.0, "1")]),
        )
    )
    source = PrometheusSeries(prometheus, history, max_points=60)
    got = await source.range(ChartMetric.WRITE_P99_MS, start=0.0, end=1800.0)
    assert got == {1: [(1000.0, 5.0), (1060.0, 6.0)], 4: [(1060.0, 250.0)]}
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["query"] == [promql_for(ChartMetric.WRITE_P99_MS)]
    assert form["step"] == ["30"] and form["start"] == ["0"] and form["end"] == ["1800"]


@respx.mock
async def test_a_failing_prometheus_falls_back_to_the_history(
    prometheus: PrometheusClient,
) -> None:
    history = MetricHistory()
    history.record(observation(10.0, {4: 0.3}, {4: 2}))
    respx.post(f"{BASE}/api/v1/query_range").respond(status_code=503, text="down")
    source = PrometheusSeries(prometheus, history)
    got = await source.range(ChartMetric.WRITE_P99_MS, start=0.0, end=100.0)
    assert got == {4: [(10.0, 300.0)]}
    strict = PrometheusSeries(prometheus, history, fall_back=False)
    with pytest.raises(PrometheusUnavailable):
        await strict.range(ChartMetric.WRITE_P99_MS, start=0.0, end=100.0)


def test_promql_for_each_metric_names_its_series() -> None:
    assert "tikv_storage_engine_async_request_duration_seconds_bucket" in promql_for(
        ChartMetric.WRITE_P99_MS
    )
    assert promql_for(ChartMetric.WRITE_P99_MS).startswith("1000 * ")
    assert 'type="available"' in promql_for(ChartMetric.DISK_USED_RATIO)
    assert 'type="leader"' in promql_for(ChartMetric.LEADER_COUNT)
    assert 'type="region"' in promql_for(ChartMetric.REGION_COUNT)
