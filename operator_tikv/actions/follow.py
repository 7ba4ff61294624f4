"""The verification loop: poll an action's `verify` until it finishes or a deadline passes.

The executor calls `follow()` with its own clock and sleep, so tests drive it with simulated
time (e.g. `sleep=cluster.advance`) and never wait on the wall clock. A deadline is reported
as timed out with the last progress seen, never as success.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from operator_tikv.actions.base import Action, ActionParams, Snapshot, Verification

if TYPE_CHECKING:
    from operator_tikv.actions.ports import PDApi

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]


async def follow(
    action: Action[Any],
    params: ActionParams,
    pd: PDApi,
    before: Snapshot,
    *,
    sleep: Sleep,
    clock: Clock,
    deadline_seconds: float | None = None,
    poll_interval: float | None = None,
    on_progress: Callable[[Verification], Awaitable[None]] | None = None,
) -> Verification:
    """Verify until finished; TIMED_OUT with the last progress once the deadline passes.

    `clock` returns seconds (monotonic); `sleep(seconds)` waits (or advances simulated time).
    `on_progress` is awaited with every pending verification (for progress messages).
    """
    typed = action.validate(params)
    limit = action.deadline_seconds if deadline_seconds is None else deadline_seconds
    interval = action.poll_interval if poll_interval is None else poll_interval
    start = clock()
    while True:
        result = await action.verify(typed, pd, before)
        if result.finished:
            return result
        if on_progress is not None:
            await on_progress(result)
        elapsed = clock() - start
        if elapsed >= limit:
            return Verification.timed_out(
                f"{action.name} did not finish within {limit:g} s; last seen: {result.message}"
            )
        await sleep(min(interval, max(limit - elapsed, 0.0)))
