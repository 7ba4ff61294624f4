"""The demo: a simulated cluster, the local Slack stand-in and the real bot, together.

`open_demo()` starts, in order, the simulator (a 5-store cluster whose time runs `speed` times
faster than the wall clock) unless the settings name a real PD, the Slack stand-in (its page on
`host:port`) unless real Slack tokens are set, and the bot (`tikvops.stack.open_stack`) with
demo settings: short poll interval, short grace and resolve periods, the stand-in's approver
alice and the @oncall group, a database in a temporary directory unless one is given. On exit
everything stops in reverse (the bot before the stand-in it talks to).

With `clusters=N` (`tikvops demo --clusters 2`) it runs N simulated clusters instead of one
(`sim.fleet.SimFleet`: named prod, staging, c3, ...; 3 stores each unless told), one incident
channel per cluster in the stand-in (#tikv-prod, #tikv-staging, ...) beside #tikv-ops, and the
bot configured with a `[clusters.NAME]` table per cluster (`cluster_tables`; the TOML it
amounts to is written next to the database as `clusters.toml`). The scenario goes into the
first cluster only, so the other one shows a quiet cluster beside a troubled one.

`run_demo()` (in `tikvops.demo_terminal`) is `tikvops demo`: it prints what runs and what to
do, injects the chosen scenario after a short pause (only into the simulator), echoes every
event as one line, and stops cleanly when `stop` is set (Ctrl-C or SIGTERM in the command).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from engine.ports import Clock, Notifier
from sim.fleet import SimFleet, fleet_names
from sim.scenarios import SCENARIOS, ScenarioResult
from sim.server import SimServer
from slackfake.server import SlackFake
from tikvops.settings import Settings
from tikvops.stack import SlackOptions, Stack, open_stack

logger = logging.getLogger(__name__)

SCENARIO_NAMES: tuple[str, ...] = tuple(SCENARIOS)
NO_SCENARIO = "none"

DEMO_APPROVER = "U0ALICE"
"""The stand-in's user alice, an approver (also through the @oncall group)."""
DEMO_GROUP = "S0ONCALL"
DEMO_CHANNEL = "C0OPS"
DEMO_CHANNEL_NAME = "tikv-ops"
MULTI_CLUSTER_STORES = 3
"""Stores per simulated cluster when the demo runs several (unless `--stores` says)."""

DEMO_SETTINGS: Mapping[str, Any] = {
    "poll_interval": 2.0,
    "latency_grace": 4.0,
    "disk_grace": 0.0,
    "disconnected_grace": 0.0,
    # a freshly started (simulated) cluster has a few extra or pending peers for some seconds
    "region_health_grace": 30.0,
    "resolve_after": 6.0,
    # the hot-region scenario makes one region hot; the default needs four before it counts
    "hot_write_min_regions": 1,
    "proposal_ttl": 900.0,
    "reminder_interval": 300.0,
    "pd_timeout": 3.0,
}
"""Demo timings: things happen within seconds instead of minutes."""

DEMO_ENGINE_OPTIONS: Mapping[str, Any] = {
    # follow an action's outcome every second (a drain is polled every 10 s in production)
    "poll_intervals": {
        "drain": 1.0,
        "undrain": 1.0,
        "transfer-leader": 0.5,
        "transfer-peer": 1.0,
        "split": 0.5,
    },
}


SETTLE_LIMIT = 20.0
"""Seconds the demo waits at most, after the pause, for the simulator's start-up rebalancing to
end before it injects the fault."""


@dataclass(frozen=True)
class DemoOptions:
    """What `tikvops demo` can be told."""

    port: int = 3000
    host: str = "127.0.0.1"
    scenario: str = "slow-store"
    delay: float = 5.0
    db: Path | None = None
    stores: int | None = None
    """Stores per simulated cluster; None: 5 for one cluster, 3 each for several."""
    regions: int = 300
    speed: float = 10.0
    seed: int = 0
    health_addr: str = "127.0.0.1:0"
    clusters: int = 1

    @property
    def stores_per_cluster(self) -> int:
        if self.stores is not None:
            return self.stores
        return 5 if self.clusters == 1 else MULTI_CLUSTER_STORES

    @property
    def cluster_names(self) -> list[str]:
        """The simulated clusters' names (empty for the single-cluster demo)."""
        return fleet_names(self.clusters) if self.clusters > 1 else []

    def __post_init__(self) -> None:
        if self.clusters < 1:
            raise ValueError("the demo needs at least 1 cluster")
        if self.clusters > 1:
            fleet_names(self.clusters)  # raises ValueError past the limit
        if self.scenario != NO_SCENARIO and self.scenario not in SCENARIOS:
            known = ", ".join(SCENARIO_NAMES)
            raise ValueError(f"unknown scenario {self.scenario!r}; choose one of {known} or none")
        if self.delay < 0:
            raise ValueError("the delay before the scenario must be 0 or more seconds")
        if self.speed <= 0:
            raise ValueError("the simulator speed must be positive")


def cluster_channel(name: str) -> tuple[str, str]:
    """The stand-in channel (ID, name) of the simulated cluster `name`: C0PROD, #tikv-prod."""
    return "C0" + name.upper().replace("-", "").replace("_", ""), f"tikv-{name}"


def demo_channels(options: DemoOptions) -> dict[str, str]:
    """The stand-in's channels: #tikv-ops, then one per simulated cluster."""
    channels = {DEMO_CHANNEL: DEMO_CHANNEL_NAME}
    for name in options.cluster_names:
        channel_id, channel_name = cluster_channel(name)
        channels[channel_id] = channel_name
    return channels


def cluster_tables(fleet: SimFleet, *, with_slack: bool) -> dict[str, dict[str, Any]]:
    """The `[clusters.NAME]` tables for the simulated clusters: each its PD, its stores scraped
    directly (no Prometheus), and with the stand-in its own channel and alice and @oncall as
    approvers."""
    tables: dict[str, dict[str, Any]] = {}
    for name in fleet:
        table: dict[str, Any] = {"pd_url": fleet[name].pd_url, "prometheus_url": None}
        if with_slack:
            table["channel"] = cluster_channel(name)[0]
            table["approvers"] = [DEMO_APPROVER, DEMO_GROUP]
        tables[name] = table
    return tables


def clusters_toml(tables: Mapping[str, Mapping[str, Any]]) -> str:
    """`tables` as the TOML a user would write (values are strings, lists of strings, or
    None, which TOML leaves out)."""
    lines: list[str] = []
    for name, table in tables.items():
        lines.append(f"[clusters.{name}]")
        for key, value in table.items():
            if value is None:
                continue
            if isinstance(value, list):
                rendered = "[" + ", ".join(f'"{item}"' for item in value) + "]"
            else:
                rendered = f'"{value}"'
            lines.append(f"{key} = {rendered}")
        lines.append("")
    return "\n".join(lines)


@dataclass
class Demo:
    """The running demo. `sim` is None against a real PD, `fake` None with real Slack. With
    several clusters `fleet` holds them and `sim` is the first."""

    settings: Settings
    options: DemoOptions
    stack: Stack
    sim: SimServer | None
    fake: SlackFake | None
    injected: list[ScenarioResult] = field(default_factory=list)
    fleet: SimFleet | None = None
    config_file: Path | None = None

    @property
    def sims(self) -> dict[str, SimServer]:
        """The simulated clusters by name (one-cluster demo: {"default": sim})."""
        if self.fleet is not None:
            return dict(self.fleet.servers)
        return {} if self.sim is None else {"default": self.sim}

    @property
    def page_url(self) -> str | None:
        """The stand-in's page, opened as alice in the (first) incident channel."""
        if self.fake is None:
            return None
        channel = DEMO_CHANNEL
        if self.fleet is not None:
            channel = cluster_channel(next(iter(self.fleet)))[0]
        return f"{self.fake.page_url}?user={DEMO_APPROVER}&channel={channel}"

    def inject(
        self, scenario: str | None = None, *, cluster: str | None = None
    ) -> ScenarioResult | None:
        """Inject a simulator scenario (default: the options') into `cluster` (default: the
        first); None against a real cluster."""
        name = scenario or self.options.scenario
        if self.sim is None or name == NO_SCENARIO:
            return None
        target = self.sim if cluster is None or self.fleet is None else self.fleet[cluster]
        result = target.apply_scenario(name)
        self.injected.append(result)
        return result


def cluster_settled(sim: SimServer) -> bool:
    """True when the simulator's start-up rebalancing is over: no operator running and no
    region holding more replicas than max-replicas. A fault injected earlier could be
    diagnosed against a region that PD is still moving."""
    cluster = sim.cluster
    replicas = int(cluster.replication.values.get("max-replicas", 3))
    if cluster.operators.running:
        return False
    return all(len(region.peers) <= replicas for region in cluster.regions.values())


async def wait_settled(
    sim: SimServer,
    *,
    limit: float,
    stop: asyncio.Event | None = None,
    interval: float = 0.2,
) -> bool:
    """Wait (at most `limit` seconds, and not past `stop`) for `cluster_settled`; returns
    whether it settled."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not cluster_settled(sim):
        if loop.time() >= deadline or (stop is not None and stop.is_set()):
            return False
        await asyncio.sleep(interval)
    return True


def demo_settings(
    base: Settings,
    options: DemoOptions,
    *,
    sim: SimServer | None,
    fake: SlackFake | None,
    db_dir: Path | None,
    overrides: Mapping[str, Any] | None = None,
    fleet: SimFleet | None = None,
) -> Settings:
    """The settings the demo's bot runs with: `base` plus the demo's timings (and `overrides`
    of them), the simulator as PD (when running), the stand-in as Slack (when running) and the
    demo database. With a `fleet`, one `[clusters.NAME]` table per simulated cluster."""
    values: dict[str, Any] = base.model_dump()
    values.update(DEMO_SETTINGS)
    values.update(overrides or {})
    values["health_addr"] = options.health_addr
    if sim is not None:
        values["pd_url"] = sim.pd_url
        values["prometheus_url"] = None  # scrape the simulated stores' /metrics
    if fake is not None:
        workspace = fake.workspace
        values.update(
            slack_bot_token=SecretStr(workspace.bot_token),
            slack_app_token=SecretStr(workspace.app_token),
            slack_api_url=fake.api_url,
            slack_app_id=workspace.app_id,
            slack_team_id=workspace.team_id,
            channel=DEMO_CHANNEL,
            command_channels=[],
            approvers=[DEMO_APPROVER, DEMO_GROUP],
            approvers_high=[],
        )
    if fleet is not None:
        values["pd_url"] = None
        values["clusters"] = cluster_tables(fleet, with_slack=fake is not None)
    if options.db is not None:
        values["db"] = options.db
    elif db_dir is not None:
        values["db"] = db_dir / "tikvops.db"
    return Settings.model_validate(values)


@asynccontextmanager
async def open_demo(
    base: Settings,
    options: DemoOptions | None = None,
    *,
    notifier: Notifier | None = None,
    clock: Clock | None = None,
    slack: SlackOptions | None = None,
    engine_options: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> AsyncIterator[Demo]:
    """Start the simulator (unless `base.pd_url`), the stand-in (unless `base` has Slack
    tokens) and the bot; yield the running `Demo`; stop everything in reverse. `overrides`
    replace demo settings (tests shorten the timings further).

    Raises OSError when the stand-in's port is taken, plus whatever `open_stack` raises."""
    options = options or DemoOptions()
    if options.clusters > 1 and base.pd_url:
        raise ValueError(
            "tikvops demo --clusters simulates its clusters; unset TIKVOPS_PD_URL (pd_url) "
            "or run the demo without --clusters"
        )
    async with AsyncExitStack() as stack:
        sim: SimServer | None = None
        fleet: SimFleet | None = None
        if options.clusters > 1:
            fleet = SimFleet(
                options.cluster_names,
                stores=options.stores_per_cluster,
                regions=options.regions,
                speed=options.speed,
                seed=options.seed,
            )
            await fleet.start()
            stack.push_async_callback(fleet.stop)
            sim = fleet[options.cluster_names[0]]
        elif not base.pd_url:
            sim = SimServer(
                stores=options.stores_per_cluster,
                regions=options.regions,
                speed=options.speed,
                seed=options.seed,
                auto_tick=True,
            )
            await sim.start(host="127.0.0.1", port=0)
            stack.push_async_callback(sim.stop)
        fake: SlackFake | None = None
        if not base.uses_real_slack:
            fake = SlackFake(channels=demo_channels(options))
            await fake.start(host=options.host, port=options.port)
            stack.push_async_callback(fake.stop)
        db_dir: Path | None = None
        if options.db is None:
            db_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tikvops-demo-")))
        settings = demo_settings(
            base, options, sim=sim, fake=fake, db_dir=db_dir, overrides=overrides, fleet=fleet
        )
        config_file: Path | None = None
        if fleet is not None:
            config_dir = db_dir or Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="tikvops-demo-"))
            )
            config_file = config_dir / "clusters.toml"
            config_file.write_text(
                clusters_toml(cluster_tables(fleet, with_slack=fake is not None)),
                encoding="utf-8",
            )
        running = await stack.enter_async_context(
            open_stack(
                settings,
                notifier=notifier,
                clock=clock,
                slack=slack or SlackOptions(outbox_poll=0.5, outbox_backoff_base=0.5),
                engine_options=DEMO_ENGINE_OPTIONS if engine_options is None else engine_options,
            )
        )
        if fake is not None:
            await fake.wait_for_socket()
        yield Demo(
            settings=settings,
            options=options,
            stack=running,
            sim=sim,
            fake=fake,
            fleet=fleet,
            config_file=config_file,
        )


__all__ = [
    "DEMO_APPROVER",
    "DEMO_CHANNEL",
    "DEMO_CHANNEL_NAME",
    "DEMO_ENGINE_OPTIONS",
    "DEMO_GROUP",
    "DEMO_SETTINGS",
    "NO_SCENARIO",
    "SCENARIO_NAMES",
    "Demo",
    "DemoOptions",
    "cluster_channel",
    "cluster_settled",
    "cluster_tables",
    "clusters_toml",
    "demo_channels",
    "demo_settings",
    "open_demo",
    "wait_settled",
]
