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

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from bot.app import SlackBot
from bot.config import BotConfig
from bot.retry import DeliveryHooks
from engine.clock import SystemClock
from engine.diagnose_flow import DiagnoseFlow
from engine.monitor import ClusterSource, Monitor
from engine.policy import ApprovalPolicy
from engine.ports import Clock, Diagnoser, Notifier
from engine.service import Engine, EngineMetrics
from operator_tikv.pd import PDClient, RequestHook
from storage import AnyDatabase, Repositories, open_database
from storage.claims import open_run_claims
from tikvops.leading import ReplicaRole
from tikvops.loop_lag import LoopLagProbe
from tikvops.observability import (
    BotMetrics,
    Health,
    ObservabilityServer,
    parse_host_port,
)
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
    build_policy,
    open_metrics_source,
    open_pd,
    pd_request_recorder,
    require_pd_url,
    thresholds_from_settings,
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
    )


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
        await self.monitor.wait_idle()
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
        if self.server is not None:
            lines.append(f"health: {self.server.url}/healthz and {self.server.url}/metrics")
        return lines


def _connection_hook(health: Health, metrics: BotMetrics) -> Callable[[bool], None]:
    def connected(up: bool) -> None:
        health.slack(up)
        metrics.slack_connected(up)

    return connected


# --------------------------------------------------------------------------- the parts


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
            # Who runs which execution (a PostgreSQL advisory lock per run among replicas).
            claims = open_run_claims(settings.db)
            exits.push_async_callback(claims.close)
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
                **{"claims": claims, **dict(engine_options or {})},
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


def build_monitor(
    runtime: Runtime,
    source: ClusterSource,
    *,
    clock: Clock,
    diagnoser: Diagnoser | None,
    metrics: BotMetrics | None = None,
    health: Health | None = None,
) -> Monitor:
    """The monitor for a runtime: thresholds from the settings, diagnoses through the engine."""
    settings = runtime.settings
    cycle_deadline, _ = monitor_deadlines(settings.poll_interval, settings.pd_timeout)
    flow = None
    if diagnoser is not None:
        flow = DiagnoseFlow(
            diagnoser=diagnoser,
            diagnoses=runtime.repos.diagnoses,
            proposals=runtime.repos.proposals,
            proposer=runtime.engine,
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
    )


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
        if config is not None:
            bot = SlackBot(
                config,
                engine=runtime.engine,
                repos=runtime.repos,
                clock=clock,
                policy=runtime.policy,
                on_connection=_connection_hook(health, metrics),
                hooks=DeliveryHooks(depth=metrics.outbox, retry=metrics.outbox_retry),
            )
        # 2. leader election; the leader reconciles interrupted executions when it starts
        # leading (a lone replica, on SQLite, at once: before the scheduler and Slack start).
        replica = ReplicaRole(
            settings.db,
            poll=settings.leader_poll,
            engine=runtime.engine,
            metrics=metrics,
            health=health,
        )
        await replica.start()
        stack.push_async_callback(replica.stop)  # if a later step fails to start
        # 3. diagnoser
        diagnoser, diagnoser_name = build_diagnoser(
            settings, pd=runtime.pd, repos=runtime.repos, clock=clock, exits=stack
        )
        # 4. monitor and scheduler
        metrics_from = await stack.enter_async_context(open_metrics_source(settings))
        source = ClusterSource(runtime.pd, metrics_from, pd_url=runtime.pd.base_url)
        monitor = build_monitor(
            runtime, source, clock=clock, diagnoser=diagnoser, metrics=metrics, health=health
        )
        stack.push_async_callback(monitor.close)
        # Answers to people read what the monitor knows instead of waiting on a slow PD.
        runtime.engine.reads.knowledge = monitor.knowledge
        stack.push_async_callback(source.regions.close)
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
            follow=None if replica.alone else runtime.engine.executor.follow,
            **jobs,
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
        )


__all__ = [
    "Runtime",
    "SlackOptions",
    "Stack",
    "bot_config",
    "build_monitor",
    "open_runtime",
    "open_stack",
]
