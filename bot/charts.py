"""Incident charts in Slack: the outbox item `{"op": "chart", "incident", "phase", "channel"}`
(queued by the notifier under its own key, `chart:<incident>`, so it never holds up the
incident's messages) becomes a PNG uploaded into the incident's thread.

`ChartUploader.upload(item)`: read the incident, fetch its series (`SeriesSource`: Prometheus
`query_range` or the monitor's own history), build the spec (`bot.render.chart`, pure), draw
it in a worker process (`bot.chart_worker`, matplotlib Agg, which would hold the interpreter in
a thread), and upload it with `files_upload_v2` (`files.getUploadURLExternal`, the upload, then
`files.completeUploadExternal` into the thread). The deliverer (`bot.outbox`) runs each upload
in a task of its own, so a slow or failing chart never delays a text message; a failed chart
is retried a few times (`max_attempts`) and then dropped with a log line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.chart_worker import ChartDrawer
from bot.queue import KIND, key_for_incident
from bot.render.chart import Phase, chart_request, chart_spec
from bot.retry import Backoff
from bot.slack_errors import error_code, retry_after
from engine.errors import EngineError
from engine.model import JsonDict, OutboxItem, OwnerKind
from engine.ports import Clock, IncidentRepo, Outbox, SlackRefs
from operator_tikv.metric_history import ChartMetric, Series, SeriesSource
from operator_tikv.metrics import MetricsError

logger = logging.getLogger(__name__)

OP = "chart"


def chart_key(incident_id: str) -> str:
    """Charts of an incident are in line with each other, never with its messages."""
    return f"chart:{key_for_incident(incident_id)}"


def is_chart(item: OutboxItem) -> bool:
    return item.kind == KIND and item.payload.get("op") == OP


def chart_payload(incident_id: str, phase: Phase, channel: str) -> JsonDict:
    return {"op": OP, "incident": incident_id, "phase": phase.value, "channel": channel}


class ChartWait(Exception):
    """The incident's message (the thread to upload into) is not posted yet."""


class NoChart(Exception):
    """Nothing to draw (no data yet, or a kind without a chart): done, nothing uploaded."""


@dataclass(frozen=True)
class Uploaded:
    file_id: str
    channel: str
    thread_ts: str


class ChartUploader:
    """See the module docstring. `timeout`: seconds one chart (fetch, draw, upload) may take.
    `by_cluster`: with several clusters, each cluster's own series (its Prometheus or its
    monitor's history); an incident's chart reads its cluster's (`source` otherwise)."""

    def __init__(
        self,
        client: AsyncWebClient,
        refs: SlackRefs,
        incidents: IncidentRepo,
        source: SeriesSource,
        clock: Clock,
        *,
        max_attempts: int = 3,
        timeout: float = 30.0,
        drawer: ChartDrawer | None = None,
        by_cluster: Mapping[str, SeriesSource] | None = None,
    ) -> None:
        self._client = client
        self._by_cluster = dict(by_cluster or {})
        self.drawer = drawer or ChartDrawer()
        self._refs = refs
        self._incidents = incidents
        self._source = source
        self._clock = clock
        self.max_attempts = max_attempts
        self.timeout = timeout

    async def upload(self, item: OutboxItem) -> Uploaded:
        """Upload the chart `item` asks for. Raises `ChartWait`, `NoChart`, or the error that
        stopped it (Slack's, the metrics source's, the drawing's)."""
        async with asyncio.timeout(self.timeout):
            return await self._upload(item)

    async def _upload(self, item: OutboxItem) -> Uploaded:
        payload = item.payload
        incident_id = str(payload["incident"])
        phase = Phase(str(payload.get("phase", Phase.OPENED.value)))
        parent = await self._refs.get(OwnerKind.INCIDENT, incident_id)
        if parent is None:
            raise ChartWait(f"the message of incident {incident_id} is not posted yet")
        incident = await self._incidents.get(incident_id)
        if incident is None:
            raise NoChart(f"incident {incident_id} is not in the database")
        request = chart_request(incident, phase, self._clock.now())
        if request is None:
            raise NoChart(f"incidents of kind {incident.kind} have no chart")
        data: dict[ChartMetric, Series] = {}
        source = self._by_cluster.get(incident.cluster, self._source)
        for metric in request.metrics:
            try:
                data[metric] = await source.range(metric, start=request.start, end=request.end)
            except MetricsError as exc:
                logger.warning("chart of %s: no %s series: %s", incident_id, metric.value, exc)
        spec = chart_spec(incident, phase, request, data)
        if spec is None:
            raise NoChart(f"no series to draw for incident {incident_id} yet")
        image = await self.drawer.draw(spec)
        thread_ts = parent.thread_ts or parent.ts
        answer = await self._client.files_upload_v2(
            channel=parent.channel,
            thread_ts=thread_ts,
            file=image,
            filename=spec.filename,
            title=spec.title,
            alt_txt=spec.alt_text,
        )
        file = answer.get("file") or {}
        file_id = str(file.get("id", "")) if isinstance(file, dict) else ""
        return Uploaded(file_id=file_id, channel=parent.channel, thread_ts=thread_ts)


class ChartRunner:
    """Runs each chart item of the outbox in a task of its own and records its outcome: an
    upload, nothing to draw, or a failure retried up to the uploader's `max_attempts` and then
    dropped (logged, marked delivered with why). Without an uploader, chart items are marked
    skipped."""

    def __init__(
        self,
        uploader: ChartUploader | None,
        outbox: Outbox,
        clock: Clock,
        backoff: Backoff,
        wait_attempts: int,
    ) -> None:
        self._uploader = uploader
        self._outbox = outbox
        self._clock = clock
        self._backoff = backoff
        self._wait_attempts = wait_attempts
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._stopping = False

    def start(self, item: OutboxItem) -> None:
        if item.id in self._tasks or self._stopping:
            return
        task = asyncio.get_running_loop().create_task(self._run(item), name=f"chart {item.id}")
        self._tasks[item.id] = task
        task.add_done_callback(functools.partial(self._finished, item.id))

    def resume(self) -> None:
        """Take chart items again after `stop()` (a deliverer started again)."""
        self._stopping = False

    def warm(self) -> None:
        """Start the drawing worker ahead of the first chart."""
        if self._uploader is not None:
            self._uploader.drawer.warm()

    def _finished(self, item_id: int, _task: asyncio.Task[None]) -> None:
        self._tasks.pop(item_id, None)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def wait(self) -> None:
        """Until no upload is in flight (tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Cancel uploads in flight (their items stay pending for the next start) and stop
        the drawing worker."""
        self._stopping = True
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
        self._tasks.clear()
        if self._uploader is not None:
            await self._uploader.drawer.close()

    async def _run(self, item: OutboxItem) -> None:
        try:
            await self._attempt(item)
        except EngineError:
            logger.warning("outbox item %s: could not record the chart's outcome", item.id)

    async def _attempt(self, item: OutboxItem) -> None:
        uploader = self._uploader
        if uploader is None:
            await self._done(item, "skipped: charts are off")
            return
        try:
            uploaded = await uploader.upload(item)
        except ChartWait as wait:
            if item.attempts < self._wait_attempts:
                await self._retry(item, str(wait), self._backoff.delay(item.attempts))
            else:
                await self._drop(item, str(wait))
            return
        except NoChart as nothing:
            logger.info("outbox item %s: no chart: %s", item.id, nothing)
            await self._done(item, f"none: {nothing}")
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Slack, the metrics source, the drawing: best effort
            why = _describe(exc)
            if item.attempts + 1 >= uploader.max_attempts:
                await self._drop(item, why)
                return
            delay = (
                retry_after(exc) if isinstance(exc, SlackApiError) else None
            ) or self._backoff.delay(item.attempts)
            logger.warning(
                "outbox item %s: the chart was not uploaded (%s); retrying in %.1f s",
                item.id,
                why,
                delay,
            )
            await self._retry(item, why, delay)
            return
        await self._outbox.mark_delivered(
            item.id,
            now=self._clock.now(),
            result={
                "chart": "uploaded",
                "file": uploaded.file_id,
                "channel": uploaded.channel,
                "thread_ts": uploaded.thread_ts,
            },
        )

    async def _retry(self, item: OutboxItem, why: str, delay: float) -> None:
        at = self._clock.now() + timedelta(seconds=delay)
        await self._outbox.mark_failed(item.id, why, next_attempt_at=at)

    async def _done(self, item: OutboxItem, what: str) -> None:
        await self._outbox.mark_delivered(item.id, now=self._clock.now(), result={"chart": what})

    async def _drop(self, item: OutboxItem, why: str) -> None:
        logger.warning(
            "outbox item %s (%s): chart dropped after %d attempts: %s",
            item.id,
            item.key,
            item.attempts + 1,
            why,
        )
        await self._done(item, f"dropped: {why}")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError):
        return f"slack: {error_code(exc)}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


__all__ = [
    "OP",
    "ChartRunner",
    "ChartUploader",
    "ChartWait",
    "NoChart",
    "Uploaded",
    "chart_key",
    "chart_payload",
    "is_chart",
]
