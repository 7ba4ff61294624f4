"""`/tikv`: acknowledged at once, then (unless it is a redelivery of a request already handled,
`bot.redelivery.once`) parsed with the shared grammar and handed to the engine in the
background. Read-only commands and every error or refusal are answered ephemerally;
mutating commands create a proposal through the engine (which posts it to the incidents channel
with its buttons) and never execute directly. Commands from channels that are not configured
are refused, told, and audited.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot import messages, payload
from bot.audit import audit_refusal
from bot.client import respond_via
from bot.deps import BotDeps
from bot.middleware import request_id
from bot.redelivery import once
from bot.render.kit import rendered, section
from bot.render.views import outcome_view
from bot.replies import tell
from engine.commands import ActionCommand, DecisionCommand, KillSwitchCommand, parse_command
from engine.results import KillSwitchOutcome, Outcome, RefusalKind, Refused

logger = logging.getLogger(__name__)


def changes_something(parsed: object) -> bool:
    """Whether a parsed command asks for a change (a proposal, a decision, the kill switch),
    as opposed to a read, help, a dry run or a parse error."""
    if isinstance(parsed, ActionCommand):
        return not parsed.dry_run
    if isinstance(parsed, KillSwitchCommand):
        return parsed.mode != "status"
    return isinstance(parsed, DecisionCommand)


def channel_allowed(
    config_channels: tuple[str, ...], channel_id: str | None, name: str | None
) -> bool:
    """Whether `/tikv` is accepted in this channel (by ID or name; empty list: anywhere)."""
    if not config_channels:
        return True
    wanted = {c.lstrip("#") for c in config_channels}
    return bool({channel_id, name} & wanted)


def _allowed_text(config_channels: tuple[str, ...]) -> str:
    shown = [
        f"<#{c}>" if c[:1] in ("C", "G") and c.isupper() else f"#{c.lstrip('#')}"
        for c in config_channels
    ]
    return ", ".join(shown)


def register(app: AsyncApp, deps: BotDeps) -> None:
    """Register the slash command listener."""

    async def on_command(
        ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, context: dict[str, Any]
    ) -> None:
        text = str(body.get("text") or "")
        channel = payload.channel_id(body)
        name = body.get("channel_name")
        user = payload.user_id(body)
        shown = f"{deps.config.command} {text}".strip()
        if not channel_allowed(deps.config.command_channels, channel, name):
            refusal = messages.channel_not_allowed(
                deps.config.command, _allowed_text(deps.config.command_channels)
            )
            await ack(text=refusal)
            deps.tasks.spawn(
                once(
                    context,
                    lambda: audit_refusal(
                        deps.audit,
                        deps.clock,
                        body,
                        action="slack.command.refused",
                        reason=refusal,
                        detail={"command": shown},
                    ),
                ),
                "audit channel refusal",
            )
            return
        await ack()
        deps.tasks.spawn(
            once(
                context,
                lambda: run_command(
                    deps, body, respond_via(respond, deps.client), request_id(context)
                ),
            ),
            f"command {shown!r} by {user}",
        )

    app.command(deps.config.command)(on_command)


async def run_command(
    deps: BotDeps, body: dict[str, Any], respond: AsyncRespond, request: str | None
) -> None:
    """Parse, hand to the engine, answer."""
    text = str(body.get("text") or "")
    user = payload.user_id(body)
    channel = payload.channel_id(body)
    shown = f"{deps.config.command} {text}".strip()
    try:
        if user is None:
            raise ValueError("the command names no user")
        parsed = parse_command(text, prog=deps.config.command)
        refused = await deps.identities.refusal(user) if changes_something(parsed) else None
        if refused is not None:
            await audit_refusal(
                deps.audit,
                deps.clock,
                body,
                action="slack.command.refused",
                reason=refused,
                detail={"command": shown, "rule": "account"},
            )
            outcome: Outcome = Refused(reason=refused, kind=RefusalKind.POLICY)
        else:
            actor = await deps.identities.resolve(user, payload.user_name(body))
            outcome = await deps.engine.handle(parsed, actor, request_id=request)
        params = (
            parsed.params.model_dump(mode="json") if isinstance(parsed, ActionCommand) else None
        )
        answer = outcome_view(
            outcome,
            deps.clock.now(),
            channel_mention=deps.channel_mention,
            action_params=params,
        )
        public = isinstance(outcome, KillSwitchOutcome) and outcome.changed
    except Exception:
        logger.exception("%s by %s failed", shown, user)
        answer = rendered(messages.internal_error(shown), [section(messages.internal_error(shown))])
        public = False
    await tell(deps.client, answer, user=user, channel=channel, respond=respond, in_channel=public)


__all__ = ["changes_something", "channel_allowed", "register", "run_command"]
