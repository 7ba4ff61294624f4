"""`tikvops demo`: the simulator, the local Slack stand-in and the real bot, together.

With no configuration at all it runs a simulated 5-store cluster, the stand-in's page on
127.0.0.1 (`--port`, default 3000; 0 picks a free port) and the bot with demo timings, prints
the page's URL and what to do, and injects `--scenario` (default `slow-store`) after `--delay`
seconds. `SLACK_BOT_TOKEN`/`SLACK_APP_TOKEN` use the real Slack instead of the stand-in;
`TIKVOPS_PD_URL` uses the real cluster instead of the simulator (and nothing is injected).
Ctrl-C or SIGTERM stops everything cleanly (exit code 0); 2 means it could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from bot.errors import SlackStartError
from engine.errors import StorageError
from tikvops.commands import argtypes
from tikvops.demo import NO_SCENARIO, SCENARIO_NAMES, DemoOptions
from tikvops.demo_terminal import run_demo
from tikvops.logs import configure_from_settings
from tikvops.observability import ObservabilityError
from tikvops.settings import load_settings
from tikvops.terminal import stop_on_signals


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the simulator, the local Slack stand-in and the bot together",
        description=(
            "Run a simulated TiKV cluster, a local Slack stand-in with a web page and the real "
            "bot, then inject a fault: an incident, its diagnosis and a proposal to approve "
            "appear on the page within about 30 s. Ctrl-C stops everything."
        ),
    )
    parser.add_argument(
        "--port",
        type=argtypes.port,
        default=3000,
        help="port of the local Slack page on 127.0.0.1 (default 3000; 0 picks a free one)",
    )
    parser.add_argument(
        "--scenario",
        default="slow-store",
        choices=[*SCENARIO_NAMES, NO_SCENARIO],
        help="fault to inject into the simulator (default slow-store; none injects nothing)",
    )
    parser.add_argument(
        "--delay",
        type=argtypes.seconds,
        default=5.0,
        metavar="SECONDS",
        help="pause before the fault is injected (default 5)",
    )
    parser.add_argument(
        "--speed",
        type=argtypes.positive,
        default=10.0,
        help="how many times faster than the clock the simulator's time runs (default 10)",
    )
    parser.add_argument(
        "--clusters",
        type=int,
        default=1,
        metavar="N",
        help=(
            "simulate N clusters (prod, staging, ...; 3 stores each), one channel per cluster "
            "in the local Slack page, one bot watching them all (default 1)"
        ),
    )
    parser.add_argument("--db", type=Path, metavar="PATH", help="database (default: temporary)")
    parser.add_argument("--verbose", action="store_true", help="log what every part does")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, env_file=args.env_file)
    configure_from_settings(settings, stream=sys.stderr)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    for noisy in ("apscheduler", "httpx", "httpcore", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        options = DemoOptions(
            port=args.port,
            scenario=args.scenario,
            delay=args.delay,
            speed=args.speed,
            db=args.db,
            clusters=args.clusters,
        )
    except ValueError as exc:
        print(f"tikvops demo: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_main(settings, options))
    except OSError as exc:
        print(
            f"tikvops demo: cannot start: {exc.strerror or exc}. If port {args.port} is taken, "
            "pick another with --port (0 picks a free one).",
            file=sys.stderr,
        )
        return 2
    except (StorageError, ObservabilityError, SlackStartError, ValueError) as exc:
        print(f"tikvops demo: cannot start: {exc}", file=sys.stderr)
        return 2


async def _main(settings: Any, options: DemoOptions) -> int:
    return await run_demo(settings, options, out=sys.stdout, stop=stop_on_signals())
