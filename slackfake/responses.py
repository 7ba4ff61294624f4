"""response_url endpoints (``POST /commands/…``, ``POST /actions/…``) and applying a response
message the way Slack does: ephemeral for the user by default, ``in_channel`` as a channel
message, ``replace_original``/``delete_original`` on the message that held the button.

The same rules apply to a slash command's ack payload (the "immediate response").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from slackfake import ids
from slackfake.limits import check_blocks, truncate_text
from slackfake.records import ResponsePost
from slackfake.store import EphemeralSource, MessageStore
from slackfake.workspace import Workspace

TargetKind = Literal["commands", "actions"]


@dataclass
class ResponseTarget:
    """Where a response_url's messages go."""

    kind: TargetKind
    channel: str
    user: str
    message_ts: str | None = None
    is_ephemeral: bool = False
    thread_ts: str | None = None


@dataclass
class Outcome:
    status: int
    outcome: str
    errors: list[str]


class ResponseUrls:
    """Issues response URLs and applies what is posted to them."""

    def __init__(self, store: MessageStore, workspace: Workspace) -> None:
        self._store = store
        self._ws = workspace
        self._targets: dict[str, ResponseTarget] = {}
        self.posts: list[ResponsePost] = []

    def issue(self, base_url: str, target: ResponseTarget) -> str:
        path = f"/{target.kind}/{self._ws.team_id}/{len(self._targets) + 1}/{ids.token(12)}"
        self._targets[path] = target
        return base_url.rstrip("/") + path

    async def handle(self, request: web.Request) -> web.Response:
        target = self._targets.get(request.path)
        if target is None:
            return web.Response(status=404, text="no_service")
        body: Any
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                body = None
        else:
            form = await request.post()
            raw = form.get("payload")
            try:
                body = json.loads(raw) if isinstance(raw, str) else None
            except json.JSONDecodeError:
                body = None
        if not isinstance(body, dict):
            result = Outcome(400, "invalid_payload", [])
            body = {}
        else:
            result = self.apply(target, body, source="response_url")
        self.posts.append(
            ResponsePost(
                url=str(request.url),
                kind=target.kind,
                body=body,
                at=time.time(),
                status=result.status,
                outcome=result.outcome,
                errors=result.errors,
            )
        )
        text = "ok" if result.status == 200 else result.outcome
        return web.Response(status=result.status, text=text)

    def apply(
        self, target: ResponseTarget, body: dict[str, Any], *, source: EphemeralSource
    ) -> Outcome:
        """Apply a response message; returns the HTTP status Slack would answer and what
        happened (``deleted``, ``replaced``, ``in_channel``, ``ephemeral`` or an error code)."""
        if _flag(body.get("delete_original")):
            return self._delete_original(target)
        blocks = body.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks)
            except json.JSONDecodeError:
                return Outcome(400, "invalid_blocks_format", [])
        if blocks is not None:
            errors = check_blocks(blocks)
            if errors:
                return Outcome(400, "invalid_blocks", errors)
        raw_text = body.get("text")
        text, _ = truncate_text(raw_text if isinstance(raw_text, str) else "")
        if not text and not blocks:
            return Outcome(400, "no_text", [])
        block_list: list[dict[str, Any]] = list(blocks or [])
        if _flag(body.get("replace_original")) and target.message_ts is not None:
            return self._replace_original(target, text, block_list)
        thread_ts = body.get("thread_ts")
        thread = str(thread_ts) if thread_ts else None
        if body.get("response_type") == "in_channel":
            if thread is not None and self._store.get(target.channel, thread) is None:
                thread = None
            self._store.post(
                target.channel,
                text=text,
                blocks=block_list,
                user=self._ws.bot_user_id,
                bot_id=self._ws.bot_id,
                app_id=self._ws.app_id,
                team=self._ws.team_id,
                thread_ts=thread,
            )
            return Outcome(200, "in_channel", [])
        self._store.post_ephemeral(
            target.channel,
            target.user,
            text=text,
            blocks=block_list,
            source=source,
            thread_ts=thread or target.thread_ts,
            author=self._ws.bot_user_id,
        )
        return Outcome(200, "ephemeral", [])

    def _delete_original(self, target: ResponseTarget) -> Outcome:
        if target.message_ts is None:
            return Outcome(404, "message_not_found", [])
        if target.is_ephemeral:
            eph = self._store.ephemeral(target.user, target.message_ts)
            if eph is None:
                return Outcome(404, "message_not_found", [])
            self._store.delete_ephemeral(eph)
            return Outcome(200, "deleted", [])
        if self._store.get(target.channel, target.message_ts) is None:
            return Outcome(404, "message_not_found", [])
        self._store.delete(target.channel, target.message_ts)
        return Outcome(200, "deleted", [])

    def _replace_original(
        self, target: ResponseTarget, text: str, blocks: list[dict[str, Any]]
    ) -> Outcome:
        assert target.message_ts is not None
        if target.is_ephemeral:
            eph = self._store.ephemeral(target.user, target.message_ts)
            if eph is None:
                return Outcome(404, "message_not_found", [])
            self._store.replace_ephemeral(eph, text=text, blocks=blocks)
            return Outcome(200, "replaced", [])
        if self._store.get(target.channel, target.message_ts) is None:
            return Outcome(404, "message_not_found", [])
        self._store.update(target.channel, target.message_ts, text=text, blocks=blocks)
        return Outcome(200, "replaced", [])


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)
