"""Where charts are drawn: matplotlib's Agg renderer holds the interpreter for the whole of a
draw (about a second for a two-panel chart on a busy machine), so even a worker thread stalls
the event loop. `ChartDrawer` draws in one spawned worker process (started on first use, kept
for the next charts) and falls back to a thread if the process cannot run. The spec is plain
data (`bot.render.chart.ChartSpec`), the answer PNG bytes; the bot's process never imports
matplotlib unless it falls back. The worker ends by itself when the bot's process dies.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import os
import threading
import time
from typing import Literal

from bot.render.chart import ChartSpec

logger = logging.getLogger(__name__)


def _exit_with(parent: int) -> None:
    """In the worker: end when the bot's process is gone (killed, even with SIGKILL), instead
    of living on holding its stdout and stderr open."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, name="parent watch", daemon=True).start()


def _draw(spec: ChartSpec) -> bytes:
    """In the worker: the spec drawn as PNG."""
    from bot import chart_png  # the worker's import, never the bot's

    return chart_png.png(spec)


def _warm() -> None:
    """In the worker: import matplotlib and load its fonts before the first chart."""
    from bot import chart_png

    chart_png.warm()


class ChartDrawer:
    """See the module docstring. `close()` it on shutdown."""

    def __init__(self, mode: Literal["process", "thread"] = "process") -> None:
        self.mode: Literal["process", "thread"] = mode
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with,
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm(self) -> None:
        """Start the worker now, in the background, so that the first chart does not pay for
        an interpreter's start and matplotlib's import (process mode only)."""
        if self.mode != "process" or self._pool is not None:
            return
        try:
            future = self._executor().submit(_warm)
        except (concurrent.futures.process.BrokenProcessPool, OSError, RuntimeError) as exc:
            logger.warning("the chart worker process could not start (%s)", exc)
            return
        future.add_done_callback(lambda done: done.exception())  # retrieved: never logged

    async def draw(self, spec: ChartSpec) -> bytes:
        if self.mode == "process":
            loop = asyncio.get_running_loop()
            try:
                return await loop.run_in_executor(self._executor(), _draw, spec)
            except (concurrent.futures.process.BrokenProcessPool, OSError) as exc:
                logger.warning("the chart worker process failed (%s); drawing in a thread", exc)
                self.mode = "thread"
                await self.close()
        return await asyncio.to_thread(_draw, spec)

    async def close(self) -> None:
        """Stop the worker process (a drawing still running is abandoned)."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            await asyncio.to_thread(process.join, 5)


__all__ = ["ChartDrawer"]
