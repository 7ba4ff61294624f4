"""`/healthz` with several clusters (`tikvops.cluster_health`): a cluster's PD down or
untrustworthy is reported under its name and leaves the bot ready; a cluster's monitor that
stops reporting (or never starts) makes the bot not ready, naming that cluster. With one
cluster the `pd` check is unchanged."""

from __future__ import annotations

from tikvops.cluster_health import ClustersHealth
from tikvops.observability import Health


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _health(clock: Clock) -> tuple[Health, ClustersHealth]:
    health = Health(poll_interval=1.0, slack_required=False, now=clock)
    health.scheduler(True)
    clusters = ClustersHealth([("prod", 1.0), ("staging", 2.0)], now=clock)
    health.clusters(clusters)
    return health, clusters


def test_a_clusters_pd_down_is_reported_not_a_failure_of_the_bot() -> None:
    clock = Clock()
    health, clusters = _health(clock)
    clusters["prod"].pd_ok()
    clusters["staging"].pd_ok()
    report = health.report()
    assert report.ok and report.clusters is not None
    assert report.clusters["prod"]["ok"] and report.clusters["staging"]["ok"]
    # prod's PD stops answering; its monitor keeps reporting the failure every cycle
    for _ in range(5):
        clock.t += 1.0
        clusters["prod"].pd_failed("connection refused")
        clusters["staging"].pd_ok()
    report = health.report()
    assert report.ok, report.failing  # 200: the bot still watches staging
    body = report.to_json()
    assert body["status"] == "ok"
    assert not body["clusters"]["prod"]["ok"]
    assert "connection refused" in body["clusters"]["prod"]["detail"]
    assert body["clusters"]["staging"]["ok"]
    assert "prod" in body["checks"]["monitors"]["detail"]
    clusters["staging"].pd_untrusted("store count went from 4 to 0")
    body = health.report().to_json()
    assert body["status"] == "ok" and "cannot be true" in body["clusters"]["staging"]["detail"]


def test_a_monitor_that_stops_reporting_makes_the_bot_not_ready() -> None:
    clock = Clock()
    health, clusters = _health(clock)
    assert health.report().ok  # just started: the monitors have their first cycles to run
    for _ in range(7):  # staging's monitor never reports: past 3 cycles of 2 s
        clock.t += 1.0
        clusters["prod"].pd_ok()
    report = health.report()
    assert not report.ok and "staging" in report.failing["monitors"]
    clusters["staging"].pd_ok()
    clock.t += 4.0  # prod's monitor is silent for 4 s, over 3 cycles of 1 s
    report = health.report()
    assert not report.ok and "prod" in report.failing["monitors"]
    assert "silent" in report.to_json()["clusters"]["prod"]["monitor"]


def test_one_cluster_keeps_the_pd_check() -> None:
    clock = Clock()
    health = Health(poll_interval=1.0, slack_required=False, now=clock)
    health.scheduler(True)
    health.pd_ok()
    clock.t += 10.0
    report = health.report()
    assert not report.ok and "pd" in report.failing and report.clusters is None
    assert "clusters" not in report.to_json()
