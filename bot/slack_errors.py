"""How the outbox reads Slack's refusals: which error codes mean the blocks were refused, a
transient failure, a message gone, or an answer lost (the post may exist), and the details
of an error (its code, the scope it needs, Retry-After)."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError

BLOCK_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_blocks_too_long",
        "msg_too_long",
        "invalid_arguments",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_block_id",
    }
)
"""Slack refused the shape of the message: send the plain-text version instead."""

TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)
"""Slack could not take it now: retry later, never give up."""

GONE_ERRORS = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
"""The message to edit cannot be edited: post the new version as a new message."""

THREAD_ERRORS = frozenset({"thread_not_found", "message_not_found"})
"""The thread parent vanished: post at the top of the channel instead."""

UNCERTAIN_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable"})
"""Slack answered, but says the operation may partly have happened: a post may exist."""


def may_have_posted(exc: SlackApiError) -> bool:
    """Did this failed answer leave it open whether Slack stored the message?"""
    status = getattr(exc.response, "status_code", 200)
    return status >= 500 or error_code(exc) in UNCERTAIN_ERRORS


def transient(exc: SlackApiError) -> bool:
    status = getattr(exc.response, "status_code", 200)
    return status == 429 or status >= 500 or error_code(exc) in TRANSIENT_ERRORS


def needed(exc: SlackApiError) -> bool:
    try:
        return bool(exc.response.get("needed"))
    except AttributeError:
        return False


def error_code(exc: SlackApiError) -> str:
    try:
        return str(exc.response.get("error") or "unknown_error")
    except AttributeError:
        return "unknown_error"


def details(exc: SlackApiError) -> str:
    try:
        errors = exc.response.get("errors") or exc.response.get("response_metadata") or ""
    except AttributeError:
        return ""
    return str(errors)[:500]


def retry_after(exc: SlackApiError) -> float | None:
    headers = getattr(exc.response, "headers", None) or {}
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            try:
                return max(float(value), 0.0)
            except ValueError:
                return None
    return None


__all__ = [
    "BLOCK_ERRORS",
    "GONE_ERRORS",
    "THREAD_ERRORS",
    "TRANSIENT_ERRORS",
    "UNCERTAIN_ERRORS",
    "details",
    "error_code",
    "may_have_posted",
    "needed",
    "retry_after",
    "transient",
]
