"""The composition root: the one module that assembles the runtime, settings → HTTP sessions →
clients (built by `tikvops.wiring`) → storage → engine (`open_runtime`) → monitor → Slack
(`open_stack`), each part given what it needs when it is built (no later `bind()` step).
`tikvops run`, `tikvops demo` and `tikvops monitor` (without Slack, reporting to the terminal)
open the whole stack; the terminal action commands open `open_runtime` alone (PD, database,
engine: no monitor, no Slack). `build_monitor` is the one place the monitor is built.

    async with open_stack(settings) as stack:
        print(stack.describe())
        await stop.wait()

Start order (stop is the reverse, each step stopped even when a later one failed to start):

1. the runtime (`open_runtime`): PD client, database, repositories, policy,
   engine; every change writes its event to the event log, and the caller's `notifier` (e.g.
   the terminal) hears them from a relay (`engine.relay`);
2. leader election (`tikvops.leading`): on SQLite this process leads at once; among replicas
   on PostgreSQL one leads (an advisory lock) and the others follow. Whoever starts leading
   reconciles (`engine.reconcile()`): executions left `executing` by an earlier (or dead)
   process are checked against PD, never sent again; a run a live replica holds the claim on
   (`storage.claims`: an advisory lock per run) is left to it;
3. the diagnoser: Claude (`diagnosis.ClaudeDiagnoser`, falling back to the playbooks) when
   `ANTHROPIC_API_KEY` is set, else the built-in playbooks;
4. the monitor and the scheduler's jobs (monitor tick every `poll_interval`, incident silences
   that ran out or were broken (`silences`), proposal expiry, reminders), run only by the
   leader; the first tick runs at once (or when leading starts);
5. the Slack bot (its relay of the event log, the outbox deliverer, the Socket Mode
   connection) when both Slack tokens are set: events written while it was stopped, or before
   it started, are turned into messages then, in order;
6. the observability server (`/healthz`, `/metrics` on `health_addr`).

On exit: the health server closes, the socket closes and in-flight Slack work finishes (what is
not delivered stays in the outbox for the next start), the scheduler lets the running tick
finish, background diagnoses are cancelled (re-run on the next start), then the engine, the
database and the PD client close.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from bot.app import SlackBot, approver_groups
from bot.config import BotConfig
from bot.render.links import Links
from bot.retry import DeliveryHooks
from engine.clock import SystemClock
from engine.monitor import ClusterSource, Monitor
from engine.ports import Clock, Diagnoser, Notifier
from operator_tikv.chart_queries import promql_for
from operator_tikv.metric_history import ChartMetric, MetricHistory
from operator_tikv.urls import redact_url
from tikvops.charts import ChartData, RecordingSource, history_points
from tikvops.cluster_health import ClustersHealth, SharedClusterSeries
from tikvops.cluster_settings import cluster_configs
from tikvops.leading import ReplicaRole
from tikvops.loop_lag import LoopLagProbe
from tikvops.observability import (
    BotMetrics,
    Health,
    ObservabilityServer,
    parse_host_port,
)
from tikvops.runtime import Runtime, build_monitor, open_runtime
from tikvops.scheduling import (
    SILENCE_CHECK_EVERY,
    JobScheduler,
    ProposalReminders,
    monitor_deadlines,
    schedule_bot_jobs,
)
from tikvops.settings import ConfigError, Settings, env_name
from tikvops.wiring import (
    PLAYBOOKS_NAME,
    build_diagnoser,
    open_metrics_source,
    pd_request_recorder,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackOptions:
    """Timings of the Slack edge that settings do not carry (tests and the demo shorten them)."""

    outbox_poll: float = 2.0
    outbox_backoff_base: float = 1.0
    outbox_backoff_cap: float = 300.0
    ping_interval: float = 10.0
    group_ttl: timedelta = timedelta(minutes=5)
    outbox_lease: float = 60.0  # how long a message claimed for delivery is this process's


def bot_config(settings: Settings, options: SlackOptions | None = None) -> BotConfig:
    """The Slack bot's configuration from the settings. Raises ConfigError when Slack is not
    configured (both `SLACK_BOT_TOKEN` and `SLACK_APP_TOKEN` are needed)."""
    if settings.slack_bot_token is None or settings.slack_app_token is None:
        missing = [
            env_name(name)
            for name in ("slack_bot_token", "slack_app_token")
            if getattr(settings, name) is None
        ]
        raise ConfigError([f"{name}: not set; Slack needs both tokens" for name in missing])
    opts = options or SlackOptions()
    return BotConfig(
        bot_token=settings.slack_bot_token.get_secret_value(),
        app_token=settings.slack_app_token.get_secret_value(),
        channel=settings.channel,
        api_url=settings.slack_api_url,
        app_id=settings.slack_app_id,
        team_id=settings.slack_team_id,
        command_channels=tuple(settings.command_channels),
        group_ttl=opts.group_ttl,
        ping_interval=opts.ping_interval,
        outbox_poll=opts.outbox_poll,
        outbox_backoff_base=opts.outbox_backoff_base,
        outbox_backoff_cap=opts.outbox_backoff_cap,
        # Claimed on both backends: two processes on one SQLite file never send one item twice.
        outbox_lease=opts.outbox_lease,
        links=Links(
            grafana_url=settings.grafana_url,
            grafana_tikv_dashboard=settings.grafana_tikv_dashboard,
            grafana_pd_dashboard=settings.grafana_pd_dashboard,
            prometheus_url=settings.prometheus_external_url,
            queries={metric: promql_for(metric) for metric in ChartMetric},
        ),
        cluster_channels=_cluster_channels(settings),
    )


def _cluster_channels(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Each cluster's incident channel, when there are several (none: the one `channel`)."""
    configs = cluster_configs(settings)
    if len(configs) < 2:
        return ()
    return tuple((c.name, c.settings.channel) for c in configs)


@dataclass
class Stack:
    """The running parts, for the duration of `open_stack()`."""

    settings: Settings
    runtime: Runtime
    clock: Clock
    metrics: BotMetrics
    health: Health
    source: ClusterSource
    diagnoser: Diagnoser
    diagnoser_name: str
    monitor: Monitor
    scheduler: JobScheduler
    server: ObservabilityServer | None
    bot: SlackBot | None = None
    replica: ReplicaRole | None = None
    monitors: Mapping[str, Monitor] = field(default_factory=dict)
    """Every cluster's monitor by name (`monitor` is the first cluster's)."""

    @property
    def reconciled(self) -> int:
        """Interrupted executions this replica reconciled as the leader."""
        return self.replica.reconciled if self.replica is not None else 0

    @property
    def engine(self) -> Any:
        """The running `engine.service.Engine`."""
        return self.runtime.engine

    @property
    def health_url(self) -> str | None:
        return self.server.url if self.server is not None else None

    async def wait_idle(self) -> None:
        """Let background work settle: diagnoses, Slack handlers, executions in progress."""
        for monitor in self.monitors.values() or [self.monitor]:
            await monitor.wait_idle()
        if self.bot is not None:
            await self.bot.tasks.wait_idle()
        await self.runtime.engine.wait_idle()

    def describe(self) -> list[str]:
        """One line per running part, for a start-up banner."""
        settings = self.settings
        metrics_name = self.source.metrics.name if self.source.metrics else "none"
        lines = [
            f"monitor: PD {self.runtime.pd.base_url} every {settings.poll_interval:g} s "
            f"(metrics: {metrics_name}; write P99 over {settings.latency_threshold_ms:g} ms "
            f"for {settings.latency_grace:g} s opens an incident; clear for "
            f"{settings.resolve_after:g} s resolves it)",
            f"diagnosis: {self.diagnoser_name}"
            + (
                " (set ANTHROPIC_API_KEY to diagnose with Claude)"
                if self.diagnoser_name == PLAYBOOKS_NAME
                else ""
            ),
            f"database: {settings.db}"
            + (
                f" ({self.reconciled} interrupted execution(s) checked against PD)"
                if self.reconciled
                else ""
            ),
        ]
        if self.bot is not None:
            lines.append(
                f"slack: Socket Mode via {settings.slack_api_url}, incidents in {settings.channel}"
            )
        else:
            lines.append("slack: not configured (set SLACK_BOT_TOKEN and SLACK_APP_TOKEN)")
        approvers = ", ".join(settings.approvers) or "nobody (set TIKVOPS_APPROVERS)"
        lines.append(f"approvers: {approvers}")
        if self.runtime.multi_cluster:
            lines[0] = f"monitor: {len(self.runtime.clusters)} clusters, one monitor each"
            for name, cluster in self.runtime.clusters.items():
                own = cluster.settings
                approvers = ", ".join(own.approvers) or "nobody"
                lines.append(
                    f"cluster {name}: PD {cluster.pd.base_url} every {own.poll_interval:g} s, "
                    f"incidents in {own.channel}, approvers {approvers}"
                )
        if self.server is not None:
            lines.append(f"health: {self.server.url}/healthz and {self.server.url}/metrics")
        return lines


def _connection_hook(health: Health, metrics: BotMetrics) -> Callable[[bool], None]:
    def connected(up: bool) -> None:
        health.slack(up)
        metrics.slack_connected(up)

    return connected


# --------------------------------------------------------------------------- the parts


class _EveryCluster:
    """Reconciles every cluster's interrupted executions (each against its own PD) when this
    replica starts leading."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    async def reconcile(self) -> list[Any]:
        done: list[Any] = []
        for cluster in self._runtime.clusters.values():
            done.extend(await cluster.engine.reconcile())
        return done


def _polls(runtime: Runtime) -> list[tuple[str, float]]:
    """Each cluster's name and monitor interval."""
    return [(name, c.settings.poll_interval) for name, c in runtime.clusters.items()]


def _follow_every_cluster(runtime: Runtime) -> Callable[[], Awaitable[None]]:
    """The leader's job settling the runs of replicas that died, for every cluster."""

    async def follow() -> None:
        for cluster in runtime.clusters.values():
            await cluster.engine.executor.follow()

    return follow


@asynccontextmanager
async def open_stack(
    settings: Settings,
    *,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    engine_options: Mapping[str, Any] | None = None,
    slack: SlackOptions | None = None,
    serve_health: bool = True,
    expire_every: float | None = None,
    use_slack: bool = True,
    freeze_heap: bool = False,
) -> AsyncIterator[Stack]:
    """Start everything (see the module docstring) and yield the running `Stack`.

    `notifier`: also told every event (the terminal, a test recorder), besides Slack when it is
    configured. `engine_options`: extra `Engine` keyword arguments (verification deadlines and
    poll intervals per action). `slack`: Slack edge timings. `serve_health=False` skips the
    `/healthz` server. `expire_every`: seconds between proposal-expiry runs (default 30).
    `use_slack=False` never starts the Slack bot, even with both tokens set (`tikvops monitor`:
    the same stack, reporting only to `notifier`). `freeze_heap=True` (the `tikvops run`
    process, once) collects and freezes the start-up heap before the socket connects, so later
    full garbage collections walk only new objects instead of pausing the loop ~120 ms in the
    middle of a burst of clicks; not for processes that start many stacks (tests).

    Raises `ConfigError` (no PD URL, one Slack token without the other), `StorageError` (the
    database cannot be opened) and `ObservabilityError` (the health port is taken); whatever
    had started is stopped first.
    """
    if use_slack and (settings.slack_bot_token is None) != (settings.slack_app_token is None):
        bot_config(settings)  # raises ConfigError naming the missing token
    clock = clock or SystemClock()
    metrics = BotMetrics()
    slack_on = use_slack and settings.uses_real_slack
    health = Health(poll_interval=settings.poll_interval, slack_required=slack_on)
    config = bot_config(settings, slack) if slack_on else None

    async with AsyncExitStack() as stack:
        # 1. runtime
        runtime = await stack.enter_async_context(
            open_runtime(
                settings,
                notifier=notifier,
                clock=clock,
                metrics=metrics,
                on_request=pd_request_recorder(metrics),
                engine_options=engine_options,
            )
        )
        bot: SlackBot | None = None
        # Charts: each cluster's own data (its monitor's history, or its own Prometheus once
        # its metrics source is open), so an incident's chart shows its own cluster.
        charts = {
            name: ChartData(MetricHistory(points=history_points(c.settings.poll_interval)))
            for name, c in runtime.clusters.items()
        }
        if config is not None and runtime.multi_cluster and not config.approver_groups:
            # every cluster's approver groups are looked up, not only the first cluster's
            groups = {g for c in runtime.clusters.values() for g in approver_groups(c.policy)}
            config = replace(config, approver_groups=tuple(sorted(groups)))
        if config is not None:
            bot = SlackBot(
                config,
                engine=runtime.engine,
                repos=runtime.repos,
                clock=clock,
                policy=runtime.policy,
                on_connection=_connection_hook(health, metrics),
                hooks=DeliveryHooks(depth=metrics.outbox, retry=metrics.outbox_retry),
                series=next(iter(charts.values())),
                cluster_series=charts if runtime.multi_cluster else None,
                clusters=(redact_url(runtime.pd.base_url),),
            )
        # 2. leader election; the leader reconciles interrupted executions when it starts
        # leading (a lone replica, on SQLite, at once: before the scheduler and Slack start).
        replica = ReplicaRole(
            settings.db,
            poll=settings.leader_poll,
            engine=_EveryCluster(runtime),
            metrics=metrics,
            health=health,
        )
        await replica.start()
        stack.push_async_callback(replica.stop)  # if a later step fails to start
        # 3. diagnoser, 4. monitor: one of each per cluster, each monitor its own scheduler job
        # with its own deadline, so one cluster's slow or dead PD never delays the others.
        monitors: dict[str, Monitor] = {}
        sources: dict[str, ClusterSource] = {}
        diagnosers: dict[str, Diagnoser] = {}
        diagnoser_name = PLAYBOOKS_NAME
        # Several clusters: /healthz and /metrics report each one by name (its monitor its
        # own PD health and cycle series); one cluster's PD down is not the bot's failure.
        per_cluster = (
            (ClustersHealth(_polls(runtime), metrics=metrics), SharedClusterSeries(metrics))
            if runtime.multi_cluster
            else None
        )
        if per_cluster is not None:
            health.clusters(per_cluster[0])
        for name, cluster in runtime.clusters.items():
            own = cluster.settings
            diagnosers[name], diagnoser_name = build_diagnoser(
                own, pd=cluster.pd, repos=runtime.repos, clock=clock, exits=stack
            )
            metrics_from = await stack.enter_async_context(open_metrics_source(own))
            # its monitor records its charts' history; its Prometheus (if any) answers instead
            sources[name] = RecordingSource(
                cluster.pd, metrics_from, pd_url=cluster.pd.base_url, history=charts[name].history
            )
            charts[name].use(metrics_from)
            monitors[name] = build_monitor(
                runtime,
                sources[name],
                clock=clock,
                diagnoser=diagnosers[name],
                metrics=per_cluster[1].for_cluster(name) if per_cluster else metrics,
                health=per_cluster[0][name] if per_cluster else health,
                cluster=name,
            )
            stack.push_async_callback(monitors[name].close)
            stack.push_async_callback(sources[name].regions.close)
        first = next(iter(runtime.clusters))
        monitor, source, diagnoser = monitors[first], sources[first], diagnosers[first]
        scheduler = JobScheduler(
            health=health, misfire_grace=settings.poll_interval, leader=replica.is_leader
        )
        replica.scheduler = scheduler
        reminders = ProposalReminders(
            proposals=runtime.repos.proposals,
            audit=runtime.repos.audit,
            clock=clock,
            after=settings.reminder_interval,
            incidents=runtime.repos.incidents,
        )
        jobs: dict[str, Any] = {}
        if expire_every is not None:
            jobs["expire_every"] = expire_every
        schedule_bot_jobs(
            scheduler,
            tick=monitor.tick,
            poll_interval=settings.poll_interval,
            monitor_deadline=monitor_deadlines(settings.poll_interval, settings.pd_timeout)[1],
            engine=runtime.engine,
            reminders=reminders,
            # Among replicas the leader settles the runs of replicas that died meanwhile.
            follow=None if replica.alone else _follow_every_cluster(runtime),
            **jobs,
        )
        for name, other in monitors.items():
            if name == first:
                continue
            own = runtime.clusters[name].settings
            scheduler.add_job(
                f"monitor:{name}",
                other.tick,
                every=own.poll_interval,
                deadline=monitor_deadlines(own.poll_interval, own.pd_timeout)[1],
                leader_only=True,
            )
        scheduler.add_job(
            "silences",
            runtime.engine.attending.end_due,
            every=SILENCE_CHECK_EVERY,
            leader_only=True,
        )
        scheduler.start()
        stack.push_async_callback(scheduler.stop)
        # Stepping down (cancelling leader-only runs) comes before the scheduler stops.
        stack.push_async_callback(replica.stop)
        if freeze_heap:
            gc.collect()
            gc.freeze()
        # 5. Slack
        if bot is not None:
            await bot.start()
            stack.push_async_callback(bot.stop)
        # 6. observability
        lag_probe = LoopLagProbe(metrics)
        lag_probe.start()
        stack.push_async_callback(lag_probe.stop)
        server: ObservabilityServer | None = None
        if serve_health:
            host, port = parse_host_port(settings.health_addr)
            server = ObservabilityServer(metrics, health, host, port)
            await server.start()
            stack.push_async_callback(server.stop)
        yield Stack(
            settings=settings,
            runtime=runtime,
            clock=clock,
            metrics=metrics,
            health=health,
            source=source,
            diagnoser=diagnoser,
            diagnoser_name=diagnoser_name,
            monitor=monitor,
            scheduler=scheduler,
            server=server,
            bot=bot,
            replica=replica,
            monitors=monitors,
        )


__all__ = ["SlackOptions", "Stack", "bot_config", "open_stack"]
