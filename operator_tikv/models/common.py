"""Value types PD writes in its own formats, and the base model every PD model shares.

- Sizes: ``typeutil.ByteSize`` marshals through docker/go-units ``BytesSize``: ``"%.4g%s"`` over
  1024-based units (``"500GiB"``, ``"1.819TiB"``, ``"0B"``). PD reads them back with
  ``RAMInBytes``, where every unit (``k``, ``kb``, ``kib``) is 1024-based.
- Durations: Go ``time.Duration.String()`` (``"30m0s"``, ``"1h2m3.5s"``, ``"10ms"``, ``"1.5µs"``)
  and ``time.ParseDuration``.
- Timestamps: ``last_heartbeat`` is unix nanoseconds, ``start_timestamp`` unix seconds.
- Booleans in PD's config are the strings ``"true"``/``"false"`` (Go tag ``,string``).
- ``location-labels`` is one comma-joined string.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

__all__ = [
    "ByteSize",
    "CommaList",
    "GoBool",
    "GoDuration",
    "KebabModel",
    "NanoTimestamp",
    "PDModel",
    "UnixTimestamp",
    "format_go_duration",
    "format_size",
    "parse_go_duration",
    "parse_size",
    "timedelta_to_ns",
]

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
_SIZE_MULTIPLIERS: dict[str, int] = {"": 1, "b": 1}
for _i, _letter in enumerate("kmgtpezy", start=1):
    for _suffix in (_letter, _letter + "b", _letter + "ib"):
        _SIZE_MULTIPLIERS[_suffix] = 1024**_i
_SIZE_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*$")


@functools.lru_cache(maxsize=4096)
def parse_size(text: str) -> int:
    """Parse a PD size string (``"500GiB"``, ``"1.819TiB"``, ``"937 GiB"``, ``"0B"``) to bytes.

    Units are 1024-based whatever their spelling, as in go-units ``RAMInBytes``. The result is
    rounded to whole bytes; PD prints 4 significant digits, so it is approximate. Results are
    cached: a store's sizes repeat from one store list to the next.
    """
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"not a size string: {text!r}")
    number, unit = match.groups()
    multiplier = _SIZE_MULTIPLIERS.get(unit.lower())
    if multiplier is None:
        raise ValueError(f"unknown size unit {unit!r} in {text!r}")
    return int((Decimal(number) * multiplier).to_integral_value())


def format_size(size: float) -> str:
    """Format bytes the way PD does (go-units ``BytesSize``): ``"%.4g"`` plus a binary unit."""
    value = float(size)
    index = 0
    while value >= 1024 and index < len(_SIZE_UNITS) - 1:
        value /= 1024
        index += 1
    return f"{value:.4g}{_SIZE_UNITS[index]}"


_NS_PER_UNIT: dict[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign, what Go prints
    "μs": 1_000,  # U+03BC Greek mu, also accepted by Go
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART_RE = re.compile(r"([0-9]*(?:\.[0-9]*)?)([a-zµμ]+)")
# What Go's Duration.String() prints for a second or more: "10h0m57.043284178s".
_COMMON_DURATION_RE = re.compile(r"(?:([0-9]+)h)?(?:([0-9]+)m)?([0-9]+)(?:\.([0-9]{1,9}))?s")


def parse_go_duration(text: str) -> int:
    """Parse a Go duration string (``"30m0s"``, ``"1h2m3.5s"``, ``"-1.5ms"``) to nanoseconds.

    Follows ``time.ParseDuration``: an optional sign, then one or more number+unit parts;
    ``"0"`` alone is zero. Raises ValueError otherwise.
    """
    rest = text.strip()
    if not rest:
        raise ValueError("empty duration")
    sign = 1
    if rest[0] in "+-":
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    common = _COMMON_DURATION_RE.fullmatch(rest)
    if common is not None:
        hours, minutes, seconds, frac = common.groups()
        whole_s = (int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(seconds)
        return sign * (whole_s * 1_000_000_000 + int((frac or "").ljust(9, "0")))
    # Exact in integers: sum of whole * unit, plus fractions over a common power of ten.
    whole_ns = 0
    fractions: list[tuple[int, int, int]] = []  # (digits, unit ns, number of digits)
    pos = 0
    while pos < len(rest):
        match = _DURATION_PART_RE.match(rest, pos)
        if not match or match.group(1) in ("", "."):
            raise ValueError(f"invalid duration {text!r}")
        number, unit = match.groups()
        scale = _NS_PER_UNIT.get(unit)
        if scale is None:
            raise ValueError(f"unknown unit {unit!r} in duration {text!r}")
        whole, _, frac = number.partition(".")
        whole_ns += int(whole or "0") * scale
        if frac:
            fractions.append((int(frac), scale, len(frac)))
        pos = match.end()
    if fractions:
        width = max(n for _, _, n in fractions)
        numerator = sum(f * scale * 10 ** (width - n) for f, scale, n in fractions)
        whole_ns += numerator // 10**width
    return sign * whole_ns


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


def format_go_duration(ns: int) -> str:
    """Format nanoseconds like Go's ``time.Duration.String()`` (``"1h0m0s"``, ``"1.5ms"``)."""
    magnitude = abs(ns)
    if magnitude == 0:
        return "0s"
    if magnitude < 1_000:
        text = f"{magnitude}ns"
    elif magnitude < 1_000_000:
        text = _fraction(magnitude, 1_000) + "µs"
    elif magnitude < 1_000_000_000:
        text = _fraction(magnitude, 1_000_000) + "ms"
    else:
        seconds, frac = divmod(magnitude, 1_000_000_000)
        hours, rem = divmod(seconds, 3600)
        minutes, secs = divmod(rem, 60)
        sec_text = _fraction(secs * 1_000_000_000 + frac, 1_000_000_000)
        if hours:
            text = f"{hours}h{minutes}m{sec_text}s"
        elif minutes:
            text = f"{minutes}m{sec_text}s"
        else:
            text = f"{sec_text}s"
    return "-" + text if ns < 0 else text


def timedelta_to_ns(value: timedelta) -> int:
    """Exact nanoseconds of a timedelta (which has microsecond resolution)."""
    return ((value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds) * 1_000


def _to_size(value: Any) -> Any:
    if isinstance(value, str):
        return parse_size(value)
    return value


def _to_timedelta(value: Any) -> Any:
    if isinstance(value, str):
        return timedelta(microseconds=parse_go_duration(value) / 1_000)
    return value


def _duration_to_text(value: timedelta) -> str:
    return format_go_duration(timedelta_to_ns(value))


def _to_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError(f"expected 'true' or 'false', got {value!r}")
    return value


def _bool_to_text(value: bool) -> str:
    return "true" if value else "false"


def _ns_to_datetime(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            return None
        seconds, ns = divmod(int(value), 1_000_000_000)
        return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=ns // 1_000)
    return value


def _seconds_to_datetime(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            return None
        return datetime.fromtimestamp(value, tz=UTC)
    return value


def _split_commas(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _join_commas(value: list[str]) -> str:
    return ",".join(value)


#: Bytes, read from a PD size string such as ``"500GiB"`` (or a plain number).
ByteSize = Annotated[int, BeforeValidator(_to_size)]
#: A Go duration string such as ``"30m0s"``; written back in Go's format.
GoDuration = Annotated[
    timedelta,
    BeforeValidator(_to_timedelta),
    PlainSerializer(_duration_to_text, return_type=str, when_used="json"),
]
#: A boolean PD writes as ``"true"``/``"false"``; written back the same way.
GoBool = Annotated[
    bool,
    BeforeValidator(_to_bool),
    PlainSerializer(_bool_to_text, return_type=str, when_used="json"),
]
#: Unix nanoseconds (``last_heartbeat``) as an aware UTC datetime; absent or 0 is None.
NanoTimestamp = Annotated[datetime | None, BeforeValidator(_ns_to_datetime)]
#: Unix seconds (``start_timestamp``) as an aware UTC datetime; absent or 0 is None.
UnixTimestamp = Annotated[datetime | None, BeforeValidator(_seconds_to_datetime)]
#: A comma-joined string list (``"zone,host"``); written back joined.
CommaList = Annotated[
    list[str],
    BeforeValidator(_split_commas),
    PlainSerializer(_join_commas, return_type=str, when_used="json"),
]


class PDModel(BaseModel):
    """Base of PD response models: immutable, extra fields ignored (PD adds fields often)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class KebabModel(PDModel):
    """A PD model whose JSON keys are kebab-case (the config endpoints)."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        alias_generator=_kebab,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
