"""Approve to PD request: from the Approve click to the PD write arriving at the simulator.

The bot runs as `tikvops run` in its own process; the Slack stand-in and the simulator run in
this one. Each trial proposes `/tikv drain N` (a different store each time), then alice clicks
Approve: the click is acknowledged, the engine checks the approval policy, records the
approval and the execution, runs the action's preflight against PD and sends the write. The
figure is the time from the click (the stand-in writing the envelope to the socket) to the
write's arrival in the simulator's request log.

The same PD calls (the preflight reads the bot made, in the order they arrived, then the write)
are then made by a bare `httpx.AsyncClient` in a fresh child process with a warm connection;
its figure is the time from its first request to the write's arrival. The ratio of the two is
the figure against the target. The bare client sends the reads one after another; the bot's
drain preflight sends its three reads (stores, evict-leader list, replication config) together,
which the simulator still answers one at a time.

Target: within 1.5x of the bare calls.

    .venv/bin/python bench/approve_to_pd.py [--trials 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, no_proxy, print_facts
from bench.harness import ALICE, CHANNEL, bot_process, in_process_sim, slack_fake
from bot import callbacks
from sim.requestlog import RequestRecord
from sim.server import SimServer
from slackfake.server import SlackFake
from slackfake.store import Message

TARGET_RATIO = 1.5
BOB = "U0BOB"


def is_write(record: RequestRecord) -> bool:
    return record.path.startswith("/pd/") and record.method not in ("GET", "HEAD")


async def new_proposal(fake: SlackFake, seen: set[str]) -> Message:
    def find() -> Message | None:
        for message in fake.messages(CHANNEL):
            if message.ts not in seen and callbacks.APPROVE in message.action_ids():
                return message
        return None

    found: Message = await fake.wait_for(find, timeout=30)
    return found


async def bot_trial(sim: SimServer, fake: SlackFake, store: int) -> tuple[float, list[Any]]:
    seen = {m.ts for m in fake.messages(CHANNEL)}
    await fake.slash_command(user=BOB, channel=CHANNEL, text=f"drain {store}")
    message = await new_proposal(fake, seen)
    await asyncio.sleep(0.5)  # let the proposal's own reads settle
    mark = len(sim.requests)
    sent_before = len(fake.deliveries)
    await fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    clicked = fake.deliveries[sent_before].at
    write: RequestRecord = await fake.wait_for(
        lambda: next((r for r in sim.requests[mark:] if is_write(r)), None), timeout=30
    )
    calls = [
        {"method": r.method, "path": r.path, "query": r.query, "body": r.body}
        for r in sim.requests[mark:]
        if r.path.startswith("/pd/") and r.wall <= write.wall
    ]
    return write.wall - clicked, calls


async def bare_trial(sim: SimServer, calls: list[dict[str, Any]]) -> float:
    """Replay `calls` in a child process; return first request -> write arrival."""
    mark = len(sim.requests)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--replay",
        sim.pd_url,
        json.dumps(calls),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    started = float(out.decode().strip().splitlines()[-1])
    writes = [r for r in sim.requests[mark:] if is_write(r)]
    return writes[-1].wall - started


async def replay(pd_url: str, calls: list[dict[str, Any]]) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=pd_url, timeout=10) as http:
        for _ in range(5):  # a warm connection and client, as the bot's are
            await http.get("/pd/api/v1/ping")
        started = time.time()
        for call in calls:
            params = [(k, v) for k, values in call["query"].items() for v in values]
            response = await http.request(
                call["method"], call["path"], params=params, json=call["body"]
            )
            response.read()
            if call["method"] != "GET":
                break
        print(started, flush=True)


async def run(trials: int) -> list[tuple[float, float, int]]:
    results: list[tuple[float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            slack_fake() as fake,
            in_process_sim(stores=trials + 3, regions=1000, speed=10.0) as sim,
            bot_process(
                sim.pd_url,
                fake,
                Path(tmp) / "bench.db",
                poll_interval=600,
                max_drained_stores=trials + 1,
            ),
        ):
            for n in range(trials):
                bot_s, calls = await bot_trial(sim, fake, n + 2)
                bare_s = await bare_trial(sim, calls)
                results.append((bot_s, bare_s, len(calls)))
    return results


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    print_facts(f"approve to PD request: {args.trials} drains, bot vs bare httpx")
    results = await run(args.trials)
    for n, (bot_s, bare_s, count) in enumerate(results, 1):
        print(
            f"   trial {n}: bot {bot_s * 1000:7.1f} ms, bare {bare_s * 1000:6.1f} ms "
            f"({count} PD requests incl. the write), ratio {bot_s / bare_s:5.1f}x"
        )
    bot = statistics.median(r[0] for r in results)
    bare = statistics.median(r[1] for r in results)
    ratio = statistics.median(r[0] / r[1] for r in results)
    print(
        f"   median: bot {bot * 1000:.1f} ms, bare {bare * 1000:.1f} ms, median of the "
        f"per-trial ratios {ratio:.1f}x; "
        f"target within {TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'MISSED'}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--replay", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.replay:
        asyncio.run(replay(args.replay[0], json.loads(args.replay[1])))
        return 0
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
