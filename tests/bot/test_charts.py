"""Incident charts through the outbox against the Slack stand-in and the real SQLite outbox: the
chart is uploaded with files_upload_v2 into the incident's thread, waits for the thread, never
holds up or delays the text, and a failing upload or a Slack error is retried a bounded number
of times and dropped while every text message is delivered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.chart_worker import ChartDrawer
from bot.charts import ChartUploader, chart_key, chart_payload
from bot.client import build_web_client, close_web_client
from bot.config import BotConfig
from bot.outbox import Deliverer
from bot.queue import key_for_incident, owner
from bot.render.chart import Phase
from bot.render.kit import rendered, section
from bot.retry import Backoff
from engine.clock import FakeClock
from engine.model import OutboxStatus, OwnerKind
from operator_tikv.metric_history import ChartMetric, Series
from slackfake.server import SlackFake
from storage import Repositories
from tests.bot.records import incident

CHANNEL = "C0OPS"
INCIDENT = owner(OwnerKind.INCIDENT, "I-3")
KEY = key_for_incident("I-3")


class KnownSeries:
    """Chart data: known series per metric (what the monitor's history would hold)."""

    def __init__(self, now: float) -> None:
        self.asked: list[ChartMetric] = []
        first = now - 25 * 60
        self.data: dict[ChartMetric, Series] = {
            metric: {
                sid: [(first + i * 60, float(10 * sid + (i if sid == 4 else 0))) for i in range(25)]
                for sid in (1, 2, 4)
            }
            for metric in ChartMetric
        }

    async def range(self, metric: ChartMetric, *, start: float, end: float) -> Series:
        self.asked.append(metric)
        return self.data[metric]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(slack_fake: SlackFake) -> AsyncIterator[AsyncWebClient]:
    made = build_web_client(
        BotConfig(
            bot_token="xoxb-test",
            app_token="xapp-1-A0TIKVOPS-1-test",
            channel=CHANNEL,
            api_url=slack_fake.api_url,
            rate_limit_retries=0,
            connection_retries=0,
            server_error_retries=0,
        )
    )
    yield made
    await close_web_client(made)


@pytest.fixture
async def stored(repos: Repositories, clock: FakeClock) -> None:
    # store_down on store 4, opened 10 minutes before the clock's now
    await repos.incidents.create(incident(opened_at=clock.now() - timedelta(minutes=10)))


def deliverer(
    repos: Repositories,
    client: AsyncWebClient,
    clock: FakeClock,
    source: KnownSeries | None,
    drawer: ChartDrawer | None = None,
) -> Deliverer:
    """Charts drawn in a thread here (fast to start); the worker process is tested below."""
    charts = (
        ChartUploader(
            client,
            repos.slack_refs,
            repos.incidents,
            source,
            clock,
            timeout=60.0,
            drawer=drawer or ChartDrawer("thread"),
        )
        if source is not None
        else None
    )
    return Deliverer(
        repos.outbox,
        repos.slack_refs,
        client,
        clock,
        backoff=Backoff(base=1.0, cap=60.0, jitter=0.0),
        charts=charts,
    )


async def queue(repos: Repositories, clock: FakeClock, *, chart_first: bool = False) -> None:
    """The incident's message, a reply, and its chart (as the notifier queues them)."""
    items = [
        (KEY, _post("parent", owned_by=INCIDENT)),
        (KEY, _post("reply", thread_of=INCIDENT)),
    ]
    chart = (chart_key("I-3"), chart_payload("I-3", Phase.OPENED, CHANNEL))
    items = [chart, *items] if chart_first else [*items, chart]
    await repos.outbox.enqueue_batch("slack", items, now=clock.now())


def _post(text: str, **where: object) -> dict[str, object]:
    message = rendered(text, [section(f"*{text}*")])
    return {
        "op": "post",
        "channel": CHANNEL,
        "owner": where.get("owned_by"),
        "thread": where.get("thread_of"),
        "text": message.text,
        "blocks": message.blocks,
        "plain": message.plain,
    }


async def drain(d: Deliverer, clock: FakeClock, rounds: int = 12) -> None:
    for _ in range(rounds):
        await d.run_once()
        await d.charts.wait()
        clock.advance(timedelta(minutes=2))


async def test_the_chart_is_uploaded_into_the_incident_thread(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    source = KnownSeries(clock.now().timestamp())
    d = deliverer(repos, client, clock, source)
    await queue(repos, clock)
    await drain(d, clock)
    [parent] = slack_fake.messages(CHANNEL)
    replies = slack_fake.thread(CHANNEL, parent.ts)
    assert [r.text for r in replies if not r.files] == ["reply"]
    [upload] = [r for r in replies if r.files]
    [file] = upload.files
    assert file["name"] == "I-3-opened.png" and file["mimetype"] == "image/png"
    assert "store 4 highlighted" in file["alt_txt"]
    stored_file = slack_fake.api.files.get(file["id"])
    assert stored_file is not None and stored_file.data is not None
    assert stored_file.data.startswith(b"\x89PNG")
    # The SDK's three steps, in order, with the thread of the incident's message.
    methods = [c.method for c in slack_fake.calls() if c.method.startswith("files.")]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    [complete] = slack_fake.calls("files.completeUploadExternal")
    assert complete.params["thread_ts"] == parent.ts and complete.params["channel_id"] == CHANNEL
    assert source.asked == [ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT]
    [item] = [i for i in await repos.outbox.list() if i.key == chart_key("I-3")]
    assert item.status is OutboxStatus.DELIVERED
    assert item.result is not None and item.result["chart"] == "uploaded"


async def test_the_chart_is_drawn_in_a_worker_process(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    drawer = ChartDrawer()
    d = deliverer(repos, client, clock, KnownSeries(clock.now().timestamp()), drawer)
    d.charts.warm()
    await queue(repos, clock)
    await drain(d, clock, rounds=3)
    [parent] = slack_fake.messages(CHANNEL)
    [upload] = [r for r in slack_fake.thread(CHANNEL, parent.ts) if r.files]
    stored_file = slack_fake.api.files.get(upload.files[0]["id"])
    assert stored_file is not None and (stored_file.data or b"").startswith(b"\x89PNG")
    assert drawer.mode == "process"  # no fall back to a thread
    await d.stop()  # stops the worker process too


async def test_a_chart_queued_before_its_thread_exists_waits_for_it(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    d = deliverer(repos, client, clock, KnownSeries(clock.now().timestamp()))
    await queue(repos, clock, chart_first=True)
    await drain(d, clock)
    [parent] = slack_fake.messages(CHANNEL)
    assert [bool(r.files) for r in slack_fake.thread(CHANNEL, parent.ts)] == [False, True]


@pytest.mark.parametrize(
    ("method", "arm"),
    [
        ("files.getUploadURLExternal", "error"),
        ("files.completeUploadExternal", "error"),
        ("files.completeUploadExternal", "server_error"),
    ],
)
async def test_a_failing_upload_is_dropped_after_bounded_retries_and_the_text_is_delivered(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
    method: str,
    arm: str,
) -> None:
    if arm == "error":
        slack_fake.faults.error(method, "missing_scope", times=10, needed="files:write")
    else:
        slack_fake.faults.server_error(method, times=10)
    d = deliverer(repos, client, clock, KnownSeries(clock.now().timestamp()))
    await queue(repos, clock)
    await drain(d, clock)
    [parent] = slack_fake.messages(CHANNEL)
    assert parent.text == "parent"
    assert [r.text for r in slack_fake.thread(CHANNEL, parent.ts)] == ["reply"]
    assert len(slack_fake.calls(method)) == 3  # the uploader's max_attempts, then dropped
    [item] = [i for i in await repos.outbox.list() if i.key == chart_key("I-3")]
    assert item.status is OutboxStatus.DELIVERED  # dropped: never dead, never pending
    assert item.result is not None and item.result["chart"].startswith("dropped: ")
    assert await repos.outbox.depth() == 0


async def test_a_slow_chart_never_delays_the_text(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    d = deliverer(repos, client, clock, KnownSeries(clock.now().timestamp()))
    slack_fake.faults.slow("files.getUploadURLExternal", delay=30.0)
    await queue(repos, clock, chart_first=True)
    # First pass: the parent; the chart waits for it.
    await d.run_once()
    await d.charts.wait()
    clock.advance(timedelta(minutes=2))
    # Second pass: the chart starts (and hangs in Slack); the reply goes out meanwhile.
    await repos.outbox.enqueue_batch(
        "slack", [(KEY, _post("later", thread_of=INCIDENT))], now=clock.now()
    )
    assert await d.run_once() == 1
    assert d.charts.in_flight == 1
    [parent] = slack_fake.messages(CHANNEL)
    assert [r.text for r in slack_fake.thread(CHANNEL, parent.ts)] == ["reply"]
    assert await d.run_once() == 1  # the next text, still without waiting for the chart
    assert d.charts.in_flight == 1
    assert [r.text for r in slack_fake.thread(CHANNEL, parent.ts)] == ["reply", "later"]
    await d.stop()  # cancels the hanging upload; its item stays pending for the next start
    [item] = [i for i in await repos.outbox.list() if i.key == chart_key("I-3")]
    assert item.status is OutboxStatus.PENDING


async def test_without_charts_the_chart_items_are_skipped(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    d = deliverer(repos, client, clock, None)
    await queue(repos, clock)
    await drain(d, clock)
    assert not slack_fake.calls("files.getUploadURLExternal")
    [item] = [i for i in await repos.outbox.list() if i.key == chart_key("I-3")]
    assert item.status is OutboxStatus.DELIVERED and item.result == {
        "chart": "skipped: charts are off"
    }


async def test_no_series_means_no_upload(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
    stored: None,
) -> None:
    source = KnownSeries(clock.now().timestamp())
    source.data = {metric: {} for metric in ChartMetric}
    d = deliverer(repos, client, clock, source)
    await queue(repos, clock)
    await drain(d, clock)
    assert not slack_fake.calls("files.getUploadURLExternal")
    [item] = [i for i in await repos.outbox.list() if i.key == chart_key("I-3")]
    assert item.result is not None and item.result["chart"].startswith("none: ")
    await asyncio.sleep(0)


async def test_each_incidents_chart_reads_its_own_clusters_series(
    slack_fake: SlackFake,
    client: AsyncWebClient,
    repos: Repositories,
    clock: FakeClock,
) -> None:
    # two clusters: prod's store 4 and staging's store 4 are down; each chart is drawn from the
    # series of its incident's cluster (its Prometheus or its monitor's history), never the other's
    opened = clock.now() - timedelta(minutes=10)
    await repos.incidents.create(incident(opened_at=opened, cluster="prod"))
    await repos.incidents.create(incident(id="I-4", opened_at=opened, cluster="staging"))
    now = clock.now().timestamp()
    first, prod, staging = KnownSeries(now), KnownSeries(now), KnownSeries(now)
    charts = ChartUploader(
        client,
        repos.slack_refs,
        repos.incidents,
        first,
        clock,
        timeout=60.0,
        drawer=ChartDrawer("thread"),
        by_cluster={"prod": prod, "staging": staging},
    )
    d = Deliverer(
        repos.outbox,
        repos.slack_refs,
        client,
        clock,
        backoff=Backoff(base=1.0, cap=60.0, jitter=0.0),
        charts=charts,
    )
    for incident_id, cluster in (("I-3", "prod"), ("I-4", "staging")):
        parent = owner(OwnerKind.INCIDENT, incident_id)
        items = [
            (key_for_incident(incident_id), _post(f"parent {incident_id}", owned_by=parent)),
            (chart_key(incident_id), chart_payload(incident_id, Phase.OPENED, CHANNEL)),
        ]
        await repos.outbox.enqueue_batch("slack", items, now=clock.now(), cluster=cluster)
        await drain(d, clock, rounds=4)
        asked = prod if cluster == "prod" else staging
        assert asked.asked == [ChartMetric.LEADER_COUNT, ChartMetric.REGION_COUNT]
    assert first.asked == []  # the first cluster's series never stands in for another's
    uploads = [m for p in slack_fake.messages(CHANNEL) for m in slack_fake.thread(CHANNEL, p.ts)]
    assert sorted(f["name"] for m in uploads for f in m.files) == [
        "I-3-opened.png",
        "I-4-opened.png",
    ]
