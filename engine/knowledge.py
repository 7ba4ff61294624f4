"""What the monitor already knows about PD, for answers to people when PD is slow.

The monitor records every cycle's observation here (`ClusterKnowledge.record`); the read
views (`engine.reads.Reads`) consult it so that `/tikv status` with a hung PD answers at once
from the last good store list, saying "as of …" and "PD unreachable since …", instead of
waiting on PD. Nothing here talks to PD; it only remembers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from engine.ports import Clock
from operator_tikv.models.store import StoreInfo
from operator_tikv.observation import Observation


def clock_time(at: datetime, now: datetime) -> str:
    """`02:09:50 UTC (40 s ago)`; the date too when `at` is another day than `now`."""
    ago = max(int((now - at).total_seconds()), 0)
    if ago < 120:
        age = f"{ago} s ago"
    elif ago < 7200:
        age = f"{ago // 60} min ago"
    else:
        age = f"{ago // 3600} h {ago % 3600 // 60} min ago"
    fmt = "%H:%M:%S UTC" if at.date() == now.date() else "%Y-%m-%d %H:%M:%S UTC"
    return f"{at.strftime(fmt)} ({age})"


@dataclass(frozen=True, slots=True)
class Known:
    """The monitor's view after its last cycle.

    `stores`/`stores_at`: the last store list PD answered believably, and when. `failing_since`:
    when PD stopped answering believably (None while it answers); `error` says why."""

    stores: tuple[StoreInfo, ...] = ()
    stores_at: datetime | None = None
    failing_since: datetime | None = None
    error: str | None = None
    cycle_at: datetime | None = None

    @property
    def pd_failing(self) -> bool:
        return self.failing_since is not None

    def unreachable_sentence(self, now: datetime) -> str:
        """`PD unreachable since 02:10:05 UTC (2 min ago): <why>.` (empty while PD answers)."""
        if self.failing_since is None:
            return ""
        why = f": {self.error.rstrip('.')}" if self.error else ""
        return f"PD unreachable since {clock_time(self.failing_since, now)}{why}."

    def as_of_sentence(self, now: datetime) -> str:
        """Where the stores shown come from, or that the monitor has none to show."""
        if self.stores_at is None:
            return "The monitor has not read PD's stores since the bot started."
        return (
            f"Stores as of {clock_time(self.stores_at, now)}, the monitor's last good read of PD."
        )


class ClusterKnowledge:
    """Updated by the monitor after each cycle; read by the read views. `clock` is the
    monitor's, so "… ago" is measured on the same time line as the records."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._known = Known()
        self._clock = clock

    def now(self) -> datetime:
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    @property
    def current(self) -> Known:
        return self._known

    def record(self, observation: Observation, at: datetime) -> None:
        """One cycle's observation, taken at `at`."""
        known = self._known
        if observation.pd_reachable:
            self._known = Known(stores=observation.stores, stores_at=at, cycle_at=at)
            return
        self._known = Known(
            stores=known.stores,
            stores_at=known.stores_at,
            failing_since=known.failing_since or at,
            error=observation.pd_error,
            cycle_at=at,
        )


__all__ = ["ClusterKnowledge", "Known", "clock_time"]
