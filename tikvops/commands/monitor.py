"""`tikvops monitor` and `tikvops incidents`: the monitor without Slack, and what it found.

`tikvops monitor` runs the bot's stack (`tikvops.stack.open_stack`) without Slack, in the
foreground: the monitor, the scheduler and the engine against PD (and Prometheus, or each
TiKV's `/metrics`), with the database the bot uses. It prints every
event as one line (`tikvops.terminal_notifier`): incidents opened, updated and resolved, their
diagnosis (Claude when `ANTHROPIC_API_KEY` is set, with the built-in playbooks as fallback;
else the playbooks), proposals and what happens to them. It serves `/healthz`
and `/metrics` on `health_addr`, reconciles executions interrupted by an earlier stop, and runs
until SIGINT or SIGTERM, then stops cleanly (the run in progress finishes first). Exit codes:
0 stopped by a signal, 2 could not start (configuration, database, health port).

`tikvops incidents` reads the same database: open incidents (`--all`: resolved ones too,
newest first) as a table, or with `--json` one object `{"result": "incidents", "incidents":
[...]}` with each incident's fields (the shape of the engine's incidents view, so every
surface reads the same records the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Any, TextIO

from engine.clock import SystemClock, format_duration, format_time
from engine.errors import StorageError
from engine.incident_facts import consequence_text, consequences_of
from engine.model import Incident, IncidentStatus
from engine.ports import Clock
from engine.results import IncidentsView
from storage import SqliteIncidentRepo, open_database
from storage.dburl import DatabaseTarget
from tikvops.attention_text import attention_suffix
from tikvops.commands import argtypes
from tikvops.logs import configure_from_settings
from tikvops.observability import ObservabilityError
from tikvops.settings import Settings, load_settings
from tikvops.stack import open_stack
from tikvops.terminal import say, stop_on_signals
from tikvops.terminal_notifier import TerminalNotifier

logger = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 50


def register(subparsers: Any) -> None:
    monitor: argparse.ArgumentParser = subparsers.add_parser(
        "monitor",
        help="watch the cluster and print incidents as they happen (no Slack)",
        description=(
            "Run the monitor, its scheduler and the engine in the foreground and print every "
            "incident, diagnosis and proposal as one line. Stops on Ctrl-C or SIGTERM."
        ),
    )
    monitor.add_argument("--pd", metavar="URL", help="PD's HTTP address (TIKVOPS_PD_URL)")
    monitor.add_argument(
        "--prometheus", metavar="URL", help="Prometheus base URL (default: scrape each TiKV)"
    )
    monitor.add_argument("--db", metavar="PATH", help="SQLite database (TIKVOPS_DB)")
    monitor.add_argument(
        "--interval",
        type=argtypes.positive_seconds,
        metavar="SECONDS",
        help="seconds between monitor ticks (TIKVOPS_POLL_INTERVAL)",
    )
    monitor.add_argument(
        "--resolve-after",
        type=argtypes.seconds,
        metavar="SECONDS",
        help="seconds an incident must stay clear before it resolves (TIKVOPS_RESOLVE_AFTER)",
    )
    monitor.set_defaults(handler=run_monitor_command)

    incidents: argparse.ArgumentParser = subparsers.add_parser(
        "incidents",
        help="list incidents from the database (open ones; --all for every one)",
        description="List the incidents stored in the database the monitor and the bot use.",
    )
    incidents.add_argument("--db", metavar="PATH", help="SQLite database (TIKVOPS_DB)")
    incidents.add_argument("--all", action="store_true", help="resolved incidents too")
    incidents.add_argument("--json", action="store_true", help="print one JSON object")
    incidents.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIST_LIMIT,
        help=f"with --all: how many, newest first (default {DEFAULT_LIST_LIMIT})",
    )
    incidents.set_defaults(handler=run_incidents_command)


# --------------------------------------------------------------------------- monitor


def run_monitor_command(args: argparse.Namespace) -> int:
    settings = load_settings(
        config_file=args.config,
        env_file=args.env_file,
        pd_url=args.pd,
        prometheus_url=args.prometheus,
        db=args.db,
        poll_interval=args.interval,
        resolve_after=args.resolve_after,
    )
    configure_from_settings(settings, stream=sys.stderr)
    for noisy in ("apscheduler", "httpx", "httpcore"):  # one line per request or job run
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return asyncio.run(run_monitor(settings, out=sys.stdout))
    except StorageError as exc:
        print(f"tikvops monitor: {exc}", file=sys.stderr)
        return 2
    except ObservabilityError as exc:
        print(f"tikvops monitor: {exc}", file=sys.stderr)
        return 2


async def run_monitor(
    settings: Settings,
    *,
    out: TextIO,
    stop: asyncio.Event | None = None,
    clock: Clock | None = None,
) -> int:
    """Run until `stop` is set (default: until SIGINT or SIGTERM). Returns the exit code.
    This is the bot's stack (`tikvops.stack.open_stack`) without Slack, reporting to the
    terminal."""
    clock = clock or SystemClock()
    stop = stop or stop_on_signals()
    notifier = TerminalNotifier(out, clock=clock)
    async with open_stack(settings, notifier=notifier, clock=clock, use_slack=False) as stack:
        notifier.named = stack.runtime.multi_cluster  # several: every line names its cluster
        source = stack.source.metrics.name if stack.source.metrics else "none"
        watching = f"PD {stack.runtime.pd.base_url}"
        if stack.runtime.multi_cluster:
            watching = (
                f"{len(stack.runtime.clusters)} clusters ("
                + ", ".join(
                    f"{name}: PD {c.pd.base_url}" for name, c in stack.runtime.clusters.items()
                )
                + ")"
            )
        say(
            out,
            f"tikvops monitor: watching {watching} every "
            f"{settings.poll_interval:g} s (metrics: {source}; diagnosis: "
            f"{stack.diagnoser_name}); database {settings.db}; /healthz and /metrics on "
            f"{stack.health_url}. Ctrl-C stops.",
        )
        await stop.wait()
        say(out, "tikvops monitor: stopping (letting the current tick finish)")
    say(out, "tikvops monitor: stopped")
    return 0


# --------------------------------------------------------------------------- incidents


def run_incidents_command(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, env_file=args.env_file, db=args.db)
    if args.limit < 1:
        print("tikvops incidents: --limit must be 1 or more", file=sys.stderr)
        return 2
    if isinstance(settings.db, Path) and not settings.db.exists():
        incidents: list[Incident] = []  # nothing has been recorded yet
        print(
            f"tikvops incidents: no database at {settings.db} yet, so nothing has been recorded "
            "(the monitor and the bot create it; set TIKVOPS_DB or --db if it lives elsewhere)",
            file=sys.stderr,
        )
    else:
        try:
            incidents = asyncio.run(
                read_incidents(settings.db, include_resolved=args.all, limit=args.limit)
            )
        except StorageError as exc:
            print(f"tikvops incidents: {exc}", file=sys.stderr)
            return 2
    if args.json:
        json.dump(incidents_json(incidents), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        write_incidents(incidents, sys.stdout, clock=SystemClock(), db=settings.db, all_=args.all)
    return 0


async def read_incidents(
    path: DatabaseTarget, *, include_resolved: bool = False, limit: int = DEFAULT_LIST_LIMIT
) -> list[Incident]:
    """Open incidents (oldest first), or with `include_resolved` the latest `limit` incidents
    (newest first), from the database at `path` (created if missing: check first)."""
    db = await open_database(path)
    try:
        repo = SqliteIncidentRepo(db)
        if include_resolved:
            return await repo.list(limit=limit)
        return await repo.list_open()
    finally:
        await db.close()


def incidents_json(incidents: list[Incident]) -> dict[str, Any]:
    return IncidentsView(incidents=incidents).model_dump(mode="json")


def write_incidents(
    incidents: list[Incident], out: TextIO, *, clock: Clock, db: DatabaseTarget, all_: bool
) -> None:
    now = clock.now()
    if not incidents:
        what = "No incidents" if all_ else "No open incidents"
        where = (
            f" in {db}"
            if not isinstance(db, Path) or db.exists()
            else f": {db} does not exist yet (tikvops monitor creates it)"
        )
        out.write(f"{what}{where}.\n")
        return
    header = ("ID", "STATUS", "SEVERITY", "KIND", "SUBJECT", "OPENED", "FOR", "TITLE")
    rows = [header]
    for incident in incidents:
        end = incident.resolved_at if incident.status is IncidentStatus.RESOLVED else now
        severity = incident.severity.value
        if incident.worst_severity is not incident.severity:
            severity += f" (worst {incident.worst_severity.value})"
        status = incident.status.value
        if incident.is_open and incident.clear_since is not None:
            status = "clearing"
        rows.append(
            (
                incident.id,
                status,
                severity,
                incident.kind,
                incident.subject,
                format_time(incident.opened_at, now),
                format_duration((end or now) - incident.opened_at),
                incident.title + (attention_suffix(incident, now) if incident.is_open else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        out.write("  ".join([*cells, row[-1]]).rstrip() + "\n")
        if index > 0:  # its consequences, under it: one incident per cause
            incident = incidents[index - 1]
            for consequence in consequences_of(incident):
                out.write(f"{'':{widths[0]}}  └ {consequence_text(consequence)}\n")
            into = incident.details.get("merged_into")
            if isinstance(into, str) and into:
                out.write(f"{'':{widths[0]}}  └ merged into {into} (the same cause)\n")


__all__ = [
    "incidents_json",
    "read_incidents",
    "register",
    "run_monitor",
    "write_incidents",
]
