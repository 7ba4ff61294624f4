"""The notifier queues a chart for an incident's thread when it opens and when it resolves,
under a key of its own (so the outbox never holds the incident's text behind it), and only
when charts are on; incident cards carry the configured links."""

from __future__ import annotations

from datetime import timedelta

from bot.charts import chart_key
from bot.notifier import SlackNotifier
from bot.queue import SlackOutbox, key_for_incident
from bot.render.links import Links
from engine.clock import FakeClock
from engine.events import EventKind, incident_event
from engine.model import IncidentStatus
from storage import Repositories
from tests.bot.records import incident


def notifier(repos: Repositories, clock: FakeClock, *, charts: bool, links: Links | None = None):  # type: ignore[no-untyped-def]
    return SlackNotifier(
        clock,
        channel="C0OPS",
        outbox=SlackOutbox(repos.outbox, clock),
        reads=repos,
        charts=charts,
        links=links,
    )


async def test_opened_and_resolved_incidents_queue_a_chart_on_its_own_key(
    repos: Repositories,
) -> None:
    clock = FakeClock()
    n = notifier(repos, clock, charts=True)
    opened = incident(opened_at=clock.now())
    batch = await n.render(incident_event(EventKind.INCIDENT_OPENED, opened))
    charts = [(k, p) for k, p in batch.items if p["op"] == "chart"]
    assert charts == [
        (
            chart_key("I-3"),
            {"op": "chart", "incident": "I-3", "phase": "opened", "channel": "C0OPS"},
        )
    ]
    assert chart_key("I-3") != key_for_incident("I-3")
    assert [p["op"] for k, p in batch.items if k == key_for_incident("I-3")] == ["post"]

    await repos.incidents.create(opened)
    resolved = opened.model_copy(
        update={
            "status": IncidentStatus.RESOLVED,
            "resolved_at": clock.now() + timedelta(minutes=5),
        }
    )
    batch = await n.render(incident_event(EventKind.INCIDENT_RESOLVED, resolved))
    assert [p["phase"] for _, p in batch.items if p["op"] == "chart"] == ["resolved"]


async def test_no_chart_items_when_charts_are_off(repos: Repositories) -> None:
    clock = FakeClock()
    n = notifier(repos, clock, charts=False)
    batch = await n.render(incident_event(EventKind.INCIDENT_OPENED, incident()))
    assert [p["op"] for _, p in batch.items] == ["post"]


async def test_the_incident_card_carries_the_configured_links(repos: Repositories) -> None:
    clock = FakeClock()
    n = notifier(repos, clock, charts=False, links=Links(grafana_url="https://g.example.com"))
    batch = await n.render(incident_event(EventKind.INCIDENT_OPENED, incident()))
    [(_, post)] = batch.items
    urls = [
        e["url"]
        for b in post["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if "url" in e
    ]
    assert len(urls) == 1 and urls[0].startswith("https://g.example.com/d/RDVQiEzZz?")
