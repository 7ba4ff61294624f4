"""`tikvops demo` at the terminal: the banner saying what runs, the next steps, the fault injected
after a delay, and the wait for Ctrl-C (`run_demo`, on `tikvops.demo.open_demo`)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TextIO

from engine.ports import Clock
from sim.scenarios import ScenarioResult
from tikvops.demo import (
    NO_SCENARIO,
    SETTLE_LIMIT,
    Demo,
    DemoOptions,
    cluster_channel,
    open_demo,
    wait_settled,
)
from tikvops.settings import Settings
from tikvops.terminal import say
from tikvops.terminal_notifier import TerminalNotifier


def banner(demo: Demo) -> list[str]:
    """What runs and what to do next, for the terminal."""
    settings = demo.settings
    stack = demo.stack
    lines = ["tikvops demo is running:"]
    if demo.fleet is not None:
        for name in demo.fleet:
            sim = demo.fleet[name]
            channel = f" -> #{cluster_channel(name)[1]}" if demo.fake is not None else ""
            lines.append(
                f"  cluster   {name}: simulated TiKV, {len(sim.cluster.stores)} stores and "
                f"{len(sim.cluster.regions)} regions, PD at {sim.pd_url}{channel}"
            )
        lines.append(f"  config    the [clusters.NAME] tables are in {demo.config_file}")
    elif demo.sim is not None:
        sim = demo.sim
        lines.append(
            f"  cluster   simulated TiKV, {len(sim.cluster.stores)} stores and "
            f"{len(sim.cluster.regions)} regions, PD at {sim.pd_url} "
            f"(its time runs {sim.speed:g}x faster than the clock)"
        )
    else:
        lines.append(f"  cluster   your PD at {settings.pd_url} (nothing will be injected)")
    if demo.fake is not None:
        lines.append(f"  slack     local Slack stand-in, open {demo.page_url}")
    else:
        lines.append(f"  slack     your Slack workspace, incidents in {settings.channel}")
    lines.append(
        f"  bot       monitor every {settings.poll_interval:g} s, diagnosis by "
        f"{stack.diagnoser_name}"
    )
    if demo.fake is not None:
        lines.append("  approvers alice (U0ALICE) and the @oncall group; bob is not an approver")
    else:
        lines.append(f"  approvers {', '.join(settings.approvers) or 'nobody (TIKVOPS_APPROVERS)'}")
    lines.append(f"  database  {settings.db}")
    if stack.server is not None:
        lines.append(f"  health    {stack.server.url}/healthz and {stack.server.url}/metrics")
    return lines


def next_steps(demo: Demo) -> list[str]:
    options = demo.options
    lines: list[str] = []
    if demo.sim is not None and options.scenario != NO_SCENARIO:
        where = "the simulator"
        if demo.fleet is not None:
            first = next(iter(demo.fleet))
            where = f"cluster {first} (#{cluster_channel(first)[1]}); the others stay quiet"
        lines.append(
            f"In {options.delay:g} s the demo injects the `{options.scenario}` fault "
            f"into {where}; an incident, its diagnosis and a proposal follow within "
            "about 30 s."
        )
    if demo.fake is not None:
        lines.append(
            "Next: open the page above (you are alice), open the incident's thread in "
            "#tikv-ops (the chart of the metric behind it is there), click Approve on the "
            "proposal and confirm, then watch the leaders move and the incident resolve. "
            "The tikvops Home tab (under Apps) lists open incidents and the proposal waiting "
            "for you, with its buttons. Or type `/tikv help` in the composer."
        )
    elif demo.sim is not None:
        lines.append("Next: watch #" + demo.settings.channel + " in Slack and approve there.")
    lines.append("Ctrl-C stops everything.")
    return lines


def describe_injection(result: ScenarioResult) -> str:
    return f"Injected `{result.name}`: {result.summary}. Expect: {result.expect}."


async def run_demo(
    base: Settings,
    options: DemoOptions,
    *,
    out: TextIO,
    stop: asyncio.Event,
    clock: Clock | None = None,
) -> int:
    """`tikvops demo` until `stop` is set; returns the exit code (0 after a clean stop)."""
    echo = TerminalNotifier(out, clock=clock, named=options.clusters > 1)
    async with open_demo(base, options, notifier=echo, clock=clock) as demo:
        for line in [*banner(demo), "", *next_steps(demo)]:
            say(out, line)
        if demo.sim is not None and options.scenario != NO_SCENARIO:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), options.delay)
            if not stop.is_set():
                await wait_settled(demo.sim, limit=SETTLE_LIMIT, stop=stop)
            if not stop.is_set():
                result = demo.inject()
                if result is not None:
                    say(out, describe_injection(result))
        await stop.wait()
        say(out, "tikvops demo: stopping (the bot first, then the stand-in and the simulator)")
    say(out, "tikvops demo: stopped")
    return 0


__all__ = ["banner", "describe_injection", "next_steps", "run_demo"]
