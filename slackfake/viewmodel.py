"""What the page shows, computed on the server: messages, threads, ephemerals and modals turned
into JSON whose text is already safe HTML (see mrkdwn.py), so the browser code only lays it out.

Pure: reads the store/workspace objects it is given, returns plain dicts for ``/ui/state``.
"""

from __future__ import annotations

from typing import Any

from slackfake.mrkdwn import (
    EMOJI,
    Names,
    mrkdwn_to_html,
    plain_text_of,
    text_object_to_html,
)
from slackfake.store import Ephemeral, Message
from slackfake.workspace import Workspace


def names_for(ws: Workspace, viewer: str | None = None) -> Names:
    """Names as `viewer` sees them (dates in their timezone; UTC for no one in particular)."""

    def user(user_id: str) -> str:
        return ws.user_name(user_id)

    def channel(channel_id: str) -> str:
        found = ws.channels.get(channel_id)
        return found.name if found else channel_id

    def usergroup(group_id: str) -> str:
        found = ws.usergroups.get(group_id)
        return found.handle if found else group_id

    person = ws.users.get(viewer) if viewer else None
    tz = person.tz if person is not None else "UTC"
    return Names(user=user, channel=channel, usergroup=usergroup, tz=tz)


def _element(el: Any, block_id: str, names: Names) -> dict[str, Any]:
    if not isinstance(el, dict):
        return {"kind": "unsupported", "type": "?"}
    kind = el.get("type")
    if kind == "button":
        confirm = el.get("confirm")
        return {
            "kind": "button",
            "type": "button",
            "action_id": el.get("action_id", ""),
            "block_id": block_id,
            "value": el.get("value"),
            "label": plain_text_of(el.get("text")),
            "label_html": text_object_to_html(el.get("text"), names),
            "style": el.get("style") if el.get("style") in ("primary", "danger") else None,
            "url": el.get("url") if str(el.get("url", "")).startswith("http") else None,
            "confirm": _confirm(confirm, names) if isinstance(confirm, dict) else None,
        }
    if kind == "image":
        return {
            "kind": "image",
            "url": el.get("image_url", ""),
            "alt": el.get("alt_text", ""),
        }
    if kind in ("static_select", "overflow"):
        options = list(el.get("options") or [])
        for group in el.get("option_groups") or []:
            options.extend(group.get("options") or [])
        confirm = el.get("confirm")
        return {
            "kind": "select",
            "type": kind,
            "action_id": el.get("action_id", ""),
            "block_id": block_id,
            "placeholder": plain_text_of(el.get("placeholder")) or "Choose…",
            "options": [
                {"label": plain_text_of(o.get("text")), "value": o.get("value", "")}
                for o in options
                if isinstance(o, dict)
            ],
            "confirm": _confirm(confirm, names) if isinstance(confirm, dict) else None,
        }
    return {"kind": "unsupported", "type": str(kind)}


def _confirm(obj: dict[str, Any], names: Names) -> dict[str, Any]:
    return {
        "title": plain_text_of(obj.get("title")) or "Are you sure?",
        "html": text_object_to_html(obj.get("text"), names),
        "confirm": plain_text_of(obj.get("confirm")) or "Yes",
        "deny": plain_text_of(obj.get("deny")) or "No",
        "style": obj.get("style") if obj.get("style") in ("primary", "danger") else None,
    }


def block_view(block: Any, names: Names) -> dict[str, Any]:
    """One Block Kit block as page data (text fields pre-rendered to safe HTML)."""
    if not isinstance(block, dict):
        return {"kind": "unsupported", "type": "?"}
    kind = block.get("type")
    block_id = str(block.get("block_id", ""))
    base: dict[str, Any] = {"kind": kind, "block_id": block_id}
    if kind == "header":
        base["html"] = text_object_to_html(block.get("text"), names)
    elif kind == "section":
        base["html"] = text_object_to_html(block.get("text"), names)
        base["fields"] = [text_object_to_html(f, names) for f in block.get("fields") or []]
        acc = block.get("accessory")
        base["accessory"] = _element(acc, block_id, names) if acc else None
    elif kind == "context":
        elements = []
        for el in block.get("elements") or []:
            if isinstance(el, dict) and el.get("type") == "image":
                elements.append(_element(el, block_id, names))
            else:
                elements.append({"kind": "text", "html": text_object_to_html(el, names)})
        base["elements"] = elements
    elif kind == "actions":
        base["elements"] = [_element(el, block_id, names) for el in block.get("elements") or []]
    elif kind == "divider":
        pass
    elif kind == "image":
        base.update(
            url=block.get("image_url", ""),
            alt=block.get("alt_text", ""),
            title_html=text_object_to_html(block.get("title"), names),
        )
    elif kind == "markdown":
        base["html"] = mrkdwn_to_html(str(block.get("text", "")), names)
    elif kind == "input":
        el = block.get("element") or {}
        base.update(
            label=plain_text_of(block.get("label")),
            hint=plain_text_of(block.get("hint")),
            optional=bool(block.get("optional")),
            element_type=el.get("type", ""),
            action_id=el.get("action_id", ""),
            multiline=bool(el.get("multiline")),
            initial_value=el.get("initial_value", ""),
            placeholder=plain_text_of(el.get("placeholder")),
            options=[
                {"label": plain_text_of(o.get("text")), "value": o.get("value", "")}
                for o in el.get("options") or []
                if isinstance(o, dict)
            ],
        )
    elif kind == "rich_text":
        base["kind"] = "rich_text"
    else:
        base = {"kind": "unsupported", "type": str(kind), "block_id": block_id}
    return base


def _author(ws: Workspace, user_id: str, bot_id: str | None) -> dict[str, Any]:
    if user_id == "USLACKBOT":
        return {"id": "USLACKBOT", "name": "Slackbot", "is_bot": True}
    if bot_id or user_id == ws.bot_user_id:
        return {"id": ws.bot_user_id, "name": ws.bot_name, "is_bot": True}
    return {"id": user_id, "name": ws.user_name(user_id), "is_bot": False}


def _reactions(msg: Message, ws: Workspace) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "emoji": EMOJI.get(name, f":{name}:"),
            "count": len(users),
            "users": [ws.user_name(u) for u in users],
        }
        for name, users in msg.reactions.items()
    ]


def message_view(
    msg: Message, ws: Workspace, names: Names, reply_authors: list[str] | None = None
) -> dict[str, Any]:
    if msg.deleted:
        return {
            "kind": "tombstone",
            "ts": msg.ts,
            "channel": msg.channel,
            "author": {"id": "USLACKBOT", "name": "", "is_bot": True},
            "html": "<i>This message was deleted.</i>",
            "blocks": [],
            "attachments": [],
            "edited": False,
            "thread_ts": msg.ts,
            "reply_count": msg.reply_count,
            "reactions": [],
        }
    return {
        "kind": "message",
        "ts": msg.ts,
        "channel": msg.channel,
        "author": _author(ws, msg.user, msg.bot_id),
        "html": mrkdwn_to_html(msg.text, names),
        "blocks": [block_view(b, names) for b in msg.blocks],
        "attachments": [
            {
                "color": str(a.get("color", "")),
                "html": mrkdwn_to_html(str(a.get("text") or a.get("fallback") or ""), names),
            }
            for a in msg.attachments
            if isinstance(a, dict)
        ],
        "edited": msg.edited,
        "edit_count": len(msg.edits),
        "thread_ts": msg.thread_ts,
        "reply_count": msg.reply_count,
        "reply_users": sorted({ws.user_name(r) for r in reply_authors or []}),
        "reactions": _reactions(msg, ws),
        "broadcast": msg.reply_broadcast,
        "files": [_file(f) for f in msg.files if isinstance(f, dict)],
    }


def _file(file: dict[str, Any]) -> dict[str, Any]:
    """A shared file as the page shows it: images inline (served by the stand-in)."""
    file_id = str(file.get("id", ""))
    name = str(file.get("name", "file"))
    return {
        "id": file_id,
        "name": name,
        "title": str(file.get("title") or name),
        "alt": str(file.get("alt_txt") or file.get("title") or name),
        "image": str(file.get("mimetype", "")).startswith("image/"),
        "url": f"/files/{file_id}/{name}",
    }


def ephemeral_view(eph: Ephemeral, ws: Workspace, names: Names) -> dict[str, Any]:
    author = _author(ws, eph.author or ws.bot_user_id, None if eph.author else ws.bot_id)
    if eph.source == "slackbot":
        author = {"id": "USLACKBOT", "name": "Slackbot", "is_bot": True}
    return {
        "kind": "ephemeral",
        "ts": eph.ts,
        "channel": eph.channel,
        "author": author,
        "html": mrkdwn_to_html(eph.text, names),
        "blocks": [block_view(b, names) for b in eph.blocks],
        "attachments": [],
        "edited": False,
        "thread_ts": eph.thread_ts,
        "reply_count": 0,
        "reactions": [],
        "source": eph.source,
    }
