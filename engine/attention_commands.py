"""The attention commands of the grammar (`engine.commands`): `ack I-3`, `silence I-3 2h
[reason...]`, `unsilence I-3`, with their incident IDs and silence durations. Pure; words that
do not fit raise `WordError` with the sentence to show (the grammar adds the usage line)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

_INCIDENT = re.compile(r"^(?:i-?|#)?([0-9]{1,18})$", re.IGNORECASE)
_DURATION = re.compile(r"^([0-9]{1,6})\s*(m|min|mins|h|hr|hrs|d|day|days)$", re.IGNORECASE)
_UNITS = {"m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600}
MAX_SILENCE_SECONDS = 7 * 24 * 3600
MIN_SILENCE_SECONDS = 60


ATTENTION_SPECS = (
    ("ack", "<incident-id>", "take an incident: you own it, reminders stop"),
    (
        "silence",
        "<incident-id> <duration> [reason...]",
        "post nothing new about an incident for 30m, 2h, 1d... (at most 7d)",
    ),
    ("unsilence", "<incident-id>", "end an incident's silence now"),
)
"""(name, arguments, summary) of each attention command, for the grammar's help."""


class WordError(ValueError):
    """Words that do not make an attention command; the message says what is expected."""


class AttentionCommand(BaseModel):
    """`ack <incident>`, `silence <incident> <duration> [reason...]`, `unsilence <incident>`;
    `seconds` is the silence's length."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["attention"] = "attention"
    verb: Literal["ack", "silence", "unsilence"]
    incident_id: str
    seconds: int | None = None
    reason: str | None = None


def parse_attention(name: str, args: list[str]) -> AttentionCommand:
    """`name` is ack, silence or unsilence; `args` the words after it."""
    if not args:
        raise WordError("missing incident ID")
    if name == "silence":
        if len(args) < 2:
            raise WordError("missing silence duration (like 30m, 2h or 1d)")
        seconds = int(duration(args[1]).total_seconds())
        reason = " ".join(args[2:]).strip() or None
        return AttentionCommand(
            verb="silence", incident_id=incident_id(args[0]), seconds=seconds, reason=reason
        )
    if len(args) > 1:
        raise WordError(f"too many arguments: '{_clip(' '.join(args[1:]))}'")
    verb: Literal["ack", "unsilence"] = "ack" if name == "ack" else "unsilence"
    return AttentionCommand(verb=verb, incident_id=incident_id(args[0]))


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def incident_id(word: str) -> str:
    """`I-3`, `i-3`, `I3`, `#3` and `3` all mean incident I-3."""
    match = _INCIDENT.match(word.strip())
    if not match:
        raise WordError(f"incident ID looks like I-3, got '{_clip(word)}'")
    return f"I-{int(match.group(1))}"


def duration(word: str) -> timedelta:
    """`30m`, `2h`, `1d` (minutes, hours, days): from 1 minute to 7 days."""
    match = _DURATION.match(word.strip())
    if not match:
        raise WordError(
            f"the silence duration must be a number with m, h or d (like 30m, 2h or 1d), "
            f"got '{_clip(word)}'"
        )
    unit = match.group(2).lower()
    seconds = int(match.group(1)) * _UNITS.get(unit, 86400)
    if seconds < MIN_SILENCE_SECONDS:
        raise WordError(f"a silence lasts at least 1 minute, got '{_clip(word)}'")
    if seconds > MAX_SILENCE_SECONDS:
        raise WordError(
            f"a silence lasts at most 7 days (7d), got '{_clip(word)}'; an incident that "
            "needs longer should be fixed or its threshold changed"
        )
    return timedelta(seconds=seconds)


__all__ = [
    "ATTENTION_SPECS",
    "MAX_SILENCE_SECONDS",
    "MIN_SILENCE_SECONDS",
    "AttentionCommand",
    "WordError",
    "duration",
    "incident_id",
    "parse_attention",
]
