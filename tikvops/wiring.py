"""Builds the running parts from the settings: the PD client, the database and its repositories,
the approval policy and the `Engine`. Everything that needs them (`tikvops run`, `tikvops
monitor`, the terminal commands, the demo, tests) opens them with `open_runtime()`:

    async with open_runtime(settings, notifier=my_notifier) as runtime:
        outcome = await runtime.engine.handle(command, actor)

Nothing here assumes Slack: every change writes its event to the event log (`engine.events`);
a `notifier` given here (the terminal) hears them through the engine's relay. On exit the
engine's background work is stopped, the database closed and the PD client's connections
released, in that order.

Only the long-running bot should call `engine.reconcile()` at start-up (`reconcile=True`): a
terminal command runs next to a live bot and must not reconcile executions the bot is still
verifying.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from engine.clock import SystemClock
from engine.policy import ApprovalPolicy
from engine.ports import Clock, Notifier
from engine.service import Engine, EngineMetrics
from operator_tikv.invariants import Thresholds
from operator_tikv.metrics import MetricsSource
from operator_tikv.pd import PDClient, RequestHook, open_pd_client
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import PrometheusSource
from operator_tikv.scrape import ScrapeSource, open_scrape_session
from operator_tikv.tls import TLSContext, TLSFileError
from operator_tikv.transport import open_aiohttp_transport
from storage import AnyDatabase, Repositories, open_database
from tikvops.connect import cluster_tls, prometheus_auth, prometheus_tls, reload_on_sighup
from tikvops.settings import ConfigError, Settings, env_name


@dataclass(frozen=True, slots=True)
class Runtime:
    """The running parts, for the duration of `open_runtime()`."""

    settings: Settings
    pd: PDClient
    db: AnyDatabase
    repos: Repositories
    policy: ApprovalPolicy
    engine: Engine
    notifier: Notifier | None
    clock: Clock


def build_policy(settings: Settings, *, terminal: bool = False) -> ApprovalPolicy:
    """The approval policy from the settings.

    With `terminal=True` (the process behind one `tikvops` command, whose only person is the
    local operator) a local operator who is allowed to decide may also approve their own
    high-risk request: `tikvops drain 4 --yes` is a person acting directly, like pd-ctl, and
    is audited as such. The quorum (`high_risk_approvals`) still applies: with 2, a drain from
    the terminal waits for a second approval.
    """
    local = settings.allow_local_operator
    return ApprovalPolicy(
        approvers=frozenset(settings.approvers),
        approvers_high=frozenset(settings.approvers_high),
        allow_local_operator=local,
        self_approve_high=settings.self_approve_high or (terminal and local),
        high_risk_approvals=settings.high_risk_approvals,
        proposal_ttl=timedelta(seconds=settings.proposal_ttl),
        auto_approve_low=settings.auto_approve_low,
    )


def require_pd_url(settings: Settings) -> str:
    if not settings.pd_url:
        raise ConfigError(
            [
                f"{env_name('pd_url')}: not set; give PD's HTTP address (e.g. "
                "http://127.0.0.1:2379) in the environment, the config file or --pd"
            ]
        )
    return settings.pd_url


def _keepalive(settings: Settings) -> float:
    """Seconds idle connections are kept: longer than the poll interval, so the monitor
    reuses them from one cycle to the next."""
    return max(60.0, 3 * settings.poll_interval)


@asynccontextmanager
async def open_metrics_source(settings: Settings) -> AsyncIterator[MetricsSource]:
    """The monitor's metrics source, with an HTTP client sized for it; closed on exit.

    Prometheus when `prometheus_url` is set (5 queries per cycle, httpx over the aiohttp
    transport of `operator_tikv.transport`), otherwise a direct scrape of every store's
    `/metrics` over a keep-alive session that keeps one connection per store across cycles
    (`operator_tikv.scrape.open_scrape_session`).
    """
    keepalive = _keepalive(settings)
    if settings.prometheus_url:
        tls = _tls(prometheus_tls, settings)
        async with (
            open_aiohttp_transport(keepalive=keepalive, tls=tls) as transport,
            httpx.AsyncClient(
                timeout=httpx.Timeout(settings.pd_timeout),
                transport=transport,
                auth=prometheus_auth(settings),
            ) as http,
        ):
            client = PrometheusClient(settings.prometheus_url, http, timeout=settings.pd_timeout)
            with reload_on_sighup(tls):
                yield PrometheusSource(client)
        return
    tls = _tls(cluster_tls, settings)
    async with open_scrape_session(keepalive=keepalive) as session:
        with reload_on_sighup(tls):
            yield ScrapeSource(
                session, timeout=settings.pd_timeout, tls=tls, scheme=scrape_scheme(settings)
            )


def scrape_scheme(settings: Settings) -> str:
    """https for the TiKV status ports of a TLS cluster (TLS settings, or https PD URLs)."""
    urls = settings.pd_urls
    tls = settings.tls_ca or settings.tls_cert or settings.tls_insecure_skip_verify
    return "https" if tls or (urls and all(u.startswith("https://") for u in urls)) else "http"


def _tls(build: Callable[[Settings], TLSContext | None], settings: Settings) -> TLSContext | None:
    """A TLS context from the settings; unusable certificate files are a ConfigError."""
    try:
        return build(settings)
    except TLSFileError as exc:
        raise ConfigError([str(exc)]) from None


@asynccontextmanager
async def open_pd(
    settings: Settings,
    *,
    pd_url: str | None = None,
    on_request: RequestHook | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AsyncIterator[PDClient]:
    """The PD client every command and the bot use: httpx over the aiohttp transport of
    `operator_tikv.transport`, with the cluster's TLS (reloaded on SIGHUP), the settings'
    timeout and retries. `pd_url` defaults to the settings' (a ConfigError when unset);
    `transport` replaces the network (tests). Closed on exit."""
    url = pd_url or require_pd_url(settings)
    async with contextlib.AsyncExitStack() as exits:
        if transport is None:
            tls = _tls(cluster_tls, settings)
            exits.enter_context(reload_on_sighup(tls))
            transport = await exits.enter_async_context(
                open_aiohttp_transport(keepalive=_keepalive(settings), tls=tls)
            )
        yield await exits.enter_async_context(
            open_pd_client(
                url,
                http_timeout=httpx.Timeout(
                    settings.pd_timeout, connect=min(settings.pd_timeout, 3.0)
                ),
                retries=settings.pd_retries,
                on_request=on_request,
                transport=transport,
                deadline=settings.pd_timeout,
            )
        )


def thresholds_from_settings(settings: Settings) -> Thresholds:
    """The invariant thresholds for these settings (operator_tikv never reads settings)."""
    return Thresholds(
        write_p99_ms=settings.latency_threshold_ms,
        write_p99_grace=settings.latency_grace,
        disk_used_ratio=settings.disk_threshold,
        disk_grace=settings.disk_grace,
        disconnected_grace=settings.disconnected_grace,
        region_health_grace=settings.region_health_grace,
        hot_write_share=settings.hot_write_share,
        hot_write_min_regions=settings.hot_write_min_regions,
    )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    terminal: bool = False,
    reconcile: bool = False,
    metrics: EngineMetrics | None = None,
    on_request: RequestHook | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    engine_options: Mapping[str, Any] | None = None,
) -> AsyncIterator[Runtime]:
    """Open PD, the database and the engine; close them on exit.

    `terminal` builds the policy for a terminal command (see `build_policy`); `reconcile`
    runs `engine.reconcile()` before yielding (the bot at start-up). `transport` replaces the
    network under the PD client (tests); by default the PD client's httpx requests go over
    aiohttp (`operator_tikv.transport`), which costs a third of httpx's own CPU per
    request. `engine_options` are extra `Engine` keyword arguments
    (deadlines, poll intervals, sleep, checkpoint...). Raises `ConfigError` without a PD URL
    and `StorageError` when the database cannot be opened.
    """
    pd_url = require_pd_url(settings)
    chosen_clock: Clock = clock or SystemClock()
    policy = build_policy(settings, terminal=terminal)
    db = await open_database(settings.db)
    try:
        repos = Repositories.on(db)
        async with contextlib.AsyncExitStack() as exits:
            pd = await exits.enter_async_context(
                open_pd(settings, pd_url=pd_url, on_request=on_request, transport=transport)
            )
            engine = Engine(
                pd=pd,
                repos=repos,
                policy=policy,
                notifier=notifier,
                clock=chosen_clock,
                max_drained_stores=settings.max_drained_stores,
                metrics=metrics,
                **dict(engine_options or {}),
            )
            try:
                if reconcile:
                    await engine.reconcile()
                yield Runtime(
                    settings=settings,
                    pd=pd,
                    db=db,
                    repos=repos,
                    policy=policy,
                    engine=engine,
                    notifier=notifier,
                    clock=chosen_clock,
                )
            finally:
                await engine.close()
    finally:
        await db.close()


__all__ = [
    "Runtime",
    "build_policy",
    "open_metrics_source",
    "open_pd",
    "open_runtime",
    "require_pd_url",
    "scrape_scheme",
    "thresholds_from_settings",
]
