"""/healthz says whether this replica leads, and /metrics exports it (`tikvops_leader`, and
how often it changed); a follower is ready without reaching PD, since the leader watches it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.tikvops.test_observability import (
    FakeClock,
    healthz,
    make_health,
    scrape,
    value,
)
from tikvops.observability import BotMetrics, ObservabilityServer


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def test_healthz_and_metrics_say_whether_this_replica_leads(
    http: aiohttp.ClientSession,
) -> None:
    clock = FakeClock()
    metrics = BotMetrics(now=clock, version="9.9.9")
    health = make_health(clock, slack_required=False)
    role = [False, "follower: another replica holds the PostgreSQL advisory lock"]
    health.role(lambda: (bool(role[0]), str(role[1])))
    health.scheduler(True)
    metrics.leader(False)
    async with ObservabilityServer(metrics, health, "127.0.0.1", 0) as server:
        status, body = await healthz(http, server)
        assert (status, body["leader"]) == (200, False)
        assert body["role"] == role[1]
        assert body["checks"]["pd"]["ok"] is True
        assert "the leader replica watches PD" in body["checks"]["pd"]["detail"]
        samples = await scrape(http, server)
        assert value(samples, "tikvops_leader") == 0
        assert value(samples, "tikvops_leader_changes_total", change="promoted") == 0

        role[:] = [True, "leader: holds the PostgreSQL advisory lock"]
        metrics.leader(True)
        status, body = await healthz(http, server)
        # Leading, it must reach PD itself: not ready until the monitor has.
        assert (status, body["leader"]) == (503, True)
        assert body["role"] == "leader: holds the PostgreSQL advisory lock"
        assert "PD not reached since start" in body["failing"]["pd"]
        health.pd_ok()
        status, _ = await healthz(http, server)
        assert status == 200
        samples = await scrape(http, server)
        assert value(samples, "tikvops_leader") == 1
        assert value(samples, "tikvops_leader_changes_total", change="promoted") == 1

        metrics.leader(False)
        metrics.leader(False)  # no change, not counted
        samples = await scrape(http, server)
        assert value(samples, "tikvops_leader") == 0
        assert value(samples, "tikvops_leader_changes_total", change="demoted") == 1


async def test_a_lone_bot_reports_itself_the_leader(http: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    health = make_health(clock, slack_required=False)
    async with ObservabilityServer(BotMetrics(now=clock), health, "127.0.0.1", 0) as server:
        _, body = await healthz(http, server)
    assert body["leader"] is True
