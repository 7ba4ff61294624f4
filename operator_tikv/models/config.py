"""Schedule and replication config models (pd-api.md §5.1-5.3) and their write encoders.

PD's config JSON is kebab-case; durations are Go strings (``"30m0s"``) and booleans are the
strings ``"true"``/``"false"``. A POST to ``/config/schedule`` silently ignores unknown keys,
so :func:`encode_schedule_changes` accepts only the keys declared here and encodes each value
the way PD reads it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field, field_validator

from operator_tikv.models.common import (
    CommaList,
    GoBool,
    GoDuration,
    KebabModel,
    format_go_duration,
    parse_go_duration,
    timedelta_to_ns,
)

__all__ = [
    "ReplicationConfig",
    "ScheduleConfig",
    "StoreLimit",
    "encode_replication_changes",
    "encode_schedule_changes",
]


class StoreLimit(KebabModel):
    add_peer: float = 15
    remove_peer: float = 15


class ScheduleConfig(KebabModel):
    """``GET /config/schedule``: the keys the bot reads or may change (defaults: v8.5.5)."""

    leader_schedule_limit: int = 4
    region_schedule_limit: int = 2048
    replica_schedule_limit: int = 64
    merge_schedule_limit: int = 8
    hot_region_schedule_limit: int = 4
    low_space_ratio: float = 0.8
    high_space_ratio: float = 0.7
    max_store_down_time: GoDuration = timedelta(minutes=30)
    max_pending_peer_count: int = 64
    max_snapshot_count: int = 64
    max_merge_region_size: int = 54
    max_merge_region_keys: int = 540000
    patrol_region_interval: GoDuration = timedelta(milliseconds=10)
    split_merge_interval: GoDuration = timedelta(hours=1)
    max_store_preparing_time: GoDuration = timedelta(hours=48)
    leader_schedule_policy: str = "count"
    enable_remove_down_replica: GoBool = True
    enable_replace_offline_replica: GoBool = True
    enable_make_up_replica: GoBool = True
    enable_remove_extra_replica: GoBool = True
    enable_location_replacement: GoBool = True
    halt_scheduling: GoBool = False
    store_limit: dict[int, StoreLimit] = Field(default_factory=dict)

    @field_validator("store_limit", mode="before")
    @classmethod
    def _null_map(cls, value: object) -> object:
        return {} if value is None else value


class ReplicationConfig(KebabModel):
    """``GET /config/replicate``. ``location-labels`` is one comma-joined string in PD."""

    max_replicas: int = 3
    location_labels: CommaList = Field(default_factory=list)
    strictly_match_label: GoBool = False
    enable_placement_rules: GoBool = True
    enable_placement_rules_cache: GoBool = False
    isolation_level: str = ""


_NOT_WRITABLE = frozenset({"store-limit"})


def _encode_value(key: str, annotation: Any, value: object) -> object:
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{key} takes a boolean, got {value!r}")
        return "true" if value else "false"
    if annotation is timedelta:
        if isinstance(value, timedelta):
            return format_go_duration(timedelta_to_ns(value))
        if isinstance(value, str):
            parse_go_duration(value)  # raises ValueError on a bad duration
            return value
        raise ValueError(f"{key} takes a duration (timedelta or Go string), got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{key} takes a non-negative integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} takes a number, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ValueError(f"{key} takes a string, got {value!r}")
        return value
    if annotation == list[str]:
        if isinstance(value, str):
            return value
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return ",".join(value)
        raise ValueError(f"{key} takes a list of strings, got {value!r}")
    raise ValueError(f"{key} cannot be written by the bot")  # pragma: no cover


def _encode(model: type[BaseModel], changes: Mapping[str, object]) -> dict[str, object]:
    by_key = {}
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if alias not in _NOT_WRITABLE:
            by_key[alias] = field.annotation
            by_key[name] = field.annotation
    body: dict[str, object] = {}
    for key, value in changes.items():
        if key not in by_key:
            known = ", ".join(sorted(k for k in by_key if "-" in k))
            raise ValueError(f"unknown or read-only config key {key!r}; known keys: {known}")
        body[key.replace("_", "-")] = _encode_value(key, by_key[key], value)
    if not body:
        raise ValueError("no config change given")
    return body


def encode_schedule_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Body for ``POST /config/schedule``: kebab keys, durations as Go strings, bools as strings.

    Keys may be given kebab-case (``"leader-schedule-limit"``) or as field names.
    Raises ValueError for unknown keys or values of the wrong type.
    """
    return _encode(ScheduleConfig, changes)


def encode_replication_changes(changes: Mapping[str, object]) -> dict[str, object]:
    """Body for ``POST /config/replicate`` (``location-labels`` joined with commas)."""
    return _encode(ReplicationConfig, changes)
