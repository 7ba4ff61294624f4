"""Errors the stand-in raises to the test (or demo) code that drives it.

They describe what Slack would have shown the user: an envelope that was never acknowledged,
no Socket Mode connection to deliver on, or a click on a button that does not exist.
"""

from __future__ import annotations


class SlackFakeError(Exception):
    """Base class of every error raised by slackfake."""


class AckTimeout(SlackFakeError):
    """The app did not acknowledge an envelope in time (Slack shows the user a timeout)."""

    def __init__(self, envelope_id: str, envelope_type: str, timeout: float, *, lost: bool = False):
        self.envelope_id = envelope_id
        self.envelope_type = envelope_type
        self.timeout = timeout
        self.lost = lost
        if lost:
            detail = "the ack was lost because the socket was dropped (fault injection)"
        else:
            detail = f"no ack within {timeout:g} s"
        super().__init__(
            f"{envelope_type} envelope {envelope_id} was not acknowledged: {detail}. "
            "Check that a listener matches it and calls ack() first."
        )


class NoSocketConnection(SlackFakeError):
    """No Socket Mode client was connected to deliver an envelope to."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        super().__init__(
            f"no Socket Mode connection within {timeout:g} s: start the app's socket mode handler "
            "(connect_async) against this stand-in before sending commands or clicks"
        )


class UnknownMessage(SlackFakeError, LookupError):
    """A message (or ephemeral message) the caller referred to does not exist."""


class UnknownAction(SlackFakeError, LookupError):
    """The message has no interactive element with the requested action_id."""


class UnknownView(SlackFakeError, LookupError):
    """No open modal view with that id exists for the user."""


class ApiError(Exception):
    """Internal to the Web API handlers: answer ``{"ok": false, "error": code, **fields}``."""

    def __init__(self, code: str, *, status: int = 200, **fields: object) -> None:
        self.code = code
        self.status = status
        self.fields = fields
        super().__init__(code)
