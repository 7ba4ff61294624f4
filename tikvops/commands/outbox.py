"""`tikvops outbox`: what the bot still owes Slack, and a second chance for what it gave up on.

`tikvops outbox` lists the pending and dead (given up) Slack messages with their last error;
`--all` adds delivered ones. `tikvops outbox retry ID...` (or `--dead` for every dead one)
puts given-up messages back in line: after fixing what Slack refused (the bot removed from the
channel, a revoked scope), the running bot delivers them within its poll interval. Each retry
is audited as the local operator. Only the database is used (no PD, no Slack).

Exit codes: 0 done, 1 nothing to retry, 2 could not run (bad arguments, database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from engine.clock import SystemClock, format_time
from engine.errors import StorageError
from engine.model import AuditEvent, OutboxItem, OutboxStatus
from storage import Repositories, database_target, open_database
from storage.dburl import DatabaseTarget
from tikvops.commands.actions import local_identity
from tikvops.settings import load_settings

LIST_LIMIT = 50


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "outbox",
        help="list the Slack messages the bot still owes, and retry the ones it gave up on",
        description=(
            "List pending and given-up (dead) Slack messages with their last error, or put "
            "given-up messages back in line with 'retry ID...' or 'retry --dead'."
        ),
    )
    parser.add_argument("--db", metavar="PATH", help="SQLite database (default: settings)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--all", action="store_true", help="include delivered messages")
    parser.add_argument("verb", nargs="?", choices=("list", "retry"), default="list")
    parser.add_argument("ids", nargs="*", type=int, metavar="ID", help="outbox item IDs")
    parser.add_argument("--dead", action="store_true", help="retry every given-up message")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_file=args.config, env_file=args.env_file)
    path = database_target(args.db) if args.db else settings.db
    if args.verb == "retry" and not args.ids and not args.dead:
        print(
            "tikvops outbox retry: say which messages: outbox item IDs (see 'tikvops outbox') "
            "or --dead for every given-up one",
            file=sys.stderr,
        )
        return 2
    if args.verb == "list" and (args.ids or args.dead):
        print("tikvops outbox: IDs and --dead go with 'retry'", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, path, sys.stdout))
    except StorageError as exc:
        print(f"tikvops outbox: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, path: DatabaseTarget, out: TextIO) -> int:
    db = await open_database(path)
    try:
        repos = Repositories.on(db)
        if args.verb == "retry":
            return await _retry(repos, None if args.dead else list(args.ids), out)
        statuses = None if args.all else [OutboxStatus.PENDING, OutboxStatus.DEAD]
        items = await repos.outbox.list(statuses=statuses, limit=LIST_LIMIT)
        if args.json:
            out.write(json.dumps([_item_json(i) for i in items], indent=2) + "\n")
        else:
            out.write(render_items(items, SystemClock().now()) + "\n")
        return 0
    finally:
        await db.close()


async def _retry(repos: Repositories, ids: Sequence[int] | None, out: TextIO) -> int:
    now = SystemClock().now()
    requeued = await repos.outbox.requeue(ids, now=now)
    if requeued:
        await repos.audit.append(
            AuditEvent(
                at=now,
                actor=local_identity(),
                action="outbox.requeue",
                subject="outbox",
                detail={"items": requeued},
                reason="given-up Slack messages put back in line",
            )
        )
    missed = sorted(set(ids or ()) - set(requeued))
    if requeued:
        out.write(
            f"Put {len(requeued)} message(s) back in line: {', '.join(map(str, requeued))}. "
            "The running bot delivers them within its outbox poll interval.\n"
        )
    if missed:
        out.write(
            f"Not retried: {', '.join(map(str, missed))} (no such item, or not given up: "
            "pending ones are still being tried, delivered ones are done).\n"
        )
    if not requeued and not missed:
        out.write("No given-up messages: nothing to retry.\n")
    return 0 if requeued else 1


def render_items(items: Sequence[OutboxItem], now: datetime) -> str:
    """A plain table of outbox items (pure)."""
    if not items:
        return "Nothing owed to Slack: no pending or given-up messages."
    lines = [f"{'ID':>6}  {'STATUS':<9}  {'TRIES':>5}  {'OP':<6}  {'KEY':<20}  LAST ERROR"]
    for item in items:
        op = str(item.payload.get("op", "?"))
        error = (item.last_error or "").replace("\n", " ")[:80]
        lines.append(
            f"{item.id:>6}  {item.status.value:<9}  {item.attempts:>5}  {op:<6}  "
            f"{item.key:<20}  {error}"
        )
    dead = sum(1 for i in items if i.status is OutboxStatus.DEAD)
    pending = [i for i in items if i.status is OutboxStatus.PENDING]
    if pending:
        oldest = min(i.created_at for i in pending)
        lines.append(f"{len(pending)} pending, the oldest queued at {format_time(oldest, now)}.")
    if dead:
        lines.append(
            f"{dead} given up: fix what the last error names, then 'tikvops outbox retry --dead'."
        )
    return "\n".join(lines)


def _item_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "status": item.status.value,
        "key": item.key,
        "op": item.payload.get("op"),
        "attempts": item.attempts,
        "created_at": item.created_at.isoformat(),
        "next_attempt_at": item.next_attempt_at.isoformat(),
        "last_error": item.last_error,
    }


__all__ = ["register", "render_items", "run"]
