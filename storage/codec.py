"""Conversions between engine records' field types and SQLite column values: timestamps as
fixed-width ISO-8601 UTC text (so they sort and compare as text), JSON as compact text."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from engine.clock import utc


def ts(value: datetime) -> str:
    """`2024-05-01T14:00:00.000000+00:00`: fixed width, so text order is time order."""
    return utc(value).isoformat(timespec="microseconds")


def ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else ts(value)


def parse_ts(value: str) -> datetime:
    return utc(datetime.fromisoformat(value))


def parse_ts_or_none(value: str | None) -> datetime | None:
    return None if value is None else parse_ts(value)


def dumps(value: Any) -> str:
    """Compact JSON; pydantic models are dumped in JSON mode."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list | tuple):
        value = [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def dumps_or_none(value: Any) -> str | None:
    return None if value is None else dumps(value)


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)
