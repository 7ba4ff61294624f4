"""Who attends to an incident, in Slack: the owner and silence lines and the buttons of the
incident card ("I'm on it", "Silence 1 h" with a menu of 1 h / 4 h / 24 h, "Unsilence"), the
thread line when someone acknowledges, silences or unsilences it or a silence ends, and the
ephemeral answer to `/tikv ack|silence|unsilence` or a click. Pure: records and `now` in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from slack_sdk.models.blocks import ActionsBlock, Option, StaticSelectElement

from bot import callbacks
from bot.render import fmt
from bot.render.kit import Rendered, button, esc, plain, rendered, section
from engine.attending import SILENCE_CHOICES, quiet
from engine.clock import format_duration, utc
from engine.model import AuditEvent, Incident, Severity
from engine.results import Attended, AttentionChange

SILENCE_ICON = ":no_bell:"
OWNER_ICON = ":bust_in_silhouette:"


def _hours(length: timedelta) -> str:
    """`1 h`, `4 h`, `24 h`."""
    return format_duration(length)


def attention_lines(incident: Incident, now: datetime) -> list[str]:
    """The card's lines: who owns the incident and since when; the silence, until when, by
    whom and why (only while it holds)."""
    lines: list[str] = []
    attention = incident.attention
    if attention.owner is not None and attention.owned_since is not None:
        lines.append(
            f"{OWNER_ICON} *Owner:* {fmt.who(attention.owner)} since "
            f"{fmt.ago(attention.owned_since, now)}"
        )
    if attention.silenced_until is not None and attention.silenced(utc(now)):
        why = f": {esc(attention.silence_reason)}" if attention.silence_reason else ""
        held = quiet(incident, now)
        floor = attention.silenced_severity or incident.severity
        tail = (
            "Nothing new is posted in the thread until then"
            + ("." if floor is Severity.CRITICAL else ", unless it gets worse.")
            if held
            else "It got worse since, so updates are posted again."
        )
        lines.append(
            f"{SILENCE_ICON} *Silenced* until {fmt.until(attention.silenced_until, now)} by "
            f"{fmt.who(attention.silenced_by)}{why}. {tail}"
        )
    return lines


def attention_suffix(incident: Incident, now: datetime) -> str:
    """For one-line lists: " · owner @bob · silenced until 16:00 UTC (in 2 h)", or ""."""
    attention = incident.attention
    parts = []
    if attention.owner is not None:
        parts.append(f"owner {fmt.who(attention.owner)}")
    if attention.silenced_until is not None and attention.silenced(utc(now)):
        parts.append(f"silenced until {fmt.until(attention.silenced_until, now)}")
    return "".join(f" · {part}" for part in parts)


def attention_buttons(incident: Incident, now: datetime) -> ActionsBlock:
    """The card's buttons: "I'm on it", and "Silence 1 h" with a menu, or "Unsilence"."""
    ident = incident.id
    elements: list[object] = [
        button(
            "I'm on it",
            action_id=callbacks.ACK,
            value=callbacks.IncidentValue(ident).encode(),
            style="primary" if incident.attention.owner is None else None,
        )
    ]
    if incident.attention.silenced(utc(now)):
        elements.append(
            button(
                "Unsilence",
                action_id=callbacks.UNSILENCE,
                value=callbacks.IncidentValue(ident).encode(),
            )
        )
    else:
        first = SILENCE_CHOICES[0]
        elements.append(
            button(
                f"Silence {_hours(first)}",
                action_id=callbacks.SILENCE,
                value=callbacks.IncidentValue(ident, int(first.total_seconds())).encode(),
            )
        )
        elements.append(
            StaticSelectElement(
                placeholder=plain("Silence for…", 150),
                action_id=callbacks.SILENCE_FOR,
                options=[
                    Option(
                        text=plain(f"Silence {_hours(length)}", 75),
                        value=callbacks.IncidentValue(ident, int(length.total_seconds())).encode(),
                    )
                    for length in SILENCE_CHOICES
                ],
            )
        )
    return ActionsBlock(
        block_id=callbacks.attend_block_id(ident, incident.version),
        elements=elements,  # type: ignore[arg-type]
    )


def attention_reply(incident: Incident, event: AuditEvent, now: datetime) -> Rendered:
    """The thread line when someone took the incident, silenced it, ended its silence, or the
    silence ended by itself (ran out, or the incident got worse)."""
    attention = incident.attention
    action = event.action
    by = fmt.who(event.actor)
    if action == "incident.acknowledge":
        taken = event.detail.get("taken_from")
        text = f"{OWNER_ICON} {by} is on it"
        if isinstance(taken, str) and taken:
            text += f" (taken over from {_who_key(taken)})"
        text += "; reminders about its proposals stop."
        plain_text = f"{incident.id}: taken by {fmt.who(event.actor)}"
    elif action == "incident.silence":
        until = attention.silenced_until or now
        why = f" Reason: {esc(event.reason)}." if event.reason else ""
        floor = attention.silenced_severity or incident.severity
        worse = "" if floor is Severity.CRITICAL else f", unless it gets worse than {floor.value}"
        text = (
            f"{SILENCE_ICON} {by} silenced {esc(incident.id)} until {fmt.until(until, now)}: "
            f"updates are not posted here until then{worse}.{why}"
        )
        plain_text = f"{incident.id}: silenced until {fmt.at_plain(until, now)}"
    elif action == "incident.unsilence":
        text = f":bell: {by} ended the silence of {esc(incident.id)}; updates are posted again."
        plain_text = f"{incident.id}: silence ended"
    elif action == "incident.silence.worsened":
        before = event.detail.get("from") or "its silenced severity"
        text = (
            f":bell: The silence of {esc(incident.id)} ended: it got worse "
            f"({esc(before)} → {incident.severity.value}); updates are posted again."
        )
        plain_text = f"{incident.id}: silence ended, it got worse"
    else:
        text = (
            f":bell: The silence of {esc(incident.id)} ran out; updates are posted again. "
            "Silence it again from the card if it is still expected."
        )
        plain_text = f"{incident.id}: silence ran out"
    return rendered(plain_text, [section(text)])


def _who_key(key: str) -> str:
    kind, _, ident = key.partition(":")
    return f"<@{ident}>" if kind == "slack" and ident else esc(ident or key)


def attended_view(outcome: Attended, now: datetime) -> Rendered:
    """The ephemeral answer to whoever acknowledged, silenced or unsilenced."""
    ident = esc(outcome.incident.id)
    title = esc(outcome.incident.title)
    change = outcome.change
    if change is AttentionChange.ALREADY_OWNER:
        text = (
            f":information_source: You already own {ident} ({title}) since "
            f"{fmt.at(outcome.incident.attention.owned_since or now, now)}; nothing changed."
        )
    elif change is AttentionChange.ACKNOWLEDGED:
        text = (
            f":white_check_mark: You own {ident} ({title}) now; the card shows it and "
            "reminders about its proposals stop."
        )
    elif change is AttentionChange.TAKEN_OVER:
        text = (
            f":white_check_mark: You took {ident} ({title}) over from "
            f"{fmt.who(outcome.previous_owner)}; the card shows you as its owner now."
        )
    elif change is AttentionChange.SILENCED:
        until = outcome.until or now
        replaced = (
            f" (it replaces the silence that ran until {fmt.at(outcome.previous_until, now)})"
            if outcome.previous_until
            else ""
        )
        text = (
            f"{SILENCE_ICON} {ident} is silenced until {fmt.until(until, now)}{replaced}. It is "
            f"still tracked; a higher severity ends the silence. `/tikv unsilence "
            f"{outcome.incident.id}` ends it now."
        )
    elif change is AttentionChange.UNSILENCED:
        text = f":bell: The silence of {ident} is over; updates are posted in its thread again."
    else:
        text = (
            f":information_source: {ident} is not silenced, so nothing changed. "
            f"`/tikv silence {outcome.incident.id} 1h` silences it."
        )
    return rendered(text, [section(text)])


__all__ = [
    "OWNER_ICON",
    "SILENCE_ICON",
    "attended_view",
    "attention_buttons",
    "attention_lines",
    "attention_reply",
    "attention_suffix",
]
