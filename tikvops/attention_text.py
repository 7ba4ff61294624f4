"""Who attends to an incident, in terminal words: the answer to `tikvops ack|silence|unsilence`,
the owner/silence suffix of `tikvops incidents` lines, and the line `tikvops monitor` prints when
someone acknowledges, silences or unsilences an incident or a silence ends. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from engine.clock import format_duration, format_time
from engine.model import AuditEvent, Identity, Incident
from engine.results import Attended, AttentionChange


def _name(identity: Identity | None) -> str:
    if identity is None:
        return "tikvops"
    return identity.display_name or identity.key


def attention_suffix(incident: Incident, now: datetime | None = None) -> str:
    """`  [owner bob since 14:03 UTC; silenced until 16:03 UTC by alice: reason]`, or ""."""
    now = now or datetime.now(UTC)
    attention = incident.attention
    parts: list[str] = []
    if attention.owner is not None and attention.owned_since is not None:
        parts.append(
            f"owner {_name(attention.owner)} since {format_time(attention.owned_since, now)}"
        )
    if attention.silenced_until is not None and attention.silenced(now):
        reason = f": {attention.silence_reason}" if attention.silence_reason else ""
        parts.append(
            f"silenced until {format_time(attention.silenced_until, now)} by "
            f"{_name(attention.silenced_by)}{reason}"
        )
    return f"  [{'; '.join(parts)}]" if parts else ""


def attended_text(outcome: Attended, now: datetime | None = None) -> str:
    """The answer to an acknowledge, silence or unsilence at the terminal."""
    now = now or datetime.now(UTC)
    ident = outcome.incident.id
    change = outcome.change
    if change is AttentionChange.ALREADY_OWNER:
        return f"You already own {ident}; nothing changed."
    if change is AttentionChange.ACKNOWLEDGED:
        return f"You own {ident} now; reminders about its proposals stop."
    if change is AttentionChange.TAKEN_OVER:
        return f"You took {ident} over from {_name(outcome.previous_owner)}."
    if change is AttentionChange.SILENCED:
        until = outcome.until or now
        since = outcome.incident.attention.silenced_at or now
        return (
            f"{ident} is silenced until {format_time(until, now)} (for "
            f"{format_duration(until - since)}); it is still tracked, and a higher severity ends "
            f"the silence. `tikvops unsilence {ident}` ends it now."
        )
    if change is AttentionChange.UNSILENCED:
        return f"The silence of {ident} is over; its updates are told again."
    return f"{ident} is not silenced; nothing changed. `tikvops silence {ident} 1h` silences it."


def attention_event_text(incident: Incident, event: AuditEvent) -> str:
    """One line for `tikvops monitor` about an attention change."""
    who = _name(event.actor)
    action = event.action
    if action == "incident.acknowledge":
        taken = event.detail.get("taken_from")
        return f"{who} is on it" + (f" (taken over from {taken})" if taken else "") + "."
    if action == "incident.silence":
        until = incident.attention.silenced_until
        shown = format_time(until, event.at) if until else "?"
        why = f": {event.reason}" if event.reason else ""
        return f"silenced by {who} until {shown}{why}."
    if action == "incident.unsilence":
        return f"{who} ended the silence."
    if action == "incident.silence.worsened":
        return f"the silence ended: it got worse (now {incident.severity.value})."
    return "the silence ran out."


__all__ = ["attended_text", "attention_event_text", "attention_suffix"]
