"""Formatting shared by the renderers: people, times, durations, severities, risks, numbers and
values with units. Every function takes `now` explicitly when it needs it. Pure.

Times are Slack date tokens (`<!date^EPOCH^{date_short_pretty} {time}|14:03 UTC>`): each
reader's Slack client shows them in that reader's own timezone ("Today 4:03 PM"), and the
fallback after `|` (UTC, as `engine.clock.format_time` writes it) is what clients that cannot
format dates, notifications and plain-text exports show. Tokens work in mrkdwn only: never put
`at()` in a `plain_text` object (headers, buttons); use `at_plain()` there."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from bot.render.kit import esc, mention
from engine.clock import format_duration, format_time, utc
from engine.model import (
    Diagnosis,
    DiagnosisSource,
    Identity,
    IdentityKind,
    ProposalState,
    RiskLevel,
    Severity,
)

SEVERITY_ICON = {
    Severity.CRITICAL: ":red_circle:",
    Severity.WARNING: ":large_orange_circle:",
    Severity.INFO: ":large_blue_circle:",
}
RESOLVED_ICON = ":large_green_circle:"

RISK_ICON = {
    RiskLevel.HIGH: ":red_circle:",
    RiskLevel.MEDIUM: ":large_orange_circle:",
    RiskLevel.LOW: ":large_green_circle:",
}

STATE_ICON = {
    ProposalState.PROPOSED: ":hourglass_flowing_sand:",
    ProposalState.APPROVED: ":white_check_mark:",
    ProposalState.EXECUTING: ":gear:",
    ProposalState.SUCCEEDED: ":white_check_mark:",
    ProposalState.FAILED: ":x:",
    ProposalState.UNVERIFIED: ":warning:",
    ProposalState.REJECTED: ":no_entry:",
    ProposalState.EXPIRED: ":hourglass:",
    ProposalState.CANCELLED: ":heavy_minus_sign:",
}


def cluster_prefix(cluster: str, named: bool) -> str:
    """`[prod] ` before a title when the bot watches several clusters (`named`); nothing with
    one cluster, whatever it is called."""
    return f"[{cluster}] " if named else ""  # names are [a-z0-9_-]: plain-text safe


def cluster_field(cluster: str, named: bool) -> list[tuple[str, str]]:
    """The `Cluster` field of a card, when the bot watches several clusters (`named`)."""
    return [("Cluster", esc(cluster))] if named else []


def who(identity: Identity | None) -> str:
    """A person or agent in mrkdwn: a Slack mention, or the escaped name."""
    if identity is None:
        return "tikvops"
    if identity.kind is IdentityKind.SLACK_USER:
        return mention(identity.id)
    return esc(identity.name)


def approver(entry: str) -> str:
    """An approver entry as Slack shows it: a user mention (U…/W…), a user-group mention (S…),
    or "anyone" for `*`."""
    if entry == "*":
        return "anyone"
    if entry.startswith("S"):
        return f"<!subteam^{esc(entry)}>"
    return mention(entry)


def origin_text(identity: Identity) -> str:
    """Who proposed: "Claude (claude-sonnet-4-5)", "playbook store-down", or a mention."""
    if identity.kind is IdentityKind.CLAUDE:
        return f"Claude ({esc(identity.id)})"
    if identity.kind is IdentityKind.PLAYBOOK:
        return f"playbook {esc(identity.id)}"
    return who(identity)


def origin_text_for_diagnosis(diagnosis: Diagnosis) -> str:
    """Who diagnosed: "Claude (claude-sonnet-4-5)" or "a playbook"."""
    if diagnosis.source is DiagnosisSource.CLAUDE:
        return f"Claude ({esc(diagnosis.model)})" if diagnosis.model else "Claude"
    return f"playbook {esc(diagnosis.model)}" if diagnosis.model else "a playbook"


DATE_FORMAT = "{date_short_pretty} {time}"
"""How Slack shows a time token: "Today 4:03 PM", "Yesterday 9:12 AM", "Feb 18 10:00 AM" in
the reader's timezone and clock format."""


def date_token(value: datetime, fallback: str, fmt: str = DATE_FORMAT) -> str:
    """`<!date^EPOCH^FORMAT|fallback>`: a time Slack renders in each reader's timezone."""
    epoch = int(utc(value).timestamp())
    safe = fallback.replace("|", "/").replace(">", "").replace("<", "")
    return f"<!date^{epoch}^{fmt}|{safe}>"


def at(value: datetime, now: datetime) -> str:
    """A time in the reader's timezone; falls back to `14:03 UTC` (with the date when not
    today)."""
    return date_token(value, format_time(value, now))


def at_plain(value: datetime, now: datetime) -> str:
    """`14:03 UTC` (with the date when not today), for `plain_text` where tokens do not work."""
    return format_time(value, now)


def ago(value: datetime, now: datetime) -> str:
    """`14:03 UTC (12 min ago)`."""
    delta = utc(now) - utc(value)
    if delta < timedelta(0):
        return at(value, now)
    return f"{at(value, now)} ({format_duration(delta)} ago)"


def until(value: datetime, now: datetime) -> str:
    """`14:30 UTC (in 27 min)` or `14:30 UTC (passed)`."""
    delta = utc(value) - utc(now)
    if delta <= timedelta(0):
        return f"{at(value, now)} (passed)"
    return f"{at(value, now)} (in {format_duration(delta)})"


def duration(start: datetime, end: datetime) -> str:
    """`0.6 s`, `42 s`, `12 min`, `2 h 5 min`."""
    delta = max(utc(end) - utc(start), timedelta(0))
    if delta < timedelta(seconds=10):
        return f"{delta.total_seconds():.1f} s"
    return format_duration(delta)


def count(n: int, noun: str) -> str:
    """`1 store`, `3 stores`, `1,203 leaders`."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def severity(sev: Severity) -> str:
    return f"{SEVERITY_ICON[sev]} {sev.value.upper()}"


def risk(level: RiskLevel) -> str:
    return f"{RISK_ICON[level]} {level.value}"


def number(value: float) -> str:
    """1203 → `1,203`; 0.5 → `0.5`; non-finite values as words."""
    if math.isnan(value):
        return "unknown"
    if math.isinf(value):
        return "infinite" if value > 0 else "-infinite"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def with_unit(value: float | None, unit: str) -> str:
    """A measured value with its unit: seconds as a duration, ratios as percent."""
    if value is None:
        return "unknown"
    if math.isnan(value) or math.isinf(value):
        return number(value)
    if unit == "s":
        return format_duration(timedelta(seconds=max(value, 0.0)))
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:,.0f} ms"
    if unit:
        shown = unit[:-1] if value == 1 and unit.endswith("s") and len(unit) > 2 else unit
        return f"{number(value)} {esc(shown)}"
    return number(value)


__all__ = [
    "DATE_FORMAT",
    "RESOLVED_ICON",
    "RISK_ICON",
    "SEVERITY_ICON",
    "STATE_ICON",
    "ago",
    "at",
    "at_plain",
    "count",
    "date_token",
    "duration",
    "number",
    "origin_text",
    "origin_text_for_diagnosis",
    "risk",
    "severity",
    "until",
    "who",
    "with_unit",
]
