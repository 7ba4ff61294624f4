"""Go text formats the simulator prints: durations, times, byte sizes, floats."""

from __future__ import annotations

import pytest

from sim.gotext import (
    DurationError,
    format_byte_size,
    format_duration,
    format_duration_ns,
    format_go_float,
    format_go_time,
    format_rfc3339,
    format_rust_float,
    parse_duration,
)


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (500, "500ns"),
        (1_500, "1.5µs"),
        (1_500_000, "1.5ms"),
        (60_000_000_000, "1m0s"),
        (600_000_000_000, "10m0s"),
        (1_020_000_000_000, "17m0s"),
        (3_600_000_000_000, "1h0m0s"),
        (35_255_277_031_846, "9h47m35.277031846s"),
        (-2_000_000_000, "-2s"),
    ],
)
def test_duration_text_is_go_duration_string(ns: int, text: str) -> None:
    assert format_duration_ns(ns) == text


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30m0s", 1800.0), ("1h", 3600.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5)],
)
def test_parse_duration_accepts_go_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("abc", 'time: invalid duration "abc"'),
        ("1", 'time: missing unit in duration "1"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("", 'time: invalid duration ""'),
    ],
)
def test_parse_duration_refuses_with_go_message(text: str, message: str) -> None:
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == message


def test_times_are_rfc3339_and_go_string_with_monotonic_suffix() -> None:
    assert format_rfc3339(1_795_400_000.0) == "2026-11-23T02:13:20Z"
    assert format_rfc3339(1_795_400_000.5) == "2026-11-23T02:13:20.5Z"
    assert format_go_time(1_795_400_000.25, 3600.25) == (
        "2026-11-23 02:13:20.25 +0000 UTC m=+3600.250000000"
    )
    assert format_go_time(1_795_400_000.0) == "2026-11-23 02:13:20 +0000 UTC"


@pytest.mark.parametrize(
    ("size", "text"),
    [(500 * 2**30, "500GiB"), (0, "0B"), (1023, "1023B"), (2**40 * 1.8189, "1.819TiB")],
)
def test_byte_sizes_are_go_units(size: float, text: str) -> None:
    assert format_byte_size(size) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.5, "0.5"),
        (1051937.4477139413, "1051937.4477139413"),
        (1e16, "10000000000000000"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (0.000015, "0.000015"),
    ],
)
def test_json_floats_are_go_encoding(value: float, text: str) -> None:
    assert format_go_float(value) == text


def test_metric_floats_are_rust_prometheus_style() -> None:
    assert format_rust_float(0.00001) == "0.00001"
    assert format_rust_float(21474.83648) == "21474.83648"
    assert format_rust_float(1203.0) == "1203"
    assert format_rust_float(float("inf")) == "+Inf"
    assert format_rust_float(float("nan")) == "NaN"
