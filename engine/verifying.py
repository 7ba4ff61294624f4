"""Verification of a write PD accepted: the action's `verify` polled until it reports an end,
within the action's deadline. A failed *read* (PD unreachable, a 5xx, an HTML page from a
proxy, a timeout) says nothing about the write: it means "outcome not yet verified", and the
read is tried again with back-off until the deadline. Only then is the run called unverified
(`Unverified`), a distinct end: PD accepted the request, nobody could see what it did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from operator_tikv.actions import Action, ActionParams, Snapshot, Verification
from operator_tikv.actions.ports import PDApi
from operator_tikv.errors import PDError

MAX_READ_BACKOFF = 30.0
"""Seconds at most between two verification reads after failures (the deadline still rules)."""


@dataclass(frozen=True, slots=True)
class Unverified:
    """Reading PD to verify the write kept failing until the deadline."""

    error: PDError
    failed_reads: int
    waited: float
    last_seen: Verification | None


async def verify_until_deadline(
    action: Action[Any],
    params: ActionParams,
    pd: PDApi,
    before: Snapshot,
    *,
    sleep: Callable[[float], Awaitable[Any]],
    clock: Callable[[], float],
    deadline_seconds: float,
    poll_interval: float | None = None,
    on_progress: Callable[[Verification], Awaitable[None]] | None = None,
    on_read_failure: Callable[[PDError, float], Awaitable[None]] | None = None,
) -> Verification | Unverified:
    """Poll `action.verify` until it finishes (its Verification), the deadline passes with PD
    readable (a timed-out Verification with the last progress), or the deadline passes while
    reads fail (`Unverified`). `on_read_failure(error, retry_in)` hears each failed read."""
    interval = action.poll_interval if poll_interval is None else poll_interval
    start = clock()
    failures = 0
    last_seen: Verification | None = None
    while True:
        try:
            result = await action.verify(params, pd, before)
        except PDError as exc:
            failures += 1
            elapsed = clock() - start
            if elapsed >= deadline_seconds:
                return Unverified(
                    error=exc, failed_reads=failures, waited=elapsed, last_seen=last_seen
                )
            backoff = min(interval * 2 ** min(failures - 1, 16), MAX_READ_BACKOFF)
            delay = max(min(backoff, deadline_seconds - elapsed), 0.0)
            if on_read_failure is not None:
                await on_read_failure(exc, delay)
            await sleep(delay)
            continue
        failures = 0
        if result.finished:
            return result
        last_seen = result
        if on_progress is not None:
            await on_progress(result)
        elapsed = clock() - start
        if elapsed >= deadline_seconds:
            return Verification.timed_out(
                f"{action.name} did not finish within {deadline_seconds:g} s; last seen: "
                f"{result.message}"
            )
        await sleep(min(interval, max(deadline_seconds - elapsed, 0.0)))


def check_hint(params: dict[str, Any]) -> str:
    """What to look at to see what an unverified write did."""
    if "region_id" in params:
        region = params["region_id"]
        return f"region {region} (`region {region}`)"
    if "store_id" in params:
        store = params["store_id"]
        return f"store {store} (`store {store}`)"
    return "the cluster (`status`)"


__all__ = ["MAX_READ_BACKOFF", "Unverified", "check_hint", "verify_until_deadline"]
