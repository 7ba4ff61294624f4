"""The bot's /metrics and /healthz, over real HTTP on 127.0.0.1 with an injected clock."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tikvops.observability import (
    PROPOSAL_STATES,
    BotMetrics,
    Health,
    ObservabilityError,
    ObservabilityServer,
    endpoint_label,
    parse_host_port,
)


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> BotMetrics:
    return BotMetrics(now=clock, version="9.9.9")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


def make_health(clock: FakeClock, *, slack_required: bool = True) -> Health:
    return Health(poll_interval=15, stale_polls=3, slack_required=slack_required, now=clock)


@pytest.fixture
async def server(metrics: BotMetrics, clock: FakeClock) -> AsyncIterator[ObservabilityServer]:
    async with ObservabilityServer(metrics, make_health(clock), "127.0.0.1", 0) as srv:
        yield srv


async def scrape(http: aiohttp.ClientSession, srv: ObservabilityServer) -> dict[tuple, float]:
    """All samples, keyed by (name, sorted label items)."""
    async with http.get(f"{srv.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


async def healthz(http: aiohttp.ClientSession, srv: ObservabilityServer) -> tuple[int, dict]:
    async with http.get(f"{srv.url}/healthz") as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


def value(samples: dict[tuple, float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# ---------------------------------------------------------------------------------------------
# /metrics


async def test_monitor_cycle_metrics(server, metrics, clock, http) -> None:
    metrics.observe_cycle(0.2, ok=True)
    clock.advance(15)
    metrics.observe_cycle(3.0, ok=False)
    metrics.observe_cycle(0.07, ok=True)
    samples = await scrape(http, server)
    assert value(samples, "tikvops_monitor_cycle_duration_seconds_count") == 3
    assert value(samples, "tikvops_monitor_cycle_duration_seconds_sum") == pytest.approx(3.27)
    assert value(samples, "tikvops_monitor_cycle_duration_seconds_bucket", le="0.1") == 1
    assert value(samples, "tikvops_monitor_cycle_duration_seconds_bucket", le="0.25") == 2
    assert value(samples, "tikvops_monitor_cycle_duration_seconds_bucket", le="+Inf") == 3
    assert value(samples, "tikvops_monitor_cycle_failures_total") == 1
    # The last *successful* cycle, at the injected clock's time (the failure does not move it).
    assert value(samples, "tikvops_monitor_last_success_timestamp_seconds") == clock.now


async def test_pd_requests_by_endpoint_template_and_outcome(server, metrics, http) -> None:
    metrics.pd_request("/pd/api/v1/stores", "ok")
    metrics.pd_request("/pd/api/v1/stores", "ok")
    metrics.pd_request("/pd/api/v1/store/4", "http_5xx")
    metrics.pd_request("/pd/api/v1/store/5?state=1", "http_5xx")
    metrics.pd_request("/pd/api/v1/stores", "timeout")
    samples = await scrape(http, server)
    name = "tikvops_pd_requests_total"
    assert value(samples, name, endpoint="/pd/api/v1/stores", outcome="ok") == 2
    assert value(samples, name, endpoint="/pd/api/v1/stores", outcome="timeout") == 1
    assert value(samples, name, endpoint="/pd/api/v1/store/{id}", outcome="http_5xx") == 2
    assert not [k for k in samples if k[0] == name and ("endpoint", "/pd/api/v1/store/4") in k[1]]


async def test_incidents_and_proposals_gauges_drop_absent_labels_to_zero(
    server, metrics, http
) -> None:
    samples = await scrape(http, server)
    for state in PROPOSAL_STATES:  # every state is visible at zero from the first scrape
        assert value(samples, "tikvops_proposals", state=state) == 0

    metrics.set_open_incidents({"store_down": 2, "disk_usage": 1})
    metrics.set_proposals({"proposed": 3, "executing": 1})
    samples = await scrape(http, server)
    assert value(samples, "tikvops_incidents_open", kind="store_down") == 2
    assert value(samples, "tikvops_incidents_open", kind="disk_usage") == 1
    assert value(samples, "tikvops_proposals", state="proposed") == 3
    assert value(samples, "tikvops_proposals", state="executing") == 1

    metrics.set_open_incidents({"disk_usage": 1})
    metrics.set_proposals({"succeeded": 1, "awaiting_second": 2})
    samples = await scrape(http, server)
    assert value(samples, "tikvops_incidents_open", kind="store_down") == 0
    assert value(samples, "tikvops_incidents_open", kind="disk_usage") == 1
    assert value(samples, "tikvops_proposals", state="proposed") == 0
    assert value(samples, "tikvops_proposals", state="executing") == 0
    assert value(samples, "tikvops_proposals", state="succeeded") == 1
    assert value(samples, "tikvops_proposals", state="awaiting_second") == 2


async def test_executions_approvals_outbox_and_slack(server, metrics, http) -> None:
    metrics.execution("drain_store", "succeeded")
    metrics.execution("drain_store", "succeeded")
    metrics.execution("transfer_leader", "failed")
    metrics.approval_latency(42.0)
    metrics.approval_latency(700.0)
    metrics.outbox(5)
    metrics.outbox(2)
    metrics.outbox_retry()
    metrics.outbox_retry()
    metrics.outbox_retry()
    metrics.slack_connected(True)
    samples = await scrape(http, server)
    ex = "tikvops_executions_total"
    assert value(samples, ex, action="drain_store", outcome="succeeded") == 2
    assert value(samples, ex, action="transfer_leader", outcome="failed") == 1
    lat = "tikvops_approval_latency_seconds"
    assert value(samples, f"{lat}_count") == 2
    assert value(samples, f"{lat}_sum") == 742.0
    assert value(samples, f"{lat}_bucket", le="60.0") == 1
    assert value(samples, f"{lat}_bucket", le="900.0") == 2
    assert value(samples, "tikvops_slack_outbox_depth") == 2
    assert value(samples, "tikvops_slack_outbox_retries_total") == 3
    assert value(samples, "tikvops_slack_socket_connected") == 1
    assert value(samples, "tikvops_build_info", version="9.9.9") == 1

    metrics.slack_connected(False)
    samples = await scrape(http, server)
    assert value(samples, "tikvops_slack_socket_connected") == 0


async def test_dedicated_registry_has_only_tikvops_metrics(server, metrics, clock, http) -> None:
    # A second instance in the same process must not collide (it would on the global registry).
    other = BotMetrics(now=clock)
    other.outbox(7)
    samples = await scrape(http, server)
    assert samples
    assert all(name.startswith("tikvops_") for name, _ in samples)
    assert value(samples, "tikvops_slack_outbox_depth") == 0


async def test_openmetrics_when_the_scraper_asks_for_it(server, metrics, http) -> None:
    metrics.outbox_retry()
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    async with http.get(f"{server.url}/metrics", headers={"Accept": accept}) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["tikvops_slack_outbox_retries"].type == "counter"
    retries = [
        s for s in families["tikvops_slack_outbox_retries"].samples if s.name.endswith("_total")
    ]
    assert retries[0].value == 1


def test_endpoint_label_bounds_cardinality() -> None:
    assert endpoint_label("/pd/api/v1/stores") == "/pd/api/v1/stores"
    assert endpoint_label("/pd/api/v1/store/12") == "/pd/api/v1/store/{id}"
    assert endpoint_label("/pd/api/v1/region/id/77?x=1") == "/pd/api/v1/region/id/{id}"
    assert endpoint_label("/pd/api/v1/operators/42/status") == "/pd/api/v1/operators/{id}/status"
    assert endpoint_label("/pd/api/v1/region/key/v1x") == "/pd/api/v1/region/key/v1x"


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:80", ("localhost", 80)),
        ("[::1]:9464", ("::1", 9464)),
    ],
)
def test_parse_host_port(addr: str, expected: tuple[str, int]) -> None:
    assert parse_host_port(addr) == expected


@pytest.mark.parametrize("addr", ["9464", ":9464", "127.0.0.1:", "host:http", "h:70000"])
def test_parse_host_port_rejects(addr: str) -> None:
    with pytest.raises(ValueError, match=r"host:port|between 0 and 65535"):
        parse_host_port(addr)


# ---------------------------------------------------------------------------------------------
# /healthz


async def test_healthz_flips_with_each_check(server, clock, http) -> None:
    health = server.health
    status, body = await healthz(http, server)
    assert status == 503
    assert body["status"] == "unavailable"
    assert set(body["failing"]) == {"pd", "slack", "scheduler"}
    assert "PD not reached since start" in body["failing"]["pd"]
    assert "not connected yet" in body["failing"]["slack"]

    health.pd_ok()
    health.scheduler(True)
    status, body = await healthz(http, server)
    assert status == 503
    assert set(body["failing"]) == {"slack"}
    assert body["checks"]["pd"]["ok"] is True

    health.slack(True)
    status, body = await healthz(http, server)
    assert (status, body["status"]) == (200, "ok")
    assert "failing" not in body
    assert all(check["ok"] for check in body["checks"].values())

    # PD stale: the limit is 3 polls x 15 s = 45 s.
    clock.advance(45)
    status, _ = await healthz(http, server)
    assert status == 200
    clock.advance(2)
    health.pd_failed("connection refused by pd0:2379")
    status, body = await healthz(http, server)
    assert status == 503
    assert set(body["failing"]) == {"pd"}
    assert "last reached 47 s ago, more than 45 s" in body["failing"]["pd"]
    assert "connection refused by pd0:2379" in body["failing"]["pd"]

    health.pd_ok()
    health.slack(False)
    clock.advance(10)
    status, body = await healthz(http, server)
    assert status == 503
    assert body["failing"] == {"slack": "Socket Mode disconnected for 10 s"}

    health.slack(True)
    health.scheduler(False)
    status, body = await healthz(http, server)
    assert status == 503
    assert body["failing"] == {"scheduler": "monitor scheduler not running"}


def test_slack_not_required_without_slack(clock: FakeClock) -> None:
    health = make_health(clock, slack_required=False)
    health.pd_ok()
    health.scheduler(True)
    report = health.report()
    assert report.ok
    slack = next(c for c in report.checks if c.name == "slack")
    assert slack.ok and "not configured" in slack.detail


def test_pd_ok_accepts_datetimes_and_ignores_older_reports(clock: FakeClock) -> None:
    health = make_health(clock, slack_required=False)
    health.scheduler(True)
    health.pd_ok(datetime.fromtimestamp(clock.now - 40, UTC))
    assert health.report().ok
    health.pd_ok(clock.now - 100)  # an older success arriving late does not make PD stale
    assert health.report().ok
    clock.advance(6)
    assert health.report().failing == {"pd": "PD last reached 46 s ago, more than 45 s"}


def test_health_rejects_nonsense_intervals(clock: FakeClock) -> None:
    with pytest.raises(ValueError):
        Health(poll_interval=0, slack_required=False, now=clock)


# ---------------------------------------------------------------------------------------------
# server lifecycle


async def test_port_zero_reports_bound_port_and_stop_closes_it(metrics, clock, http) -> None:
    srv = ObservabilityServer(metrics, make_health(clock), "127.0.0.1", 0)
    with pytest.raises(RuntimeError):
        _ = srv.port
    await srv.start()
    port = srv.port
    assert port > 0
    assert srv.url == f"http://127.0.0.1:{port}"
    async with http.get(f"{srv.url}/nope") as resp:
        assert resp.status == 404
    await srv.stop()
    with pytest.raises(aiohttp.ClientConnectionError):  # nothing listens there any more
        async with http.get(f"http://127.0.0.1:{port}/healthz"):
            pass
    await srv.stop()  # stopping twice is harmless


async def test_port_in_use_is_a_readable_error(metrics, clock) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = ObservabilityServer(metrics, make_health(clock), "127.0.0.1", port)
        with pytest.raises(ObservabilityError, match="TIKVOPS_HEALTH_ADDR"):
            await srv.start()
        await srv.stop()
