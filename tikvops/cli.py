"""The `tikvops` command line: parses global options and dispatches to `tikvops.commands.*`.

Each module in `tikvops.commands` defines `register(subparsers)`, which adds its subcommand and
sets `handler` to a function taking the parsed namespace and returning the exit code. Exit codes:
0 success, 1 the command ran and found a problem (violations, refusal), 2 it could not run
(bad arguments or configuration).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tikvops.settings import ConfigError

# Subcommand modules, in the order `tikvops --help` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "demo",
    "check",
    "monitor",
    "actions",
    "outbox",
    "eval",
    "sim",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tikvops",
        description="Slack-first ChatOps for TiKV: watch, diagnose, propose, approve, verify.",
    )
    parser.add_argument("--config", type=Path, help="TOML configuration file")
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="dotenv file")
    # `tikvops --pd URL --db PATH drain 4`: the same options may also follow the subcommand.
    parser.add_argument("--pd", dest="global_pd", metavar="URL", help="PD address")
    parser.add_argument("--db", dest="global_db", metavar="PATH", help="SQLite database")
    parser.add_argument(
        "--cluster",
        dest="global_cluster",
        metavar="NAME",
        help="the cluster a command targets, when the configuration has several",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"tikvops.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("pd", "db"):
        given = getattr(args, f"global_{name}")
        if given is None:
            continue
        if hasattr(args, "words"):  # grammar commands parse their own options from the words
            args.words = [f"--{name}", given, *args.words]
        elif hasattr(args, name):
            if getattr(args, name) is None:
                setattr(args, name, given)
        else:
            parser.error(f"--{name} does not apply to '{args.command}'")
    if args.global_cluster is not None and not hasattr(args, "words"):
        if not hasattr(args, "cluster"):  # `check` and `eval` take it too
            parser.error(f"--cluster does not apply to '{args.command}'")
        if args.cluster is None:
            args.cluster = args.global_cluster
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except ConfigError as exc:
        for line in exc.problems:
            print(f"tikvops: configuration: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tikvops audit | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
