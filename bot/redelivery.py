"""Redelivery protection that never holds up an ack. A request is known by its keys: the
Socket Mode envelope ID (the same on every redelivery of one envelope) and the request key
(the trigger, `action_ts`, view or event ID of one user action, see `bot.payload.request_key`).

- `RecentKeys`: the keys of requests this process has already let through, in memory. A
  redelivery while the bot runs is recognised here, before the listener, without any I/O.
- `Claim`: the durable check (`DedupRepo.seen_any`, one transaction for all keys), made after
  the ack and before any work, so a request handled before a restart is not handled again.
- `once(context, work)`: what handlers spawn after `ack()`: `work()` runs only if the claim
  says this is the first delivery (else nothing happens, and the claim logs it).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from engine.errors import EngineError
from engine.ports import DedupRepo

logger = logging.getLogger(__name__)

CLAIM = "tikvops_claim"
"""The context key under which `bot.middleware.Deduplicate` leaves the request's `Claim`."""


class RecentKeys:
    """Keys seen in the last `ttl` by this process, at most `limit` of them (the oldest go
    first; the durable `Claim` still catches what was forgotten here)."""

    def __init__(self, ttl: timedelta, limit: int = 20_000) -> None:
        self._ttl = ttl
        self._limit = limit
        self._expiry: OrderedDict[str, datetime] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def repeat(self, keys: Sequence[str], now: datetime) -> bool:
        """True if any of `keys` was seen and has not expired; else remember them all."""
        while self._expiry:
            oldest, expires = next(iter(self._expiry.items()))
            if expires > now:
                break
            del self._expiry[oldest]
        if any(key in self._expiry for key in keys):
            return True
        for key in keys:
            self._expiry[key] = now + self._ttl
        while len(self._expiry) > self._limit:
            self._expiry.popitem(last=False)
        return False


class Claim:
    """The durable first-delivery check of one request, made at most once."""

    def __init__(
        self, dedup: DedupRepo, keys: Sequence[str], *, now: datetime, ttl: timedelta
    ) -> None:
        self._dedup = dedup
        self.keys = tuple(keys)
        self._now = now
        self._ttl = ttl
        self._result: asyncio.Future[bool] | None = None

    async def first(self) -> bool:
        """Whether this is the first delivery (then the keys are now marked processed). If the
        database cannot say, the request counts as first: the engine still applies each
        mutation once (its own request IDs), so a duplicate read-only answer is the worst case.
        """
        if self._result is None:
            self._result = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._result)

    async def _check(self) -> bool:
        if not self.keys:
            return True
        try:
            repeated = await self._dedup.seen_any(self.keys, now=self._now, ttl=self._ttl)
        except EngineError:
            logger.warning("could not check %s for redelivery", ", ".join(self.keys), exc_info=True)
            return True
        if repeated:
            logger.info("ignored a redelivered request %s", ", ".join(self.keys))
        return not repeated


async def first_delivery(context: Mapping[str, Any]) -> bool:
    """Whether the request of this listener context is delivered for the first time (a
    context without a claim, e.g. in unit tests without the middleware, is)."""
    claim = context.get(CLAIM)
    if isinstance(claim, Claim):
        return await claim.first()
    return True


def once(
    context: Mapping[str, Any], work: Callable[[], Awaitable[object]]
) -> Coroutine[Any, Any, None]:
    """`work()`, started only on the first delivery of the context's request (for
    `BackgroundTasks.spawn` after the ack). `work` makes the coroutine only then, so nothing is
    left un-awaited when the request is a repeat or the coroutine is never run."""

    async def gated() -> None:
        if await first_delivery(context):
            await work()

    return gated()


__all__ = ["CLAIM", "Claim", "RecentKeys", "first_delivery", "once"]
