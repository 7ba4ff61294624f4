"""A stand-in for the Messages API behind the Anthropic SDK's own test seam.

The 2.x SDK speaks HTTP through `httpx2`, which respx does not intercept; the SDK takes an
`http_client` instead, and `MessagesAPI.http_client()` is an `httpx2.AsyncClient` whose
`MockTransport` answers `POST /v1/messages` from a queue and records every request. The SDK's
own request building, retries, `retry-after` handling and error classes all run unchanged.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

Answer = httpx2.Response | Exception


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx2.Response:
    """A response as the API sends it (JSON body, optional headers)."""
    return httpx2.Response(status, json=body, headers=headers)


class MessagesAPI:
    """Answers in order; the last answer repeats. An exception answer is raised by the transport
    (e.g. `httpx2.ReadTimeout`, `httpx2.ConnectError`), as a failing network would."""

    def __init__(self, *answers: Answer) -> None:
        self.answers: list[Answer] = list(answers)
        self.requests: list[httpx2.Request] = []

    def answer(self, *answers: Answer) -> MessagesAPI:
        self.answers = list(answers)
        return self

    @property
    def call_count(self) -> int:
        return len(self.requests)

    def last_body(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.requests[-1].content)
        return body

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.method != "POST" or request.url.path != "/v1/messages":
            return reply(404, {"type": "error", "error": {"type": "not_found_error"}})
        if not self.answers:
            raise AssertionError("the Messages API stand-in has no answer queued")
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        # A fresh response each time: a repeated answer must not be one already read and closed.
        return httpx2.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def http_client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=httpx2.MockTransport(self._handle))
