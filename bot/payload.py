"""Questions about a request payload, answered by pure functions (like Bolt's payload_utils):
which app and workspace it came from, who sent it, whether it is the bot's own, and the key
that identifies one delivery for deduplication. Every answer is a non-empty string or None:
a value of another type (a list where an ID belongs, a nested object) counts as absent, so a
broken or hostile payload can never raise here."""

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


def _text(*values: Any) -> str | None:
    """The first value that is a non-empty string."""
    for value in values:
        if isinstance(value, str) and value:
            return value
    return None


def app_id(body: Mapping[str, Any]) -> str | None:
    return _text(body.get("api_app_id"), _get(body, "view", "app_id"))


def team_ids(body: Mapping[str, Any]) -> set[str]:
    """Every workspace the request names: the team, and the acting user's own team (a user of
    another organisation in a shared channel has a different one)."""
    found = (
        body.get("team_id"),
        _get(body, "team", "id"),
        _get(body, "user", "team_id"),
        _get(body, "event", "team"),
    )
    return {t for t in found if isinstance(t, str) and t}


def user_id(body: Mapping[str, Any]) -> str | None:
    return _text(body.get("user_id"), _get(body, "user", "id"), _get(body, "event", "user"))


def user_name(body: Mapping[str, Any]) -> str | None:
    return _text(body.get("user_name"), _get(body, "user", "username"), _get(body, "user", "name"))


def channel_id(body: Mapping[str, Any]) -> str | None:
    return _text(
        body.get("channel_id"),
        _get(body, "channel", "id"),
        _get(body, "container", "channel_id"),
        _get(body, "event", "channel"),
    )


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
    event_id = _text(body.get("event_id"))
    if event_id:
        return f"event:{event_id}"
    kind = body.get("type")
    if kind == "block_actions":
        actions = body.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else None
        action_ts = _text(first.get("action_ts")) if isinstance(first, Mapping) else None
        if action_ts:
            return f"action:{action_ts}:{user_id(body)}"
    if kind == "view_submission":
        view_id = _text(_get(body, "view", "id"))
        view_hash = _text(_get(body, "view", "hash"))
        if view_id:
            return f"view:{view_id}:{view_hash}"
    trigger = _text(body.get("trigger_id"))
    if _text(body.get("command")) and trigger:
        return f"command:{trigger}"
    return None


def malformed(body: Mapping[str, Any]) -> str | None:
    """Why Bolt could not read this request (its payload helpers index into `event`,
    `actions` and `view` without checking them), or None when its shape is sound: an event
    must be an object, a click must carry a list of actions each with a string `action_id`, a
    form must carry its view as an object."""
    kind = body.get("type")
    if "event" in body and not isinstance(body["event"], Mapping):
        return "the event is not an object"
    if kind in ("block_actions", "interactive_message"):
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "the click carries no list of actions"
        for action in actions:
            if not isinstance(action, Mapping):
                return "an action of the click is not an object"
            if kind == "block_actions" and not isinstance(action.get("action_id"), str):
                return "an action of the click has no action_id"
    if kind in ("view_submission", "view_closed") and not isinstance(body.get("view"), Mapping):
        return "the form carries no view"
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
    "malformed",
    "request_key",
    "team_ids",
    "user_id",
    "user_name",
]
