"""HTTP response builders matching PD's renderer (unrolled/render) and gorilla/mux defaults.

- `json_body`: 2-space indented JSON + newline, `application/json; charset=UTF-8`.
- `data_body`: compact easyjson region bodies, `application/octet-stream`, no newline.
- `errcode_body`: pingcap/errcode objects with the `TiDB-Error-Code` header.
- `not_found_text` / `method_not_allowed`: gorilla/mux's 404 and 405.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from sim.gojson import encode_indent

JSON_TYPE = "application/json; charset=UTF-8"
DATA_TYPE = "application/octet-stream"
TEXT_TYPE = "text/plain; charset=utf-8"


def json_body(value: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=encode_indent(value).encode(), status=status, headers={"Content-Type": JSON_TYPE}
    )


def data_body(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode(), status=status, headers={"Content-Type": DATA_TYPE})


def errcode_body(status: int, code: str, msg: str, data: dict[str, Any]) -> web.Response:
    body = encode_indent({"code": code, "msg": msg, "data": data}).encode()
    return web.Response(
        body=body,
        status=status,
        headers={"Content-Type": JSON_TYPE, "TiDB-Error-Code": code},
    )


def not_found_text() -> web.Response:
    return web.Response(
        body=b"404 page not found\n",
        status=404,
        headers={"Content-Type": TEXT_TYPE, "X-Content-Type-Options": "nosniff"},
    )


def plain_error(status: int, message: str) -> web.Response:
    """Go's http.Error: text/plain with a trailing newline."""
    return web.Response(
        body=(message + "\n").encode(),
        status=status,
        headers={"Content-Type": TEXT_TYPE, "X-Content-Type-Options": "nosniff"},
    )


def method_not_allowed() -> web.Response:
    return web.Response(body=b"", status=405)


def raw_query(request: web.Request) -> list[tuple[str, bytes]]:
    """Query pairs with values as raw bytes (PD keys are raw bytes, not UTF-8 text)."""
    pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True, encoding="latin-1")
    return [(key, value.encode("latin-1")) for key, value in pairs]


def raw_param(request: web.Request, name: str) -> bytes | None:
    for key, value in raw_query(request):
        if key == name:
            return value
    return None


class ErrcodeError(Exception):
    """Answer with a pingcap/errcode object (malformed input, bad path ids)."""

    def __init__(self, status: int, code: str, msg: str, data: dict[str, Any]) -> None:
        super().__init__(msg)
        self.status = status
        self.code = code
        self.msg = msg
        self.data = data


class RawError(Exception):
    """Answer with an already-built response (404 text, null bodies, ...)."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__("raw response")
        self.response = response
