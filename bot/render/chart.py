"""What an incident's chart shows, as data: the metric behind the incident per store over the
last 30 minutes, the affected store highlighted, the threshold, the incident's start (and its
resolution) marked. Pure: `chart_request` says what to fetch, `chart_spec` turns the fetched
series into a `ChartSpec`; `bot.chart_png` draws a spec.

Per incident kind: slow writes → write P99 per store (on resolution also leaders per store,
which shows a drain moving them away); a disk filling → disk used per store; a store down or
disconnected → leaders and regions per store. Other kinds have no chart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from engine.clock import utc
from engine.model import Incident
from operator_tikv.metric_history import ChartMetric, Point, Series

WINDOW = timedelta(minutes=30)
"""How far back a chart looks from its end."""

MAX_WINDOW = timedelta(hours=2)
"""A longer incident is drawn from at most this long before its end (its start then falls
outside the chart and is said in the title instead)."""


class Phase(StrEnum):
    OPENED = "opened"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class PanelSpec:
    """How one metric is drawn: its title, its unit, the scale applied to its values."""

    metric: ChartMetric
    title: str
    unit: str
    scale: float = 1.0


PANELS: Mapping[ChartMetric, PanelSpec] = {
    ChartMetric.WRITE_P99_MS: PanelSpec(ChartMetric.WRITE_P99_MS, "Write P99", "ms"),
    ChartMetric.DISK_USED_RATIO: PanelSpec(
        ChartMetric.DISK_USED_RATIO, "Disk used", "%", scale=100.0
    ),
    ChartMetric.LEADER_COUNT: PanelSpec(ChartMetric.LEADER_COUNT, "Leaders", "leaders"),
    ChartMetric.REGION_COUNT: PanelSpec(ChartMetric.REGION_COUNT, "Regions", "regions"),
}

_BY_KIND: Mapping[str, tuple[tuple[ChartMetric, ...], tuple[ChartMetric, ...]]] = {
    # kind: (metrics when opened, metrics when resolved)
    "write_latency": (
        (ChartMetric.WRITE_P99_MS,),
        (ChartMetric.WRITE_P99_MS, ChartMetric.LEADER_COUNT),
    ),
    "disk_usage": ((ChartMetric.DISK_USED_RATIO,), (ChartMetric.DISK_USED_RATIO,)),
    "store_down": (
        (ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT),
        (ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT),
    ),
    "store_disconnected": (
        (ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT),
        (ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT),
    ),
}

THRESHOLD_METRIC: Mapping[str, ChartMetric] = {
    "write_latency": ChartMetric.WRITE_P99_MS,
    "disk_usage": ChartMetric.DISK_USED_RATIO,
}
"""The metric an incident kind's `threshold` is in (the invariants' units: ms, ratio)."""


@dataclass(frozen=True)
class ChartRequest:
    """What to fetch for a chart: these metrics from `start` to `end` (unix seconds)."""

    metrics: tuple[ChartMetric, ...]
    start: float
    end: float


@dataclass(frozen=True)
class Line:
    store_id: int
    label: str
    points: tuple[Point, ...]
    highlighted: bool


@dataclass(frozen=True)
class Panel:
    metric: ChartMetric
    title: str
    unit: str
    lines: tuple[Line, ...]
    threshold: float | None = None

    @property
    def highlighted(self) -> tuple[int, ...]:
        return tuple(line.store_id for line in self.lines if line.highlighted)


@dataclass(frozen=True)
class Marker:
    at: float
    label: str


@dataclass(frozen=True)
class ChartSpec:
    """A chart as data: what `bot.chart_png.figure` draws, and what tests check."""

    title: str
    panels: tuple[Panel, ...]
    markers: tuple[Marker, ...]
    start: float
    end: float
    filename: str
    alt_text: str


def store_of(incident: Incident) -> int | None:
    """The store an incident is about, if any."""
    raw = incident.details.get("store_id")
    if isinstance(raw, int):
        return raw
    kind, _, ident = incident.subject.partition(":")
    return int(ident) if kind == "store" and ident.isdigit() else None


def chart_request(incident: Incident, phase: Phase, now: datetime) -> ChartRequest | None:
    """What to fetch for `incident`'s chart (None: this kind has no chart)."""
    plan = _BY_KIND.get(incident.kind)
    if plan is None:
        return None
    end = utc(incident.resolved_at) if phase is Phase.RESOLVED and incident.resolved_at else now
    end = max(utc(end), utc(now)) if phase is Phase.OPENED else utc(end) + timedelta(minutes=1)
    start = end - WINDOW
    opened = utc(incident.opened_at)
    if opened - timedelta(minutes=2) < start:
        start = max(opened - timedelta(minutes=2), end - MAX_WINDOW)
    metrics = plan[0] if phase is Phase.OPENED else plan[1]
    return ChartRequest(metrics=metrics, start=start.timestamp(), end=end.timestamp())


def chart_spec(
    incident: Incident,
    phase: Phase,
    request: ChartRequest,
    data: Mapping[ChartMetric, Series],
) -> ChartSpec | None:
    """The chart of `incident` from the fetched `data` (None when there is nothing to draw)."""
    highlighted = store_of(incident)
    panels: list[Panel] = []
    for metric in request.metrics:
        series = data.get(metric) or {}
        style = PANELS[metric]
        lines = tuple(
            Line(
                store_id=store_id,
                label=f"store {store_id}",
                points=tuple(
                    (t, v * style.scale) for t, v in points if request.start <= t <= request.end
                ),
                highlighted=store_id == highlighted,
            )
            for store_id, points in sorted(series.items())
        )
        lines = tuple(line for line in lines if line.points)
        if not lines:
            continue
        threshold = None
        if THRESHOLD_METRIC.get(incident.kind) is metric and incident.threshold is not None:
            threshold = incident.threshold * style.scale
        panels.append(Panel(metric, style.title, style.unit, lines, threshold))
    if not panels:
        return None
    markers = [Marker(utc(incident.opened_at).timestamp(), "incident start")]
    if phase is Phase.RESOLVED and incident.resolved_at is not None:
        markers.append(Marker(utc(incident.resolved_at).timestamp(), "resolved"))
    markers = [m for m in markers if request.start <= m.at <= request.end]
    start = _drawn_start(request, panels, markers)
    minutes = max(round((request.end - start) / 60), 1)
    where = f"store {highlighted}" if highlighted is not None else incident.subject
    title = f"{incident.id} · {incident.title} · last {minutes} min"
    names = ", ".join(p.title.lower() for p in panels)
    alt = (
        f"Chart of {names} per store over the last {minutes} minutes for {incident.id}, "
        f"{where} highlighted"
        + (", the threshold drawn" if any(p.threshold is not None for p in panels) else "")
        + ", the incident's start marked"
        + (" and its resolution" if phase is Phase.RESOLVED else "")
        + "."
    )
    return ChartSpec(
        title=title,
        panels=tuple(panels),
        markers=tuple(markers),
        start=start,
        end=request.end,
        filename=f"{incident.id}-{phase.value}.png",
        alt_text=alt,
    )


def _drawn_start(request: ChartRequest, panels: list[Panel], markers: list[Marker]) -> float:
    """Where the x axis starts: the window's start, or later when the data (and the markers)
    begin later (a monitor that started recently has a short history): no empty stretch."""
    first = min(
        [line.points[0][0] for panel in panels for line in panel.lines]
        + [marker.at for marker in markers]
    )
    pad = max((request.end - first) * 0.05, 10.0)
    return max(request.start, first - pad)


__all__ = [
    "PANELS",
    "ChartRequest",
    "ChartSpec",
    "Line",
    "Marker",
    "Panel",
    "Phase",
    "chart_request",
    "chart_spec",
    "store_of",
]
