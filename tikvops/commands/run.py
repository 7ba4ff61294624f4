"""`tikvops run`: the long-running bot against a real cluster and a real Slack workspace.

Everything runs in one process (`tikvops.stack.open_stack`): the engine on the database, crash
reconciliation, the monitor and its scheduler (ticks, expiry, reminders), the diagnoser, the
Slack bot (Socket Mode connection and the outbox deliverer) and `/healthz` + `/metrics`. It
prints one line per running part, runs until SIGINT or SIGTERM, then stops cleanly: the socket
closes first, in-flight Slack work and the current tick finish, undelivered messages stay in
the outbox for the next start.

Needs `TIKVOPS_PD_URL` (or `--pd`), `SLACK_BOT_TOKEN` (`xoxb-`) and `SLACK_APP_TOKEN`
(`xapp-`, with `connections:write`). `SLACK_API_URL` points the Web API elsewhere (a proxy, the
local stand-in). Without Slack, `tikvops monitor` watches the cluster in the terminal and
`tikvops demo` runs everything against a simulator and a local Slack.

Exit codes: 0 stopped by a signal; 2 could not start (configuration, database, health port,
Slack refused the tokens or could not be reached).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.errors import SlackStartError
from engine.errors import StorageError
from tikvops.logs import configure_from_settings
from tikvops.observability import ObservabilityError
from tikvops.settings import ConfigError, Settings, env_name, load_settings
from tikvops.stack import SlackOptions, open_stack
from tikvops.terminal import say, stop_on_signals

logger = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the Slack bot, the monitor and the scheduler together (the service)",
        description=(
            "Run tikvops as a service: watch the cluster, post incidents and proposals to "
            "Slack, take approvals and /tikv commands over Socket Mode, execute approved "
            "actions and report their outcome. Stops on Ctrl-C or SIGTERM."
        ),
    )
    parser.add_argument("--pd", metavar="URL", help="PD's HTTP address (TIKVOPS_PD_URL)")
    parser.add_argument("--db", type=Path, metavar="PATH", help="SQLite database (TIKVOPS_DB)")
    parser.add_argument(
        "--channel", metavar="CHANNEL", help="channel for incidents and proposals (TIKVOPS_CHANNEL)"
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    settings = load_settings(
        config_file=args.config,
        env_file=args.env_file,
        pd_url=args.pd,
        db=args.db,
        channel=args.channel,
    )
    configure_from_settings(settings, stream=sys.stderr)
    for noisy in ("apscheduler", "httpx", "httpcore", "aiohttp.access", "slack_bolt"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    problems = missing_slack(settings)
    if problems:
        for line in problems:
            print(f"tikvops run: {line}", file=sys.stderr)
        return 2
    return asyncio.run(serve(settings, out=sys.stdout, freeze_heap=True))


def missing_slack(settings: Settings) -> list[str]:
    """What is missing for Slack, as sentences (empty when both tokens are set)."""
    missing = [
        env_name(name)
        for name in ("slack_bot_token", "slack_app_token")
        if getattr(settings, name) is None
    ]
    if not missing:
        return []
    return [
        f"{', '.join(missing)} not set: `tikvops run` needs the bot token (xoxb-) and the "
        "app-level token (xapp-, Socket Mode) of the Slack app (see manifest.yml).",
        "Without Slack: `tikvops monitor` watches the cluster in the terminal, and "
        "`tikvops demo` runs everything against a simulator and a local Slack.",
    ]


async def serve(
    settings: Settings,
    *,
    out: TextIO,
    stop: asyncio.Event | None = None,
    slack: SlackOptions | None = None,
    engine_options: dict[str, Any] | None = None,
    freeze_heap: bool = False,
) -> int:
    """Run until `stop` is set (default: SIGINT or SIGTERM); returns the exit code. Every
    start-up failure is reported as one sentence on stderr with exit code 2. `freeze_heap`:
    see `open_stack` (the `tikvops run` process sets it)."""
    stop = stop or stop_on_signals()
    try:
        async with open_stack(
            settings, slack=slack, engine_options=engine_options, freeze_heap=freeze_heap
        ) as stack:
            say(out, "tikvops run: started")
            for line in stack.describe():
                say(out, f"  {line}")
            say(out, "Ctrl-C or SIGTERM stops it.")
            await stop.wait()
            say(out, "tikvops run: stopping (in-flight work finishes; the outbox is kept)")
    except ConfigError as exc:
        for line in exc.problems:
            print(f"tikvops run: configuration: {line}", file=sys.stderr)
        return 2
    except (StorageError, ObservabilityError) as exc:
        print(f"tikvops run: {exc}", file=sys.stderr)
        return 2
    except SlackStartError as exc:
        print(f"tikvops run: {exc}.", file=sys.stderr)
        return 2
    say(out, "tikvops run: stopped")
    return 0


__all__ = ["missing_slack", "register", "run_command", "serve"]
