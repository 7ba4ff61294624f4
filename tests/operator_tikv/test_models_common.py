"""PD value formats: size strings, Go durations, timestamps, string booleans, comma lists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from operator_tikv.models.common import (
    ByteSize,
    CommaList,
    GoBool,
    GoDuration,
    NanoTimestamp,
    UnixTimestamp,
    format_go_duration,
    format_size,
    parse_go_duration,
    parse_size,
    timedelta_to_ns,
)

GIB = 1024**3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0B", 0),
        ("1023B", 1023),
        ("1KiB", 1024),
        ("500GiB", 500 * GIB),
        ("206GiB", 206 * GIB),
        ("327.7GiB", round(327.7 * GIB)),
        ("1.819TiB", round(1.819 * 1024**4)),
        ("1.5TiB", round(1.5 * 1024**4)),
        ("937 GiB", 937 * GIB),  # PD 2.x/3.x docs, older go-units with a space
        ("2kb", 2048),  # RAMInBytes: every spelling is 1024-based
        ("3m", 3 * 1024**2),
        ("1.024e+03KiB", 1024 * 1024),
    ],
)
def test_parse_size_examples(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "12 parsecs", "-5GiB", "1.2.3GiB", "5 G iB"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("size", "expected"),
    [(0, "0B"), (1023, "1023B"), (500 * GIB, "500GiB"), (2_000_011_650_925, "1.819TiB")],
)
def test_format_size_matches_go_units(size: int, expected: str) -> None:
    assert format_size(size) == expected


@given(st.integers(min_value=0, max_value=2**62))
def test_size_round_trip_within_four_significant_digits(size: int) -> None:
    parsed = parse_size(format_size(size))
    if size < 1024:
        assert parsed == size
    else:
        assert abs(parsed - size) <= size * 5e-4 + 1


@given(
    st.floats(min_value=0, max_value=1023.99, allow_nan=False),
    st.sampled_from(["B", "KiB", "MiB", "GiB", "TiB", "PiB"]),
)
def test_parse_size_scales_by_unit(number: float, unit: str) -> None:
    text = f"{number:.4g}{unit}"
    power = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"].index(unit)
    # Exact arithmetic: past 2**53 bytes a float cannot hold every byte count.
    expected = Fraction(f"{number:.4g}") * 1024**power
    assert abs(parse_size(text) - expected) <= 1


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("0s", 0),
        ("30m0s", 30 * 60 * 10**9),
        ("1h2m3.5s", (3600 + 120 + 3) * 10**9 + 500_000_000),
        ("10ms", 10_000_000),
        ("48h0m0s", 48 * 3600 * 10**9),
        ("9h47m35.277031846s", (9 * 3600 + 47 * 60 + 35) * 10**9 + 277_031_846),
        ("1.5µs", 1500),
        ("1.5μs", 1500),
        ("2us", 2000),
        ("500ns", 500),
        ("-1.5h", -5400 * 10**9),
        ("+45m", 45 * 60 * 10**9),
        (".5s", 500_000_000),
    ],
)
def test_parse_go_duration_examples(text: str, ns: int) -> None:
    assert parse_go_duration(text) == ns


@pytest.mark.parametrize("text", ["", "-", "30", "1x", "1h30", "h", "1.s2", "1 h", "."])
def test_parse_go_duration_rejects_what_go_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (30 * 60 * 10**9, "30m0s"),
        (3600 * 10**9, "1h0m0s"),
        (3723_500_000_000, "1h2m3.5s"),
        (10_000_000, "10ms"),
        (1500, "1.5µs"),
        (999, "999ns"),
        (-90 * 10**9, "-1m30s"),
        (2 * 10**9, "2s"),
    ],
)
def test_format_go_duration_matches_go(ns: int, text: str) -> None:
    assert format_go_duration(ns) == text


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_go_duration_round_trip(ns: int) -> None:
    assert parse_go_duration(format_go_duration(ns)) == ns


def _decimal_duration(text: str) -> int:
    """Reference: the sum of number * unit in exact decimals, truncated (the former code)."""
    sign = -1 if text.startswith("-") else 1
    total = Decimal(0)
    for number, unit in re.findall(r"([0-9]*(?:\.[0-9]*)?)([a-zµ]+)", text.lstrip("+-")):
        total += Decimal(number) * {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6}.get(
            unit, {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}.get(unit, 0)
        )
    return sign * int(total.to_integral_value(rounding="ROUND_DOWN"))


duration_part = st.tuples(
    st.integers(min_value=0, max_value=10**6),
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=12)),
    st.sampled_from(["h", "m", "s", "ms", "us", "µs", "ns"]),
).map(lambda p: f"{p[0]}{'.' + p[1] if p[1] else ''}{p[2]}")


@given(st.sampled_from(["", "-", "+"]), st.lists(duration_part, min_size=1, max_size=4))
def test_parse_go_duration_is_exact(sign: str, parts: list[str]) -> None:
    text = sign + "".join(parts)
    assert parse_go_duration(text) == _decimal_duration(text)


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3650)))
def test_timedelta_ns_is_exact(value: timedelta) -> None:
    assert timedelta(microseconds=timedelta_to_ns(value) // 1000) == value


class _Sample(BaseModel):
    size: ByteSize = 0
    duration: GoDuration = timedelta(0)
    flag: GoBool = False
    heartbeat: NanoTimestamp = None
    started: UnixTimestamp = None
    labels: CommaList = []


def test_annotated_types_parse_pd_values() -> None:
    sample = _Sample.model_validate(
        {
            "size": "125GiB",
            "duration": "30m0s",
            "flag": "true",
            "heartbeat": 1795441551277031846,
            "started": 1795406296,
            "labels": "zone,host",
        }
    )
    assert sample.size == 125 * GIB
    assert sample.duration == timedelta(minutes=30)
    assert sample.flag is True
    assert sample.heartbeat == datetime(2026, 11, 23, 13, 45, 51, 277031, tzinfo=UTC)
    assert sample.started == datetime(2026, 11, 23, 3, 58, 16, tzinfo=UTC)
    assert sample.labels == ["zone", "host"]


def test_annotated_types_write_back_in_pd_format() -> None:
    sample = _Sample(duration=timedelta(hours=1), flag=False, labels=["zone", "rack", "host"])
    dumped = sample.model_dump(mode="json")
    assert dumped["duration"] == "1h0m0s"
    assert dumped["flag"] == "false"
    assert dumped["labels"] == "zone,rack,host"


def test_zero_timestamps_and_empty_labels_mean_absent() -> None:
    sample = _Sample.model_validate({"heartbeat": 0, "started": 0, "labels": ""})
    assert sample.heartbeat is None
    assert sample.started is None
    assert sample.labels == []


def test_bad_bool_string_is_a_validation_error() -> None:
    with pytest.raises(ValidationError):
        _Sample.model_validate({"flag": "yes"})
