"""The parts the composition root (`tikvops.stack`) assembles, each built from the settings:
the PD client (`open_pd`: httpx over the aiohttp transport, cluster TLS reloaded on SIGHUP), the
monitor's metrics source (`open_metrics_source`: Prometheus when configured, else the direct
scrape; the only place that choice is made), the approval policy, the invariant thresholds, the
diagnoser (Claude or the playbooks) and the PD request-metrics hook. Every HTTP session under
them comes from `operator_tikv.sessions`. Nothing here starts anything long-running or assembles
the engine: `tikvops check` and `tikvops eval` open `open_pd` + `open_metrics_source` for one
observation; everything with an engine goes through `tikvops.stack`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx

from engine.playbook_diagnoser import PlaybookDiagnoser
from engine.policy import ApprovalPolicy
from engine.ports import Clock, Diagnoser
from operator_tikv.invariants import Thresholds
from operator_tikv.metrics import MetricsSource
from operator_tikv.pd import TOO_LARGE_OUTCOME, PDClient, RequestHook, open_pd_client
from operator_tikv.playbooks import PlaybookLimits
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import PrometheusSource
from operator_tikv.scrape import ScrapeSource, open_scrape_session
from operator_tikv.tls import TLSContext, TLSFileError
from operator_tikv.transport import open_aiohttp_transport
from storage import Repositories
from tikvops.connect import cluster_tls, prometheus_auth, prometheus_tls, reload_on_sighup
from tikvops.observability import BotMetrics
from tikvops.settings import ConfigError, Settings, env_name


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
        silence_needs_approver=settings.silence_needs_approver,
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


def pd_request_recorder(metrics: BotMetrics) -> Callable[[str, str, int | str, float], None]:
    """A PD client hook counting requests by endpoint template and outcome."""

    def record(method: str, path: str, outcome: int | str, seconds: float) -> None:
        if isinstance(outcome, int):
            label = "ok" if outcome < 400 else f"http_{outcome // 100}xx"
        elif outcome == TOO_LARGE_OUTCOME:
            label = "too_large"
        else:
            label = "timeout" if "timeout" in outcome.lower() else "unreachable"
        metrics.pd_request(path, label)

    return record


PLAYBOOKS_NAME = "built-in playbooks"


def build_diagnoser(
    settings: Settings,
    *,
    pd: PDClient,
    repos: Repositories,
    clock: Clock,
    exits: contextlib.AsyncExitStack,
) -> tuple[Diagnoser, str]:
    """Claude (falling back to the playbooks when it fails) with an Anthropic key, else the
    playbooks; and a phrase naming it. Both follow the settings' blast-radius limits
    (`max_drained_stores`), so neither suggests what the preflight would refuse. The Claude
    client is closed by `exits`."""
    limits = PlaybookLimits(max_drained_stores=settings.max_drained_stores)
    playbooks = PlaybookDiagnoser(pd, clock, limits=limits)
    key = settings.anthropic_api_key
    if key is None or not key.get_secret_value():
        return playbooks, PLAYBOOKS_NAME
    # Imported here so that a bot without a key never loads the Anthropic SDK.
    from diagnosis.claude import ClaudeDiagnoser
    from diagnosis.client import ClaudeClient

    client = ClaudeClient(
        key.get_secret_value(),
        model=settings.anthropic_model,
        timeout=settings.anthropic_timeout,
        max_retries=settings.anthropic_max_retries,
    )
    exits.push_async_callback(client.aclose)
    claude = ClaudeDiagnoser(
        client,
        pd,
        clock,
        fallback=playbooks,
        on_unavailable=repos.diagnoses.add,
        limits=limits,
    )
    return claude, f"Claude ({settings.anthropic_model}), {PLAYBOOKS_NAME} when it fails"


__all__ = [
    "PLAYBOOKS_NAME",
    "build_diagnoser",
    "build_policy",
    "open_metrics_source",
    "open_pd",
    "pd_request_recorder",
    "require_pd_url",
    "scrape_scheme",
    "thresholds_from_settings",
]
