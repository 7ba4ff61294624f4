"""In-memory channel history: messages, threads, edits, reactions and per-user ephemeral messages.

The Web API handlers, the response_url handler and the page all read and write through
:class:`MessageStore`; tests read it through SlackFake.messages()/thread()/ephemerals().
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from slackfake.ids import TsClock

Blocks = list[dict[str, Any]]
EphemeralSource = Literal["chat.postEphemeral", "response_url", "ack", "slackbot"]


@dataclass
class Revision:
    """An earlier version of an edited message, and the ts of the edit that replaced it."""

    text: str
    blocks: Blocks
    replaced_at: str


@dataclass
class Message:
    """A channel message or thread reply as Slack stores it."""

    channel: str
    ts: str
    text: str
    blocks: Blocks
    user: str
    bot_id: str | None = None
    app_id: str | None = None
    team: str = ""
    thread_ts: str | None = None
    replies: list[str] = field(default_factory=list)
    edits: list[Revision] = field(default_factory=list)
    edited_ts: str | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    reply_broadcast: bool = False
    deleted: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reply_count(self) -> int:
        return len(self.replies)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edited(self) -> bool:
        return self.edited_ts is not None

    def action_ids(self) -> list[str]:
        """action_ids of the interactive elements the message shows now."""
        return interactive_action_ids(self.blocks)

    def to_api(self) -> dict[str, Any]:
        """The message object as conversations.history / chat.postMessage return it."""
        if self.deleted:
            return {
                "type": "message",
                "subtype": "tombstone",
                "text": "This message was deleted.",
                "user": "USLACKBOT",
                "ts": self.ts,
                "thread_ts": self.ts,
                "reply_count": self.reply_count,
            }
        out: dict[str, Any] = {"type": "message", "text": self.text, "user": self.user}
        if self.bot_id:
            out.update(bot_id=self.bot_id, app_id=self.app_id)
        out.update(ts=self.ts, team=self.team)
        if self.blocks:
            out["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            out["attachments"] = copy.deepcopy(self.attachments)
        if self.files:
            out["files"] = copy.deepcopy(self.files)
            out["upload"] = True
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.is_reply and self.reply_broadcast:
            out["subtype"] = "thread_broadcast"
        if not self.is_reply and self.replies:
            out["reply_count"] = self.reply_count
            out["latest_reply"] = self.replies[-1]
        if self.edited_ts:
            out["edited"] = {"user": self.user, "ts": self.edited_ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        if self.metadata is not None:
            out["metadata"] = copy.deepcopy(self.metadata)
        return out


@dataclass
class Ephemeral:
    """A message only one user sees ("Only visible to you"); never in channel history."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: Blocks
    source: EphemeralSource
    thread_ts: str | None = None
    author: str = ""
    edits: list[Revision] = field(default_factory=list)
    deleted: bool = False

    def action_ids(self) -> list[str]:
        return interactive_action_ids(self.blocks)


def interactive_action_ids(blocks: Blocks) -> list[str]:
    found: list[str] = []
    for block in blocks:
        elements: list[Any] = []
        if block.get("type") == "actions":
            elements = list(block.get("elements") or [])
        elif block.get("type") == "section" and block.get("accessory"):
            elements = [block["accessory"]]
        found += [str(e["action_id"]) for e in elements if isinstance(e, dict) and "action_id" in e]
    return found


class MessageStore:
    """Messages per channel, kept in ts order, with threads, edits and ephemerals."""

    def __init__(self, clock: TsClock) -> None:
        self._clock = clock
        self._by_key: dict[tuple[str, str], Message] = {}
        self._order: dict[str, list[Message]] = {}
        self._ephemerals: list[Ephemeral] = []
        self.version = 0  # bumped on every change; the page polls it

    def _changed(self) -> None:
        self.version += 1

    def next_ts(self) -> str:
        return self._clock.next_ts()

    # ----- channel messages -------------------------------------------------------------
    def post(
        self,
        channel: str,
        *,
        text: str,
        blocks: Blocks,
        user: str,
        bot_id: str | None = None,
        app_id: str | None = None,
        team: str = "",
        thread_ts: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        reply_broadcast: bool = False,
        files: list[dict[str, Any]] | None = None,
    ) -> Message:
        msg = Message(
            channel=channel,
            ts=self._clock.next_ts(),
            text=text,
            blocks=copy.deepcopy(blocks),
            user=user,
            bot_id=bot_id,
            app_id=app_id,
            team=team,
            thread_ts=thread_ts,
            attachments=copy.deepcopy(attachments or []),
            metadata=copy.deepcopy(metadata),
            reply_broadcast=reply_broadcast,
            files=copy.deepcopy(files or []),
        )
        if thread_ts is not None:
            parent = self._by_key[(channel, thread_ts)]
            parent.thread_ts = parent.ts
            parent.replies.append(msg.ts)
        self._by_key[(channel, msg.ts)] = msg
        self._order.setdefault(channel, []).append(msg)
        self._changed()
        return msg

    def get(self, channel: str, ts: str) -> Message | None:
        msg = self._by_key.get((channel, ts))
        return None if msg is None or (msg.deleted and not msg.replies) else msg

    def update(self, channel: str, ts: str, *, text: str | None, blocks: Blocks | None) -> Message:
        """Edit in place: the ts stays, the old version goes to ``edits``."""
        msg = self._by_key[(channel, ts)]
        edit_ts = self._clock.next_ts()
        msg.edits.append(Revision(text=msg.text, blocks=msg.blocks, replaced_at=edit_ts))
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = copy.deepcopy(blocks)
        msg.edited_ts = edit_ts
        self._changed()
        return msg

    def delete(self, channel: str, ts: str) -> None:
        """Delete a message; a thread parent with replies stays as a tombstone, like Slack."""
        msg = self._by_key[(channel, ts)]
        if msg.is_reply and msg.thread_ts is not None:
            parent = self._by_key[(channel, msg.thread_ts)]
            parent.replies.remove(ts)
        if msg.replies:
            msg.deleted = True
        else:
            del self._by_key[(channel, ts)]
            self._order[channel].remove(msg)
        self._changed()

    def react(self, channel: str, ts: str, name: str, user: str, *, add: bool) -> bool:
        """Add or remove a reaction; False if that was already the state."""
        msg = self._by_key[(channel, ts)]
        users = msg.reactions.setdefault(name, [])
        if add == (user in users):
            if not users:
                del msg.reactions[name]
            return False
        if add:
            users.append(user)
        else:
            users.remove(user)
            if not users:
                del msg.reactions[name]
        self._changed()
        return True

    def top_level(self, channel: str) -> list[Message]:
        """Channel history oldest first: messages that are not thread replies (plus tombstones)."""
        return [m for m in self._order.get(channel, []) if not m.is_reply]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        parent = self._by_key.get((channel, thread_ts))
        if parent is None:
            return []
        return [self._by_key[(channel, ts)] for ts in parent.replies]

    def all_messages(self, channel: str) -> list[Message]:
        return list(self._order.get(channel, []))

    # ----- ephemeral messages -----------------------------------------------------------
    def post_ephemeral(
        self,
        channel: str,
        user: str,
        *,
        text: str,
        blocks: Blocks,
        source: EphemeralSource,
        thread_ts: str | None = None,
        author: str = "",
    ) -> Ephemeral:
        eph = Ephemeral(
            channel=channel,
            user=user,
            ts=self._clock.next_ts(),
            text=text,
            blocks=copy.deepcopy(blocks),
            source=source,
            thread_ts=thread_ts,
            author=author,
        )
        self._ephemerals.append(eph)
        self._changed()
        return eph

    def ephemeral(self, user: str, ts: str) -> Ephemeral | None:
        return next(
            (e for e in self._ephemerals if e.user == user and e.ts == ts and not e.deleted), None
        )

    def replace_ephemeral(self, eph: Ephemeral, *, text: str | None, blocks: Blocks | None) -> None:
        edit_ts = self._clock.next_ts()
        eph.edits.append(Revision(text=eph.text, blocks=eph.blocks, replaced_at=edit_ts))
        if text is not None:
            eph.text = text
        if blocks is not None:
            eph.blocks = copy.deepcopy(blocks)
        self._changed()

    def delete_ephemeral(self, eph: Ephemeral) -> None:
        eph.deleted = True
        self._changed()

    def ephemerals(
        self, user: str | None = None, channel: str | None = None, *, include_slackbot: bool = False
    ) -> list[Ephemeral]:
        return [
            e
            for e in self._ephemerals
            if not e.deleted
            and (user is None or e.user == user)
            and (channel is None or e.channel == channel)
            and (include_slackbot or e.source != "slackbot")
        ]
