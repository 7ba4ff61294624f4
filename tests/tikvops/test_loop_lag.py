"""LoopLagProbe: event-loop lag is measured, exported, and a long stall is logged with what
ran during it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tikvops.loop_lag import LoopLagProbe
from tikvops.observability import BotMetrics


def lag_histogram(metrics: BotMetrics) -> dict[str, float]:
    text, _ = metrics.render()
    for family in text_string_to_metric_families(text.decode()):
        if family.name == "tikvops_event_loop_lag_seconds":
            return {f"{s.name}{s.labels.get('le', '')}": s.value for s in family.samples}
    raise AssertionError("tikvops_event_loop_lag_seconds is not exported")


def stall_the_loop_on_purpose(seconds: float) -> None:
    time.sleep(seconds)  # blocking, on the loop: exactly what the probe is for


async def test_a_long_stall_is_measured_and_logged_with_what_ran(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = BotMetrics()
    probe = LoopLagProbe(metrics, interval=0.02, warn_after=0.25)
    probe.start()
    try:
        await asyncio.sleep(0.1)

        async def parse_a_huge_list() -> None:
            stall_the_loop_on_purpose(0.6)

        with caplog.at_level(logging.WARNING, logger="tikvops.loop_lag"):
            await asyncio.create_task(parse_a_huge_list(), name="huge list")
            await asyncio.sleep(0.1)
    finally:
        await probe.stop()
    assert max(probe.lags) >= 0.25
    warnings = [r.getMessage() for r in caplog.records if "event loop stalled" in r.getMessage()]
    assert len(warnings) == 1
    assert "stall_the_loop_on_purpose" in warnings[0]
    assert "task 'huge list'" in warnings[0]
    histogram = lag_histogram(metrics)
    assert histogram["tikvops_event_loop_lag_seconds_count"] == len(probe.lags)
    assert histogram["tikvops_event_loop_lag_seconds_bucket0.25"] < len(probe.lags)


def test_short_lags_are_counted_but_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = BotMetrics()
    probe = LoopLagProbe(metrics, warn_after=0.25)
    with caplog.at_level(logging.WARNING, logger="tikvops.loop_lag"):
        probe.record(0.003)
        probe.record(0.2)
    assert not caplog.records
    assert lag_histogram(metrics)["tikvops_event_loop_lag_seconds_count"] == 2
    with caplog.at_level(logging.WARNING, logger="tikvops.loop_lag"):
        probe.record(0.4)
    (record,) = caplog.records
    assert "stalled for 400 ms" in record.getMessage()
    assert "not sampled" in record.getMessage()


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoopLagProbe(interval=0)
