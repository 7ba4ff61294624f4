"""Every message the bot owes Slack goes through the outbox (the engine's `Outbox` port, SQLite in
production) and is delivered by `Deliverer`, which retries until Slack accepts it. A Slack outage
or a restart therefore loses nothing.

Items are `kind="slack"` with a payload saying what to do:

- `{"op": "post", "channel", "owner"?, "thread"?, "text", "blocks", "plain"}`: post a message;
  `owner` (`{"kind": "incident"|"proposal", "id"}`) records the message as that record's own
  (`SlackRefs`), `thread` posts it as a reply in the thread of that record's message.
- `{"op": "update", "target", "channel", "text", "blocks", "plain"}`: edit the message
  `target` owns (posted to `channel` as a new message if it never appears).

Claims: the running bot gives its deliverer a `lease` (on both backends), and it takes one item
at a time with `Outbox.claim` (a compare-and-set in one write transaction: `FOR UPDATE SKIP
LOCKED` on PostgreSQL, SQLite's write lock on a file) instead of reading `due` items: a claimed
item is this deliverer's for the lease (no other process sends it, and the items behind it with
the same key wait), so whichever process is alive delivers what is owed, each item once, in order
per thread: replicas on PostgreSQL, and two processes that share one SQLite file by mistake
(which without the claim both posted every card). An item whose deliverer died is claimed again
when its lease lapses (a bot restarted after a kill in the middle of a delivery sends that
thread's messages once the lease has run out), counted as an interrupted attempt, so it is
uncertain (below) and looked up before being posted again. Without a lease (`run_once` in unit
tests) the deliverer reads `due` items: for one deliverer alone on its database.

Ordering: items with the same key (one per incident, or per proposal without an incident) are
delivered in order by the outbox itself, so a parent goes out before its replies and an update
never overtakes its post. A reply or an update whose message is not posted yet (another key)
waits for it, and after `wait_attempts` tries goes out as a new message instead. When Slack
refuses the blocks (`invalid_blocks`, too long, ...) the plain-text version is sent instead and
the problem logged; transient failures (rate limits, 5xx, network) are retried with back-off
(`Retry-After` when Slack gives one) and never given up; other errors are retried up to
`max_attempts`, then the item is marked dead and logged.

Posts are idempotent. The outbox item is the intent, recorded before anything is sent; every
post carries Slack message metadata with the item's key (`bot.delivery_lookup`). A send whose
outcome is unknown (connection dropped, timeout, 5xx, `internal_error`/`fatal_error`, or an
item a previous process may have been sending when it stopped) makes the item *uncertain*:
before posting it again the deliverer looks the message up by its key, and if Slack has it,
records that message and posts nothing. After posting an uncertain item it looks once more:
should two copies exist anyway (Slack's history lagging behind, or no lookup possible), the
oldest is kept as the item's message and every other copy is edited into a short inactive note,
without buttons, linking to the one that counts. The client never retries a post by itself
(`bot.client`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.charts import ChartRunner, ChartUploader, is_chart
from bot.delivery_lookup import MessageLookup
from bot.queue import KIND
from bot.retry import Backoff, DeliveryHooks
from bot.sending import Sender
from bot.slack_errors import (
    GONE_ERRORS,
    THREAD_ERRORS,
    TRANSIENT_ERRORS,
    error_code,
    retry_after,
)
from engine.errors import EngineError
from engine.model import JsonDict, MessageRef, OutboxItem, OwnerKind
from engine.ports import Clock, Outbox, SlackRefs

logger = logging.getLogger(__name__)


class _Wait(Exception):
    """The message this item refers to is not posted yet."""


class _Gone(Exception):
    """An error that a retry will not fix."""


class Deliverer:
    """Delivers due outbox items to Slack, in order, until each is accepted. Run it with
    `start()`/`stop()` (a background task), or call `run_once()` directly (tests)."""

    def __init__(
        self,
        outbox: Outbox,
        refs: SlackRefs,
        client: AsyncWebClient,
        clock: Clock,
        *,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
        wait_attempts: int = 8,
        max_attempts: int = 25,
        batch: int = 20,
        hooks: DeliveryHooks | None = None,
        lookup: MessageLookup | None = None,
        lease: timedelta | None = None,
        charts: ChartUploader | None = None,
    ) -> None:
        self._outbox = outbox
        self._lease = lease
        self._refs = refs
        self._client = client
        self._clock = clock
        self._poll = poll_interval
        self._backoff = backoff or Backoff()
        self._wait_attempts = wait_attempts
        self._max_attempts = max_attempts
        self._batch = batch
        self._hooks = hooks or DeliveryHooks()
        self._wakeup = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stop_timeout = 5.0
        self._lookup = lookup or MessageLookup(client)
        self._started_at = clock.now()
        # Items this process has tried, and those of them whose post may exist in Slack.
        self._seen: set[int] = set()
        self._uncertain: set[int] = set()
        self._sender = Sender(client, self._lookup)
        # Chart uploads run in tasks of their own (`bot.charts`): never in line with text.
        self.charts = ChartRunner(charts, outbox, clock, self._backoff, wait_attempts)

    # ------------------------------------------------------------------ lifecycle

    def wake(self) -> None:
        """There may be work: run a pass now instead of at the next poll."""
        self._wakeup.set()

    async def start(self) -> None:
        if self._task is not None:
            return
        self._stopping = False
        self.charts.resume()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="slack outbox")

    async def stop(self) -> None:
        """Finish the item in flight (up to `stop_timeout` seconds), then stop. Undelivered
        items stay in the outbox for the next start."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        await self.charts.stop()
        try:
            await asyncio.wait_for(asyncio.shield(task), self.stop_timeout)
        except TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._task = None

    async def _loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            delivered = 0
            try:
                delivered = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox pass failed; retrying in %.1f s", self._poll)
            if delivered or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll)

    # ------------------------------------------------------------------ one pass

    async def run_once(self) -> int:
        """Deliver what is due now; returns how many items Slack accepted."""
        async with self._lock:
            delivered = 0
            if self._lease is None:
                items = await self._outbox.due(self._clock.now(), self._batch)
                for item in items:
                    if self._stopping and delivered:
                        break
                    if is_chart(item):
                        self.charts.start(item)
                        continue
                    if await self._deliver(item):
                        delivered += 1
            else:
                delivered = await self._claimed_pass(self._lease)
            if self._hooks.depth is not None:
                try:
                    self._hooks.depth(await self._outbox.depth())
                except EngineError:
                    logger.warning("could not read the outbox depth", exc_info=True)
            return delivered

    async def _claimed_pass(self, lease: timedelta) -> int:
        """One pass among replicas: claim one item at a time (so that a lease covers one
        delivery), up to `batch` of them."""
        delivered = 0
        for _ in range(self._batch):
            if self._stopping and delivered:
                break
            claimed = await self._outbox.claim(self._clock.now(), lease=lease, limit=1)
            if not claimed:
                break
            if is_chart(claimed[0]):
                self.charts.start(claimed[0])
                continue
            if await self._deliver(claimed[0]):
                delivered += 1
        return delivered

    def _note(self, item: OutboxItem) -> None:
        """First sight of `item` in this process: if an earlier process (or an earlier attempt
        we have no record of) may have sent it, its post is uncertain."""
        if item.id in self._seen:
            return
        self._seen.add(item.id)
        if item.attempts > 0 or item.created_at < self._started_at:
            self._sender.uncertain.add(item.id)

    def _forget(self, item: OutboxItem) -> None:
        self._seen.discard(item.id)
        self._sender.uncertain.discard(item.id)

    async def _deliver(self, item: OutboxItem) -> bool:
        payload = item.payload
        self._note(item)
        try:
            if item.kind != KIND:
                raise _Gone(f"unknown outbox kind {item.kind!r}")
            op = payload.get("op")
            if op == "post":
                result = await self._post(item, payload)
            elif op == "update":
                result = await self._update(item, payload)
            else:
                raise _Gone(f"unknown outbox operation {op!r}")
        except _Wait as wait:
            await self._retry(item, str(wait), self._backoff.delay(item.attempts))
            return False
        except _Gone as gone:
            logger.error("outbox item %s (%s) given up: %s", item.id, item.key, gone)
            await self._outbox.mark_failed(item.id, str(gone), next_attempt_at=None)
            self._forget(item)
            return False
        except SlackApiError as exc:
            await self._api_error(item, exc)
            return False
        except (SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            why = f"Slack could not be reached: {type(exc).__name__}: {exc}"
            logger.warning("outbox item %s: %s", item.id, why)
            await self._retry(item, why, self._backoff.delay(item.attempts))
            return False
        except Exception as exc:  # a malformed item or a bug: never block the items behind it
            logger.exception("outbox item %s (%s) could not be delivered", item.id, item.key)
            why = f"{type(exc).__name__}: {exc}"
            if item.attempts + 1 >= self._max_attempts:
                await self._outbox.mark_failed(item.id, why, next_attempt_at=None)
                self._forget(item)
            else:
                await self._retry(item, why, self._backoff.delay(item.attempts))
            return False
        await self._outbox.mark_delivered(item.id, now=self._clock.now(), result=result)
        self._forget(item)
        return True

    async def _retry(self, item: OutboxItem, why: str, delay: float) -> None:
        if self._hooks.retry is not None:
            self._hooks.retry()
        at = self._clock.now() + timedelta(seconds=delay)
        await self._outbox.mark_failed(item.id, why, next_attempt_at=at)

    async def _api_error(self, item: OutboxItem, exc: SlackApiError) -> None:
        error = error_code(exc)
        status = getattr(exc.response, "status_code", 200)
        if error in TRANSIENT_ERRORS or status == 429 or status >= 500:
            delay = retry_after(exc) or self._backoff.delay(item.attempts)
            logger.warning(
                "outbox item %s: Slack answered %s (HTTP %s); retrying in %.1f s",
                item.id,
                error,
                status,
                delay,
            )
            await self._retry(item, f"slack: {error} (HTTP {status})", delay)
            return
        if item.attempts + 1 >= self._max_attempts:
            logger.error(
                "outbox item %s (%s) given up after %d attempts: Slack answered %s",
                item.id,
                item.key,
                item.attempts + 1,
                error,
            )
            await self._outbox.mark_failed(item.id, f"slack: {error}", next_attempt_at=None)
            self._forget(item)
            return
        logger.error(
            "outbox item %s: Slack answered %s; check the bot's channel and scopes. Retrying.",
            item.id,
            error,
        )
        await self._retry(item, f"slack: {error}", self._backoff.delay(item.attempts))

    # ------------------------------------------------------------------ operations

    async def _ref(self, data: Any) -> MessageRef | None:
        if not isinstance(data, dict):
            return None
        return await self._refs.get(OwnerKind(data["kind"]), str(data["id"]))

    async def _post(self, item: OutboxItem, payload: JsonDict) -> JsonDict:
        owned_by = payload.get("owner")
        existing = await self._ref(owned_by)
        if existing is not None:
            # Posted before (a restart between post and bookkeeping): edit it, never post twice.
            return await self._edit(item, existing, payload, owned_by)
        channel = str(payload["channel"])
        thread_ts: str | None = None
        thread_of = payload.get("thread")
        if thread_of is not None:
            parent = await self._ref(thread_of)
            if parent is None:
                if item.attempts < self._wait_attempts:
                    raise _Wait(f"waiting for the message of {thread_of['kind']} {thread_of['id']}")
                logger.warning(
                    "outbox item %s: the message of %s %s never appeared; posting at the top",
                    item.id,
                    thread_of["kind"],
                    thread_of["id"],
                )
            else:
                channel = parent.channel
                thread_ts = parent.thread_ts or parent.ts
        try:
            posted = await self._sender.post(item, channel, thread_ts, payload)
        except SlackApiError as exc:
            if thread_ts is None or error_code(exc) not in THREAD_ERRORS:
                raise
            logger.warning(
                "outbox item %s: thread %s is gone; posting at the top", item.id, thread_ts
            )
            thread_ts = None
            posted = await self._sender.post(item, channel, None, payload)
        posted_channel = posted.channel
        ts = posted.ts
        if isinstance(owned_by, dict):
            await self._refs.put(
                MessageRef(
                    owner_kind=OwnerKind(owned_by["kind"]),
                    owner_id=str(owned_by["id"]),
                    channel=posted_channel,
                    ts=ts,
                    thread_ts=thread_ts,
                )
            )
        result: JsonDict = {"channel": posted_channel, "ts": ts, "thread_ts": thread_ts}
        if posted.recovered:
            result["recovered"] = True
        return result

    async def _update(self, item: OutboxItem, payload: JsonDict) -> JsonDict:
        target = payload.get("target")
        ref = await self._ref(target)
        if ref is None:
            if item.attempts < self._wait_attempts:
                name = f"{target['kind']} {target['id']}" if isinstance(target, dict) else "?"
                raise _Wait(f"waiting for the message of {name} to be posted")
            logger.warning(
                "outbox item %s: the message of %s was never posted; posting this version",
                item.id,
                target,
            )
            return await self._post(item, {**payload, "op": "post", "owner": target})
        return await self._edit(item, ref, payload, target)

    async def _edit(
        self, item: OutboxItem, ref: MessageRef, payload: JsonDict, owned_by: Any
    ) -> JsonDict:
        try:
            await self._sender.update(item, ref, payload)
        except SlackApiError as exc:
            if error_code(exc) not in GONE_ERRORS:
                raise
            logger.warning(
                "outbox item %s: message %s in %s cannot be edited (%s); posting it anew",
                item.id,
                ref.ts,
                ref.channel,
                error_code(exc),
            )
            posted = await self._sender.post(item, ref.channel, ref.thread_ts, payload)
            if isinstance(owned_by, dict):
                await self._refs.put(ref.model_copy(update={"ts": posted.ts}))
            return {"channel": ref.channel, "ts": posted.ts, "reposted": True}
        return {"channel": ref.channel, "ts": ref.ts, "updated": True}


__all__ = ["Deliverer"]
