"""Chart series from Prometheus: the PromQL of each `ChartMetric` (also what a "Query" link on
an incident card opens) and `PrometheusSeries`, a `SeriesSource` over `query_range` that falls
back to the monitor's own history when Prometheus fails."""

from __future__ import annotations

import logging
import math

from operator_tikv.metric_history import ChartMetric, MetricHistory, Point, Series
from operator_tikv.metrics import MetricsError
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import InstanceIndex, disk_used_ratio, region_counts, write_p99

logger = logging.getLogger(__name__)


def promql_for(metric: ChartMetric, job: str = "tikv") -> str:
    """The PromQL that gives `metric` per TiKV instance (the query a "Query" link opens)."""
    if metric is ChartMetric.WRITE_P99_MS:
        return f"1000 * {write_p99(job)}"
    if metric is ChartMetric.DISK_USED_RATIO:
        return disk_used_ratio(job)
    kind = "leader" if metric is ChartMetric.LEADER_COUNT else "region"
    return region_counts(job).replace('type=~"leader|region"', f'type="{kind}"')


class PrometheusSeries:
    """`SeriesSource` over Prometheus `query_range`; instances are mapped to store ids like the
    metrics source does (`operator_tikv.queries.InstanceIndex`), with the stores PD listed last
    (`targets`, the monitor's history). Series that match no store are left out."""

    def __init__(
        self,
        client: PrometheusClient,
        targets: MetricHistory,
        *,
        job: str = "tikv",
        max_points: int = 120,
        fall_back: bool = True,
    ) -> None:
        self.client = client
        self._targets = targets
        self.job = job
        self.max_points = max_points
        self.fall_back = fall_back

    async def range(self, metric: ChartMetric, *, start: float, end: float) -> Series:
        """Prometheus's series; when it fails (and `fall_back`), the monitor's history."""
        try:
            return await self._query(metric, start=start, end=end)
        except MetricsError as exc:
            if not self.fall_back:
                raise
            logger.warning("query_range failed (%s); charting the monitor's history", exc)
            return await self._targets.range(metric, start=start, end=end)

    async def _query(self, metric: ChartMetric, *, start: float, end: float) -> Series:
        step = max((end - start) / self.max_points, 1.0)
        result = await self.client.query_range(
            promql_for(metric, self.job), start=start, end=end, step=step
        )
        index = InstanceIndex.build(self._targets.targets)
        out: dict[int, list[Point]] = {}
        for series in result.series:
            store_id = index.store_for(series.labels.get("instance", ""))
            if store_id is None:
                continue
            points = out.setdefault(store_id, [])
            points.extend(
                (sample.timestamp, sample.value)
                for sample in series.samples
                if math.isfinite(sample.value)
            )
        return {sid: sorted(points) for sid, points in sorted(out.items()) if points}


__all__ = ["PrometheusSeries", "promql_for"]
