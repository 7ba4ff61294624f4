"""`tikvops sim`: run the cluster simulator in the foreground and print its addresses."""

from __future__ import annotations

import argparse
from typing import Any

from sim import cli


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sim",
        help="run a simulated TiKV cluster (PD API on --port, per-store /metrics)",
        description="Run a simulated TiKV cluster behind a PD-compatible HTTP API.",
    )
    cli.add_arguments(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return cli.run(args)
