"""The Web API on ``/api/{method}``: token checks, scopes, fault injection, call recording, and
the methods the bot and the tests use, answering Slack's real response shapes as
``application/json; charset=utf-8``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from slackfake.errors import ApiError
from slackfake.faults import ApiFault, Faults
from slackfake.files import FileStore, complete_upload_external, get_upload_url_external
from slackfake.home import HomeTabs, views_publish
from slackfake.ids import parse_ts
from slackfake.limits import MAX_BLOCKS_VIEW, check_blocks, truncate_text
from slackfake.modals import Modals
from slackfake.params import (
    opt_bool,
    opt_int,
    opt_json,
    opt_str,
    read_params,
    req_str,
    token_of,
)
from slackfake.records import ApiCall
from slackfake.socketmode import SocketHub
from slackfake.store import Message, MessageStore
from slackfake.workspace import Channel, Workspace

log = logging.getLogger(__name__)

AuthKind = Literal["bot", "app", "none"]
Params = dict[str, Any]
Handler = Callable[["WebApi", Params, str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class MethodSpec:
    handler: Handler
    auth: AuthKind = "bot"
    scope: str | None = None


class WebApi:
    """Answers ``/api/{method}`` for one fake workspace."""

    def __init__(
        self,
        *,
        workspace: Workspace,
        store: MessageStore,
        faults: Faults,
        hub: SocketHub,
        modals: Modals,
        ws_url: Callable[[str], str],
        page_url: Callable[[], str],
    ) -> None:
        self.ws = workspace
        self.store = store
        self.faults = faults
        self.hub = hub
        self.modals = modals
        self._ws_url = ws_url
        self._page_url = page_url
        self.files = FileStore()
        self.homes = HomeTabs()
        self.calls: list[ApiCall] = []
        self.connections_opened = 0
        self.stopping = asyncio.Event()  # cuts injected delays short at shutdown

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        call = ApiCall(method, {}, request.method, None, time.time())
        self.calls.append(call)
        headers: dict[str, str] = {}
        lost: ApiFault | None = None
        try:
            call.params = await read_params(request)
            call.token = token_of(request, call.params)
            spec = METHODS.get(method)
            if spec is None:
                raise ApiError("unknown_method")
            self._authorize(spec, call.token)
            body, headers, lost = await self._apply_fault(call)
            if body is None:
                if spec.scope and spec.scope not in self.ws.scopes:
                    raise ApiError(
                        "missing_scope", needed=spec.scope, provided=",".join(self.ws.scopes)
                    )
                body = await spec.handler(self, call.params, call.token or "")
                if method == "auth.test":
                    headers["x-oauth-scopes"] = ",".join(self.ws.scopes)
                status = 200
            else:
                status = call.status
        except ApiError as err:
            status = err.status
            body = {"ok": False, "error": err.code, **err.fields}
        call.status = status
        call.response = body
        headers.setdefault("x-slack-req-id", f"slackfake-{len(self.calls)}")
        if lost is not None:
            return await self._lose_answer(
                request, call, lost, web.json_response(body, status=status, headers=headers)
            )
        return web.json_response(body, status=status, headers=headers)

    async def _lose_answer(
        self, request: web.Request, call: ApiCall, fault: ApiFault, answer: web.Response
    ) -> web.Response:
        """The call was carried out (``call`` records what Slack did); lose its answer."""
        call.lost = True
        if fault.how == "server_error":
            page = f"<html><body><h1>{fault.status} Service Unavailable</h1></body></html>"
            return web.Response(status=fault.status, text=page, content_type="text/html")
        if fault.how == "late":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), fault.delay)
            return answer
        transport = request.transport
        if transport is not None:
            transport.close()  # the client sees the connection end with no answer
        raise web.HTTPServiceUnavailable()  # never written: the connection is closed

    def _authorize(self, spec: MethodSpec, token: str | None) -> None:
        if spec.auth == "none":
            return
        if token is None:
            raise ApiError("not_authed")
        if spec.auth == "app":
            if token == self.ws.app_token:
                return
            if token == self.ws.bot_token:
                raise ApiError("not_allowed_token_type")
            raise ApiError("invalid_auth")
        if token == self.ws.bot_token:
            return
        if token == self.ws.app_token:
            raise ApiError("not_allowed_token_type")
        raise ApiError("invalid_auth")

    async def _apply_fault(
        self, call: ApiCall
    ) -> tuple[dict[str, Any] | None, dict[str, str], ApiFault | None]:
        """The answer an armed fault gives instead of the method's (None: call the method),
        its headers, and the fault if it loses the method's answer afterwards."""
        fault = self.faults.take(call.method)
        if fault is None:
            return None, {}, None
        call.fault = fault.kind
        if fault.kind == "lost_answer":
            return None, {}, fault
        if fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), fault.delay)
            return None, {}, None
        call.status = fault.status
        if fault.kind == "ratelimited":
            headers = {"Retry-After": str(fault.retry_after)}
            return {"ok": False, "error": "ratelimited"}, headers, None
        if fault.kind == "server_error":
            return {"ok": False, "error": "internal_error"}, {}, None
        return {"ok": False, "error": fault.error, **fault.fields}, {}, None

    # ----- helpers ---------------------------------------------------------------------
    def channel(self, params: Params, name: str = "channel") -> Channel:
        ref = opt_str(params, name)
        channel = self.ws.channel(ref) if ref else None
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def message(self, channel: Channel, ts: str) -> Message:
        msg = self.store.get(channel.id, ts)
        if msg is None or msg.deleted:
            raise ApiError("message_not_found")
        return msg

    def blocks(self, params: Params, *, max_blocks: int | None = None) -> list[dict[str, Any]]:
        blocks = opt_json(params, "blocks", "invalid_blocks_format")
        if blocks is None:
            return []
        errors = (
            check_blocks(blocks)
            if max_blocks is None
            else check_blocks(blocks, max_blocks=max_blocks)
        )
        if errors:
            raise ApiError(
                "invalid_blocks",
                errors=errors,
                response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
            )
        assert isinstance(blocks, list)
        return blocks

    def text(self, params: Params) -> tuple[str, list[str]]:
        raw = opt_str(params, "text") or ""
        text, truncated = truncate_text(raw)
        return text, (["message_truncated"] if truncated else [])

    def thread_parent(self, channel: Channel, thread_ts: str | None) -> str | None:
        if thread_ts is None:
            return None
        parent = self.store.get(channel.id, thread_ts)
        if parent is None:
            raise ApiError("thread_not_found")
        if parent.is_reply:
            # Slack threads one level deep: a reply's ts is not a thread.
            raise ApiError("thread_not_found")
        return parent.ts


def _with_warnings(body: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    if warnings:
        body["response_metadata"] = {
            "warnings": warnings,
            "messages": ["[WARN] A message was truncated: it accepts up to 40,000 characters."],
        }
    return body


def _metadata(params: Params) -> dict[str, Any] | None:
    """Message metadata as Slack checks it: an object with a string ``event_type`` and an
    object ``event_payload`` (a JSON value or a JSON-encoded string)."""
    metadata = opt_json(params, "metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not metadata["event_type"]
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise ApiError(
            "invalid_metadata_format",
            response_metadata={
                "messages": ["[ERROR] metadata needs a string event_type, an object event_payload"]
            },
        )
    return metadata


# ----- methods -------------------------------------------------------------------------
async def auth_test(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    ws = api.ws
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_name,
        "user": ws.bot_name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


async def apps_connections_open(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    ticket = f"{len(api.hub.tickets) + 1:04d}-{time.time_ns() % 10**9}"
    api.hub.tickets.add(ticket)
    api.connections_opened += 1
    return {"ok": True, "url": api._ws_url(ticket)}


async def chat_post_message(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    text, warnings = api.text(params)
    blocks = api.blocks(params)
    attachments = opt_json(params, "attachments", "invalid_attachments")
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    thread_ts = api.thread_parent(channel, opt_str(params, "thread_ts"))
    metadata = _metadata(params)
    msg = api.store.post(
        channel.id,
        text=text,
        blocks=blocks,
        user=api.ws.bot_user_id,
        bot_id=api.ws.bot_id,
        app_id=api.ws.app_id,
        team=api.ws.team_id,
        thread_ts=thread_ts,
        attachments=attachments if isinstance(attachments, list) else None,
        metadata=metadata,
        reply_broadcast=thread_ts is not None and opt_bool(params, "reply_broadcast"),
    )
    message = msg.to_api()
    message["bot_profile"] = _bot_profile(api.ws)
    body = {"ok": True, "channel": channel.id, "ts": msg.ts, "message": message}
    return _with_warnings(body, warnings)


async def chat_update(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    ts = req_str(params, "ts", "message_not_found")
    msg = api.message(channel, ts)
    if msg.bot_id != api.ws.bot_id:
        raise ApiError("cant_update_message")
    text, warnings = api.text(params)
    has_text = opt_str(params, "text") is not None
    has_blocks = params.get("blocks") is not None
    blocks = api.blocks(params) if has_blocks else None
    if not has_text and not has_blocks and params.get("attachments") is None:
        raise ApiError("no_text")
    metadata = _metadata(params)  # omitted: the message keeps the metadata it has
    api.store.update(channel.id, ts, text=text if has_text else None, blocks=blocks)
    if metadata is not None:
        msg.metadata = metadata
    body = {
        "ok": True,
        "channel": channel.id,
        "ts": ts,
        "text": msg.text,
        "message": msg.to_api(),
    }
    return _with_warnings(body, warnings)


async def chat_delete(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    ts = req_str(params, "ts", "message_not_found")
    msg = api.message(channel, ts)
    if msg.bot_id != api.ws.bot_id:
        raise ApiError("cant_delete_message")
    api.store.delete(channel.id, ts)
    return {"ok": True, "channel": channel.id, "ts": ts}


async def chat_post_ephemeral(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    user = req_str(params, "user", "user_not_found")
    if user not in api.ws.users:
        raise ApiError("user_not_found")
    text, warnings = api.text(params)
    blocks = api.blocks(params)
    if not text and not blocks and not params.get("attachments"):
        raise ApiError("no_text")
    thread_ts = opt_str(params, "thread_ts")
    if thread_ts is not None and api.store.get(channel.id, thread_ts) is None:
        thread_ts = None
    eph = api.store.post_ephemeral(
        channel.id,
        user,
        text=text,
        blocks=blocks,
        source="chat.postEphemeral",
        thread_ts=thread_ts,
        author=api.ws.bot_user_id,
    )
    return _with_warnings({"ok": True, "message_ts": eph.ts}, warnings)


async def chat_get_permalink(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    ts = req_str(params, "message_ts", "message_not_found")
    msg = api.message(channel, ts)
    link = f"{api._page_url()}archives/{channel.id}/p{ts.replace('.', '')}"
    if msg.is_reply:
        link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
    return {"ok": True, "channel": channel.id, "permalink": link}


async def reactions_add(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    return _react(api, params, add=True)


async def reactions_remove(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    return _react(api, params, add=False)


def _react(api: WebApi, params: Params, *, add: bool) -> dict[str, Any]:
    channel = api.channel(params)
    ts = req_str(params, "timestamp", "no_item_specified")
    name = req_str(params, "name", "invalid_name").strip(":")
    api.message(channel, ts)
    if not api.store.react(channel.id, ts, name, api.ws.bot_user_id, add=add):
        raise ApiError("already_reacted" if add else "no_reaction")
    return {"ok": True}


async def users_info(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    user = api.ws.users.get(req_str(params, "user", "user_not_found"))
    if user is None:
        raise ApiError("user_not_found")
    return {"ok": True, "user": user.to_api(api.ws.team_id)}


async def users_list(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    members = [u.to_api(api.ws.team_id) for u in api.ws.users.values()]
    return {"ok": True, "members": members, "response_metadata": {"next_cursor": ""}}


async def usergroups_users_list(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    group = api.ws.usergroups.get(req_str(params, "usergroup", "no_such_subteam"))
    if group is None:
        raise ApiError("no_such_subteam")
    return {"ok": True, "users": list(group.members)}


async def usergroups_list(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    groups = [g.to_api(api.ws.team_id) for g in api.ws.usergroups.values()]
    if not opt_bool(params, "include_users"):
        for g in groups:
            g.pop("users")
    return {"ok": True, "usergroups": groups}


async def conversations_info(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    return {"ok": True, "channel": api.channel(params).to_api()}


async def conversations_list(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channels = [c.to_api() for c in api.ws.channels.values()]
    return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}


def _page(
    items: list[Message], params: Params, *, newest_first: bool
) -> tuple[list[dict[str, Any]], bool, str]:
    oldest = _opt_ts(params, "oldest")
    latest = _opt_ts(params, "latest")
    inclusive = opt_bool(params, "inclusive")
    with_metadata = opt_bool(params, "include_all_metadata")

    def within(msg: Message) -> bool:
        value = parse_ts(msg.ts)
        if oldest is not None and (value < oldest or (value == oldest and not inclusive)):
            return False
        return latest is None or value < latest or (value == latest and inclusive)

    selected = [m for m in items if within(m)]
    if newest_first:
        selected.reverse()
    limit = max(1, min(opt_int(params, "limit", 100), 1000))
    start = _cursor(params)
    page = selected[start : start + limit]
    has_more = start + limit < len(selected)
    cursor = str(start + limit) if has_more else ""
    messages = [m.to_api() for m in page]
    if not with_metadata:
        # Slack returns message metadata only to callers asking for it.
        for message in messages:
            message.pop("metadata", None)
    return messages, has_more, cursor


def _opt_ts(params: Params, name: str) -> int | None:
    """``oldest``/``latest``: a Unix time in seconds, with or without a fraction."""
    value = opt_str(params, name)
    if value is None:
        return None
    secs, _, frac = value.partition(".")
    if not secs.isdigit() or (frac and not frac.isdigit()):
        raise ApiError(f"invalid_ts_{name}")
    return parse_ts(f"{secs}.{(frac + '000000')[:6]}")


def _cursor(params: Params) -> int:
    raw = opt_str(params, "cursor")
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ApiError("invalid_cursor")
    return int(raw)


def _need_history_scope(api: WebApi, channel: Channel) -> None:
    """Reading a channel needs the history scope of its type (bot tokens: only channels the
    bot is a member of)."""
    needed = "groups:history" if channel.is_private else "channels:history"
    if needed not in api.ws.scopes:
        raise ApiError("missing_scope", needed=needed, provided=",".join(api.ws.scopes))


async def conversations_history(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    _need_history_scope(api, channel)
    messages, has_more, cursor = _page(api.store.top_level(channel.id), params, newest_first=True)
    return {
        "ok": True,
        "messages": messages,
        "has_more": has_more,
        "pin_count": 0,
        "response_metadata": {"next_cursor": cursor},
    }


async def conversations_replies(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    channel = api.channel(params)
    _need_history_scope(api, channel)
    ts = req_str(params, "ts", "thread_not_found")
    parent = api.store.get(channel.id, ts)
    if parent is None:
        raise ApiError("thread_not_found")
    if parent.is_reply and parent.thread_ts is not None:
        parent = api.store.get(channel.id, parent.thread_ts) or parent
    thread = [parent, *api.store.replies(channel.id, parent.ts)]
    messages, has_more, cursor = _page(thread, params, newest_first=False)
    return {
        "ok": True,
        "messages": messages,
        "has_more": has_more,
        "response_metadata": {"next_cursor": cursor},
    }


async def views_open(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    spec = _view_spec(api, params)
    trigger = api.modals.consume_trigger(req_str(params, "trigger_id"))
    view = api.modals.open(trigger.user, spec)
    return {"ok": True, "view": copy.deepcopy(view.body)}


async def views_push(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    spec = _view_spec(api, params)
    trigger = api.modals.consume_trigger(req_str(params, "trigger_id"))
    below = [v for v in api.modals.views(trigger.user)]
    view = api.modals.open(trigger.user, spec, previous=below[-1].id if below else None)
    return {"ok": True, "view": copy.deepcopy(view.body)}


async def views_update(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    spec = _view_spec(api, params)
    view = api.modals.find(opt_str(params, "view_id"), opt_str(params, "external_id"))
    api.modals.update(view, spec, opt_str(params, "hash"))
    return {"ok": True, "view": copy.deepcopy(view.body)}


def _view_spec(api: WebApi, params: Params) -> dict[str, Any]:
    spec = opt_json(params, "view", "invalid_arguments")
    if not isinstance(spec, dict):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["missing `view`"]})
    if spec.get("type") not in ("modal", "home"):
        raise ApiError("invalid_arguments", response_metadata={"messages": ["invalid view type"]})
    errors = check_blocks(spec.get("blocks", []), max_blocks=MAX_BLOCKS_VIEW)
    if errors:
        raise ApiError(
            "invalid_arguments",
            response_metadata={"messages": [f"[ERROR] {e}" for e in errors]},
        )
    return spec


def _bot_profile(ws: Workspace) -> dict[str, Any]:
    return {
        "id": ws.bot_id,
        "app_id": ws.app_id,
        "name": ws.bot_name,
        "deleted": False,
        "team_id": ws.team_id,
    }


METHODS: dict[str, MethodSpec] = {
    "api.test": MethodSpec(lambda api, p, t: _ok(p), auth="none"),
    "auth.test": MethodSpec(auth_test),
    "apps.connections.open": MethodSpec(apps_connections_open, auth="app"),
    "chat.postMessage": MethodSpec(chat_post_message, scope="chat:write"),
    "chat.update": MethodSpec(chat_update, scope="chat:write"),
    "chat.delete": MethodSpec(chat_delete, scope="chat:write"),
    "chat.postEphemeral": MethodSpec(chat_post_ephemeral, scope="chat:write"),
    "chat.getPermalink": MethodSpec(chat_get_permalink),
    "reactions.add": MethodSpec(reactions_add, scope="reactions:write"),
    "reactions.remove": MethodSpec(reactions_remove, scope="reactions:write"),
    "users.info": MethodSpec(users_info, scope="users:read"),
    "users.list": MethodSpec(users_list, scope="users:read"),
    "usergroups.users.list": MethodSpec(usergroups_users_list, scope="usergroups:read"),
    "usergroups.list": MethodSpec(usergroups_list, scope="usergroups:read"),
    "conversations.info": MethodSpec(conversations_info, scope="channels:read"),
    "conversations.list": MethodSpec(conversations_list, scope="channels:read"),
    # channels:history or groups:history, by the channel's type: checked by the handler.
    "conversations.history": MethodSpec(conversations_history),
    "conversations.replies": MethodSpec(conversations_replies),
    "views.open": MethodSpec(views_open),
    "views.push": MethodSpec(views_push),
    "views.update": MethodSpec(views_update),
    "views.publish": MethodSpec(views_publish),
    "files.getUploadURLExternal": MethodSpec(get_upload_url_external, scope="files:write"),
    "files.completeUploadExternal": MethodSpec(complete_upload_external, scope="files:write"),
}


async def _ok(params: Params) -> dict[str, Any]:
    return {"ok": True, "args": {k: v for k, v in params.items() if k != "token"}}
