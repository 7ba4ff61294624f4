"""Fault injection switches for tests: Web API failures and Socket Mode mishaps.

Web API faults are queued per method (``"*"`` matches every method) and consumed one per call,
first armed first used. :meth:`Faults.lose_answer` is the one fault that lets Slack do the work:
the call is carried out (a message is stored) and only the answer is lost on its way back.
Socket faults are counters the socket hub consumes on its next delivery, except
:meth:`Faults.drop_socket`, which acts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

FaultKind = Literal["ratelimited", "server_error", "error", "slow", "lost_answer"]
LostHow = Literal["disconnect", "server_error", "late"]
"""How an answer is lost after the call was carried out: the connection is closed without an
answer (a proxy or load balancer dropping it), a 5xx page is answered instead (a gateway
timing out), or the answer comes only after ``delay`` seconds (the client times out first)."""


@dataclass
class ApiFault:
    """One armed Web API fault; ``remaining`` calls are still to be affected."""

    kind: FaultKind
    method: str
    remaining: int
    retry_after: int = 1
    status: int = 200
    error: str = ""
    delay: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    how: LostHow = "disconnect"


class Faults:
    """What the next calls and deliveries should suffer. Reached as ``SlackFake.faults``."""

    def __init__(self, drop_sockets: Callable[[], int]) -> None:
        self._drop_sockets = drop_sockets
        self._api: list[ApiFault] = []
        self.duplicates_pending = 0
        self.lost_acks_pending = 0

    # ----- Web API ---------------------------------------------------------------------
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Next ``times`` calls of ``method`` get HTTP 429, ``Retry-After`` and ``ratelimited``."""
        self._arm(ApiFault("ratelimited", method, times, retry_after=retry_after, status=429))

    def server_error(self, method: str, times: int = 1, status: int = 503) -> None:
        """Next ``times`` calls of ``method`` get an HTTP 5xx (500 and 503 are retried by the
        SDK's AsyncServerErrorRetryHandler)."""
        if not 500 <= status <= 599:
            raise ValueError(f"server_error needs a 5xx status, got {status}")
        self._arm(ApiFault("server_error", method, times, status=status))

    def error(self, method: str, error: str, times: int = 1, **fields: Any) -> None:
        """Next ``times`` calls answer HTTP 200 ``{"ok": false, "error": error, **fields}``."""
        self._arm(ApiFault("error", method, times, error=error, fields=dict(fields)))

    def slow(self, method: str, delay: float, times: int = 1) -> None:
        """Next ``times`` calls are answered normally, but only after ``delay`` seconds."""
        self._arm(ApiFault("slow", method, times, delay=delay))

    def lose_answer(
        self,
        method: str,
        times: int = 1,
        *,
        how: LostHow = "disconnect",
        delay: float = 30.0,
        status: int = 503,
    ) -> None:
        """Next ``times`` calls of ``method`` are carried out (a ``chat.postMessage`` stores its
        message), then the answer is lost: ``how="disconnect"`` closes the connection without
        an answer, ``"server_error"`` answers HTTP ``status`` (5xx) with an error page as a
        gateway would, ``"late"`` answers only after ``delay`` seconds."""
        if how == "server_error" and not 500 <= status <= 599:
            raise ValueError(f"a lost answer's server_error needs a 5xx status, got {status}")
        if how == "late" and delay <= 0:
            raise ValueError("a late answer needs a positive delay")
        self._arm(ApiFault("lost_answer", method, times, status=status, delay=delay, how=how))

    def take(self, method: str) -> ApiFault | None:
        """Consume the first armed fault matching ``method`` (used by the Web API handler)."""
        for fault in self._api:
            if fault.method in (method, "*"):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._api.remove(fault)
                return fault
        return None

    @property
    def pending(self) -> list[ApiFault]:
        return list(self._api)

    # ----- Socket Mode -----------------------------------------------------------------
    def drop_socket(self) -> int:
        """Abort every Socket Mode connection now (TCP reset, no close frame); the client must
        notice and reconnect. Returns how many connections were dropped."""
        return self._drop_sockets()

    def duplicate_next_envelope(self, times: int = 1) -> None:
        """The next ``times`` envelopes are sent twice with the same envelope_id."""
        self.duplicates_pending += times

    def lose_next_ack(self) -> None:
        """The next envelope is delivered, but its ack is lost: once the client acks, the
        socket is dropped and the push raises AckTimeout(lost=True)."""
        self.lost_acks_pending += 1

    def clear(self) -> None:
        """Disarm everything that has not fired yet."""
        self._api.clear()
        self.duplicates_pending = 0
        self.lost_acks_pending = 0

    def _arm(self, fault: ApiFault) -> None:
        if fault.remaining < 1:
            raise ValueError("times must be at least 1")
        self._api.append(fault)
