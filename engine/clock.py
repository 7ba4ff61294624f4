"""Time for the engine: the system clock, a controllable fake for tests, and the one way
timestamps are shown in user-facing sentences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; naive datetimes are refused (their zone is unknown)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()} has no time zone; use UTC")
    return value.astimezone(UTC)


def format_time(value: datetime, now: datetime | None = None) -> str:
    """`14:03 UTC`, or `2024-05-01 14:03 UTC` when `value` is not on the same UTC day as `now`."""
    value = utc(value)
    if now is not None and utc(now).date() == value.date():
        return value.strftime("%H:%M UTC")
    return value.strftime("%Y-%m-%d %H:%M UTC")


def format_duration(delta: timedelta) -> str:
    """A short human duration: `45 s`, `30 min`, `2 h 5 min`."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class SystemClock:
    """The real clock (aware UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to; starts at `start` (default 2024-01-01 12:00 UTC)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start) if start is not None else datetime(2024, 1, 1, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta | float) -> datetime:
        """Move forward by a timedelta or a number of seconds; returns the new time."""
        step = by if isinstance(by, timedelta) else timedelta(seconds=by)
        if step < timedelta(0):
            raise ValueError("a clock does not go backwards")
        self._now += step
        return self._now

    def set(self, value: datetime) -> None:
        self._now = utc(value)


__all__ = ["FakeClock", "SystemClock", "format_duration", "format_time", "utc"]
