"""Deliverers read the event log in order: `EventRelay` feeds one `EventSink` every event after
the sink's position, one at a time, and is the one place where a delivery failure is caught
(logged, then retried from the same event after `retry` seconds; an event that keeps failing
for another reason than the database is passed over after `give_up` tries, so one bad event
cannot hold back every later one). A failure never reaches the code that made the change: the
change and its event were committed together before anyone read them.

The relay runs as a background task (`start`/`stop`), woken by `wake()` (the event log calls it
after each commit that wrote events; it then waits `settle` seconds, so the work that made the
change, such as an approval's gate and PD reads, is not slowed by rendering it) or every `poll`
seconds (events written by another process on the same database). `drain()` delivers
everything written so far and returns.

`NotifierSink` adapts a `Notifier` (the terminal, tests): a surface that shows what happens
from now on. Its position is `start_after` when given, else just before the first event its
relay is woken for, else the newest event when it is first asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from engine.errors import StorageError
from engine.events import Event, EventKind
from engine.ports import AttentionNotifier, ChangeNotifier, EventLog, EventSink, Notifier

logger = logging.getLogger(__name__)


class EventRelay:
    """See the module docstring."""

    def __init__(
        self,
        log: EventLog,
        sink: EventSink,
        *,
        name: str,
        poll: float = 1.0,
        retry: float = 1.0,
        batch: int = 100,
        settle: float = 0.0,
        give_up: int = 10,
    ) -> None:
        self._log = log
        self._sink = sink
        self.name = name
        self._poll = poll
        self._retry = retry
        self._batch = batch
        self._settle = settle
        self._give_up = give_up
        self._failing: int | None = None
        self._same = 0
        self._position: int | None = None
        self._lock = asyncio.Lock()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.failures = 0

    def wake(self, first_seq: int | None = None) -> None:
        """There are new events (from `first_seq` on): deliver them now (starts the
        background task if needed). An `EventLog.subscribe` listener."""
        if first_seq is not None and isinstance(self._sink, NotifierSink):
            self._sink.begin_before(first_seq)
        self._wakeup.set()
        if self._task is None and not self._stopping:
            with contextlib.suppress(RuntimeError):  # no running loop: the next pass finds them
                asyncio.get_running_loop()
                self._task = asyncio.get_running_loop().create_task(
                    self._loop(), name=f"relay {self.name}"
                )

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._loop(), name=f"relay {self.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wakeup.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            self._wakeup.clear()
            ok = await self.run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll if ok else self._retry)
                if self._settle:
                    # Woken by a commit: let the code that made the change go on first (an
                    # approval's gate and PD reads), and take what it writes next in one pass.
                    await asyncio.sleep(self._settle)

    async def run_once(self) -> bool:
        """Deliver every event written so far; False when one failed (it is offered again on
        the next pass, from the sink's position)."""
        async with self._lock:
            event: Event | None = None
            try:
                while True:
                    if self._position is None:
                        self._position = await self._sink.position()
                    events = await self._log.after(self._position, self._batch)
                    if not events:
                        return True
                    for event in events:
                        await self._sink.deliver(event)
                        assert event.seq is not None
                        self._position = event.seq
            except asyncio.CancelledError:
                raise
            except StorageError:
                self.failures += 1
                self._position = None  # read back: the failed delivery may have been taken
                logger.exception("the %s deliverer failed; it tries again shortly", self.name)
                return False
            except Exception:
                self.failures += 1
                self._position = None
                await self._poisoned(event)
                return False

    async def _poisoned(self, event: Event | None) -> None:
        """An event the sink cannot take (a bug in rendering it, not the database): retried
        `give_up` times, then passed over (`EventSink.skip`) so the events behind it are not
        held back forever. Logged as an error either way."""
        seq = event.seq if event is not None else None
        self._same = self._same + 1 if seq is not None and seq == self._failing else 1
        self._failing = seq
        if event is None or self._same < self._give_up:
            logger.exception("the %s deliverer failed on event %s; it tries again", self.name, seq)
            return
        logger.exception(
            "the %s deliverer failed %d times on event %s (%s %s); it is passed over",
            self.name,
            self._same,
            seq,
            event.kind.value,
            event.subject,
        )
        try:
            await self._sink.skip(event)
        except Exception:
            logger.exception("passing over event %s failed; it is tried again", seq)

    async def drain(self) -> None:
        """Deliver everything written so far (one pass; a failure is logged, as always)."""
        await self.run_once()


class NotifierSink:
    """An `EventSink` that calls a `Notifier`'s method for each event (in memory: a restart
    starts again from the newest event)."""

    def __init__(self, notifier: Notifier, log: EventLog, *, start_after: int | None = None):
        self._notifier = notifier
        self._log = log
        self._start_after = start_after

    def begin_before(self, seq: int) -> None:
        """Start just before `seq` if no position was taken yet."""
        if self._start_after is None:
            self._start_after = seq - 1

    async def position(self) -> int:
        if self._start_after is None:
            head = await self._log.head()
            if self._start_after is None:  # not woken for an earlier event meanwhile
                self._start_after = head
        return self._start_after

    async def deliver(self, event: Event) -> None:
        await tell(self._notifier, event)
        self._start_after = event.seq

    async def skip(self, event: Event) -> None:
        self._start_after = event.seq


async def tell(notifier: Notifier, event: Event) -> None:
    """Call the `Notifier` method that reports `event`."""
    kind = event.kind
    if kind in (EventKind.INCIDENT_OPENED, EventKind.INCIDENT_UPDATED, EventKind.INCIDENT_RESOLVED):
        assert event.incident is not None
        if kind is EventKind.INCIDENT_OPENED:
            await notifier.incident_opened(event.incident)
        elif kind is EventKind.INCIDENT_UPDATED and isinstance(notifier, ChangeNotifier):
            await notifier.incident_changed(event.incident, event.notes, event.previous_severity)
        elif kind is EventKind.INCIDENT_UPDATED:
            await notifier.incident_updated(event.incident)
        else:
            await notifier.incident_resolved(event.incident)
    elif kind is EventKind.DIAGNOSIS_READY:
        assert event.incident is not None and event.diagnosis is not None
        await notifier.diagnosis_ready(event.incident, event.diagnosis)
    elif kind is EventKind.ACTIONS_NOT_PROPOSED:
        assert event.incident is not None and event.diagnosis is not None
        await notifier.actions_not_proposed(event.incident, event.diagnosis, event.not_proposed)
    elif kind is EventKind.INCIDENT_ATTENTION:
        assert event.incident is not None and event.audit is not None
        if isinstance(notifier, AttentionNotifier):
            await notifier.incident_attention(event.incident, event.audit)
        else:
            await notifier.incident_updated(event.incident)
    elif kind is EventKind.PROPOSAL_MADE:
        assert event.proposal is not None
        await notifier.proposal_made(event.proposal)
    elif kind is EventKind.PROPOSAL_CHANGED:
        assert event.proposal is not None and event.audit is not None
        if event.execution is not None and event.execution.is_finished:
            # A run's end: its last progress (the final note), then the outcome.
            await notifier.execution_progress(event.proposal, event.execution)
        await notifier.proposal_changed(event.proposal, event.audit)
    else:
        assert event.proposal is not None and event.execution is not None
        await notifier.execution_progress(event.proposal, event.execution)


__all__ = ["EventRelay", "NotifierSink", "tell"]
