"""Buttons and the rejection modal. Every click is acknowledged at once; then, unless it is a
redelivery of a click already handled (`bot.redelivery.once`), the decision is made by the
engine in the background (approval policy, compare-and-set on the version the button carried,
audit). The clicker is told the result ephemerally, in the thread of the clicked message; the
proposal message itself is edited by the notifier through the outbox.

- Approve: `engine.approve(expected_version=...)`. A stale version, a non-approver, a
  self-approval of a high-risk action or an already decided proposal is refused with the
  reason (and audited by the engine).
- Reject: opens a modal asking for a reason (the click's trigger is valid for 3 s, so the modal
  opens in the background right after the ack); on submit, `engine.reject(reason=...)`. If the
  modal cannot be opened, the proposal is rejected without a reason.
- Undo: `engine.propose_undo(...)`: the undo becomes a new proposal that needs approval.

Before any of these, the click is checked (`_checked_value`): a button value that is not ours
(`bot.callbacks.ButtonValue.decode`, bounded), or that names another proposal than the message
it sits on (`bot.handlers.origin`), is refused, told and audited; nothing reaches the engine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import callbacks, messages, payload
from bot.audit import audit_refusal
from bot.callbacks import BadButtonValue, ButtonValue
from bot.deps import BotDeps
from bot.handlers.origin import Clicked, clicked, mismatch
from bot.middleware import request_id
from bot.redelivery import once
from bot.render.fmt import who
from bot.render.kit import Rendered, rendered, section
from bot.render.views import refused_view
from bot.replies import tell
from engine.results import Decided, ProposalCreated, Refused

logger = logging.getLogger(__name__)


MAX_METADATA = 3000
"""Slack's limit on a view's `private_metadata`; anything longer is not ours."""


def _value(body: Mapping[str, Any]) -> str | None:
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], Mapping):
        value = actions[0].get("value")
        return value if isinstance(value, str) else None
    return None


async def _refuse_click(
    deps: BotDeps,
    body: Mapping[str, Any],
    kind: str,
    reason: str,
    where: Clicked,
    *,
    subject: str = "engine",
    detail: dict[str, Any] | None = None,
) -> None:
    """Tell the clicker why the button could not be used, and audit it."""
    text = messages.bad_button(reason)
    await audit_refusal(
        deps.audit,
        deps.clock,
        body,
        cluster=deps.cluster_of(body),
        action=f"slack.button.{kind}.refused",
        reason=text,
        subject=subject,
        detail={"value": str(_value(body))[:200], **(detail or {})},
    )
    await tell(
        deps.client,
        rendered(text, [section(text)]),
        user=payload.user_id(body),
        channel=where.channel,
        thread_ts=where.thread_ts,
    )


async def _checked_value(
    deps: BotDeps, body: Mapping[str, Any], kind: str, raw: str | None, where: Clicked
) -> ButtonValue | None:
    """The button value if it is ours and names the proposal of the clicked message; else the
    clicker is told why and the refusal is audited, and None."""
    try:
        value = ButtonValue.decode(raw)
    except BadButtonValue as exc:
        await _refuse_click(deps, body, kind, str(exc), where)
        return None
    wrong = await mismatch(deps.refs, body, value.proposal_id, kind, where)
    if wrong is not None:
        logger.warning(
            "refused a %s click naming %s on message %s in %s: %s",
            kind,
            value.proposal_id,
            where.message_ts,
            where.channel,
            wrong,
        )
        await _refuse_click(
            deps,
            body,
            kind,
            wrong,
            where,
            subject=value.proposal_id,
            detail={"rule": "message", "message_ts": where.message_ts},
        )
        return None
    return value


def _reply_for(
    outcome: Decided | Refused | ProposalCreated, deps: BotDeps, proposal_id: str
) -> Rendered:
    now = deps.clock.now()
    if isinstance(outcome, Refused):
        return refused_view(outcome, now)
    if isinstance(outcome, Decided):
        text = messages.decision_recorded(messages.decided(outcome, who, now))
        return rendered(text, [section(f":white_check_mark: {text}")])
    text = messages.undo_proposed(proposal_id, outcome.proposal.id, deps.channel_mention)
    return rendered(text, [section(f":leftwards_arrow_with_hook: {text}")])


async def decide(
    deps: BotDeps,
    body: Mapping[str, Any],
    kind: str,
    request: str | None,
    *,
    raw_value: str | None = None,
    reason: str = "",
    where: Clicked | None = None,
    checked: ButtonValue | None = None,
) -> None:
    """Run one decision (`approve`, `reject`, `undo`) for the clicking user and tell them.
    `checked`: the value, already checked by `_checked_value` (else it is checked here)."""
    user = payload.user_id(body)
    where = where or clicked(body)
    channel, thread = where.channel, where.thread_ts
    value = checked or await _checked_value(
        deps, body, kind, raw_value if raw_value is not None else _value(body), where
    )
    if value is None:
        return
    if user is None:
        logger.warning("a %s click without a user was ignored", kind)
        return
    refused = await deps.identities.refusal(user)
    if refused is not None:
        await audit_refusal(
            deps.audit,
            deps.clock,
            body,
            cluster=deps.cluster_of(body),
            action=f"proposal.{kind}.refused",
            reason=refused,
            subject=value.proposal_id,
            detail={"rule": "account"},
        )
        text = f"{refused}."
        await tell(
            deps.client,
            rendered(text, [section(f":no_entry: {text}")]),
            user=user,
            channel=channel,
            thread_ts=thread,
        )
        return
    try:
        actor = await deps.identities.resolve(user, payload.user_name(body))
        outcome: Decided | Refused | ProposalCreated
        if kind == "approve":
            outcome = await deps.engine.approve(
                value.proposal_id, actor, expected_version=value.version, request_id=request
            )
        elif kind == "reject":
            outcome = await deps.engine.reject(
                value.proposal_id,
                actor,
                reason=reason,
                expected_version=value.version,
                request_id=request,
            )
        else:
            outcome = await deps.engine.propose_undo(value.proposal_id, actor, request_id=request)
        answer = _reply_for(outcome, deps, value.proposal_id)
    except Exception:
        logger.exception("%s of %s by %s failed", kind, value.proposal_id, user)
        shown = f"{kind} {value.proposal_id}"
        answer = rendered(messages.internal_error(shown), [section(messages.internal_error(shown))])
    # A click in the App Home tab has no channel: the answer goes to the incidents channel,
    # seen only by the person who clicked, so a refusal still says why.
    to = channel or deps.config.channel
    await tell(deps.client, answer, user=user, channel=to, thread_ts=thread)


def reject_modal(value: str, where: Clicked) -> dict[str, Any]:
    """The modal asking for a rejection reason; `private_metadata` carries the button value
    and the clicked message (to check it again on submit, and to answer there)."""
    proposal_id = "the proposal"
    with contextlib.suppress(BadButtonValue):
        proposal_id = ButtonValue.decode(value).proposal_id
    metadata = json.dumps(
        {
            "value": value,
            "channel": where.channel,
            "ts": where.message_ts,
            "thread": where.thread_ts,
        }
    )
    return {
        "type": "modal",
        "callback_id": callbacks.REJECT_VIEW,
        "private_metadata": metadata[:3000],
        "title": {"type": "plain_text", "text": messages.reject_modal_title()},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": messages.reject_modal_prompt(proposal_id)},
            },
            {
                "type": "input",
                "block_id": callbacks.REJECT_REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": messages.reject_modal_label()},
                "element": {
                    "type": "plain_text_input",
                    "action_id": callbacks.REJECT_REASON_INPUT,
                    "multiline": True,
                    "max_length": 500,
                },
            },
        ],
    }


def modal_metadata(view: Mapping[str, Any]) -> tuple[str, Clicked] | None:
    """The button value and clicked message a rejection modal carries, or None when its
    `private_metadata` is not ours (bounded before it is parsed)."""
    raw = view.get("private_metadata")
    if not isinstance(raw, str) or not raw or len(raw) > MAX_METADATA:
        return None
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get("value"), str):
        return None

    def text(key: str) -> str | None:
        found = meta.get(key)
        return found if isinstance(found, str) and found else None

    return str(meta["value"]), Clicked(text("channel"), text("ts"), text("thread"))


def _submitted_reason(view: Mapping[str, Any]) -> str:
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    block = values.get(callbacks.REJECT_REASON_BLOCK) if isinstance(values, Mapping) else None
    entry = block.get(callbacks.REJECT_REASON_INPUT) if isinstance(block, Mapping) else None
    reason = entry.get("value") if isinstance(entry, Mapping) else None
    return reason.strip()[:500] if isinstance(reason, str) else ""


def register(app: AsyncApp, deps: BotDeps) -> None:
    """Register the button and modal listeners."""

    async def on_approve(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        deps.tasks.spawn(
            once(context, lambda: decide(deps, body, "approve", request_id(context))),
            "approve click",
        )

    async def on_undo(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        deps.tasks.spawn(
            once(context, lambda: decide(deps, body, "undo", request_id(context))), "undo click"
        )

    async def open_reject_modal(body: dict[str, Any], context: dict[str, Any]) -> None:
        where = clicked(body)
        raw = _value(body)
        value = await _checked_value(deps, body, "reject", raw, where)
        if value is None:
            return
        trigger = body.get("trigger_id")
        try:
            if not isinstance(trigger, str) or not trigger:
                raise ValueError("no trigger_id")
            await deps.client.views_open(trigger_id=trigger, view=reject_modal(raw or "", where))
        except (
            SlackApiError,
            SlackClientError,
            aiohttp.ClientError,
            TimeoutError,
            OSError,
            ValueError,
        ) as exc:
            logger.warning(
                "could not open the rejection modal (%s); rejecting without a reason", exc
            )
            await decide(deps, body, "reject", request_id(context), where=where, checked=value)

    async def on_reject(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        deps.tasks.spawn(once(context, lambda: open_reject_modal(body, context)), "reject click")

    async def on_reject_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: dict[str, Any]
    ) -> None:
        meta = modal_metadata(view)
        if meta is None:
            text = messages.bad_form()
            await ack(response_action="errors", errors={callbacks.REJECT_REASON_BLOCK: text})
            deps.tasks.spawn(
                once(
                    context,
                    lambda: audit_refusal(
                        deps.audit,
                        deps.clock,
                        body,
                        cluster=deps.cluster_of(body),
                        action="slack.button.reject.refused",
                        reason=text,
                        detail={"rule": "form"},
                    ),
                ),
                "audit a broken rejection form",
            )
            return
        await ack()
        raw, where = meta
        reason = _submitted_reason(view)
        deps.tasks.spawn(
            once(
                context,
                lambda: decide(
                    deps,
                    body,
                    "reject",
                    request_id(context),
                    raw_value=raw,
                    reason=reason,
                    where=where,
                ),
            ),
            "reject submit",
        )

    async def on_other(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        """Any other element (an old message, another version of the bot): ack so the user
        sees no error, and say what to do."""
        await ack()
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        action_id = str(first.get("action_id", "?") if isinstance(first, Mapping) else "?")[:80]
        logger.info("ignored a click on unknown element %s", action_id)
        where = clicked(body)
        channel, thread = where.channel, where.thread_ts
        text = messages.bad_button(f"tikvops does not know the element {action_id!r}")
        deps.tasks.spawn(
            once(
                context,
                lambda: tell(
                    deps.client,
                    rendered(text, [section(text)]),
                    user=payload.user_id(body),
                    channel=channel,
                    thread_ts=thread,
                ),
            ),
            "answer unknown click",
        )

    app.action(callbacks.APPROVE)(on_approve)
    app.action(callbacks.REJECT)(on_reject)
    app.action(callbacks.UNDO)(on_undo)
    app.view_submission(callbacks.REJECT_VIEW)(on_reject_submit)
    app.block_action(re.compile(r".*"))(on_other)  # last: only what nothing else matched


__all__ = ["decide", "modal_metadata", "register", "reject_modal"]
