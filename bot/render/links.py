"""Links on incident cards: "Dashboard" (Grafana's TiKV-Details dashboard for a store's
incident, the PD dashboard for the cluster's) and "Query" (Prometheus's graph page with the
PromQL the incident's metric comes from), each over the incident's time range. Built only from
configured base URLs: without them, no links (never a dead one). Pure.

Slack sends a `block_actions` interaction when a link button is clicked; their action IDs start
with `link:` and the bot only acknowledges them (`bot.handlers.home`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject

from bot.render.chart import THRESHOLD_METRIC, store_of
from engine.clock import utc
from engine.model import Incident
from operator_tikv.metric_history import ChartMetric

LINK_PREFIX = "link:"
MAX_URL = 3000
"""Slack's limit on a button's `url`."""

STORE_KINDS = frozenset({"write_latency", "disk_usage", "store_down", "store_disconnected"})


@dataclass(frozen=True)
class Links:
    """Base URLs for links (None: that kind of link is left out)."""

    grafana_url: str | None = None
    grafana_tikv_dashboard: str = "RDVQiEzZz"
    grafana_pd_dashboard: str = "Q6RuHYIWk"
    prometheus_url: str | None = None
    queries: Mapping[ChartMetric, str] = field(default_factory=dict)
    """The PromQL of each metric (`operator_tikv.chart_queries.promql_for`, given by the
    composition root); a metric without one gets no Query link."""

    @property
    def any(self) -> bool:
        return bool(self.grafana_url or self.prometheus_url)


def _window(incident: Incident, now: datetime) -> tuple[datetime, datetime]:
    start = utc(incident.opened_at) - timedelta(minutes=30)
    end = utc(incident.resolved_at) + timedelta(minutes=10) if incident.resolved_at else utc(now)
    return start, max(end, start + timedelta(minutes=5))


def query_for(links: Links, incident: Incident) -> str | None:
    """The PromQL behind an incident's metric (None: its kind has none)."""
    metric = THRESHOLD_METRIC.get(incident.kind)
    if metric is None and incident.kind in ("store_down", "store_disconnected"):
        metric = ChartMetric.LEADER_COUNT
    return links.queries.get(metric) if metric is not None else None


def dashboard_url(links: Links, incident: Incident, now: datetime) -> str | None:
    if not links.grafana_url:
        return None
    start, end = _window(incident, now)
    uid = (
        links.grafana_tikv_dashboard if incident.kind in STORE_KINDS else links.grafana_pd_dashboard
    )
    params: dict[str, str] = {
        "orgId": "1",
        "from": str(int(start.timestamp() * 1000)),
        "to": str(int(end.timestamp() * 1000)),
    }
    address = incident.details.get("status_address") if store_of(incident) is not None else None
    if isinstance(address, str) and address:
        params["var-instance"] = address
    return f"{links.grafana_url.rstrip('/')}/d/{quote(uid)}?{urlencode(params)}"


def query_url(links: Links, incident: Incident, now: datetime) -> str | None:
    if not links.prometheus_url:
        return None
    promql = query_for(links, incident)
    if promql is None:
        return None
    start, end = _window(incident, now)
    minutes = max(int((end - start).total_seconds() // 60), 1)
    params = {
        "g0.expr": promql,
        "g0.tab": "0",
        "g0.range_input": f"{minutes}m",
        "g0.end_input": end.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return f"{links.prometheus_url.rstrip('/')}/graph?{urlencode(params)}"


def link_buttons(links: Links, incident: Incident, now: datetime) -> ActionsBlock | None:
    """The "Dashboard" and "Query" buttons of an incident card (None: no link configured)."""
    buttons = []
    for label, url in (
        ("Dashboard", dashboard_url(links, incident, now)),
        ("Query", query_url(links, incident, now)),
    ):
        if url is None or len(url) > MAX_URL:
            continue
        buttons.append(
            ButtonElement(
                text=PlainTextObject(text=label),
                action_id=f"{LINK_PREFIX}{label.lower()}",
                url=url,
            )
        )
    if not buttons:
        return None
    return ActionsBlock(block_id=f"links:{incident.id}"[:255], elements=buttons)


__all__ = [
    "LINK_PREFIX",
    "Links",
    "dashboard_url",
    "link_buttons",
    "query_for",
    "query_url",
]
