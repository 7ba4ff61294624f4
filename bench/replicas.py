"""Replicas on PostgreSQL: leader failover time, and click-to-ack with three replicas against one.

Every bot is `tikvops run` in its own process, on one PostgreSQL database (the tests' server,
tests/plugins/postgres.py, fsync on); the Slack stand-in (dealing envelopes out over the
replicas' connections in turn) and the simulator run in this process.

- Failover: three replicas with `TIKVOPS_LEADER_POLL=--poll`. The leader (found through each
  replica's /healthz) is SIGKILLed; the time until another replica's /healthz says it leads is
  one sample (/healthz polled every 20 ms). The killed replica is started again before the next
  kill. Target: within two poll intervals (a replica that takes the lock waits one poll before
  leading, so that a leader that lost it has stepped down first).
- Click to ack: 100 concurrent Approve clicks on one proposal, then `--rounds` bursts of 100
  `/tikv status`, with one replica and with three; the stand-in times each envelope from the
  frame it sent to the ack frame (Slack's 3 s limit). Target: p99 under 50 ms.

    .venv/bin/python bench/replicas.py [--kills 10] [--poll 1.0] [--burst 100] [--rounds 3]

The full run (10 kills) takes a few minutes: each replica start imports the whole bot.
`--quick` is 3 kills and bursts of 20.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.click_to_ack import ack_times_ms, proposal_message
from bench.common import no_proxy, print_facts, summary
from bench.harness import ALICE, CHANNEL, BotProcess, bot_process, in_process_sim, slack_fake, users
from bot import callbacks
from sim.server import SimServer
from slackfake.server import SlackFake
from tests.plugins.postgres import PostgresServer, _start_server, postgres_bindir

TARGET_ACK_MS = 50.0


def as_db(dsn: str) -> Any:
    """The harness takes the database setting as a path; a URL goes through as text."""
    return dsn


async def leads(http: aiohttp.ClientSession, bot: BotProcess) -> bool:
    if bot.process.returncode is not None:
        return False
    try:
        async with http.get(f"{bot.health_url}/healthz") as resp:
            return bool(json.loads(await resp.text()).get("leader"))
    except (aiohttp.ClientError, TimeoutError):
        return False


async def the_leader(http: aiohttp.ClientSession, bots: list[BotProcess]) -> int:
    async with asyncio.timeout(60):
        while True:
            found = [
                i
                for i, ok in enumerate(await asyncio.gather(*(leads(http, b) for b in bots)))
                if ok
            ]
            if len(found) == 1:
                return found[0]
            await asyncio.sleep(0.02)


async def failover(
    sim: SimServer, fake: SlackFake, dsn: str, *, kills: int, poll: float
) -> list[float]:
    samples: list[float] = []
    settings: dict[str, Any] = {"leader_poll": poll, "poll_interval": 15}
    timeout = aiohttp.ClientTimeout(total=1)
    async with (
        contextlib.AsyncExitStack() as stack,
        aiohttp.ClientSession(timeout=timeout) as http,
    ):
        bots = [
            await stack.enter_async_context(bot_process(sim.pd_url, fake, as_db(dsn), **settings))
            for _ in range(3)
        ]
        for _ in range(kills):
            old = await the_leader(http, bots)
            bots[old].process.kill()
            await bots[old].process.wait()
            killed_at = time.perf_counter()
            others = [b for i, b in enumerate(bots) if i != old]
            async with asyncio.timeout(60):
                while True:
                    if any(await asyncio.gather(*(leads(http, b) for b in others))):
                        break
                    await asyncio.sleep(0.02)
            samples.append(time.perf_counter() - killed_at)
            bots[old] = await stack.enter_async_context(
                bot_process(sim.pd_url, fake, as_db(dsn), **settings)
            )
    return samples


async def acks(
    sim: SimServer, fake: SlackFake, dsn: str, *, replicas: int, burst: int, rounds: int
) -> dict[str, list[float]]:
    people = [u for u in fake.workspace.users if u.startswith("U0") and u[1:].isdigit()][:burst]
    settings: dict[str, Any] = {"approvers": ",".join([ALICE, *people]), "poll_interval": 15}
    results: dict[str, list[float]] = {"click": [], "command": []}
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(replicas):
            await stack.enter_async_context(bot_process(sim.pd_url, fake, as_db(dsn), **settings))
        await fake.slash_command(user=ALICE, channel=CHANNEL, text="drain 4")
        message = await proposal_message(fake)
        clicked = await asyncio.gather(
            *(
                fake.click(
                    user=u, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
                )
                for u in people
            )
        )
        results["click"] += ack_times_ms(fake, [a.envelope_id for a in clicked])
        for _ in range(rounds):
            sent = await asyncio.gather(
                *(fake.slash_command(user=u, channel=CHANNEL, text="status") for u in people)
            )
            results["command"] += ack_times_ms(fake, [a.envelope_id for a in sent])
            await asyncio.sleep(0.5)
    return results


async def main_async(args: argparse.Namespace, server: PostgresServer) -> None:
    no_proxy()
    async with (
        slack_fake(users=users(args.burst)) as fake,
        in_process_sim(stores=4, regions=1000) as sim,
    ):
        times = await failover(
            sim, fake, server.url(server.create_database()), kills=args.kills, poll=args.poll
        )
    median, worst = statistics.median(times), max(times)
    verdict = "met" if worst <= 2 * args.poll else "MISSED"
    print(
        f"   failover (leader SIGKILLed -> another /healthz says leader), {len(times)} kills, "
        f"poll {args.poll:g} s: median {median:.2f} s ({median / args.poll:.2f} polls), "
        f"max {worst:.2f} s ({worst / args.poll:.2f} polls); target <= 2 polls: {verdict}"
    )
    print(f"   samples: {', '.join(f'{t:.2f}' for t in times)}")
    for replicas in (1, 3):
        async with (
            slack_fake(users=users(args.burst)) as fake,
            in_process_sim(stores=4, regions=1000) as sim,
        ):
            results = await acks(
                sim,
                fake,
                server.url(server.create_database()),
                replicas=replicas,
                burst=args.burst,
                rounds=args.rounds,
            )
            spread = len({d.connection_id for d in fake.deliveries})
        for kind, label in (("click", "Approve clicks"), ("command", "/tikv status")):
            s = summary(results[kind])
            verdict = "met" if s["p99"] < TARGET_ACK_MS else "MISSED"
            print(
                f"   {replicas} replica(s) ({spread} connection(s) used) {label:<15} "
                f"n={int(s['n']):>4}  p50 {s['p50']:6.1f} ms  p99 {s['p99']:6.1f} ms  "
                f"max {s['max']:6.1f} ms  (p99 < {TARGET_ACK_MS:.0f} ms: {verdict})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="3 kills, bursts of 20, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.burst, args.rounds = 3, 20, 1
    print_facts(
        f"replicas on PostgreSQL: failover over {args.kills} kills; click to ack with 1 and 3 "
        f"replicas ({args.burst} clicks, {args.rounds} command burst(s))"
    )
    if postgres_bindir() is None:
        print("   skipped: no PostgreSQL binaries (apt-get install postgresql)")
        return 0
    server = _start_server(durable=True)
    try:
        asyncio.run(main_async(args, server))
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
