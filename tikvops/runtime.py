"""The runtime the composition root builds first: per cluster its settings, PD client, policy and
engine (`ClusterRuntime`), all of them over one database (`Runtime`, `open_runtime`), and the
monitor (`build_monitor`, the one place it is built). `tikvops.stack` opens the rest on it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from engine.clock import SystemClock
from engine.diagnose_flow import DiagnoseFlow
from engine.knowledge import ClusterKnowledge
from engine.monitor import ClusterSource, CycleMetrics, Monitor, PDHealth
from engine.policy import ApprovalPolicy
from engine.ports import Clock, Diagnoser, Notifier
from engine.service import Engine, EngineMetrics
from operator_tikv.pd import PDClient, RequestHook
from storage import AnyDatabase, Repositories, open_database
from storage.claims import open_run_claims
from tikvops.cluster_settings import DEFAULT_CLUSTER, cluster_configs
from tikvops.scheduling import (
    monitor_deadlines,
)
from tikvops.settings import Settings
from tikvops.wiring import (
    build_policy,
    open_pd,
    require_pd_url,
    thresholds_from_settings,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClusterRuntime:
    """One cluster's parts: its effective settings (`[clusters.NAME]` over the global ones),
    its PD client, its approval policy and its engine (which changes only this cluster)."""

    name: str
    settings: Settings
    pd: PDClient
    policy: ApprovalPolicy
    engine: Engine


@dataclass(frozen=True, slots=True)
class Runtime:
    """The running parts, for the duration of `open_runtime()`. `pd`, `policy` and `engine` are
    the first cluster's (the only one without `[clusters.NAME]` tables); `engine` hands what
    belongs to another cluster to that cluster's engine (`Engine.join`)."""

    settings: Settings
    pd: PDClient
    db: AnyDatabase
    repos: Repositories
    policy: ApprovalPolicy
    engine: Engine
    notifier: Notifier | None
    clock: Clock
    clusters: Mapping[str, ClusterRuntime]

    @property
    def multi_cluster(self) -> bool:
        return len(self.clusters) > 1


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
    (deadlines, poll intervals, sleep, checkpoint...). Each cluster's engine gets the
    `ClusterKnowledge` its monitor will fill (its reads answer from it while PD is slow).
    Raises `ConfigError` without a PD URL and `StorageError` when the database cannot be
    opened.
    """
    configs = cluster_configs(settings)
    pd_urls = {c.name: require_pd_url(c.settings) for c in configs}
    chosen_clock: Clock = clock or SystemClock()
    multi = len(configs) > 1
    db = await open_database(settings.db)
    try:
        repos = Repositories.on(db)
        async with contextlib.AsyncExitStack() as exits:
            # Who runs which execution (a PostgreSQL advisory lock per run among replicas),
            # one set for the process, shared by every cluster's engine.
            claims = open_run_claims(settings.db)
            exits.push_async_callback(claims.close)
            clusters: dict[str, ClusterRuntime] = {}
            for index, config in enumerate(configs):
                own = config.settings
                pd = await exits.enter_async_context(
                    open_pd(
                        own, pd_url=pd_urls[config.name], on_request=on_request, transport=transport
                    )
                )
                policy = build_policy(own, terminal=terminal)
                engine = Engine(
                    pd=pd,
                    repos=repos,
                    policy=policy,
                    # the first engine's relay tells the caller's surface every event (all
                    # clusters'), once
                    notifier=notifier if index == 0 else None,
                    clock=chosen_clock,
                    max_drained_stores=own.max_drained_stores,
                    metrics=metrics,
                    cluster=config.name,
                    channel=own.channel if multi else None,
                    **{"claims": claims, **dict(engine_options or {})},
                    knowledge=ClusterKnowledge(chosen_clock),
                )
                exits.push_async_callback(engine.close)
                clusters[config.name] = ClusterRuntime(config.name, own, pd, policy, engine)
            engines = {name: c.engine for name, c in clusters.items()}
            for cluster in clusters.values():
                cluster.engine.join(engines)
            first = clusters[configs[0].name]
            if reconcile:
                for cluster in clusters.values():
                    await cluster.engine.reconcile()
            yield Runtime(
                settings=settings,
                pd=first.pd,
                db=db,
                repos=repos,
                policy=first.policy,
                engine=first.engine,
                notifier=notifier,
                clock=chosen_clock,
                clusters=clusters,
            )
    finally:
        await db.close()


def build_monitor(
    runtime: Runtime,
    source: ClusterSource,
    *,
    clock: Clock,
    diagnoser: Diagnoser | None,
    metrics: CycleMetrics | None = None,
    health: PDHealth | None = None,
    cluster: str | None = None,
) -> Monitor:
    """The monitor of a runtime's cluster (`cluster`, default the first): thresholds from its
    settings, diagnoses proposed through its engine. With several clusters the monitor's
    incidents are its cluster's (`engine.cluster_scope`)."""
    own = (
        runtime.clusters[cluster] if cluster is not None else next(iter(runtime.clusters.values()))
    )
    settings = own.settings
    cycle_deadline, _ = monitor_deadlines(settings.poll_interval, settings.pd_timeout)
    flow = None
    if diagnoser is not None:
        flow = DiagnoseFlow(
            diagnoser=diagnoser,
            diagnoses=runtime.repos.diagnoses,
            proposals=runtime.repos.proposals,
            proposer=own.engine,
            events=runtime.repos.events,
            clock=clock,
        )
    return Monitor(
        source=source,
        incidents=runtime.repos.incidents,
        clock=clock,
        thresholds=thresholds_from_settings(settings),
        resolve_after=settings.resolve_after,
        diagnose=flow,
        metrics=metrics,
        health=health,
        cycle_deadline=cycle_deadline,
        knowledge=own.engine.reads.knowledge,
        # a lone `[clusters.prod]` table too: its incidents are prod's, like its proposals
        cluster=None if own.name == DEFAULT_CLUSTER else own.name,
    )


__all__ = ["ClusterRuntime", "Runtime", "build_monitor", "open_runtime"]
