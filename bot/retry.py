"""How the outbox deliverer paces its retries (`Backoff`) and who observes it (`DeliveryHooks`,
the metrics)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: `base * 2**attempts`, capped, with a little jitter."""

    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.1

    def delay(self, attempts: int) -> float:
        raw = min(self.cap, self.base * float(2 ** min(attempts, 30)))
        return float(raw * (1.0 + random.uniform(0.0, self.jitter)))


@dataclass
class DeliveryHooks:
    """Optional observers (metrics): the pending depth after each pass, and each retry."""

    depth: Callable[[int], None] | None = None
    retry: Callable[[], None] | None = None


__all__ = ["Backoff", "DeliveryHooks"]
