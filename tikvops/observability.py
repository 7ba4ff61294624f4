"""The bot's own observability: its Prometheus metrics, its readiness, and the HTTP server that
serves both on `/metrics` and `/healthz`.

On-call engineers watch their tools too (the event loop's own lag: `tikvops.loop_lag`).
`BotMetrics` owns a dedicated `CollectorRegistry` (never the process-global one, so the
simulator's or a library's metrics never leak into ours) and has one method per thing the rest
of the code reports. `Health` turns what the bot last saw (PD reached, Slack socket up,
scheduler running) into a readiness answer with a reason per failing check, and says whether
this replica is the leader (with several replicas one leads and runs the monitor; a follower is
ready without reaching PD itself); its clock is injected so tests never sleep.
`ObservabilityServer` serves both with aiohttp on the `health_addr` setting (loopback by
default).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.exposition import choose_encoder

Clock = Callable[[], float]

# Proposal states of the engine's state machine (DESIGN.md); pre-registered at zero so a
# dashboard shows every state from the first scrape. Other states passed in are added as seen.
PROPOSAL_STATES: tuple[str, ...] = (
    "proposed",
    "approved",
    "rejected",
    "expired",
    "cancelled",
    "executing",
    "succeeded",
    "failed",
)

CYCLE_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
APPROVAL_BUCKETS: tuple[float, ...] = (5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
LAG_BUCKETS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

logger = logging.getLogger(__name__)

_NUMERIC_SEGMENT = re.compile(r"(?<=/)\d+(?=/|$)")


class ObservabilityError(Exception):
    """The observability server could not start; the message says what to change."""


def endpoint_label(endpoint: str) -> str:
    """A bounded label for a PD endpoint: the query string is dropped and numeric path segments
    (store and region IDs) become `{id}`, so `/pd/api/v1/store/4?x=1` is
    `/pd/api/v1/store/{id}`. Callers should pass route templates; this is the safety net that
    keeps the number of series from growing with the cluster."""
    path = endpoint.split("?", 1)[0]
    return _NUMERIC_SEGMENT.sub("{id}", path)


def parse_host_port(addr: str) -> tuple[str, int]:
    """Split `host:port` (IPv6 as `[::1]:9464`) as given in the `health_addr` setting.

    Raises ValueError with a readable message when the address is malformed."""
    host, sep, port_text = addr.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"expected host:port such as 127.0.0.1:9464, got {addr!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, got {port} in {addr!r}")
    return host, port


def _package_version() -> str:
    try:
        return metadata.version("tikvops")
    except metadata.PackageNotFoundError:  # running from a source tree without installing
        return "unknown"


class BotMetrics:
    """The bot's own metrics, in a registry of their own. Every name starts with `tikvops_`."""

    def __init__(self, *, now: Clock = time.time, version: str | None = None) -> None:
        self._now = now
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        Info("tikvops_build", "Version of the running tikvops", registry=reg).info(
            {"version": version or _package_version()}
        )
        self._cycle_seconds = Histogram(
            "tikvops_monitor_cycle_duration_seconds",
            "Duration of one monitor cycle (observe, detect, open/resolve incidents)",
            buckets=CYCLE_BUCKETS,
            registry=reg,
        )
        self._loop_lag = Histogram(
            "tikvops_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer (time it could not run anything)",
            buckets=LAG_BUCKETS,
            registry=reg,
        )
        self._cycle_failures = Counter(
            "tikvops_monitor_cycle_failures",
            "Monitor cycles that ended in an error",
            registry=reg,
        )
        self._last_cycle_ok = Gauge(
            "tikvops_monitor_last_success_timestamp_seconds",
            "Unix time of the last monitor cycle that succeeded (0: none yet)",
            registry=reg,
        )
        self._pd_requests = Counter(
            "tikvops_pd_requests",
            "Requests to PD's HTTP API by endpoint template and outcome",
            ["endpoint", "outcome"],
            registry=reg,
        )
        self._incidents_open = Gauge(
            "tikvops_incidents_open",
            "Incidents currently open, by kind",
            ["kind"],
            registry=reg,
        )
        self._proposals = Gauge(
            "tikvops_proposals",
            "Proposals by state",
            ["state"],
            registry=reg,
        )
        self._executions = Counter(
            "tikvops_executions",
            "Executed actions by action name and outcome",
            ["action", "outcome"],
            registry=reg,
        )
        self._approval_latency = Histogram(
            "tikvops_approval_latency_seconds",
            "Time from a proposal's creation to its approval",
            buckets=APPROVAL_BUCKETS,
            registry=reg,
        )
        self._outbox_depth = Gauge(
            "tikvops_slack_outbox_depth",
            "Slack messages waiting in the outbox for delivery",
            registry=reg,
        )
        self._outbox_retries = Counter(
            "tikvops_slack_outbox_retries",
            "Slack deliveries retried after a failure or rate limit",
            registry=reg,
        )
        self._slack_connected = Gauge(
            "tikvops_slack_socket_connected",
            "1 while the Slack Socket Mode connection is up, else 0",
            registry=reg,
        )
        self._leader = Gauge(
            "tikvops_leader",
            "1 while this replica is the leader (runs the monitor, reminders and expiry), else 0",
            registry=reg,
        )
        self._leader_changes = Counter(
            "tikvops_leader_changes",
            "Times this replica became the leader (promoted) or stopped being it (demoted)",
            ["change"],
            registry=reg,
        )
        for change in ("promoted", "demoted"):
            self._leader_changes.labels(change=change)
        self._leading: bool | None = None
        self._incident_kinds: set[str] = set()
        self._proposal_states: set[str] = set(PROPOSAL_STATES)
        for state in PROPOSAL_STATES:
            self._proposals.labels(state=state).set(0)

    def observe_loop_lag(self, seconds: float) -> None:
        self._loop_lag.observe(max(seconds, 0.0))

    def observe_cycle(self, seconds: float, ok: bool) -> None:
        """One monitor cycle took `seconds`; `ok` False counts it as a failure."""
        self._cycle_seconds.observe(max(seconds, 0.0))
        if ok:
            self._last_cycle_ok.set(self._now())
        else:
            self._cycle_failures.inc()

    def pd_request(self, endpoint: str, outcome: str) -> None:
        """One PD request to `endpoint` (a route template such as `/pd/api/v1/stores`) ended
        with `outcome` (for example `ok`, `http_4xx`, `http_5xx`, `timeout`, `unreachable`)."""
        self._pd_requests.labels(endpoint=endpoint_label(endpoint), outcome=outcome).inc()

    def set_open_incidents(self, counts_by_kind: Mapping[str, int]) -> None:
        """The complete current count of open incidents by kind; kinds seen before and absent
        now drop to zero."""
        self._set_all(self._incidents_open, "kind", self._incident_kinds, counts_by_kind)

    def set_proposals(self, counts_by_state: Mapping[str, int]) -> None:
        """The complete current count of proposals by state; states absent now drop to zero."""
        self._set_all(self._proposals, "state", self._proposal_states, counts_by_state)

    def execution(self, action: str, outcome: str) -> None:
        """An approved action finished with `outcome` (`succeeded`, `failed`, `refused`...)."""
        self._executions.labels(action=action, outcome=outcome).inc()

    def approval_latency(self, seconds: float) -> None:
        """A proposal was approved `seconds` after it was created."""
        self._approval_latency.observe(max(seconds, 0.0))

    def outbox(self, depth: int) -> None:
        """The Slack outbox now holds `depth` undelivered messages."""
        self._outbox_depth.set(depth)

    def outbox_retry(self) -> None:
        """A Slack delivery is being retried."""
        self._outbox_retries.inc()

    def slack_connected(self, connected: bool) -> None:
        """The Socket Mode connection went up (True) or down (False)."""
        self._slack_connected.set(1 if connected else 0)

    def leader(self, leading: bool) -> None:
        """This replica became the leader (True) or stopped being it (False)."""
        before, self._leading = self._leading, leading
        self._leader.set(1 if leading else 0)
        if before != leading and (before is not None or leading):
            self._leader_changes.labels(change="promoted" if leading else "demoted").inc()

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition for an HTTP `Accept` header: (body, content type)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    @staticmethod
    def _set_all(gauge: Gauge, label: str, seen: set[str], counts: Mapping[str, int]) -> None:
        seen.update(counts)
        for value in seen:
            gauge.labels(**{label: value}).set(counts.get(value, 0))


class ClusterChecks(Protocol):
    """Every cluster's readiness, with several clusters (`tikvops.cluster_health`)."""

    def check(self) -> CheckResult: ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: its name, whether it passes, and a sentence saying why."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class HealthReport:
    checks: tuple[CheckResult, ...]
    leader: bool = True
    role: str = "leader: the only replica"
    clusters: dict[str, Any] | None = None
    """Several clusters: each one's PD and monitor (`tikvops.cluster_health`)."""

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failing(self) -> dict[str, str]:
        return {check.name: check.detail for check in self.checks if not check.ok}

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if self.ok else "unavailable",
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in self.checks},
            "leader": self.leader,
            "role": self.role,
        }
        if self.clusters is not None:
            body["clusters"] = self.clusters
        if not self.ok:
            body["failing"] = self.failing
        return body


class Health:
    """Readiness of the bot, from what the running components last reported.

    Ready means: PD answered within `stale_polls` x `poll_interval` seconds; the Slack socket
    is connected (only when `slack_required`); the scheduler is running. Times passed to
    `pd_ok` are in the clock of `now` (Unix seconds by default) or aware datetimes.
    """

    def __init__(
        self,
        *,
        poll_interval: float,
        slack_required: bool,
        stale_polls: float = 3.0,
        now: Clock = time.time,
    ) -> None:
        if poll_interval <= 0 or stale_polls <= 0:
            raise ValueError("poll_interval and stale_polls must be positive")
        self._now = now
        self._started = now()
        self._pd_limit = poll_interval * stale_polls
        self._slack_required = slack_required
        self._pd_last_ok: float | None = None
        self._pd_last_error: str | None = None
        self._pd_untrusted: str | None = None
        self._slack_connected = False
        self._slack_changed: float | None = None
        self._scheduler_running = False
        self._role: Callable[[], tuple[bool, str]] | None = None
        self._clusters: ClusterChecks | None = None

    def role(self, describe: Callable[[], tuple[bool, str]]) -> None:
        """Where to ask whether this replica leads: (leading, sentence). A follower does not
        watch PD (the leader does), so its readiness does not depend on PD."""
        self._role = describe

    def clusters(self, clusters: ClusterChecks) -> None:
        """Several clusters: the leader's PD check becomes `clusters.check()` (every cluster's
        monitor reporting) and `/healthz` reports each cluster (`tikvops.cluster_health`)."""
        self._clusters = clusters

    def pd_ok(self, at: float | datetime | None = None) -> None:
        """PD answered at `at` (default: now)."""
        when = self._now() if at is None else at.timestamp() if isinstance(at, datetime) else at
        if self._pd_last_ok is None or when >= self._pd_last_ok:
            self._pd_last_ok = when
            self._pd_last_error = None
            self._pd_untrusted = None

    def pd_failed(self, reason: str) -> None:
        """PD could not be reached; `reason` is shown in /healthz while PD is stale."""
        self._pd_last_error = reason

    def pd_untrusted(self, reason: str) -> None:
        """PD answered something that cannot be true: not ready until it answers believably
        again (`pd_ok`), however recently it answered."""
        self._pd_last_error = reason
        self._pd_untrusted = reason

    def slack(self, connected: bool) -> None:
        """The Slack Socket Mode connection went up or down."""
        if connected != self._slack_connected or self._slack_changed is None:
            self._slack_changed = self._now()
        self._slack_connected = connected

    def scheduler(self, running: bool) -> None:
        """The monitor's scheduler started or stopped."""
        self._scheduler_running = running

    def report(self) -> HealthReport:
        leading, role = self._role() if self._role is not None else (True, "leader: alone")
        clusters = self._clusters if leading else None
        if clusters is not None:
            pd = clusters.check()
        else:
            pd = self._pd_check() if leading else self._follower_pd_check()
        return HealthReport(
            (pd, self._slack_check(), self._scheduler_check()),
            leader=leading,
            role=role,
            clusters=clusters.to_json() if clusters is not None else None,
        )

    def _follower_pd_check(self) -> CheckResult:
        if self._pd_last_ok is None:
            return CheckResult("pd", True, "follower: the leader replica watches PD")
        age = max(self._now() - self._pd_last_ok, 0.0)
        return CheckResult(
            "pd",
            True,
            f"follower: the leader replica watches PD (this one reached it {age:.0f} s ago)",
        )

    def _pd_check(self) -> CheckResult:
        now = self._now()
        error = f"; last error: {self._pd_last_error}" if self._pd_last_error else ""
        if self._pd_untrusted is not None:
            return CheckResult("pd", False, self._pd_untrusted)
        if self._pd_last_ok is None:
            waited = max(now - self._started, 0.0)
            return CheckResult("pd", False, f"PD not reached since start {waited:.0f} s ago{error}")
        age = max(now - self._pd_last_ok, 0.0)
        if age > self._pd_limit:
            return CheckResult(
                "pd",
                False,
                f"PD last reached {age:.0f} s ago, more than {self._pd_limit:.0f} s{error}",
            )
        return CheckResult("pd", True, f"PD reached {age:.0f} s ago")

    def _slack_check(self) -> CheckResult:
        if not self._slack_required:
            return CheckResult("slack", True, "Slack not configured, not required")
        if self._slack_connected:
            return CheckResult("slack", True, "Socket Mode connected")
        if self._slack_changed is None:
            return CheckResult("slack", False, "Socket Mode not connected yet")
        down = max(self._now() - self._slack_changed, 0.0)
        return CheckResult("slack", False, f"Socket Mode disconnected for {down:.0f} s")

    def _scheduler_check(self) -> CheckResult:
        if self._scheduler_running:
            return CheckResult("scheduler", True, "monitor scheduler running")
        return CheckResult("scheduler", False, "monitor scheduler not running")


class ObservabilityServer:
    """`GET /healthz` (200 or 503 with JSON reasons) and `GET /metrics` (Prometheus text or
    OpenMetrics, by `Accept`) over aiohttp. Port 0 picks a free port; `port` reports it."""

    def __init__(self, metrics: BotMetrics, health: Health, host: str, port: int) -> None:
        self.metrics = metrics
        self.health = health
        self.host = host
        self._requested_port = port
        self._bound_port: int | None = None
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("ObservabilityServer is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ObservabilityError(
                f"cannot serve /healthz and /metrics on {self.host}:{self._requested_port}: "
                f"{exc.strerror or exc}; set TIKVOPS_HEALTH_ADDR to a free host:port"
            ) from exc
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._bound_port = None

    async def __aenter__(self) -> ObservabilityServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        report = self.health.report()
        return web.Response(
            text=json.dumps(report.to_json(), sort_keys=True),
            status=200 if report.ok else 503,
            content_type="application/json",
            headers={"Cache-Control": "no-store"},
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.metrics.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})
