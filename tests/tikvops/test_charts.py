"""Chart data as wired for the bot: the monitor's observations of the simulator (real HTTP: PD
and each store's /metrics) recorded by `RecordingSource` into the bounded history, the history's
size from the poll interval, and Prometheus chosen over the history when it is the metrics
source."""

from __future__ import annotations

import httpx

from operator_tikv.chart_queries import PrometheusSeries
from operator_tikv.metric_history import ChartMetric, MetricHistory
from operator_tikv.pd import open_pd_client
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import PrometheusSource
from operator_tikv.scrape import ScrapeSource
from sim.server import SimServer
from tikvops.charts import ChartData, RecordingSource, history_points


def test_history_points_cover_the_chart_window_and_stay_bounded() -> None:
    assert history_points(15.0) == 130
    assert history_points(2.0) == 910
    assert history_points(0.01) == 1000
    assert history_points(3600.0) == 16


async def test_recording_source_keeps_what_the_monitor_observed(sim: SimServer) -> None:
    sim.faults.slow_store(2, 250.0)
    history = MetricHistory(points=20)
    async with (
        open_pd_client(sim.pd_url, retries=0) as pd,
        httpx.AsyncClient(timeout=3.0) as http,
    ):
        source = RecordingSource(
            pd, ScrapeSource(http, timeout=3.0), pd_url=sim.pd_url, history=history
        )
        try:
            for step in range(3):
                sim.cluster.advance(15.0)
                await source.observe(1000.0 + step * 15)
        finally:
            await source.regions.close()
    leaders = await history.range(ChartMetric.LEADER_COUNT, start=0.0, end=2000.0)
    assert sorted(leaders) == sorted(s.id for s in sim.cluster.stores.values())
    assert [t for t, _ in leaders[2]] == [1000.0, 1015.0, 1030.0]
    assert leaders[2][-1][1] == float(sim.cluster.stores[2].leader_count)
    p99 = await history.range(ChartMetric.WRITE_P99_MS, start=0.0, end=2000.0)
    # the scrape source needs two scrapes for a P99; store 2 is the slow one
    assert p99[2] and max(v for _, v in p99[2]) > 100.0
    assert all(max(v for _, v in p99[s]) < 100.0 for s in p99 if s != 2)


async def test_chart_data_uses_prometheus_when_it_is_the_metrics_source() -> None:
    history = MetricHistory()
    data = ChartData(history)
    assert data.source is history
    async with httpx.AsyncClient() as http:
        data.use(ScrapeSource(http))
        assert data.source is history
        prometheus = PrometheusSource(PrometheusClient("http://prom.test:9090/", http), job="tk")
        data.use(prometheus)
        assert isinstance(data.source, PrometheusSeries) and data.source.job == "tk"
