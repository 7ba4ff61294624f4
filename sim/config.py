"""PD's schedule and replication configuration, with Go's decoding rules and PD's validation.

Values are kept as a field list in ScheduleConfig's declaration order (v8.5.5), so GET answers are
byte-compatible, and a POSTed partial object is decoded the way Go's encoding/json would decode it
into the struct: unknown keys ignored, JSON type mismatches reported as UnmarshalTypeError, the
`,string` booleans and duration strings checked, then PD's `Validate()` run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.gojson import GoJSONError, GoMap, go_kind, parse_json
from sim.gotext import DurationError, format_duration, parse_duration


class ConfigError(Exception):
    """A config update PD refuses: status, and either a message or an errcode object."""

    def __init__(
        self, status: int, message: str, errcode: dict[str, Any] | None = None, code: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errcode = errcode
        self.code = code


@dataclass(frozen=True)
class Field:
    key: str
    kind: str  # uint64 | int | int64 | float | duration | bool | string | store_limit | schedulers
    default: Any
    omitempty: bool = False


SCHEDULE_FIELDS: tuple[Field, ...] = (
    Field("max-snapshot-count", "uint64", 64),
    Field("max-pending-peer-count", "uint64", 64),
    Field("max-merge-region-size", "uint64", 54),
    Field("max-merge-region-keys", "uint64", 540000),
    Field("split-merge-interval", "duration", 3600.0),
    Field("switch-witness-interval", "duration", 3600.0),
    Field("enable-one-way-merge", "bool", False),
    Field("enable-cross-table-merge", "bool", True),
    Field("patrol-region-interval", "duration", 0.01),
    Field("max-store-down-time", "duration", 1800.0),
    Field("max-store-preparing-time", "duration", 172800.0),
    Field("leader-schedule-limit", "uint64", 4),
    Field("leader-schedule-policy", "string", "count"),
    Field("region-schedule-limit", "uint64", 2048),
    Field("witness-schedule-limit", "uint64", 4),
    Field("replica-schedule-limit", "uint64", 64),
    Field("merge-schedule-limit", "uint64", 8),
    Field("hot-region-schedule-limit", "uint64", 4),
    Field("affinity-schedule-limit", "uint64", 0),
    Field("hot-region-cache-hits-threshold", "uint64", 3),
    Field("store-limit", "store_limit", None),
    Field("tolerant-size-ratio", "float", 0.0),
    Field("low-space-ratio", "float", 0.8),
    Field("high-space-ratio", "float", 0.7),
    Field("region-score-formula-version", "string", "v2"),
    Field("scheduler-max-waiting-operator", "uint64", 5),
    Field("enable-remove-down-replica", "bool", True),
    Field("enable-replace-offline-replica", "bool", True),
    Field("enable-make-up-replica", "bool", True),
    Field("enable-remove-extra-replica", "bool", True),
    Field("enable-location-replacement", "bool", True),
    Field("enable-debug-metrics", "bool", False),
    Field("enable-joint-consensus", "bool", True),
    Field("enable-tikv-split-region", "bool", True),
    Field("enable-heartbeat-breakdown-metrics", "bool", True),
    Field("enable-heartbeat-concurrent-runner", "bool", True),
    Field("schedulers-v2", "schedulers", None),
    Field("hot-regions-write-interval", "duration", 600.0),
    Field("hot-regions-reserved-days", "uint64", 7),
    Field("max-movable-hot-peer-size", "int64", 512, omitempty=True),
    Field("enable-diagnostic", "bool", True),
    Field("enable-witness", "bool", False),
    Field("slow-store-evicting-affected-store-ratio-threshold", "float", 0.3, omitempty=True),
    Field("store-limit-version", "string", "v1", omitempty=True),
    Field("halt-scheduling", "bool", False, omitempty=True),
    Field("patrol-region-worker-count", "int", 1),
    Field("max-affinity-merge-region-size", "uint64", 256),
)

REPLICATION_FIELDS: tuple[Field, ...] = (
    Field("max-replicas", "uint64", 3),
    Field("location-labels", "string_slice", "zone,host"),
    Field("strictly-match-label", "bool", False),
    Field("enable-placement-rules", "bool", True),
    Field("enable-placement-rules-cache", "bool", False),
    Field("isolation-level", "string", ""),
)

_GO_TYPES = {
    "uint64": "uint64",
    "int": "int",
    "int64": "int64",
    "float": "float64",
    "string": "string",
    "bool": "bool",
}


def _type_error(struct: str, field: Field, value: Any, offset: int) -> ConfigError:
    kind = go_kind(value)
    shown = f"number {json.dumps(value)}" if kind == "number" else kind
    go_type = _GO_TYPES.get(field.kind, "string")
    where = f"Go struct field {struct}.{field.key} of type {go_type}"
    msg = f"json: cannot unmarshal {shown} into {where}"
    data = {"Value": shown, "Type": {}, "Offset": offset, "Struct": struct, "Field": field.key}
    return ConfigError(400, msg, {"code": "input", "msg": msg, "data": data}, code="input")


def _internal_error(message: str) -> ConfigError:
    return ConfigError(
        500, message, {"code": "internal", "msg": message, "data": {}}, code="internal"
    )


def _value_offsets(body: bytes) -> dict[str, int]:
    """Byte offset just after each top-level value (Go's UnmarshalTypeError.Offset)."""
    text = body.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    offsets: dict[str, int] = {}
    index = text.index("{") + 1
    while True:
        while index < len(text) and text[index] in " \t\r\n,":
            index += 1
        if index >= len(text) or text[index] == "}":
            return offsets
        key, index = decoder.raw_decode(text, index)
        index = text.index(":", index) + 1
        while text[index] in " \t\r\n":
            index += 1
        _, index = decoder.raw_decode(text, index)
        offsets[str(key)] = len(text[:index].encode())


def _decode_field(struct: str, field: Field, value: Any, offset: int) -> Any:
    """One value decoded as Go would decode it into the field's type."""
    kind = field.kind
    if kind == "duration":
        if not isinstance(value, str):
            raise _internal_error("invalid syntax")
        try:
            return parse_duration(value)
        except DurationError as exc:
            raise _internal_error(str(exc)) from None
    if kind == "bool":
        if isinstance(value, str):
            if value in ("true", "false"):
                return value == "true"
            raise _internal_error(
                f"json: invalid use of ,string struct tag, trying to unmarshal {json.dumps(value)}"
                " into bool"
            )
        raise _internal_error(
            "json: invalid use of ,string struct tag, trying to unmarshal unquoted value into bool"
        )
    if kind == "string_slice":
        if not isinstance(value, str):
            raise _internal_error("invalid syntax")
        return value
    if kind in ("uint64", "int", "int64"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(struct, field, value, offset)
        if isinstance(value, float) and not value.is_integer():
            raise _type_error(struct, field, value, offset)
        if kind == "uint64" and value < 0:
            raise _type_error(struct, field, value, offset)
        return int(value)
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(struct, field, value, offset)
        return float(value)
    if kind == "string":
        if not isinstance(value, str):
            raise _type_error(struct, field, value, offset)
        return value
    return value


class FieldConfig:
    """A Go config struct: ordered fields with current values."""

    struct_name = ""
    fields: tuple[Field, ...] = ()

    def __init__(self) -> None:
        self.values: dict[str, Any] = {f.key: f.default for f in self.fields}
        self._by_key = {f.key: f for f in self.fields}

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def has(self, key: str) -> bool:
        return key in self._by_key

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in self.fields:
            value = self.values[field.key]
            if field.omitempty and not value:
                continue
            out[field.key] = self._render(field, value)
        return out

    def _render(self, field: Field, value: Any) -> Any:
        if field.kind == "duration":
            return format_duration(float(value))
        if field.kind == "bool":
            return "true" if value else "false"
        return value

    def decode_patch(self, patch: dict[str, Any], body: bytes | None) -> dict[str, Any]:
        """Decode a partial object the way Go unmarshals it over the struct; nothing applied."""
        offsets = _value_offsets(body) if body is not None else {}
        decoded: dict[str, Any] = {}
        first_type_error: ConfigError | None = None
        for key, value in patch.items():
            field = self._by_key.get(key)
            if field is None or (value is None and field.kind != "duration"):
                continue
            try:
                decoded[key] = _decode_field(self.struct_name, field, value, offsets.get(key, 0))
            except ConfigError as exc:
                if exc.status != 400:
                    raise
                first_type_error = first_type_error or exc
        if first_type_error is not None:
            raise first_type_error
        return decoded

    def validate(self, candidate: dict[str, Any]) -> None:
        """PD's Validate(); raises ConfigError(500, text)."""

    def apply(self, decoded: dict[str, Any]) -> bool:
        """Validate and apply decoded values; returns True if anything changed."""
        candidate = dict(self.values)
        candidate.update(decoded)
        self.validate(candidate)
        changed = candidate != self.values
        self.values = candidate
        return changed


class ScheduleConfig(FieldConfig):
    struct_name = "ScheduleConfig"
    fields = SCHEDULE_FIELDS

    def __init__(self) -> None:
        super().__init__()
        self.store_ids: Callable[[], list[int]] = list
        self.scheduler_entries: Callable[[], list[dict[str, Any]]] = list

    def _render(self, field: Field, value: Any) -> Any:
        if field.kind == "store_limit":
            return GoMap(
                {str(sid): {"add-peer": 15, "remove-peer": 15} for sid in self.store_ids()}
            )
        if field.kind == "schedulers":
            return self.scheduler_entries()
        return super()._render(field, value)

    def validate(self, candidate: dict[str, Any]) -> None:
        if candidate["tolerant-size-ratio"] < 0:
            raise ConfigError(500, "tolerant-size-ratio should be non-negative")
        low, high = candidate["low-space-ratio"], candidate["high-space-ratio"]
        if low < 0 or low > 1:
            raise ConfigError(500, "low-space-ratio should between 0 and 1")
        if high < 0 or high > 1:
            raise ConfigError(500, "high-space-ratio should between 0 and 1")
        if low <= high:
            raise ConfigError(500, "low-space-ratio should be larger than high-space-ratio")
        policy = candidate["leader-schedule-policy"]
        if policy not in ("count", "size"):
            raise ConfigError(500, f"leader-schedule-policy {policy} is invalid")
        if candidate["slow-store-evicting-affected-store-ratio-threshold"] == 0:
            raise ConfigError(500, "slow-store-evicting-affected-store-ratio-threshold is not set")
        workers = candidate["patrol-region-worker-count"]
        if workers > 8 or workers < 1:
            raise ConfigError(500, "patrol-region-worker-count should be between 1 and 8")

    @property
    def max_store_down_time(self) -> float:
        return float(self.values["max-store-down-time"])


class ReplicationConfig(FieldConfig):
    struct_name = "ReplicationConfig"
    fields = REPLICATION_FIELDS

    @property
    def max_replicas(self) -> int:
        return int(self.values["max-replicas"])


def decode_body_object(body: bytes) -> dict[str, Any]:
    """Decode a config POST body into a map, as PD's handlers do first (400 string on error)."""
    try:
        value = parse_json(body)
    except GoJSONError as exc:
        raise ConfigError(400, exc.msg) from None
    if not isinstance(value, dict):
        kind = go_kind(value)
        if value is None:
            return {}
        raise ConfigError(
            400, f"json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
        )
    return value
