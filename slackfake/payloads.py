"""Pure builders for what Slack sends over Socket Mode: hello, disconnect, envelopes, and the
payloads inside them (slash command, block_actions, events_api app_mention, view_submission,
global and message shortcuts, block_suggestion).

Shapes follow reference slack.md §1.2–1.6 and §2. No I/O, no state: callers pass ids and times.
"""

from __future__ import annotations

import copy
from typing import Any

LEGACY_VERIFICATION_TOKEN = "slackfakeVerificationTkn"  # noqa: S105 - fake, ignored by Bolt


def hello(app_id: str, num_connections: int) -> dict[str, Any]:
    return {
        "type": "hello",
        "num_connections": num_connections,
        "debug_info": {
            "host": "applink-slackfake-0",
            "build_number": 105,
            "approximate_connection_time": 18060,
        },
        "connection_info": {"app_id": app_id},
    }


def disconnect(reason: str, num_connections: int) -> dict[str, Any]:
    return {
        "type": "disconnect",
        "reason": reason,
        "num_connections": num_connections,
        "debug_info": {"host": "applink-slackfake-0"},
    }


def envelope(
    kind: str,
    payload: Any,
    *,
    envelope_id: str,
    accepts_response_payload: bool,
    retry_attempt: int | None = None,
    retry_reason: str | None = None,
) -> dict[str, Any]:
    """A Socket Mode envelope; retry fields are only set for ``events_api``. ``payload`` is
    normally a dict; tests may pass anything JSON can carry (None, a list) to act as a broken
    peer."""
    out: dict[str, Any] = {
        "envelope_id": envelope_id,
        "payload": payload,
        "type": kind,
        "accepts_response_payload": accepts_response_payload,
    }
    if kind == "events_api":
        out["retry_attempt"] = retry_attempt or 0
        out["retry_reason"] = retry_reason or ""
    return out


def slash_command(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    channel_id: str,
    channel_name: str,
    user_id: str,
    user_name: str,
    command: str,
    text: str,
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    """Slash-command payload: every value is a string, as Slack sends it."""
    return {
        "token": LEGACY_VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": app_id,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def user_object(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def block_actions(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    container: dict[str, Any],
    message: dict[str, Any] | None,
    action: dict[str, Any],
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    """block_actions payload for one click; ``message`` is None for ephemeral messages."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": app_id,
        "token": LEGACY_VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel_id, "name": channel_name},
    }
    if message is not None:
        payload["message"] = copy.deepcopy(message)
    payload.update(
        state={"values": {}},
        response_url=response_url,
        actions=[action],
    )
    return payload


def message_container(
    channel_id: str, message_ts: str, *, is_ephemeral: bool, thread_ts: str | None
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel_id,
        "is_ephemeral": is_ephemeral,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    return container


def action_from_element(
    element: dict[str, Any],
    *,
    block_id: str,
    action_ts: str,
    value: str | None,
) -> dict[str, Any]:
    """The ``actions[0]`` entry Slack sends for a click on ``element``.

    Buttons carry ``text``/``value``/``style``; selects and overflow menus carry the chosen
    option as ``selected_option`` (``value`` picks the option, default the first).
    """
    kind = element.get("type", "button")
    action: dict[str, Any] = {
        "action_id": element.get("action_id", ""),
        "block_id": block_id,
    }
    if kind == "button":
        action["text"] = copy.deepcopy(element.get("text", {}))
        chosen = value if value is not None else element.get("value")
        if chosen is not None:
            action["value"] = chosen
        if "style" in element:
            action["style"] = element["style"]
    else:
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            options.extend(group.get("options") or [])
        picked = next((o for o in options if o.get("value") == value), None)
        if picked is None and value is not None:
            picked = {"text": {"type": "plain_text", "text": value}, "value": value}
        if picked is None and options:
            picked = options[0]
        if picked is not None:
            action["selected_option"] = copy.deepcopy(picked)
    action["type"] = kind
    action["action_ts"] = action_ts
    return action


def event_callback(
    event: dict[str, Any],
    *,
    team_id: str,
    app_id: str,
    bot_user_id: str,
    event_id: str,
    event_time: int,
) -> dict[str, Any]:
    """The Events API outer payload carried by an ``events_api`` envelope."""
    return {
        "token": LEGACY_VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "api_app_id": app_id,
        "event": copy.deepcopy(event),
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def app_mention(
    *,
    user_id: str,
    text: str,
    ts: str,
    channel_id: str,
    team_id: str,
    thread_ts: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user_id,
        "text": text,
        "ts": ts,
        "channel": channel_id,
        "event_ts": ts,
        "team": team_id,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def view_submission(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    bot_id: str,
    user_id: str,
    user_name: str,
    view: dict[str, Any],
    trigger_id: str,
) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "team": {"id": team_id, "domain": team_domain},
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": app_id,
        "token": LEGACY_VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": copy.deepcopy(view),
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def input_state(view_blocks: list[dict[str, Any]], values: dict[str, Any]) -> dict[str, Any]:
    """``view.state.values`` for a submission: ``values`` maps block_id (or action_id) to the
    entered value; the element type is taken from the view's input blocks."""
    state: dict[str, Any] = {}
    for block in view_blocks:
        if block.get("type") != "input":
            continue
        element = block.get("element") or {}
        block_id = str(block.get("block_id", ""))
        action_id = str(element.get("action_id", ""))
        if block_id in values:
            raw = values[block_id]
        elif action_id in values:
            raw = values[action_id]
        else:
            raw = None
        kind = element.get("type", "plain_text_input")
        entry: dict[str, Any] = {"type": kind}
        if kind in ("static_select", "external_select"):
            entry["selected_option"] = (
                None
                if raw is None
                else {"text": {"type": "plain_text", "text": str(raw)}, "value": str(raw)}
            )
        elif kind in ("users_select",):
            entry["selected_user"] = raw
        elif kind in ("conversations_select", "channels_select"):
            entry[
                "selected_conversation" if kind == "conversations_select" else "selected_channel"
            ] = raw
        else:
            entry["value"] = raw
        state.setdefault(block_id, {})[action_id] = entry
    return {"values": state}


def shortcut(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    user_id: str,
    user_name: str,
    callback_id: str,
    action_ts: str,
    trigger_id: str,
) -> dict[str, Any]:
    """A global shortcut (from the composer or search): no channel, no response_url."""
    return {
        "type": "shortcut",
        "token": LEGACY_VERIFICATION_TOKEN,
        "action_ts": action_ts,
        "team": {"id": team_id, "domain": team_domain},
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": app_id,
        "is_enterprise_install": False,
        "enterprise": None,
        "callback_id": callback_id,
        "trigger_id": trigger_id,
    }


def message_action(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    callback_id: str,
    action_ts: str,
    message: dict[str, Any],
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    """A message shortcut (the "…" menu of a message): carries the message and a response_url."""
    return {
        "type": "message_action",
        "token": LEGACY_VERIFICATION_TOKEN,
        "action_ts": action_ts,
        "team": {"id": team_id, "domain": team_domain},
        "user": user_object(user_id, user_name, team_id),
        "api_app_id": app_id,
        "is_enterprise_install": False,
        "enterprise": None,
        "channel": {"id": channel_id, "name": channel_name},
        "callback_id": callback_id,
        "trigger_id": trigger_id,
        "message_ts": message.get("ts"),
        "message": copy.deepcopy(message),
        "response_url": response_url,
    }


def block_suggestion(
    *,
    team_id: str,
    team_domain: str,
    app_id: str,
    user_id: str,
    user_name: str,
    action_id: str,
    block_id: str,
    value: str,
    container: dict[str, Any],
) -> dict[str, Any]:
    """An options request of an external select (`block_suggestion`): the app answers in its
    ack with ``{"options": [...]}``."""
    return {
        "type": "block_suggestion",
        "user": user_object(user_id, user_name, team_id),
        "container": container,
        "api_app_id": app_id,
        "token": LEGACY_VERIFICATION_TOKEN,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
    }
