"""The log of every request the simulator received (PD API and store /metrics).

Tests assert exactly what a client sent to PD, e.g. the number of POSTs to /pd/api/v1/operators.
The log is bounded (oldest records dropped) so a long demo does not grow without limit.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class RequestRecord:
    """One request: `query` maps each key to all its values; `body` is the parsed JSON body,
    the raw text when it is not JSON, or None when empty; `status` is None while unanswered
    (or never answered, e.g. an injected timeout); `at` is the virtual time, `wall` real time;
    `store_id` is set for a store's /metrics and None for the PD port.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int | None
    at: float
    store_id: int | None = None
    wall: float = field(default=0.0, compare=False)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def decode_body(raw: bytes) -> Any:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


class RequestLog:
    def __init__(self, limit: int = 100_000) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=limit)

    def append(self, record: RequestRecord) -> None:
        self._records.append(record)

    def clear(self) -> None:
        self._records.clear()

    def records(self) -> list[RequestRecord]:
        return list(self._records)
