"""Start-up: `tikvops run` from process start to Slack connected and the first monitor cycle done.

The simulator (4 stores, 1,000 regions) and the Slack stand-in run in this process; each trial
starts `tikvops run` on a fresh database and records, from the moment the process is spawned:
- connected: the stand-in sees the Socket Mode connection;
- first cycle: the bot's `/metrics` shows a successful monitor cycle
  (`tikvops_monitor_last_success_timestamp_seconds` > 0; polled every 10 ms).

    .venv/bin/python bench/startup.py [--trials 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import no_proxy, print_facts
from bench.harness import bot_process, in_process_sim, slack_fake

GAUGE = "tikvops_monitor_last_success_timestamp_seconds"


async def first_cycle_done(health_url: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        async with asyncio.timeout(60):
            while True:
                try:
                    text = (await http.get(f"{health_url}/metrics")).text
                except httpx.HTTPError:
                    text = ""
                for line in text.splitlines():
                    if line.startswith(GAUGE) and float(line.split()[-1]) > 0:
                        return time.time()
                await asyncio.sleep(0.01)


async def trial() -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            slack_fake() as fake,
            in_process_sim(stores=4, regions=1000) as sim,
            bot_process(sim.pd_url, fake, Path(tmp) / "bench.db", poll_interval=15) as bot,
        ):
            connected = min(c.opened_at for c in fake.hub.connections)
            cycle = await first_cycle_done(bot.health_url)
            return connected - bot.started_at, cycle - bot.started_at


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    print_facts(f"start-up of tikvops run ({args.trials} trials)")
    rows = [await trial() for _ in range(args.trials)]
    for n, (connected, cycle) in enumerate(rows, 1):
        print(f"   trial {n}: connected {connected:.2f} s, first cycle done {cycle:.2f} s")
    print(
        f"   median: connected {statistics.median(r[0] for r in rows):.2f} s, first cycle "
        f"done {statistics.median(r[1] for r in rows):.2f} s (no target set)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
