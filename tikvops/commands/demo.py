"""`tikvops demo`: simulator, local Slack and the real bot together (not built yet)."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="run the simulator, the local Slack stand-in and the bot"
    )
    parser.add_argument("--port", type=int, default=3000, help="local Slack page port")
    parser.add_argument("--scenario", default="slow-store", help="fault to inject")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    print(
        "tikvops demo: not built yet (simulator, local Slack and bot are in progress).",
        file=sys.stderr,
    )
    return 2
