"""What the stand-in saw, kept for assertions: Web API calls, envelopes delivered, acks received
and posts to response_url.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ApiCall:
    """One Web API request; ``status``/``response``/``fault`` are filled in when answered.
    With a lost answer (``Faults.lose_answer``) ``status``/``response`` say what Slack did and
    ``lost`` is True: the caller never saw them."""

    method: str
    params: dict[str, Any]
    http_method: str
    token: str | None
    at: float
    status: int = 0
    response: dict[str, Any] | None = None
    fault: str | None = None
    lost: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response and self.response.get("ok"))


class Ack(dict[str, Any]):
    """An ack from the app. The mapping is the ack's payload (empty for a bare ``ack()``);
    ``envelope_id`` names the envelope it answers."""

    def __init__(
        self,
        envelope_id: str,
        payload: Mapping[str, Any] | None,
        *,
        connection_id: int,
        at: float,
        lost: bool = False,
    ) -> None:
        super().__init__(payload or {})
        self.envelope_id = envelope_id
        self.has_payload = payload is not None
        self.connection_id = connection_id
        self.at = at
        self.lost = lost

    def __repr__(self) -> str:
        return f"Ack({self.envelope_id!r}, {dict(self)!r})"


@dataclass
class Delivery:
    """One text frame carrying an envelope, sent on one connection."""

    envelope: dict[str, Any]
    connection_id: int
    at: float

    @property
    def envelope_id(self) -> str:
        return str(self.envelope["envelope_id"])

    @property
    def type(self) -> str:
        return str(self.envelope.get("type"))


@dataclass
class ResponsePost:
    """One POST to a response_url and what the stand-in did with it."""

    url: str
    kind: str
    body: dict[str, Any]
    at: float
    status: int
    outcome: str
    errors: list[str] = field(default_factory=list)
