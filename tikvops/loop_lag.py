"""The event loop's lag, measured continuously: `LoopLagProbe` records how late the loop runs a
periodic timer (`tikvops_event_loop_lag_seconds`, through `BotMetrics`) and logs a warning
naming what ran when one stall passes 250 ms (a watchdog thread samples the loop thread's
stack during the stall).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from tikvops.observability import BotMetrics

Clock = Callable[[], float]

logger = logging.getLogger(__name__)


def _describe_stack(frame: Any, task_name: str | None) -> str:
    """The innermost frames of a stack, most recent last, on one line."""
    frames = traceback.extract_stack(frame)[-4:]
    where = " <- ".join(
        f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in reversed(frames)
    )
    return f"task {task_name!r} at {where}" if task_name else where


class LoopLagProbe:
    """Measures event-loop lag continuously and names what ran during a long stall.

    Every `interval` seconds a task sleeps and records how much later than asked it woke up
    (`BotMetrics.observe_loop_lag`). A daemon thread checks every `interval / 2` seconds when
    the task last ran; once the loop has been silent past `warn_after`, it samples the loop
    thread's stack and the current task, and when the loop comes back the probe logs one
    warning with the stall's length and that sample. (A stall inside one C call that keeps
    the GIL, such as a huge `json.loads`, cannot be sampled while it lasts; the warning then
    says so.) `lags` keeps the recent samples for tests and benchmarks.
    """

    def __init__(
        self,
        metrics: BotMetrics | None = None,
        *,
        interval: float = 0.1,
        warn_after: float = 0.25,
        clock: Clock = time.monotonic,
        keep: int = 10_000,
    ) -> None:
        if interval <= 0 or warn_after <= 0:
            raise ValueError("interval and warn_after must be positive")
        self.metrics = metrics
        self.interval = interval
        self.warn_after = warn_after
        self._clock = clock
        self.lags: deque[float] = deque(maxlen=keep)
        self.stalls: deque[tuple[float, str]] = deque(maxlen=100)
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._beat = clock()
        self._sample: str | None = None
        self._sampled_beat: float | None = None

    def start(self) -> None:
        """Start probing on the running loop (call from inside it)."""
        if self._task is not None:
            return
        loop = asyncio.get_running_loop()
        self._beat = self._clock()
        self._stop.clear()
        self._task = loop.create_task(self._run(), name="event-loop lag probe")
        self._thread = threading.Thread(
            target=self._watch,
            args=(loop, threading.get_ident()),
            name="event-loop watchdog",
            daemon=True,
        )
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 2.0)

    async def _run(self) -> None:
        while True:
            asked = self._clock() + self.interval
            await asyncio.sleep(self.interval)
            now = self._clock()
            lag = max(now - asked, 0.0)
            self._beat = now
            self.record(lag)

    def record(self, lag: float) -> None:
        """Count one lag sample (and warn about it when it is a long stall)."""
        self.lags.append(lag)
        if self.metrics is not None:
            self.metrics.observe_loop_lag(lag)
        if lag < self.warn_after:
            self._sample = None
            return
        sample = self._sample or ("not sampled (one call held the interpreter for the whole stall)")
        self._sample = None
        self.stalls.append((lag, sample))
        logger.warning(
            "event loop stalled for %.0f ms (nothing else could run: Slack acks, PD "
            "requests, timers); running then: %s",
            lag * 1000,
            sample,
        )

    def _watch(self, loop: asyncio.AbstractEventLoop, loop_thread: int) -> None:
        while not self._stop.wait(self.interval / 2):
            beat = self._beat
            # mid-stall: the loop has been silent for its sleep plus half the warning threshold
            silent = self._clock() - beat - self.interval
            if silent < self.warn_after / 2 or self._sampled_beat == beat:
                continue
            frame = sys._current_frames().get(loop_thread)
            if frame is None:
                continue
            try:
                task = asyncio.current_task(loop)
            except RuntimeError:
                task = None
            self._sample = _describe_stack(frame, task.get_name() if task else None)
            self._sampled_beat = beat
            del frame
