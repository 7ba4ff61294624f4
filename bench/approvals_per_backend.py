"""Approvals per second on each storage backend: SQLite (a file, WAL, synchronous=FULL) and
PostgreSQL (Debian's server started here in a temporary directory, as `nobody` when run as
root, fsync on).

Each trial creates `--proposals` proposals, then approves and starts every one of them from
`--workers` concurrent workers spread over `--connections` database connections (one
connection per replica): an approval is the policy decision saved with its compare-and-set,
approval row, audit row and event (one transaction); a start is the approved → executing gate
with its execution record (one transaction). Every proposal is decided by two workers at once
(a double click), so the compare-and-set really races; the figure counts the approvals that
won. After each trial the script checks that every proposal has exactly one execution.

    .venv/bin/python bench/approvals_per_backend.py [--proposals 300] [--workers 8]
        [--connections 3] [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import print_facts
from engine.applying import apply_transition
from engine.errors import AlreadyDecided, StaleVersion
from engine.model import SYSTEM, Execution, Identity, ProposalOrigin, ProposalState, RiskLevel
from engine.policy import ANYONE, ApprovalPolicy
from engine.transitions import ProposalEvent, propose, transition
from storage import PostgresUrl, Repositories, open_database
from tests.plugins.postgres import PostgresServer, _start_server, postgres_bindir

T0 = datetime(2024, 5, 1, 14, 0, tzinfo=UTC)
POLICY = ApprovalPolicy(approvers=frozenset({ANYONE}))
ALICE = Identity.slack("U1ALICE", name="alice")


async def trial(target: Path | PostgresUrl, proposals: int, workers: int, conns: int) -> float:
    dbs = [await open_database(target) for _ in range(conns)]
    try:
        repos = [Repositories.on(db) for db in dbs]
        ids = []
        for _ in range(proposals):
            pid = await repos[0].proposals.next_id()
            made = propose(
                proposal_id=pid,
                action="drain-store",
                params={"store_id": 4},
                risk=RiskLevel.MEDIUM,
                origin=ProposalOrigin.USER,
                proposed_by=ALICE,
                now=T0,
                ttl=timedelta(hours=1),
            )
            await repos[0].proposals.create(made)
            ids.append(pid)
        queue: asyncio.Queue[str] = asyncio.Queue()
        for pid in ids:
            queue.put_nowait(pid)
            queue.put_nowait(pid)  # the double click
        won = 0

        async def worker(index: int) -> None:
            nonlocal won
            mine = repos[index % conns]
            user = Identity.slack(f"U{index}")
            while not queue.empty():
                pid = queue.get_nowait()
                try:
                    approved = await apply_transition(
                        mine.proposals,
                        pid,
                        lambda p, u=user: POLICY.decide(ProposalEvent.APPROVE, p, u, T0),
                        attempts=10,
                    )
                except AlreadyDecided:
                    continue
                won += 1
                started = transition(approved.proposal, ProposalEvent.START, actor=SYSTEM, now=T0)
                execution = Execution(proposal_id=pid, started_at=T0, updated_at=T0)
                with contextlib.suppress(StaleVersion):
                    await mine.proposals.apply(started, start_execution=execution)

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(workers)))
        elapsed = time.perf_counter() - began
        unfinished = await repos[0].executions.list_unfinished()
        executing = await repos[0].proposals.list(
            states=[ProposalState.EXECUTING], limit=proposals + 1
        )
        assert won == proposals, f"{won} approvals won for {proposals} proposals"
        assert len(unfinished) == len(executing) == proposals, (len(unfinished), len(executing))
        return proposals / elapsed
    finally:
        for db in dbs:
            await db.close()


async def run_backend(
    make_target: Callable[[], Path | PostgresUrl], args: argparse.Namespace
) -> list[float]:
    rates = []
    for _ in range(args.trials):
        target = make_target()
        rates.append(await trial(target, args.proposals, args.workers, args.connections))
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--proposals", type=int, default=300)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    print_facts("approvals per second on each backend")
    print(
        f"   {args.proposals} proposals per trial, each clicked twice; {args.workers} workers "
        f"over {args.connections} connections; {args.trials} trials"
    )
    scratch = Path(tempfile.mkdtemp(prefix="tikvops-bench-"))
    counter = iter(range(1_000_000))
    results: dict[str, list[float]] = {}
    try:
        results["sqlite"] = asyncio.run(
            run_backend(lambda: scratch / f"bench-{next(counter)}.db", args)
        )
        server = start_postgres()
        if server is None:
            print("   postgresql: skipped (no PostgreSQL binaries; apt-get install postgresql)")
        else:
            try:
                results["postgresql"] = asyncio.run(
                    run_backend(lambda: PostgresUrl(server.url(server.create_database())), args)
                )
            finally:
                server.stop()
                shutil.rmtree(server.root, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for name, rates in results.items():
        print(
            f"   {name:<11} approvals/s (approve + start, each its own transaction): "
            f"median {statistics.median(rates):.0f}, min {min(rates):.0f}, "
            f"max {max(rates):.0f}  (trials: {', '.join(f'{r:.0f}' for r in rates)})"
        )
    return 0


def start_postgres() -> PostgresServer | None:
    """The tests' server (tests/plugins/postgres.py) with fsync on (a durable commit, as
    SQLite's synchronous=FULL), or None without PostgreSQL."""
    if postgres_bindir() is None:
        return None
    return _start_server(durable=True)


if __name__ == "__main__":
    raise SystemExit(main())
