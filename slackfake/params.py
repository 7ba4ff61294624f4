"""Reading Web API requests the way Slack does: query, form and JSON parameters merged, the token
taken from ``Authorization: Bearer`` or a ``token`` parameter, and typed accessors for values
that arrive as strings (form/query) or as JSON values.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from slackfake.errors import ApiError


async def read_params(request: web.Request) -> dict[str, Any]:
    """Merge query string, form body (urlencoded or multipart) and JSON body; later wins."""
    params: dict[str, Any] = dict(request.query)
    if request.method in ("POST", "PUT", "PATCH") and request.can_read_body:
        if request.content_type == "application/json":
            raw = await request.read()
            if raw.strip():
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise ApiError("invalid_json") from exc
                if not isinstance(body, dict):
                    raise ApiError("invalid_json")
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form: MultiDictProxy[Any] = await request.post()
            params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def token_of(request: web.Request, params: dict[str, Any]) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    token = params.get("token")
    return token if isinstance(token, str) and token else None


def opt_str(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ApiError("invalid_arguments", response_metadata={"messages": [f"invalid `{name}`"]})


def req_str(params: dict[str, Any], name: str, missing: str = "invalid_arguments") -> str:
    value = opt_str(params, name)
    if value is None:
        raise ApiError(missing, response_metadata={"messages": [f"missing required `{name}`"]})
    return value


def opt_bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def opt_int(params: dict[str, Any], name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ApiError("invalid_arguments") from exc


def opt_json(params: dict[str, Any], name: str, bad: str) -> Any:
    """A structured parameter (blocks, view, metadata): a JSON value or a JSON-encoded string."""
    value = params.get(name)
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(bad) from exc
    return value
