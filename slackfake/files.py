"""Slack's external upload flow, as slack_sdk's `files_upload_v2` drives it:

1. `files.getUploadURLExternal` (`filename`, `length`, optional `alt_txt`, `snippet_type`)
   answers a `file_id` and an `upload_url` on this server (`/upload/v1/{upload_id}`);
2. the client POSTs the bytes there (answered `OK - <size>`);
3. `files.completeUploadExternal` (`files`: a JSON array of `{"id", "title"?}`, optional
   `channel_id` or `channels`, `thread_ts`, `initial_comment`) shares the files: one message
   in the channel (or the thread), carrying the files, like Slack posts.

Checks, each answered like Slack (`ok: false` and an error code): `files:write` (by the method
table), `filename` and a positive integer `length` present, at most `MAX_FILE_BYTES`; the upload
URL known, used once, and its body exactly `length` bytes (otherwise HTTP 400 and the file
stays unuploaded); `files` a non-empty JSON array of known, uploaded, not yet completed IDs;
`thread_ts` only with one channel and naming a top-level message. Files are served to the page
from `/files/{file_id}/{name}`.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from slackfake.errors import ApiError
from slackfake.params import opt_str

if TYPE_CHECKING:
    from slackfake.webapi import Params, WebApi

MAX_FILE_BYTES = 20 * 1024 * 1024
"""The stand-in's cap on one file (Slack's is far larger; charts are ~50 KB)."""

_MIMETYPES = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif"}


@dataclass
class StoredFile:
    id: str
    name: str
    length: int
    alt_txt: str | None
    upload_id: str
    title: str = ""
    data: bytes | None = None
    completed: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    shares: list[tuple[str, str]] = field(default_factory=list)  # (channel, message ts)

    @property
    def filetype(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else "binary"

    @property
    def mimetype(self) -> str:
        return _MIMETYPES.get(self.filetype, "application/octet-stream")

    def to_api(self, base_url: str) -> dict[str, Any]:
        url = f"{base_url}files/{self.id}/{self.name}"
        out: dict[str, Any] = {
            "id": self.id,
            "created": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": self.mimetype,
            "filetype": self.filetype,
            "size": len(self.data or b""),
            "url_private": url,
            "permalink": url,
        }
        if self.alt_txt:
            out["alt_txt"] = self.alt_txt
        if self.shares:
            shares: dict[str, list[dict[str, str]]] = {}
            for channel, ts in self.shares:
                shares.setdefault(channel, []).append({"ts": ts})
            out["shares"] = {"public": shares}
        return out


class FileStore:
    """Files uploaded to the stand-in, by ID, and their pending upload URLs."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}
        self._uploads: dict[str, str] = {}  # upload id -> file id
        self._ids = itertools.count(1)
        self.uploads_received = 0

    def start(self, filename: str, length: int, alt_txt: str | None) -> StoredFile:
        file_id = f"F0{next(self._ids):08d}"
        upload_id = secrets.token_urlsafe(12)
        stored = StoredFile(file_id, filename, length, alt_txt, upload_id)
        self.files[file_id] = stored
        self._uploads[upload_id] = file_id
        return stored

    async def handle_upload(self, request: web.Request) -> web.Response:
        """Step 2: the bytes, POSTed to the URL step 1 gave."""
        file_id = self._uploads.pop(request.match_info["upload_id"], None)
        if file_id is None:
            return web.Response(status=404, text="unknown or used upload URL")
        stored = self.files[file_id]
        body = await request.content.read(MAX_FILE_BYTES + 1)
        if len(body) != stored.length:
            self._uploads[stored.upload_id] = file_id  # may be tried again
            return web.Response(
                status=400,
                text=f"expected {stored.length} bytes (the length given), got {len(body)}",
            )
        stored.data = body
        self.uploads_received += 1
        return web.Response(text=f"OK - {len(body)}")

    def get(self, file_id: str) -> StoredFile | None:
        return self.files.get(file_id)

    async def serve(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["file_id"])
        if stored is None or not stored.completed or stored.data is None:
            raise web.HTTPNotFound(text="no such file")
        return web.Response(
            body=stored.data,
            content_type=stored.mimetype,
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )


def _invalid(message: str) -> ApiError:
    return ApiError("invalid_arguments", response_metadata={"messages": [f"[ERROR] {message}"]})


async def get_upload_url_external(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    filename = opt_str(params, "filename")
    if not filename:
        raise _invalid("missing required field: filename")
    raw_length = params.get("length")
    try:
        length = int(str(raw_length))
    except ValueError:
        raise _invalid("missing or invalid required field: length") from None
    if length <= 0:
        raise _invalid("length must be a positive number of bytes")
    if length > MAX_FILE_BYTES:
        raise ApiError("file_too_large")
    stored = api.files.start(filename, length, opt_str(params, "alt_txt"))
    base = api._page_url()
    return {
        "ok": True,
        "upload_url": f"{base}upload/v1/{stored.upload_id}",
        "file_id": stored.id,
    }


def _file_refs(params: Params) -> list[dict[str, Any]]:
    raw = params.get("files")
    try:
        files = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        raise _invalid("files must be a JSON array") from None
    if not isinstance(files, list) or not files:
        raise _invalid("files must be a non-empty JSON array of {id, title}")
    if not all(isinstance(f, dict) and isinstance(f.get("id"), str) for f in files):
        raise _invalid("every entry of files needs an id")
    return files


async def complete_upload_external(api: WebApi, params: Params, token: str) -> dict[str, Any]:
    refs = _file_refs(params)
    channel_ids: list[str] = []
    if opt_str(params, "channel_id"):
        channel_ids.append(api.channel(params, "channel_id").id)
    elif opt_str(params, "channels"):
        for ref in str(params["channels"]).split(","):
            found = api.ws.channel(ref.strip())
            if found is None:
                raise ApiError("channel_not_found")
            channel_ids.append(found.id)
    thread = opt_str(params, "thread_ts")
    if thread is not None and len(channel_ids) != 1:
        raise _invalid("thread_ts needs exactly one channel")
    chosen: list[StoredFile] = []
    for entry in refs:
        stored = api.files.get(str(entry["id"]))
        if stored is None:
            raise ApiError("file_not_found")
        if stored.data is None:
            raise _invalid(f"file {stored.id} was never uploaded to its upload_url")
        if stored.completed:
            raise _invalid(f"file {stored.id} was already completed")
        chosen.append(stored)
    thread_ts = api.thread_parent(api.ws.channels[channel_ids[0]], thread) if thread else None
    for stored, entry in zip(chosen, refs, strict=True):
        stored.completed = True
        stored.title = str(entry.get("title") or stored.name)
    comment = opt_str(params, "initial_comment") or ""
    base = api._page_url()
    for channel in channel_ids:
        msg = api.store.post(
            channel,
            text=comment,
            blocks=[],
            user=api.ws.bot_user_id,
            bot_id=api.ws.bot_id,
            app_id=api.ws.app_id,
            team=api.ws.team_id,
            thread_ts=thread_ts,
            files=[f.to_api(base) for f in chosen],
        )
        for stored in chosen:
            stored.shares.append((channel, msg.ts))
    return {"ok": True, "files": [f.to_api(base) for f in chosen]}


__all__ = [
    "MAX_FILE_BYTES",
    "FileStore",
    "StoredFile",
    "complete_upload_external",
    "get_upload_url_external",
]
