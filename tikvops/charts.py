"""Chart data for the Slack bot, wired: the monitor's observations are recorded in a bounded
`MetricHistory` (`RecordingSource`, the monitor's `ClusterSource` that also records), and
`ChartData` answers from Prometheus `query_range` once a Prometheus metrics source is known
(`use`), else from that history."""

from __future__ import annotations

import math

from engine.monitor import ClusterSource
from operator_tikv.chart_queries import PrometheusSeries
from operator_tikv.metric_history import ChartMetric, MetricHistory, Series, SeriesSource
from operator_tikv.metrics import MetricsSource
from operator_tikv.observation import Observation, ObservationPD
from operator_tikv.queries import PrometheusSource

CHART_WINDOW = 30 * 60.0
"""Seconds of history a chart shows."""


def history_points(poll_interval: float) -> int:
    """Points per metric and store to cover a chart's window at one observation per poll
    (a little more for late cycles), bounded: 130 at the default 15 s."""
    return max(16, min(1000, math.ceil(CHART_WINDOW / max(poll_interval, 0.1)) + 10))


class RecordingSource(ClusterSource):
    """`ClusterSource` that keeps each observation's per-store values in `history`."""

    def __init__(
        self,
        pd: ObservationPD,
        metrics: MetricsSource | None,
        *,
        pd_url: str,
        history: MetricHistory,
    ) -> None:
        super().__init__(pd, metrics, pd_url=pd_url)
        self.history = history

    async def observe(self, at: float) -> Observation:
        observation = await super().observe(at)
        self.history.record(observation)
        return observation


class ChartData:
    """`SeriesSource` for the bot: Prometheus when configured, the history otherwise."""

    def __init__(self, history: MetricHistory) -> None:
        self.history = history
        self._source: SeriesSource = history

    def use(self, metrics: MetricsSource | None) -> None:
        """Chart from `metrics`'s Prometheus (if it is one), falling back to the history."""
        if isinstance(metrics, PrometheusSource):
            self._source = PrometheusSeries(metrics.client, self.history, job=metrics.job)

    @property
    def source(self) -> SeriesSource:
        """Where charts read from now."""
        return self._source

    async def range(self, metric: ChartMetric, *, start: float, end: float) -> Series:
        return await self._source.range(metric, start=start, end=end)


__all__ = ["CHART_WINDOW", "ChartData", "RecordingSource", "history_points"]
