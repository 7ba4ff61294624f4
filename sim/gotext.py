"""Go's text formats that PD's answers use: durations, times, byte sizes and floats.

PD is written in Go, so the simulator must print values exactly as Go's standard library does:
`time.Duration.String()` ("1m0s"), `time.Time.String()` with its monotonic suffix,
RFC 3339 with nanoseconds (JSON times), docker/go-units `BytesSize` ("500GiB") and
encoding/json's float format. It also parses Go durations ("1h30m") the way
`time.ParseDuration` does, with the same error texts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal

NS_PER_SECOND = 1_000_000_000

_UNIT_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5
    "μs": 1_000,  # U+03BC
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}


def _frac(value: int, precision: int) -> tuple[str, int]:
    """Go's fmtFrac: the fraction digits of `value` (trailing zeros dropped) and the rest."""
    digits = ""
    printed = False
    for _ in range(precision):
        digit = value % 10
        printed = printed or digit != 0
        if printed:
            digits = str(digit) + digits
        value //= 10
    return ("." + digits if printed else ""), value


def format_duration_ns(ns: int) -> str:
    """`time.Duration(ns).String()`, for example 60e9 -> "1m0s", 1.5e6 -> "1.5ms"."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = abs(ns)
    if u < NS_PER_SECOND:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            frac, whole = _frac(u, 3)
            return f"{sign}{whole}{frac}µs"
        frac, whole = _frac(u, 6)
        return f"{sign}{whole}{frac}ms"
    frac, secs = _frac(u, 9)
    text = f"{secs % 60}{frac}s"
    mins = secs // 60
    if mins > 0:
        text = f"{mins % 60}m" + text
        hours = mins // 60
        if hours > 0:
            text = f"{hours}h" + text
    return sign + text


def format_duration(seconds: float) -> str:
    """`time.Duration` text of a number of seconds."""
    return format_duration_ns(_to_ns(seconds))


class DurationError(ValueError):
    """A Go duration string that `time.ParseDuration` refuses; the message is Go's."""


_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_duration(text: str) -> float:
    """`time.ParseDuration(text)` in seconds. Raises DurationError with Go's message."""
    original = text
    quoted = '"' + original + '"'
    if text in ("0", "+0", "-0"):
        return 0.0
    if not text:
        raise DurationError(f"time: invalid duration {quoted}")
    negative = text[0] == "-"
    if text[0] in "+-":
        text = text[1:]
    if not text:
        raise DurationError(f"time: invalid duration {quoted}")
    total = Decimal(0)
    while text:
        match = _DURATION_PART.match(text)
        number, unit = (match.group(1), match.group(2)) if match else ("", "")
        if not number or number == ".":
            raise DurationError(f"time: invalid duration {quoted}")
        if not unit:
            raise DurationError(f"time: missing unit in duration {quoted}")
        unit_end = 0
        while unit_end < len(unit) and not unit[unit_end].isdigit() and unit[unit_end] != ".":
            unit_end += 1
        unit_name = unit[:unit_end]
        if unit_name not in _UNIT_NS:
            raise DurationError(f'time: unknown unit "{unit_name}" in duration {quoted}')
        total += Decimal(number) * _UNIT_NS[unit_name]
        text = text[len(number) + len(unit_name) :]
    seconds = float(total / NS_PER_SECOND)
    return -seconds if negative else seconds


def _to_ns(seconds: float) -> int:
    """Nanoseconds of a float number of seconds, exact for the float's shortest decimal form."""
    return int((Decimal(repr(float(seconds))) * NS_PER_SECOND).to_integral_value())


def _utc(seconds: float) -> tuple[dt.datetime, int]:
    ns_total = _to_ns(seconds)
    whole, ns = divmod(ns_total, NS_PER_SECOND)
    return dt.datetime.fromtimestamp(whole, tz=dt.UTC), ns


def format_rfc3339(seconds: float) -> str:
    """Go's JSON form of a UTC time.Time (RFC 3339 with trimmed nanoseconds, "Z")."""
    stamp, ns = _utc(seconds)
    frac = f".{ns:09d}".rstrip("0") if ns else ""
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def format_go_time(seconds: float, monotonic: float | None = None) -> str:
    """`time.Time.String()` in UTC, with the `m=+<monotonic>` suffix when given."""
    stamp, ns = _utc(seconds)
    frac = f".{ns:09d}".rstrip("0") if ns else ""
    text = stamp.strftime("%Y-%m-%d %H:%M:%S") + frac + " +0000 UTC"
    if monotonic is not None:
        mono_ns = _to_ns(monotonic)
        sign = "+" if mono_ns >= 0 else "-"
        whole, rest = divmod(abs(mono_ns), NS_PER_SECOND)
        text += f" m={sign}{whole}.{rest:09d}"
    return text


ZERO_GO_TIME = "0001-01-01 00:00:00 +0000 UTC"

_BINARY_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def format_byte_size(size: float) -> str:
    """docker/go-units `BytesSize`: "%.4g" over 1024-based units, e.g. "500GiB", "1.819TiB"."""
    index = 0
    while size >= 1024 and index < len(_BINARY_UNITS) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{_BINARY_UNITS[index]}"


def format_go_float(value: float) -> str:
    """encoding/json's float64 text: shortest digits, positional below 1e21, no ".0"."""
    magnitude = abs(value)
    text = repr(float(value))
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        mantissa, _, exponent = text.partition("e")
        sign = exponent[0] if exponent[0] in "+-" else "+"
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        if len(digits) == 1 and sign == "+":
            digits = "0" + digits
        if sign == "-" and len(digits) == 1:
            return f"{mantissa.removesuffix('.0')}e-{digits}"
        return f"{mantissa.removesuffix('.0')}e{sign}{digits}"
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")


def format_rust_float(value: float) -> str:
    """A float as TiKV's rust-prometheus prints it: integral values bare, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e17:
        return str(int(value))
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text
