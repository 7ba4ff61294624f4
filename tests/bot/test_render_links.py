"""Dashboard and Query links on incident cards: built from the configured base URLs, the
incident's kind and time range and the PromQL of its metric; without settings, no buttons."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from bot.render.incident import incident_parent
from bot.render.links import Links, dashboard_url, link_buttons, query_url
from operator_tikv.chart_queries import promql_for
from operator_tikv.metric_history import ChartMetric
from tests.bot.records import NOW, T0, incident

QUERIES = {metric: promql_for(metric) for metric in ChartMetric}
LINKS = Links(
    grafana_url="https://grafana.example.com/",
    prometheus_url="https://prom.example.com",
    queries=QUERIES,
)
SLOW = incident(kind="write_latency", subject="store:4", details={"store_id": 4, "unit": "ms"})


def buttons(blocks: list[dict[str, object]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for block in blocks:
        if block.get("type") == "actions":
            for element in block["elements"]:  # type: ignore[attr-defined]
                if "url" in element:
                    found[element["text"]["text"]] = element["url"]
    return found


def test_a_store_incident_links_the_tikv_details_dashboard_over_its_time_range() -> None:
    url = dashboard_url(LINKS, SLOW, NOW)
    assert url is not None
    parts = urlsplit(url)
    assert parts.netloc == "grafana.example.com" and parts.path == "/d/RDVQiEzZz"
    query = parse_qs(parts.query)
    assert int(query["from"][0]) == int((T0 - timedelta(minutes=30)).timestamp() * 1000)
    assert int(query["to"][0]) == int(NOW.timestamp() * 1000)


def test_a_cluster_incident_links_the_pd_dashboard() -> None:
    pd = incident(kind="pd_unreachable", subject="cluster", details={})
    url = dashboard_url(LINKS, pd, NOW)
    assert url is not None and "/d/Q6RuHYIWk?" in url
    assert query_url(LINKS, pd, NOW) is None  # no metric behind it: no Query link


def test_the_query_link_opens_the_promql_of_the_incidents_metric() -> None:
    url = query_url(LINKS, SLOW, NOW)
    assert url is not None and url.startswith("https://prom.example.com/graph?")
    query = parse_qs(urlsplit(url).query)
    assert query["g0.expr"] == [QUERIES[ChartMetric.WRITE_P99_MS]]
    assert query["g0.range_input"] == ["42m"]
    down = query_url(LINKS, incident(), NOW)  # store down: leaders per store
    assert down is not None
    assert parse_qs(urlsplit(down).query)["g0.expr"] == [QUERIES[ChartMetric.LEADER_COUNT]]


def test_the_card_carries_both_buttons_and_none_without_settings() -> None:
    card = incident_parent(SLOW, NOW, links=LINKS)
    found = buttons(card.blocks)
    assert set(found) == {"Dashboard", "Query"}
    assert found["Dashboard"].startswith("https://grafana.example.com/d/")
    assert not buttons(incident_parent(SLOW, NOW, links=Links()).blocks)
    assert not buttons(incident_parent(SLOW, NOW).blocks)
    only_grafana = Links(grafana_url="https://g.example.com")
    assert set(buttons(incident_parent(SLOW, NOW, links=only_grafana).blocks)) == {"Dashboard"}
    assert (
        link_buttons(Links(prometheus_url="https://p.example.com"), SLOW, NOW) is None
    )  # no PromQL
