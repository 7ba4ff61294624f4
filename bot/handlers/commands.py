"""`/tikv`: acknowledged at once, then (unless it is a redelivery of a request already handled,
`bot.redelivery.once`) parsed with the shared grammar and handed to the engine in the
background. Read-only commands and every error or refusal are answered ephemerally;
mutating commands create a proposal through the engine (which posts it to the incidents channel
with its buttons) and never execute directly. Commands from channels that are not configured
are refused, told, and audited. A command that names no user, or whose text is longer than
`MAX_TEXT`, is answered with what was wrong and not parsed.
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
from bot.render.kit import code_span, rendered, section
from bot.render.views import ClusterNaming, outcome_view
from bot.replies import tell
from engine.attention_commands import AttentionCommand
from engine.commands import (
    ActionCommand,
    CommandError,
    DecisionCommand,
    HelpCommand,
    KillSwitchCommand,
    Parsed,
    ReadCommand,
    parse_command,
    usage,
)
from engine.results import (
    KillSwitchOutcome,
    Outcome,
    ProposalCreated,
    RefusalCheck,
    RefusalKind,
    Refused,
)
from engine.service import Engine

logger = logging.getLogger(__name__)

MAX_TEXT = 4000
"""The longest command text read (a real command is a few words; parsing is kept small)."""
SHOWN = 80
"""Characters of the command text repeated back in answers and logs."""


def shown_command(command: str, text: str) -> str:
    """The command as repeated to the user and in logs, cut to `SHOWN` characters."""
    whole = f"{command} {text}".strip()
    return whole if len(whole) <= SHOWN else whole[: SHOWN - 1] + "…"


def _usage_of(text: str, prog: str) -> str:
    """The usage line of the command a (too long) text starts with, read from its first word
    only; `{prog} help` when that is not a command."""
    words = text.lstrip()[:64].split(maxsplit=1)
    return usage(words[0], prog) if words else f"{prog} help"


def _named_cluster(parsed: Parsed | CommandError) -> str | None:
    """The cluster a command names or its channel gave (None: not said, or a command about a
    record, which knows its own)."""
    if isinstance(parsed, CommandError | AttentionCommand):
        return None
    return parsed.cluster


def changes_something(parsed: object) -> bool:
    """Whether a parsed command asks for a change (a proposal, a decision, the kill switch,
    acknowledging or silencing an incident),
    as opposed to a read, help, a dry run or a parse error."""
    if isinstance(parsed, ActionCommand):
        return not parsed.dry_run
    if isinstance(parsed, KillSwitchCommand):
        return parsed.mode != "status"
    return isinstance(parsed, DecisionCommand | AttentionCommand)


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
        shown = shown_command(deps.config.command, text)
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
                        cluster=deps.cluster_of(body),
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


def _clusters(engine: Engine) -> tuple[str, ...]:
    """The cluster names a command may start with (none with one cluster: nothing changes)."""
    return tuple(engine.clusters) if engine.multi_cluster else ()


def in_cluster_of_channel(
    engine: Engine, parsed: Parsed | CommandError, channel_id: str | None, name: Any
) -> Parsed | CommandError:
    """In a cluster's incident channel, a command that names no cluster targets that cluster
    (`/tikv drain 4` in #tikv-prod drains prod's store 4)."""
    if not engine.multi_cluster or isinstance(
        parsed, CommandError | AttentionCommand | DecisionCommand
    ):  # decisions and attention find the cluster of their record
        return parsed
    if parsed.cluster is not None:
        return parsed
    cluster = engine.cluster_of_channel(channel_id) or (
        engine.cluster_of_channel(name) if isinstance(name, str) else None
    )
    if cluster is None or isinstance(parsed, HelpCommand):
        return parsed
    if isinstance(parsed, ReadCommand) and parsed.view in {"clusters", "audit"}:
        return parsed
    return parsed.model_copy(update={"cluster": cluster})


async def run_command(
    deps: BotDeps, body: dict[str, Any], respond: AsyncRespond, request: str | None
) -> None:
    """Parse, hand to the engine, answer."""
    text = str(body.get("text") or "")
    user = payload.user_id(body)
    channel = payload.channel_id(body)
    shown = shown_command(deps.config.command, text)
    if user is None or len(text) > MAX_TEXT:
        why = (
            messages.command_without_user(code_span(shown))
            if user is None
            else messages.command_too_long(
                len(text), MAX_TEXT, _usage_of(text, deps.config.command)
            )
        )
        logger.warning("%s was not read: %s", shown, why)
        await tell(
            deps.client, rendered(why, [section(why)]), user=user, channel=channel, respond=respond
        )
        return
    try:
        parsed = in_cluster_of_channel(
            deps.engine,
            parse_command(text, prog=deps.config.command, clusters=_clusters(deps.engine)),
            channel,
            body.get("channel_name"),
        )
        refused = await deps.identities.refusal(user) if changes_something(parsed) else None
        if refused is not None:
            await audit_refusal(
                deps.audit,
                deps.clock,
                body,
                cluster=deps.cluster_of(body, named=_named_cluster(parsed)),
                action="slack.command.refused",
                reason=refused,
                detail={"command": shown, "rule": "account"},
            )
            outcome: Outcome = Refused(
                reason=refused, kind=RefusalKind.POLICY, check=RefusalCheck.CHANNEL
            )
        else:
            actor = await deps.identities.resolve(user, payload.user_name(body))
            outcome = await deps.engine.handle(parsed, actor, request_id=request)
        params = (
            parsed.params.model_dump(mode="json") if isinstance(parsed, ActionCommand) else None
        )
        cluster = _named_cluster(parsed)
        if isinstance(outcome, ProposalCreated):  # posted in its own cluster's channel
            cluster = outcome.proposal.cluster
        answer = outcome_view(
            outcome,
            deps.clock.now(),
            channel_mention=deps.channel_mention_of(cluster),
            action_params=params,
            clusters=ClusterNaming(
                named=deps.engine.multi_cluster,
                cluster=cluster,
                quorum=deps.engine.approvals_needed,
            ),
        )
        public = isinstance(outcome, KillSwitchOutcome) and outcome.changed
    except Exception:
        logger.exception("%s by %s failed", shown, user)
        answer = rendered(messages.internal_error(shown), [section(messages.internal_error(shown))])
        public = False
    await tell(deps.client, answer, user=user, channel=channel, respond=respond, in_channel=public)


__all__ = [
    "MAX_TEXT",
    "changes_something",
    "channel_allowed",
    "register",
    "run_command",
    "shown_command",
]
