"""Slack's date tokens (`<!date^EPOCH^FORMAT^LINK|fallback>`) as a Slack client shows them to
one reader: the format's placeholders filled in the reader's timezone. Pure (`now` is passed,
or the current time is used).

Placeholders: `{date_num}` 2014-02-18, `{date}` February 18th, 2014, `{date_short}` Feb 18,
2014, `{date_long}` Tuesday, February 18th, 2014, `{date_pretty}`, `{date_short_pretty}`,
`{date_long_pretty}` (the same, or Today / Yesterday / Tomorrow), `{time}` 6:39 AM,
`{time_secs}` 6:39:42 AM, `{ago}` 3 minutes ago. A token that cannot be read shows its fallback,
as Slack does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class DateToken:
    epoch: int
    fmt: str
    link: str | None
    fallback: str


def parse_token(inner: str) -> DateToken | None:
    """`!date^1392734382^{date} at {time}^https://…|fallback` (without the angle brackets)."""
    body, _, fallback = inner.partition("|")
    parts = body.split("^")
    if len(parts) < 3 or parts[0] != "!date" or not parts[1].lstrip("-").isdigit():
        return None
    link = parts[3] if len(parts) > 3 and parts[3] else None
    return DateToken(epoch=int(parts[1]), fmt=parts[2], link=link, fallback=fallback)


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _clock(value: datetime, secs: bool) -> str:
    hour = value.hour % 12 or 12
    tail = f":{value.second:02d}" if secs else ""
    return f"{hour}:{value.minute:02d}{tail} {'AM' if value.hour < 12 else 'PM'}"


def _ago(seconds: float) -> str:
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            n = int(seconds // size)
            words = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {words}" if future else f"{words} ago"
    return "in a few seconds" if future else "a few seconds ago"


def render(token: DateToken, tz: str, now: float | None = None) -> str:
    """The token's text for a reader in `tz` (plain text, not escaped)."""
    zone = _zone(tz)
    current = time.time() if now is None else now
    value = datetime.fromtimestamp(token.epoch, UTC).astimezone(zone)
    today = datetime.fromtimestamp(current, UTC).astimezone(zone).date()
    relative = {
        today: "Today",
        today - timedelta(days=1): "Yesterday",
        today + timedelta(days=1): "Tomorrow",
    }.get(value.date())
    day = _ordinal(value.day)
    full = {
        "date_num": value.strftime("%Y-%m-%d"),
        "date": f"{value:%B} {day}, {value.year}",
        "date_short": f"{value:%b} {value.day}, {value.year}",
        "date_long": f"{value:%A}, {value:%B} {day}, {value.year}",
        "time": _clock(value, secs=False),
        "time_secs": _clock(value, secs=True),
        "ago": _ago(current - token.epoch),
    }
    for name in ("date", "date_short", "date_long"):
        full[f"{name}_pretty"] = relative or full[name]

    def fill(match: re.Match[str]) -> str:
        return full.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(fill, token.fmt)


__all__ = ["DateToken", "parse_token", "render"]
