"""The Slack bot, assembled: `build_app(deps)` makes the Bolt `AsyncApp` (middleware and
listeners), and `SlackBot` runs it over Socket Mode together with the outbox deliverer.

    bot = SlackBot(config, engine=runtime.engine, repos=runtime.repos, clock=runtime.clock,
                   policy=runtime.policy)
    await bot.start()      # relay and deliverer first (owed messages go out), then the socket
    ...
    await bot.stop()       # socket, in-flight work, relay, deliverer, HTTP client

Every change reaches Slack through the event log → relay → `SlackNotifier` → outbox →
deliverer; everything users do arrives through the socket → middleware → handlers → engine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Protocol

import aiohttp
from slack_bolt.app.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.charts import ChartUploader
from bot.client import build_web_client, close_web_client
from bot.config import BotConfig
from bot.deps import BotDeps
from bot.errors import SlackStartError
from bot.handlers import actions, attention, commands, events, unsupported
from bot.handlers import home as home_handlers
from bot.home import HomePublisher
from bot.identity import IdentityResolver
from bot.middleware import Deduplicate, RequestContext, RequestGuard
from bot.notifier import NotifierReads, SlackNotifier
from bot.outbox import Deliverer
from bot.queue import SlackOutbox
from bot.retry import Backoff, DeliveryHooks
from bot.slack_errors import TRANSIENT_ERRORS
from bot.socket import SocketRunner
from bot.tasks import BackgroundTasks
from engine.errors import EngineError
from engine.policy import ApprovalPolicy
from engine.ports import AuditLog, Clock, DedupRepo, Outbox, SlackRefs
from engine.relay import EventRelay
from engine.service import Engine
from operator_tikv.metric_history import SeriesSource

logger = logging.getLogger(__name__)

RELAY_SETTLE = 0.02
"""Seconds the Slack relay waits after being woken by a commit before rendering (see
`engine.relay`): an approval's gate and PD reads go first."""


class BotRepos(NotifierReads, Protocol):
    """The repositories the bot uses (`storage.Repositories` has them all)."""

    @property
    def audit(self) -> AuditLog: ...

    @property
    def dedup(self) -> DedupRepo: ...

    @property
    def outbox(self) -> Outbox: ...

    @property
    def slack_refs(self) -> SlackRefs: ...


def build_app(deps: BotDeps, dedup: DedupRepo, home: HomePublisher | None = None) -> AsyncApp:
    """The Bolt app with our middleware and listeners (no connection is opened)."""
    app = AsyncApp(
        client=deps.client,
        # Bolt sets the level of the logger named after the app: keep it out of `tikvops.*`.
        name="bot.bolt",
        # Our listeners only call ack() and hand the work to `deps.tasks`, so Bolt may run
        # them inline and answer when they return (rather than run them in a task and poll
        # every 10 ms for the ack).
        process_before_response=True,
        request_verification_enabled=False,  # Socket Mode: no signing secret
        # Requests no listener takes go to the error handler (`bot.handlers.unsupported`),
        # which acknowledges them and says "not supported" where it can.
        raise_error_for_unhandled_request=True,
    )
    app.use(RequestGuard(deps.config))
    app.use(Deduplicate(dedup, deps.clock, deps.config.dedup_ttl))
    app.use(unsupported.RefuseMalformed(deps))
    app.use(RequestContext())
    commands.register(app, deps)
    home_handlers.register(app, home)  # before actions: its link clicks are not "unknown"
    attention.register(app, deps)  # before actions: its catch-all takes what is left
    actions.register(app, deps)
    events.register(app, deps)
    unsupported.register(app, deps)
    return app


def approver_groups(policy: ApprovalPolicy) -> tuple[str, ...]:
    """The user-group IDs the policy names (their members are looked up in Slack)."""
    entries = sorted(policy.approvers | policy.approvers_high)
    return tuple(e for e in entries if e.startswith("S"))


class SlackBot:
    """The running Slack edge: the Bolt app on the socket, and the relay that turns the event
    log into Slack messages (`SlackNotifier`) for the outbox's deliverer."""

    def __init__(
        self,
        config: BotConfig,
        *,
        engine: Engine,
        repos: BotRepos,
        clock: Clock,
        policy: ApprovalPolicy | None = None,
        client: AsyncWebClient | None = None,
        on_connection: Callable[[bool], None] | None = None,
        hooks: DeliveryHooks | None = None,
        series: SeriesSource | None = None,
        clusters: Sequence[str] = ("TiKV",),
        cluster_series: Mapping[str, SeriesSource] | None = None,
    ) -> None:
        """`series`: chart data (incident charts are uploaded into threads; None: no charts);
        `cluster_series`: with several clusters, each one's (an incident's chart reads its
        own cluster's). `clusters`: the names shown in the App Home tab."""
        self.config = config
        self.client = client or build_web_client(config)
        self._owns_client = client is None
        groups = config.approver_groups or (approver_groups(policy) if policy else ())
        self.identities = IdentityResolver(self.client, groups, ttl=config.group_ttl)
        self.tasks = BackgroundTasks()
        self.deps = BotDeps(
            config=config,
            engine=engine,
            identities=self.identities,
            audit=repos.audit,
            clock=clock,
            tasks=self.tasks,
            client=self.client,
            refs=repos.slack_refs,
        )
        self.deliverer = Deliverer(
            repos.outbox,
            repos.slack_refs,
            self.client,
            clock,
            poll_interval=config.outbox_poll,
            backoff=Backoff(base=config.outbox_backoff_base, cap=config.outbox_backoff_cap),
            hooks=hooks,
            lease=None if config.outbox_lease is None else timedelta(seconds=config.outbox_lease),
            charts=ChartUploader(
                self.client,
                repos.slack_refs,
                repos.incidents,
                series,
                clock,
                by_cluster=cluster_series,
            )
            if series is not None
            else None,
        )
        self.outbox = SlackOutbox(repos.outbox, clock, wake=self.deliverer.wake)
        self.notifier = SlackNotifier(
            clock,
            channel=config.channel,
            channels=dict(config.cluster_channels),
            outbox=self.outbox,
            reads=repos,
            # each proposal's quorum comes from its own cluster's policy
            approvals_needed=engine.approvals_needed,
            links=config.links,
            charts=series is not None,
            clusters_named=engine.multi_cluster,
        )
        self.relay = EventRelay(
            repos.events,
            self.notifier,
            name="slack",
            poll=config.outbox_poll,
            retry=1.0,
            settle=RELAY_SETTLE,
        )
        repos.events.subscribe(self.relay.wake)
        self.home = HomePublisher(self.client, engine, clock, clusters=clusters)
        repos.events.subscribe(self.home.changed)
        self._dedup = repos.dedup
        self.app = build_app(self.deps, repos.dedup, self.home)
        self.socket = SocketRunner(
            self.app,
            config.app_token,
            ping_interval=config.ping_interval,
            on_state=on_connection,
        )

    @property
    def connected(self) -> bool:
        return self.socket.connected

    async def start(self) -> None:
        """Check the bot token, start delivering owed messages, then open the Socket Mode
        connection. Raises `SlackStartError` when Slack refuses a token (or the token belongs
        to another workspace than the configured one)."""
        await self._check_bot_token()
        await self.housekeeping()
        await self.relay.start()
        self.deliverer.charts.warm()
        await self.deliverer.start()
        try:
            await self.socket.start()
        except BaseException:
            await self.relay.stop()
            await self.deliverer.stop()
            raise

    async def housekeeping(self) -> int:
        """Forget expired request IDs (redelivery protection); returns how many. Run at start;
        a scheduler may call it periodically."""
        try:
            return await self._dedup.purge(self.deps.clock.now())
        except EngineError:
            logger.warning("could not purge old request IDs", exc_info=True)
            return 0

    async def _check_bot_token(self) -> None:
        try:
            identity = await self.client.auth_test()
        except SlackApiError as exc:
            code = str(exc.response.get("error") or "unknown_error")
            status = getattr(exc.response, "status_code", 200)
            if status == 429 or status >= 500 or code in TRANSIENT_ERRORS:
                logger.warning("Slack is busy (%s); the bot token is checked later", code)
                return
            raise SlackStartError(
                f"Slack refused the bot token ({code}): check SLACK_BOT_TOKEN (the xoxb- token "
                "of the installed app)",
                code=code,
            ) from exc
        except (SlackClientError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            logger.warning("Slack cannot be reached yet (%s); starting anyway", exc)
            return
        team = identity.get("team_id")
        if self.config.team_id and team and team != self.config.team_id:
            raise SlackStartError(
                f"the bot token belongs to workspace {team}, but tikvops is configured for "
                f"{self.config.team_id}; fix TIKVOPS_SLACK_TEAM_ID or SLACK_BOT_TOKEN",
                code="team_mismatch",
            )
        logger.info("Slack bot %s in workspace %s", identity.get("user_id"), team)

    async def stop(self) -> None:
        """Close the socket (no new requests), let in-flight work finish, stop delivering
        (what is undelivered stays in the outbox), close the HTTP client."""
        await self.socket.stop()
        await self.tasks.close()
        await self.home.close()
        await self.relay.drain()
        await self.relay.stop()
        await self.deliverer.stop()
        if self._owns_client:
            await close_web_client(self.client)

    async def __aenter__(self) -> SlackBot:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


__all__ = ["BotRepos", "SlackBot", "approver_groups", "build_app"]
