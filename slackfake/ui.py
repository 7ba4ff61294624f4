"""The web page: serves the static HTML/JS/CSS, ``GET /ui/state`` (the channel as the chosen user
sees it, pre-rendered by viewmodel.py) and the ``POST /ui/…`` actions the page sends (slash
command, message, click, modal submit/close, dismiss), which go through SlackFake like a test's.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from slackfake.errors import AckTimeout, NoSocketConnection, SlackFakeError
from slackfake.mrkdwn import Names, plain_text_of
from slackfake.viewmodel import block_view, ephemeral_view, message_view, names_for

if TYPE_CHECKING:
    from slackfake.server import SlackFake

STATIC_FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
}
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def _static(name: str) -> bytes:
    return resources.files("slackfake").joinpath("static", name).read_bytes()


class PageRoutes:
    """Routes of the page for one SlackFake."""

    def __init__(self, fake: SlackFake) -> None:
        self.fake = fake

    def register(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_get("/archives/{tail:.*}", self.index)
        app.router.add_get("/static/{name}", self.static)
        app.router.add_get("/ui/state", self.state)
        app.router.add_post("/ui/command", self.command)
        app.router.add_post("/ui/message", self.message)
        app.router.add_post("/ui/click", self.click)
        app.router.add_post("/ui/view_submit", self.view_submit)
        app.router.add_post("/ui/view_close", self.view_close)
        app.router.add_post("/ui/dismiss", self.dismiss)
        app.router.add_post("/ui/home_open", self.home_open)
        app.router.add_post("/ui/home_click", self.home_click)

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(
            body=_static("index.html"),
            content_type="text/html",
            charset="utf-8",
            headers=_SECURITY_HEADERS,
        )

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC_FILES:
            raise web.HTTPNotFound(text="no such file")
        return web.Response(
            body=_static(name),
            content_type=STATIC_FILES[name],
            charset="utf-8",
            headers=_SECURITY_HEADERS,
        )

    # ----- state -----------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.Response:
        ws = self.fake.workspace
        user = request.query.get("user") or next(iter(u.id for u in ws.humans()), "")
        if user not in ws.users:
            return _json({"ok": False, "error": "user_not_found"}, status=404)
        channel = ws.channel(request.query.get("channel") or self.fake.default_channel())
        if channel is None:
            return _json({"ok": False, "error": "channel_not_found"}, status=404)
        return _json(build_state(self.fake, user, channel.id))

    # ----- actions ---------------------------------------------------------------------
    async def command(self, request: web.Request) -> web.Response:
        body = await _body(request)
        text = str(body.get("text", "")).strip()
        if not text.startswith("/"):
            return await self._post_message(body, text)
        command, _, rest = text.partition(" ")
        return await self._run(
            self.fake.slash_command(
                user=str(body.get("user", "")),
                channel=str(body.get("channel") or "") or None,
                command=command,
                text=rest.strip(),
            ),
            what=command,
        )

    async def message(self, request: web.Request) -> web.Response:
        body = await _body(request)
        return await self._post_message(body, str(body.get("text", "")).strip())

    async def _post_message(self, body: dict[str, Any], text: str) -> web.Response:
        if not text:
            return _json({"ok": False, "error": "no_text", "message": "Type a message first."})
        thread_ts = body.get("thread_ts")
        return await self._run(
            self.fake.user_message(
                user=str(body.get("user", "")),
                channel=str(body.get("channel") or "") or None,
                text=self.fake.workspace.encode_mentions(text),
                thread_ts=str(thread_ts) if thread_ts else None,
                wait_for_ack=False,
            ),
            what="message",
        )

    async def click(self, request: web.Request) -> web.Response:
        body = await _body(request)
        value = body.get("value")
        return await self._run(
            self.fake.click(
                user=str(body.get("user", "")),
                channel=str(body.get("channel") or "") or None,
                message_ts=str(body.get("message_ts", "")),
                action_id=str(body.get("action_id", "")),
                block_id=str(body["block_id"]) if body.get("block_id") is not None else None,
                value=str(value) if value is not None else None,
            ),
            what="click",
        )

    async def view_submit(self, request: web.Request) -> web.Response:
        body = await _body(request)
        values = body.get("values")
        return await self._run(
            self.fake.submit_view(
                user=str(body.get("user", "")),
                view_id=str(body.get("view_id", "")),
                values=values if isinstance(values, dict) else {},
            ),
            what="submit",
        )

    async def view_close(self, request: web.Request) -> web.Response:
        body = await _body(request)
        return await self._run(
            self.fake.close_view(user=str(body.get("user", "")), view_id=str(body.get("view_id"))),
            what="close",
        )

    async def home_open(self, request: web.Request) -> web.Response:
        body = await _body(request)
        return await self._run(self.fake.open_home(user=str(body.get("user", ""))), what="home")

    async def home_click(self, request: web.Request) -> web.Response:
        body = await _body(request)
        value = body.get("value")
        return await self._run(
            self.fake.click_home(
                user=str(body.get("user", "")),
                action_id=str(body.get("action_id", "")),
                block_id=str(body["block_id"]) if body.get("block_id") is not None else None,
                value=str(value) if value is not None else None,
            ),
            what="click",
        )

    async def dismiss(self, request: web.Request) -> web.Response:
        body = await _body(request)
        eph = self.fake.store.ephemeral(str(body.get("user", "")), str(body.get("ts", "")))
        if eph is None:
            return _json({"ok": False, "error": "message_not_found"})
        self.fake.store.delete_ephemeral(eph)
        return _json({"ok": True})

    async def _run(self, action: Any, *, what: str) -> web.Response:
        try:
            result = await action
        except AckTimeout as exc:
            return _json(
                {
                    "ok": False,
                    "error": "operation_timeout",
                    "message": f"{what} failed: the app did not respond in time ({exc}).",
                }
            )
        except NoSocketConnection:
            return _json(
                {
                    "ok": False,
                    "error": "app_offline",
                    "message": "The app is not connected (no Socket Mode connection). "
                    "Start the bot against this stand-in, then try again.",
                }
            )
        except (SlackFakeError, ValueError) as exc:
            return _json({"ok": False, "error": "invalid_request", "message": str(exc)})
        out: dict[str, Any] = {"ok": True}
        if isinstance(result, dict):
            out["ack"] = dict(result)
        return _json(out)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text="expected a JSON object") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _json(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


def build_state(fake: SlackFake, user: str, channel: str) -> dict[str, Any]:
    """The page's whole model for ``user`` looking at ``channel``."""
    ws = fake.workspace
    store = fake.store
    names = names_for(ws, user)
    ephemerals = store.ephemerals(user=user, channel=channel, include_slackbot=True)
    top: list[dict[str, Any]] = []
    for msg in store.top_level(channel):
        replies = store.replies(channel, msg.ts)
        view = message_view(msg, ws, names, [r.user for r in replies])
        thread = [message_view(r, ws, names) for r in replies]
        thread += [ephemeral_view(e, ws, names) for e in ephemerals if e.thread_ts == msg.ts]
        view["replies"] = sorted(thread, key=lambda item: item["ts"])
        top.append(view)
    known = {m.ts for m in store.top_level(channel)}
    for eph in ephemerals:
        if eph.thread_ts is None or eph.thread_ts not in known:
            item = ephemeral_view(eph, ws, names)
            item["replies"] = []
            top.append(item)
    top.sort(key=lambda item: item["ts"])
    current = ws.channels[channel]
    views = []
    for v in fake.modals.views(user):
        views.append(
            {
                "id": v.id,
                "callback_id": v.body.get("callback_id", ""),
                "title": plain_text_of(v.body.get("title")) or "App",
                "submit": plain_text_of(v.body.get("submit")) or "Submit",
                "close": plain_text_of(v.body.get("close")) or "Cancel",
                "blocks": [block_view(b, names) for b in v.body.get("blocks") or []],
                "errors": dict(v.errors),
            }
        )
    return {
        "ok": True,
        "team": {"id": ws.team_id, "domain": ws.team_domain, "name": ws.team_name},
        "bot": {"id": ws.bot_user_id, "name": ws.bot_name},
        "me": _person(fake, user),
        "users": [_person(fake, u.id) for u in ws.humans()],
        "channels": [{"id": c.id, "name": c.name} for c in ws.channels.values()],
        "channel": {"id": current.id, "name": current.name, "topic": current.topic},
        "messages": top,
        "views": views,
        "home": _home(fake, user, names),
        "app_connected": bool(fake.active_sockets),
    }


def _home(fake: SlackFake, user: str, names: Names) -> dict[str, Any] | None:
    view = fake.home(user)
    if view is None:
        return None
    return {
        "id": view.get("id"),
        "blocks": [block_view(b, names) for b in view.get("blocks") or []],
    }


def _person(fake: SlackFake, user_id: str) -> dict[str, Any]:
    ws = fake.workspace
    return {
        "id": user_id,
        "name": ws.user_name(user_id),
        "groups": [g.handle for g in ws.groups_of(user_id)],
    }
