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
from bot.middleware import request_id
from bot.redelivery import once
from bot.render.kit import Rendered, rendered, section
from bot.render.views import refused_view
from bot.replies import tell
from engine.results import Decided, ProposalCreated, Refused

logger = logging.getLogger(__name__)


def _where(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The channel and thread of the clicked message."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = payload.channel_id(body)
    thread = container.get("thread_ts") or message.get("thread_ts")
    return channel, str(thread) if thread else None


def _value(body: Mapping[str, Any]) -> str | None:
    actions = body.get("actions") or []
    if actions and isinstance(actions[0], Mapping):
        value = actions[0].get("value")
        return str(value) if value is not None else None
    return None


def _reply_for(
    outcome: Decided | Refused | ProposalCreated, deps: BotDeps, proposal_id: str
) -> Rendered:
    now = deps.clock.now()
    if isinstance(outcome, Refused):
        return refused_view(outcome, now)
    if isinstance(outcome, Decided):
        text = messages.decision_recorded(outcome.message)
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
    where: tuple[str | None, str | None] | None = None,
) -> None:
    """Run one decision (`approve`, `reject`, `undo`) for the clicking user and tell them."""
    user = payload.user_id(body)
    channel, thread = where or _where(body)
    try:
        value = ButtonValue.decode(raw_value if raw_value is not None else _value(body))
    except BadButtonValue as exc:
        text = messages.bad_button(str(exc))
        await audit_refusal(
            deps.audit,
            deps.clock,
            body,
            action=f"slack.button.{kind}.refused",
            reason=text,
            detail={"value": str(_value(body))[:200]},
        )
        await tell(
            deps.client,
            rendered(text, [section(text)]),
            user=user,
            channel=channel,
            thread_ts=thread,
        )
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
    await tell(deps.client, answer, user=user, channel=channel, thread_ts=thread)


def reject_modal(value: str, channel: str | None, thread: str | None) -> dict[str, Any]:
    """The modal asking for a rejection reason; `private_metadata` carries the button value
    and where to answer."""
    proposal_id = "the proposal"
    with contextlib.suppress(BadButtonValue):
        proposal_id = ButtonValue.decode(value).proposal_id
    metadata = json.dumps({"value": value, "channel": channel, "thread": thread})
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


def _submitted_reason(view: Mapping[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(
        callbacks.REJECT_REASON_BLOCK
    ) or {}
    entry = values.get(callbacks.REJECT_REASON_INPUT) or {}
    return str(entry.get("value") or "").strip()


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
        value = _value(body) or ""
        channel, thread = _where(body)
        trigger = body.get("trigger_id")
        try:
            if not trigger:
                raise ValueError("no trigger_id")
            await deps.client.views_open(
                trigger_id=str(trigger), view=reject_modal(value, channel, thread)
            )
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
            await decide(deps, body, "reject", request_id(context))

    async def on_reject(ack: AsyncAck, body: dict[str, Any], context: dict[str, Any]) -> None:
        await ack()
        deps.tasks.spawn(once(context, lambda: open_reject_modal(body, context)), "reject click")

    async def on_reject_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: dict[str, Any]
    ) -> None:
        await ack()
        try:
            meta = json.loads(str(view.get("private_metadata") or "{}"))
        except ValueError:
            meta = {}
        raw = str(meta.get("value") or "")
        where = (meta.get("channel"), meta.get("thread"))
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
        action_id = str(((body.get("actions") or [{}])[0]).get("action_id", "?"))
        logger.info("ignored a click on unknown element %s", action_id)
        channel, thread = _where(body)
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


__all__ = ["decide", "register", "reject_modal"]
