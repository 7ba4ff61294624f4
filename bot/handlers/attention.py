"""The incident card's buttons: "I'm on it" (acknowledge), "Silence 1 h", the silence menu
(1 h / 4 h / 24 h) and "Unsilence". Every click is acknowledged at once; then, unless it is a
redelivery (`bot.redelivery.once`), it is checked (a value that is not ours, or that names
another incident than the card it sits on, is refused, told and audited: `bot.handlers.origin`)
and handed to the engine (`engine.attending`: policy, compare-and-set, audit, event). The
clicker is told the result ephemerally; the card is edited and the thread line posted by the
notifier through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from bot import callbacks, messages, payload
from bot.audit import audit_refusal
from bot.callbacks import BadButtonValue, IncidentValue
from bot.deps import BotDeps
from bot.handlers.origin import Clicked, clicked, incident_mismatch
from bot.middleware import request_id
from bot.redelivery import once
from bot.render.attention import attended_view
from bot.render.kit import Rendered, rendered, section
from bot.render.views import refused_view
from bot.replies import tell
from engine.attention_commands import AttentionCommand
from engine.results import Attended, Refused

logger = logging.getLogger(__name__)

Verb = Literal["ack", "silence", "unsilence"]
_VERBS: Mapping[str, Verb] = {
    callbacks.ACK: "ack",
    callbacks.SILENCE: "silence",
    callbacks.SILENCE_FOR: "silence",
    callbacks.UNSILENCE: "unsilence",
}


def _raw_value(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(action_id, value) of the click: a button's value, or a menu's chosen option's."""
    actions = body.get("actions")
    first = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(first, Mapping):
        return None, None
    action_id = first.get("action_id")
    value = first.get("value")
    option = first.get("selected_option")
    if value is None and isinstance(option, Mapping):
        value = option.get("value")
    return (
        action_id if isinstance(action_id, str) else None,
        value if isinstance(value, str) else None,
    )


async def _say(deps: BotDeps, body: Mapping[str, Any], where: Clicked, answer: Rendered) -> None:
    await tell(
        deps.client,
        answer,
        user=payload.user_id(body),
        channel=where.channel,
        thread_ts=where.thread_ts,
    )


async def _refuse(
    deps: BotDeps,
    body: Mapping[str, Any],
    verb: str,
    reason: str,
    where: Clicked,
    *,
    subject: str = "engine",
    rule: str,
) -> None:
    text = messages.bad_incident_button(reason)
    await audit_refusal(
        deps.audit,
        deps.clock,
        body,
        cluster=deps.cluster_of(body),
        action=f"slack.button.{verb}.refused",
        reason=text,
        subject=subject,
        detail={"value": str(_raw_value(body)[1])[:200], "rule": rule},
    )
    await _say(deps, body, where, rendered(text, [section(text)]))


async def attend(deps: BotDeps, body: Mapping[str, Any], request: str | None) -> None:
    """Check one click on an incident card and hand it to the engine; tell the clicker."""
    where = clicked(body)
    action_id, raw = _raw_value(body)
    verb = _VERBS.get(action_id or "", "ack")
    try:
        value = IncidentValue.decode(raw)
        if verb == "silence" and value.seconds is None:
            raise BadButtonValue("the button value has no silence length")
    except BadButtonValue as exc:
        await _refuse(deps, body, verb, str(exc), where, rule="value")
        return
    wrong = await incident_mismatch(deps.refs, body, value.incident_id, where)
    if wrong is not None:
        logger.warning("refused a %s click naming %s: %s", verb, value.incident_id, wrong)
        await _refuse(deps, body, verb, wrong, where, subject=value.incident_id, rule="message")
        return
    user = payload.user_id(body)
    if user is None:
        logger.warning("a %s click without a user was ignored", verb)
        return
    refused = await deps.identities.refusal(user)
    if refused is not None:
        await audit_refusal(
            deps.audit,
            deps.clock,
            body,
            cluster=deps.cluster_of(body),
            action=f"incident.{verb}.refused",
            reason=refused,
            subject=value.incident_id,
            detail={"rule": "account"},
        )
        text = f"{refused}."
        await _say(deps, body, where, rendered(text, [section(f":no_entry: {text}")]))
        return
    try:
        actor = await deps.identities.resolve(user, payload.user_name(body))
        command = AttentionCommand(
            verb=verb,
            incident_id=value.incident_id,
            seconds=value.seconds if verb == "silence" else None,
        )
        outcome = await deps.engine.handle(command, actor, request_id=request)
        now = deps.clock.now()
        if isinstance(outcome, Attended):
            answer = attended_view(outcome, now)
        elif isinstance(outcome, Refused):
            answer = refused_view(outcome, now)
        else:  # pragma: no cover - the engine answers attention commands with these two
            raise TypeError(f"unexpected outcome {type(outcome).__name__}")
    except Exception:
        logger.exception("%s of %s by %s failed", verb, value.incident_id, user)
        shown = f"{verb} {value.incident_id}"
        answer = rendered(messages.internal_error(shown), [section(messages.internal_error(shown))])
    await _say(deps, body, where, answer)


def register(app: AsyncApp, deps: BotDeps) -> None:
    """Register the incident card's listeners (before `bot.handlers.actions`' catch-all)."""

    async def on_click(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        deps.tasks.spawn(
            once(context, lambda: attend(deps, body, request_id(context))),
            "incident card click",
        )

    for action_id in callbacks.INCIDENT_ACTIONS:
        app.action(action_id)(on_click)


__all__ = ["attend", "register"]
