"""Questions about a request payload, answered by pure functions (like Bolt's payload_utils):
which app and workspace it came from, who sent it, whether it is the bot's own, and the key
that identifies one delivery for deduplication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENVELOPE_HEADER = "x-tikvops-envelope-id"
"""Request header carrying the Socket Mode envelope ID (set by `bot.socket`)."""


def _get(body: Mapping[str, Any], *path: str) -> Any:
    value: Any = body
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def app_id(body: Mapping[str, Any]) -> str | None:
    value = body.get("api_app_id") or _get(body, "view", "app_id")
    return str(value) if value else None


def team_ids(body: Mapping[str, Any]) -> set[str]:
    """Every workspace the request names: the team, and the acting user's own team (a user of
    another organisation in a shared channel has a different one)."""
    found = {
        body.get("team_id"),
        _get(body, "team", "id"),
        _get(body, "user", "team_id"),
        _get(body, "event", "team"),
    }
    return {str(t) for t in found if t}


def user_id(body: Mapping[str, Any]) -> str | None:
    value = body.get("user_id") or _get(body, "user", "id") or _get(body, "event", "user")
    return str(value) if value else None


def user_name(body: Mapping[str, Any]) -> str | None:
    value = body.get("user_name") or _get(body, "user", "username") or _get(body, "user", "name")
    return str(value) if value else None


def channel_id(body: Mapping[str, Any]) -> str | None:
    value = (
        body.get("channel_id")
        or _get(body, "channel", "id")
        or _get(body, "container", "channel_id")
        or _get(body, "event", "channel")
    )
    return str(value) if value else None


def is_own_event(body: Mapping[str, Any], bot_user_id: str | None, bot_id: str | None) -> bool:
    """An event authored by this bot (its own messages must never trigger it)."""
    event = body.get("event")
    if not isinstance(event, Mapping):
        return False
    if bot_id and event.get("bot_id") == bot_id:
        return True
    return bool(bot_user_id) and event.get("user") == bot_user_id


def request_key(body: Mapping[str, Any]) -> str | None:
    """What identifies one user request across redeliveries: the trigger of a slash command,
    the `action_ts` of a click, the view submission, the event ID."""
    if body.get("event_id"):
        return f"event:{body['event_id']}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions") or []
        if actions and isinstance(actions[0], Mapping) and actions[0].get("action_ts"):
            return f"action:{actions[0]['action_ts']}:{user_id(body)}"
    if kind == "view_submission":
        view_id = _get(body, "view", "id")
        view_hash = _get(body, "view", "hash")
        if view_id:
            return f"view:{view_id}:{view_hash}"
    if body.get("command") and body.get("trigger_id"):
        return f"command:{body['trigger_id']}"
    return None


def header(headers: Mapping[str, Any], name: str) -> str | None:
    value = headers.get(name)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return str(value) if value else None


__all__ = [
    "ENVELOPE_HEADER",
    "app_id",
    "channel_id",
    "header",
    "is_own_event",
    "request_key",
    "team_ids",
    "user_id",
    "user_name",
]
