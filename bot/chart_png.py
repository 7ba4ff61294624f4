"""Draws a `bot.render.chart.ChartSpec` with matplotlib's Agg backend: `figure(spec)` builds
the figure (a pure function of the spec, no global pyplot state, safe in a worker thread) and
`png(spec)` renders it to PNG bytes. Both are CPU work: call them off the event loop
(`asyncio.to_thread`), as `bot.charts` does.

Every drawn element carries a `gid` naming what it is (`store:4`, `threshold`,
`marker:incident start`), so tests check the figure's content, not its pixels.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter
from matplotlib.figure import Figure

from bot.render.chart import ChartSpec

HIGHLIGHT = "#d62728"
THRESHOLD = "#ff7f0e"
MARKER = "#1f77b4"
OTHERS = ("#7f7f7f", "#9e9e9e", "#bdbdbd", "#8c8c8c", "#a9a9a9", "#6e6e6e")


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def figure(spec: ChartSpec) -> Figure:
    """The figure of `spec`: one panel per metric, one line per store (the highlighted store
    thick and red, the others thin and grey), the threshold dashed, the markers vertical."""
    fig = Figure(figsize=(8.0, 2.6 * len(spec.panels) + 0.6), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(spec.panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, spec.panels, strict=True):
        others = 0
        for line in sorted(panel.lines, key=lambda item: item.highlighted):
            xs = [_time(t) for t, _ in line.points]
            ys = [v for _, v in line.points]
            if line.highlighted:
                ax.plot(
                    xs,
                    ys,
                    color=HIGHLIGHT,
                    linewidth=2.6,
                    label=line.label,
                    gid=f"store:{line.store_id}",
                    zorder=3,
                )
            else:
                color = OTHERS[others % len(OTHERS)]
                others += 1
                ax.plot(
                    xs,
                    ys,
                    color=color,
                    linewidth=1.0,
                    alpha=0.8,
                    label=line.label,
                    gid=f"store:{line.store_id}",
                )
        if panel.threshold is not None:
            ax.axhline(
                panel.threshold,
                color=THRESHOLD,
                linestyle="--",
                linewidth=1.4,
                label=f"threshold {panel.threshold:g} {panel.unit}",
                gid="threshold",
            )
        for marker in spec.markers:
            ax.axvline(
                _time(marker.at),
                color=MARKER,
                linestyle=":",
                linewidth=1.4,
                gid=f"marker:{marker.label}",
            )
        ax.set_ylabel(f"{panel.title} ({panel.unit})")
        ax.set_xlim(_time(spec.start), _time(spec.end))
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize="x-small", ncols=3)
    for marker in spec.markers:
        axes[0].annotate(
            marker.label,
            xy=(_time(marker.at), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            fontsize="x-small",
            color=MARKER,
        )
    short = spec.end - spec.start < 600
    axes[-1].xaxis.set_major_formatter(DateFormatter("%H:%M:%S" if short else "%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
    axes[-1].set_xlabel("time (UTC)")
    fig.suptitle(spec.title, fontsize="medium")
    # Fixed margins: tight_layout would draw the whole figure once more to measure it.
    height = fig.get_figheight()
    fig.subplots_adjust(
        left=0.09, right=0.98, top=1 - 0.45 / height, bottom=0.5 / height, hspace=0.12
    )
    return fig


def png(spec: ChartSpec) -> bytes:
    """`spec` drawn as PNG bytes."""
    fig = figure(spec)
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def warm() -> None:
    """Load what the first drawing would (fonts, the Agg canvas) on an empty figure."""
    fig = Figure(figsize=(1.0, 1.0), dpi=20)
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, "0")
    fig.savefig(io.BytesIO(), format="png")


__all__ = ["figure", "png", "warm"]
