"""Is a button click about the proposal of the message it sits on? A button value names a
proposal (`bot.callbacks.ButtonValue`); the click is refused unless the message agrees:

- the block IDs Slack sends with the click (the clicked block's, and every block of the
  message) may name no other proposal (`decide:P-7:v3`);
- Approve and Reject sit on the proposal's own message: our stored reference of the clicked
  message (`SlackRefs.find_by_ts`) must be that proposal's;
- Undo sits in a reply under it: the clicked message must be in the proposal's thread (its
  stored reference says where), and its blocks must name the proposal.
- Approve and Reject also sit in the App Home tab (`bot.render.home`), a view only this app
  can publish: there the clicked block must name the proposal (`decide:P-7:v3`).

An incident card's buttons ("I'm on it", silence) are checked the same way against the
incident's card (`incident_mismatch`: block IDs `attend:I-3:v2`).

A message tikvops has no record of, a message of another proposal or of an incident, or a
value edited to name another proposal are all refused with the reason. If the records cannot
be read, the click is refused too (fail closed): the user may retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import callbacks
from engine.errors import EngineError
from engine.model import OwnerKind
from engine.ports import SlackRefs

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Clicked:
    """Where the click happened: the channel, the clicked message, and its thread."""

    channel: str | None
    message_ts: str | None
    thread_ts: str | None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def clicked(body: Mapping[str, Any]) -> Clicked:
    """The channel, message and thread of a block_actions payload."""
    container = body.get("container")
    message = body.get("message")
    container = container if isinstance(container, Mapping) else {}
    message = message if isinstance(message, Mapping) else {}
    channel = body.get("channel")
    return Clicked(
        channel=_text(container.get("channel_id"))
        or _text(channel.get("id") if isinstance(channel, Mapping) else None),
        message_ts=_text(container.get("message_ts")) or _text(message.get("ts")),
        thread_ts=_text(container.get("thread_ts")) or _text(message.get("thread_ts")),
    )


def named_proposals(body: Mapping[str, Any]) -> set[str]:
    """The proposals named by the block IDs of the click and of the clicked message."""
    found: set[str] = set()
    actions = body.get("actions")
    if isinstance(actions, list):
        for action in actions:
            if isinstance(action, Mapping):
                found.add(callbacks.proposal_of_block(action.get("block_id")) or "")
    message = body.get("message")
    blocks = message.get("blocks") if isinstance(message, Mapping) else None
    if isinstance(blocks, list):
        for block in blocks:
            if isinstance(block, Mapping):
                found.add(callbacks.proposal_of_block(block.get("block_id")) or "")
    found.discard("")
    return found


def _in_home(body: Mapping[str, Any]) -> bool:
    container = body.get("container")
    view = body.get("view")
    return (
        isinstance(container, Mapping)
        and container.get("type") == "view"
        and isinstance(view, Mapping)
        and view.get("type") == "home"
    )


def _clicked_blocks(body: Mapping[str, Any]) -> set[str]:
    """The proposals named by the block IDs of the clicked elements only."""
    found: set[str] = set()
    actions = body.get("actions")
    if isinstance(actions, list):
        for action in actions:
            if isinstance(action, Mapping):
                found.add(callbacks.proposal_of_block(action.get("block_id")) or "")
    return found


def _not_its_message(proposal_id: str) -> str:
    return f"it is not on the message of {proposal_id}"


async def mismatch(
    refs: SlackRefs, body: Mapping[str, Any], proposal_id: str, kind: str, where: Clicked
) -> str | None:
    """Why the click may not act on `proposal_id` (a clause for `messages.bad_button`), or
    None when the clicked message is that proposal's (or, for undo, in its thread)."""
    if _in_home(body) and kind != "undo":
        clicked_blocks = _clicked_blocks(body)
        if clicked_blocks == {proposal_id}:
            return None
        return f"the App Home button names {proposal_id} but sits on another proposal's line"
    others = sorted(named_proposals(body) - {proposal_id})
    if others:
        return f"it sits on the message of {others[0]} but names {proposal_id}"
    if where.channel is None or where.message_ts is None:
        return "Slack did not say which message it was clicked on"
    try:
        ref = await refs.find_by_ts(where.channel, where.message_ts)
        own = await refs.get(OwnerKind.PROPOSAL, proposal_id)
    except EngineError:
        logger.warning("could not read message references to check a click", exc_info=True)
        return "tikvops could not check which proposal the message belongs to; try again"
    if ref is not None and ref.owner_kind is OwnerKind.PROPOSAL:
        if ref.owner_id != proposal_id:
            return f"it sits on the message of {ref.owner_id} but names {proposal_id}"
        return None
    if kind != "undo" or own is None or proposal_id not in named_proposals(body):
        return _not_its_message(proposal_id)
    thread = own.thread_ts or own.ts
    if own.channel != where.channel or where.thread_ts != thread:
        return _not_its_message(proposal_id)
    return None


def named_incidents(body: Mapping[str, Any]) -> set[str]:
    """The incidents named by the attend block IDs of the click and of the clicked message."""
    found: set[str] = set()
    for entry in _blocks_and_actions(body):
        found.add(callbacks.incident_of_block(entry.get("block_id")) or "")
    found.discard("")
    return found


def _blocks_and_actions(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    actions = body.get("actions")
    message = body.get("message")
    blocks = message.get("blocks") if isinstance(message, Mapping) else None
    for group in (actions, blocks):
        if isinstance(group, list):
            entries += [entry for entry in group if isinstance(entry, Mapping)]
    return entries


async def incident_mismatch(
    refs: SlackRefs, body: Mapping[str, Any], incident_id: str, where: Clicked
) -> str | None:
    """Why a click on an incident card's button may not act on `incident_id`, or None when
    the clicked message is that incident's own card (its blocks naming no other incident or
    proposal)."""
    others = sorted((named_incidents(body) | named_proposals(body)) - {incident_id})
    if others:
        return f"it sits on the message of {others[0]} but names {incident_id}"
    if where.channel is None or where.message_ts is None:
        return "Slack did not say which message it was clicked on"
    try:
        ref = await refs.find_by_ts(where.channel, where.message_ts)
    except EngineError:
        logger.warning("could not read message references to check a click", exc_info=True)
        return "tikvops could not check which incident the message belongs to; try again"
    if ref is None or ref.owner_kind is not OwnerKind.INCIDENT or ref.owner_id != incident_id:
        return f"it is not on the message of incident {incident_id}"
    return None


__all__ = [
    "Clicked",
    "clicked",
    "incident_mismatch",
    "mismatch",
    "named_incidents",
    "named_proposals",
]
