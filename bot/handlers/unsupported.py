"""Requests no listener takes, and requests Bolt could not even match: every one is
acknowledged (else Slack retries it or shows the user an error), and whoever sent it is told
"not supported" where Slack gives a way to answer.

`RefuseMalformed`, a global middleware, stops first what Bolt cannot even read (an `actions`
list without `action_id`, empty or null; an event or a view that is not an object: Bolt's
matchers and argument builders index into them and raise): acked, and a click is told it
could not be used.

`register` makes the rest of this module the app's error handler: with
`AsyncApp(raise_error_for_unhandled_request=True)` Bolt sends unmatched requests there as
`BoltUnhandledRequestError`, and a matcher or listener that raises lands there too. The
handler returns the ack (status 200, with the body the kind of request expects) and starts the
answer in the background, once per request (`bot.redelivery.once`):

| request | ack | answer |
| --- | --- | --- |
| another app's slash command | its text | (the ack's text is shown to the user) |
| a click Slack's payload does not describe | bare | ephemeral "could not be used" |
| a message shortcut | bare | ephemeral "not supported" (response_url) |
| a global shortcut | bare | a small modal "not supported" (trigger_id) |
| an options request (`block_suggestion`) | `{"options": []}` | none |
| a form (`view_submission`) | `response_action: update` to a view saying why | (the view) |
| `view_closed`, events, anything else | bare | none (no one to answer) |
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError, SlackClientError

from bot import messages, payload
from bot.client import respond_via
from bot.deps import BotDeps
from bot.redelivery import once
from bot.render.kit import code_span, rendered, section
from bot.replies import tell

logger = logging.getLogger(__name__)

Via = Literal["none", "message", "modal"]

_SHOWN_ID = 80
"""Characters of a callback or action ID shown back to the user."""


@dataclass(frozen=True)
class Reply:
    """What to send: the ack body (None: a bare ack) and the answer to the user, if any
    (`via` "message": ephemeral, by response_url or chat.postEphemeral; "modal": views.open)."""

    ack: dict[str, Any] | None = None
    text: str | None = None
    via: Via = "none"


def _shown(value: object) -> str:
    raw = str(value) if isinstance(value, str | int) and value != "" else "?"
    return code_span(raw[:_SHOWN_ID])


def notice_view(title: str, text: str) -> dict[str, Any]:
    """A modal that only says something (no submit button)."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [section(text).to_dict()],
    }


def reply_for(body: Mapping[str, Any], ours: str, *, unhandled: bool) -> Reply:
    """The ack and the answer for a request nothing handled (`unhandled`) or whose handling
    raised. Pure."""
    kind = body.get("type")
    command = body.get("command")
    if isinstance(command, str) and command:
        if unhandled or command != ours:
            return Reply(ack={"text": messages.not_our_command(_shown(command), ours)})
        return Reply(ack={"text": messages.request_failed(f"`{ours}`")})
    if kind == "block_actions":
        if payload.malformed(body):
            return Reply(text=messages.click_unreadable(), via="message")
        return Reply(text=messages.request_failed("this click"), via="message")
    if kind == "message_action":
        what = f"the message shortcut {_shown(body.get('callback_id'))}"
        return Reply(text=messages.not_supported(what, ours), via="message")
    if kind == "shortcut":
        what = f"the shortcut {_shown(body.get('callback_id'))}"
        return Reply(text=messages.not_supported(what, ours), via="modal")
    if kind in ("block_suggestion", "dialog_suggestion"):
        return Reply(ack={"options": []})
    if kind == "view_submission":
        view = body.get("view")
        callback = view.get("callback_id") if isinstance(view, Mapping) else None
        text = (
            messages.form_not_supported(_shown(callback), ours)
            if unhandled
            else messages.request_failed("this form")
        )
        return Reply(
            ack={"response_action": "update", "view": notice_view("tikvops", text)},
        )
    if kind in ("interactive_message", "dialog_submission", "workflow_step_edit"):
        what = f"this kind of request ({_shown(kind)})"
        return Reply(text=messages.not_supported(what, ours), via="message")
    return Reply()


def _describe(body: Mapping[str, Any]) -> str:
    """A short log description of a request (never its full content)."""
    event = body.get("event")
    parts = [
        f"type={str(body.get('type'))[:40]}",
        f"command={str(body.get('command'))[:40]}" if "command" in body else "",
        f"event={str(event.get('type'))[:40]}" if isinstance(event, Mapping) else "",
        f"user={payload.user_id(body)}",
    ]
    return " ".join(p for p in parts if p)


async def _answer(
    deps: BotDeps, request: AsyncBoltRequest, body: Mapping[str, Any], reply: Reply
) -> None:
    text = reply.text or ""
    user = payload.user_id(body)
    if reply.via == "modal":
        trigger = body.get("trigger_id")
        if not isinstance(trigger, str) or not trigger:
            logger.info("no trigger to answer %s", _describe(body))
            return
        try:
            await deps.client.views_open(trigger_id=trigger, view=notice_view("tikvops", text))
        except (SlackApiError, SlackClientError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("could not answer %s in a modal: %s", _describe(body), exc)
        return
    respond = request.context.respond
    container = body.get("container")
    thread = container.get("thread_ts") if isinstance(container, Mapping) else None
    await tell(
        deps.client,
        rendered(text, [section(text)]),
        user=user,
        channel=payload.channel_id(body),
        thread_ts=thread if isinstance(thread, str) else None,
        respond=respond_via(respond, deps.client) if isinstance(respond, AsyncRespond) else None,
    )


def _answer_later(
    deps: BotDeps, request: AsyncBoltRequest, body: Mapping[str, Any], reply: Reply
) -> None:
    if reply.text:
        deps.tasks.spawn(
            once(request.context, lambda: _answer(deps, request, body, reply)),
            "answer an unsupported request",
        )


class RefuseMalformed(AsyncMiddleware):
    """Acknowledge a request Bolt could not read (`bot.payload.malformed`) before any matcher
    sees it; a click is told that the button could not be used."""

    def __init__(self, deps: BotDeps) -> None:
        self._deps = deps

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse | None:
        body = req.body
        why = (
            payload.malformed(body) if isinstance(body, Mapping) else "the payload is not an object"
        )
        if why is None:
            return await next()
        logger.warning("acknowledged a request Bolt cannot read (%s): %s", _describe(body), why)
        if isinstance(body, Mapping):
            _answer_later(
                self._deps, req, body, reply_for(body, self._deps.config.command, unhandled=False)
            )
        return BoltResponse(status=200, body="")


def register(app: AsyncApp, deps: BotDeps) -> None:
    """Make this module the app's error handler (for unmatched and failed requests)."""

    async def on_error(
        error: Exception, request: AsyncBoltRequest, response: BoltResponse | None
    ) -> BoltResponse:
        try:
            return handle_error(error, request)
        except Exception:
            logger.exception("the error handler failed; the request is acknowledged")
            return BoltResponse(status=200, body="")

    def handle_error(error: Exception, request: AsyncBoltRequest) -> BoltResponse:
        body = request.body if isinstance(request.body, Mapping) else {}
        unhandled = isinstance(error, BoltUnhandledRequestError)
        if unhandled:
            logger.info("acknowledged a request nothing handles (%s)", _describe(body))
        else:
            logger.error(
                "a request could not be handled (%s); acknowledged: %s",
                _describe(body),
                error,
                exc_info=error,
            )
        reply = reply_for(body, deps.config.command, unhandled=unhandled)
        _answer_later(deps, request, body, reply)
        if reply.ack is None:
            return BoltResponse(status=200, body="")
        return BoltResponse(status=200, body=reply.ack)

    app.error(on_error)


__all__ = ["RefuseMalformed", "Reply", "notice_view", "register", "reply_for"]
