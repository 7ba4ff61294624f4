"""Incident charts from known series: what each scenario charts (the data of the spec), and the
figure drawn from it (one line per store, the affected store highlighted, the threshold, the
start and resolution markers), checked through the figure's elements, not its pixels."""

from __future__ import annotations

from datetime import timedelta

from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.lines import Line2D

from bot import chart_png
from bot.render.chart import Phase, chart_request, chart_spec
from engine.model import IncidentStatus, Severity
from operator_tikv.metric_history import ChartMetric, Series
from tests.bot.records import NOW, T0, incident

START = T0.timestamp()


def series(values: dict[int, list[float]], every: float = 60.0) -> Series:
    """One point a minute from 20 minutes before T0, per store."""
    first = START - 20 * 60
    return {sid: [(first + i * every, v) for i, v in enumerate(vs)] for sid, vs in values.items()}


SLOW = incident(
    id="I-7",
    kind="write_latency",
    subject="store:4",
    title="Slow writes on store 4",
    value=250.0,
    threshold=100.0,
    details={"store_id": 4, "unit": "ms"},
    severity=Severity.WARNING,
    worst_severity=Severity.WARNING,
)


def lines_of(ax: Axes) -> dict[str, Line2D]:
    return {str(line.get_gid()): line for line in ax.get_lines()}


def test_slow_writes_chart_p99_per_store_with_store_4_highlighted_and_the_threshold() -> None:
    request = chart_request(SLOW, Phase.OPENED, NOW)
    assert request is not None and request.metrics == (ChartMetric.WRITE_P99_MS,)
    assert request.end == NOW.timestamp()
    assert request.start <= START - 120  # the start is inside the window
    data = {
        ChartMetric.WRITE_P99_MS: series(
            {1: [5.0] * 30, 4: [5.0] * 18 + [250.0] * 12, 5: [6.0] * 30}
        )
    }
    spec = chart_spec(SLOW, Phase.OPENED, request, data)
    assert spec is not None
    (panel,) = spec.panels
    assert panel.metric is ChartMetric.WRITE_P99_MS and panel.unit == "ms"
    assert [line.store_id for line in panel.lines] == [1, 4, 5]
    assert panel.highlighted == (4,)
    assert panel.threshold == 100.0
    store4 = next(line for line in panel.lines if line.store_id == 4)
    assert max(v for _, v in store4.points) == 250.0
    assert all(request.start <= t <= request.end for t, _ in store4.points)
    assert [(m.label, m.at) for m in spec.markers] == [("incident start", START)]
    assert spec.filename == "I-7-opened.png"
    assert "store 4 highlighted" in spec.alt_text and "threshold" in spec.alt_text

    fig = chart_png.figure(spec)
    (ax,) = fig.axes
    drawn = lines_of(ax)
    assert {"store:1", "store:4", "store:5", "threshold", "marker:incident start"} <= set(drawn)
    assert to_hex(drawn["store:4"].get_color()) == chart_png.HIGHLIGHT
    assert drawn["store:4"].get_linewidth() > drawn["store:1"].get_linewidth()
    assert to_hex(drawn["store:1"].get_color()) != chart_png.HIGHLIGHT
    assert list(drawn["threshold"].get_ydata()) == [100.0, 100.0]
    assert list(drawn["store:4"].get_ydata())[-1] == 250.0
    assert "ms" in ax.get_ylabel()


def test_slow_writes_resolved_adds_leaders_per_store_and_marks_the_resolution() -> None:
    resolved = SLOW.model_copy(
        update={"status": IncidentStatus.RESOLVED, "resolved_at": T0 + timedelta(minutes=8)}
    )
    request = chart_request(resolved, Phase.RESOLVED, NOW)
    assert request is not None
    assert request.metrics == (ChartMetric.WRITE_P99_MS, ChartMetric.LEADER_COUNT)
    data = {
        ChartMetric.WRITE_P99_MS: series({1: [5.0] * 29, 4: [250.0] * 29}),
        # the drain: store 4's leaders leave, store 1's arrive
        ChartMetric.LEADER_COUNT: series(
            {1: [100.0] * 20 + [150.0] * 9, 4: [50.0] * 20 + [0.0] * 9}
        ),
    }
    spec = chart_spec(resolved, Phase.RESOLVED, request, data)
    assert spec is not None
    assert [p.metric for p in spec.panels] == [ChartMetric.WRITE_P99_MS, ChartMetric.LEADER_COUNT]
    assert spec.panels[1].threshold is None and spec.panels[1].highlighted == (4,)
    assert [m.label for m in spec.markers] == ["incident start", "resolved"]
    fig = chart_png.figure(spec)
    assert len(fig.axes) == 2
    leaders = lines_of(fig.axes[1])
    assert "threshold" not in leaders
    assert {"marker:incident start", "marker:resolved"} <= set(leaders)
    assert list(leaders["store:4"].get_ydata())[-1] == 0.0


def test_disk_filling_charts_disk_used_in_percent_against_the_threshold() -> None:
    disk = incident(
        id="I-8",
        kind="disk_usage",
        subject="store:2",
        title="Disk filling on store 2",
        value=0.83,
        threshold=0.7,
        details={"store_id": 2, "unit": "ratio"},
    )
    request = chart_request(disk, Phase.OPENED, NOW)
    assert request is not None and request.metrics == (ChartMetric.DISK_USED_RATIO,)
    data = {ChartMetric.DISK_USED_RATIO: series({1: [0.4] * 30, 2: [0.6] * 15 + [0.83] * 15})}
    spec = chart_spec(disk, Phase.OPENED, request, data)
    assert spec is not None
    (panel,) = spec.panels
    assert panel.unit == "%" and panel.threshold == 70.0 and panel.highlighted == (2,)
    assert max(v for _, v in panel.lines[1].points) == 83.0
    drawn = lines_of(chart_png.figure(spec).axes[0])
    assert list(drawn["threshold"].get_ydata()) == [70.0, 70.0]


def test_store_down_charts_leaders_and_regions_per_store() -> None:
    down = incident(id="I-9")  # store_down on store 4
    request = chart_request(down, Phase.OPENED, NOW)
    assert request is not None
    assert request.metrics == (ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT)
    data = {
        ChartMetric.LEADER_COUNT: series({3: [10.0] * 30, 4: [10.0] * 20 + [0.0] * 10}),
        ChartMetric.REGION_COUNT: series({3: [30.0] * 30, 4: [30.0] * 30}),
    }
    spec = chart_spec(down, Phase.OPENED, request, data)
    assert spec is not None
    assert [p.title for p in spec.panels] == ["Leaders", "Regions"]
    assert all(p.threshold is None and p.highlighted == (4,) for p in spec.panels)
    fig = chart_png.figure(spec)
    assert [sorted(k for k in lines_of(ax) if k.startswith("store:")) for ax in fig.axes] == [
        ["store:3", "store:4"],
        ["store:3", "store:4"],
    ]


def test_no_chart_without_data_or_for_kinds_without_a_metric() -> None:
    request = chart_request(SLOW, Phase.OPENED, NOW)
    assert request is not None
    assert chart_spec(SLOW, Phase.OPENED, request, {}) is None
    assert chart_spec(SLOW, Phase.OPENED, request, {ChartMetric.WRITE_P99_MS: {4: []}}) is None
    region = incident(kind="region_down_peer", subject="region:2008", details={})
    assert chart_request(region, Phase.OPENED, NOW) is None


def test_points_outside_the_window_are_left_out() -> None:
    request = chart_request(SLOW, Phase.OPENED, NOW)
    assert request is not None
    old = request.start - 3600
    data = {ChartMetric.WRITE_P99_MS: {4: [(old, 999.0), (START, 250.0)]}}
    spec = chart_spec(SLOW, Phase.OPENED, request, data)
    assert spec is not None
    assert spec.panels[0].lines[0].points == ((START, 250.0),)


def test_png_is_a_png() -> None:
    request = chart_request(SLOW, Phase.OPENED, NOW)
    assert request is not None
    spec = chart_spec(
        SLOW, Phase.OPENED, request, {ChartMetric.WRITE_P99_MS: series({4: [1.0] * 30})}
    )
    assert spec is not None
    image = chart_png.png(spec)
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 5000


def test_a_short_history_is_drawn_without_an_empty_stretch() -> None:
    request = chart_request(SLOW, Phase.OPENED, NOW)
    assert request is not None
    recent = NOW.timestamp() - 120  # the monitor started two minutes ago
    data = {ChartMetric.WRITE_P99_MS: {4: [(recent, 250.0), (NOW.timestamp(), 260.0)]}}
    spec = chart_spec(SLOW, Phase.OPENED, request, data)
    assert spec is not None
    # the incident's start (T0, 12 min ago) is earlier than the data: the axis starts there
    assert request.start < spec.start < START
    assert spec.end == request.end and "last 13 min" in spec.title
    later = SLOW.model_copy(update={"opened_at": NOW - timedelta(seconds=30)})
    later_request = chart_request(later, Phase.OPENED, NOW)
    assert later_request is not None
    short = chart_spec(later, Phase.OPENED, later_request, data)
    assert short is not None and recent - 20 <= short.start < recent
    assert "last 2 min" in short.title
