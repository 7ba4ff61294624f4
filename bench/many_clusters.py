"""Many clusters from one bot: monitor CPU per cycle and click-to-ack p99, 20 x 10 vs 1 x 10.

The simulated clusters run in one child process (`python -m sim --clusters N`: N independent
clusters of 10 stores, each its own PD port and store /metrics ports), so their CPU is not
counted on the bot side.

Monitor CPU: this process is the bot side. For each cluster it builds what `tikvops run` builds
per cluster (`open_runtime` with that cluster's PD, `open_metrics_source` scraping its stores,
`build_monitor`), all on one event loop, one SQLite file each. One cycle ticks every
cluster's monitor at once (`asyncio.gather`); it reports this process's CPU time per cycle
(user + system, all threads: median, mean, max), per cluster, and wall time per cycle.

Click to ack (`--ack`, needs the `[clusters.NAME]` settings): the bot runs as `tikvops run` in its
own process with one `[clusters.NAME]` table per simulated cluster (poll every `--poll`
seconds, so the monitors run while people click); `/tikv drain 4` in the first cluster's
channel makes a proposal, `--burst` users click Approve at once, then `--burst` users send
`/tikv status` at once. The Slack stand-in measures each envelope from write to ack.

    .venv/bin/python bench/many_clusters.py [--clusters 20] [--stores 10] [--cycles 20] [--ack]
    .venv/bin/python bench/many_clusters.py --long    # 200 cycles and 3 ack rounds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from bench.common import ROOT, cpu_seconds, no_proxy, print_facts, rss_mib, summary
from bench.harness import ALICE, bot_process, slack_fake, users
from bot import callbacks
from engine.clock import SystemClock
from engine.monitor import ClusterSource, Monitor
from sim.fleet import fleet_names
from slackfake.server import SlackFake
from slackfake.store import Message
from tikvops.demo import cluster_channel, clusters_toml
from tikvops.observability import BotMetrics
from tikvops.runtime import build_monitor, open_runtime
from tikvops.settings import Settings
from tikvops.wiring import open_metrics_source

OPS_CHANNEL = "C0OPS"


@dataclass
class Fleet:
    """The simulator child process and its clusters' PD URLs, by name."""

    process: asyncio.subprocess.Process
    pd_urls: dict[str, str]

    async def requests(self) -> int:
        """Requests the clusters received so far (PD and store scrapes), all clusters."""
        total = 0
        async with httpx.AsyncClient(timeout=60) as http:
            for url in self.pd_urls.values():
                response = await http.get(f"{url}/sim/requests")
                total += int(response.json()["count"])
        return total

    async def clear(self) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for url in self.pd_urls.values():
                await http.delete(f"{url}/sim/requests")


@contextlib.asynccontextmanager
async def fleet_process(clusters: int, stores: int, regions: int) -> AsyncIterator[Fleet]:
    """`python -m sim --clusters N` on free ports; SIGTERM (then SIGKILL) on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim",
        "--clusters",
        str(clusters),
        "--stores",
        str(stores),
        "--regions",
        str(regions),
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        async with asyncio.timeout(300):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("the simulator exited before it was ready")
                if line.startswith("PD URL:"):  # one cluster: the plain banner
                    urls[fleet_names(1)[0]] = line.split(":", 1)[1].strip()
                elif line.startswith("cluster ") and " PD URL: " in line:
                    urls[line.split()[1]] = line.split(": ", 1)[1].strip()
                elif line.startswith("Press Ctrl-C"):
                    break
        yield Fleet(process, urls)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def monitors_for(pd_urls: dict[str, str], db_dir: Path) -> AsyncIterator[list[Monitor]]:
    """One monitor per cluster, as `tikvops run` builds each. Each has its own SQLite file
    here (separate runtimes on one file would contend for its write lock, which the bot's one
    shared database connection does not)."""
    async with contextlib.AsyncExitStack() as exits:
        monitors: list[Monitor] = []
        for name, pd_url in pd_urls.items():
            settings = Settings(
                _env_file=None,
                pd_url=pd_url,
                prometheus_url=None,
                db=db_dir / f"{name}.db",
                region_health_grace=600,
                anthropic_api_key=None,
            )
            rt = await exits.enter_async_context(open_runtime(settings, metrics=BotMetrics()))
            metrics = await exits.enter_async_context(open_metrics_source(settings))
            source = ClusterSource(rt.pd, metrics, pd_url=pd_url)
            monitor = build_monitor(rt, source, clock=SystemClock(), diagnoser=None)
            exits.push_async_callback(monitor.close)
            monitors.append(monitor)
        yield monitors


async def measure_monitors(
    clusters: int, stores: int, regions: int, cycles: int
) -> dict[str, float]:
    async with fleet_process(clusters, stores, regions) as fleet:
        with tempfile.TemporaryDirectory() as tmp:
            async with monitors_for(fleet.pd_urls, Path(tmp)) as monitors:
                for _ in range(3):
                    await asyncio.gather(*(m.tick() for m in monitors))
                await fleet.clear()
                gc.collect()
                gc.freeze()  # as `tikvops run` does once started
                cpu_per, wall_per = [], []
                try:
                    for _ in range(cycles):
                        wall, cpu = time.perf_counter(), cpu_seconds()
                        await asyncio.gather(*(m.tick() for m in monitors))
                        cpu_per.append((cpu_seconds() - cpu) * 1000)
                        wall_per.append((time.perf_counter() - wall) * 1000)
                finally:
                    gc.unfreeze()
                requests = await fleet.requests()
                ticks = [m.ticks for m in monitors]
                return {
                    "cpu_ms": statistics.median(cpu_per),
                    "cpu_mean_ms": statistics.fmean(cpu_per),
                    "cpu_max_ms": max(cpu_per),
                    "per_cluster_ms": statistics.median(cpu_per) / clusters,
                    "wall_ms": statistics.median(wall_per),
                    "requests": requests / cycles,
                    "all_ticked": float(min(ticks) == max(ticks)),
                    "rss": rss_mib(),
                }


async def proposal_message(fake: SlackFake, channel: str) -> Message:
    def find() -> Message | None:
        for message in fake.messages(channel):
            if callbacks.APPROVE in message.action_ids():
                return message
        return None

    found: Message = await fake.wait_for(find, timeout=60)
    return found


def ack_times_ms(fake: SlackFake, envelope_ids: list[str]) -> list[float]:
    sent = {d.envelope_id: d.at for d in fake.deliveries}
    acked = {a.envelope_id: a.at for a in fake.acks}
    return [(acked[e] - sent[e]) * 1000 for e in envelope_ids]


async def measure_acks(
    clusters: int, stores: int, regions: int, burst: int, rounds: int, poll: float
) -> dict[str, list[float]]:
    people = users(burst)
    clickers = [u for u in people if u.startswith("U0") and u[1:].isdigit()][:burst]
    names = fleet_names(clusters)
    channels = {OPS_CHANNEL: "tikv-ops"}
    channels.update(dict(cluster_channel(name) for name in names))
    # one cluster is today's single-cluster bot (no tables, the one channel)
    first_channel = cluster_channel(names[0])[0] if clusters > 1 else OPS_CHANNEL
    results: dict[str, list[float]] = {"click": [], "command": []}
    with tempfile.TemporaryDirectory() as tmp:
        async with (
            fleet_process(clusters, stores, regions) as fleet,
            slack_fake(users=people, channels=channels) as fake,
        ):
            approvers = [ALICE, *clickers]
            tables: dict[str, dict[str, Any]] = {
                name: {
                    "pd_url": url,
                    "channel": cluster_channel(name)[0],
                    "approvers": approvers,
                }
                for name, url in fleet.pd_urls.items()
            }
            config = Path(tmp) / "clusters.toml"
            config.write_text(clusters_toml(tables), encoding="utf-8")
            with _env("BENCH_CONFIG", str(config) if clusters > 1 else ""):
                bot = bot_process(
                    fleet.pd_urls[names[0]],
                    fake,
                    Path(tmp) / "bench.db",
                    approvers=",".join(approvers),
                    poll_interval=poll,
                )
                async with bot:
                    await fake.slash_command(user=ALICE, channel=first_channel, text="drain 4")
                    message = await proposal_message(fake, first_channel)
                    acks = await asyncio.gather(
                        *(
                            fake.click(
                                user=user,
                                channel=first_channel,
                                message_ts=message.ts,
                                action_id=callbacks.APPROVE,
                            )
                            for user in clickers
                        )
                    )
                    results["click"] += ack_times_ms(fake, [a.envelope_id for a in acks])
                    for _ in range(rounds):
                        acks = await asyncio.gather(
                            *(
                                fake.slash_command(user=u, channel=first_channel, text="status")
                                for u in clickers
                            )
                        )
                        results["command"] += ack_times_ms(fake, [a.envelope_id for a in acks])
                        await asyncio.sleep(poll)
    return results


@contextlib.contextmanager
def _env(name: str, value: str) -> Any:
    import os

    old = os.environ.get(name)
    if value:
        os.environ[name] = value
    else:
        os.environ.pop(name, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    cycles = 200 if args.long else args.cycles
    rounds = 3 if args.long else args.rounds
    sizes = [(1, args.stores), (args.clusters, args.stores)]
    print_facts(
        f"many clusters: monitor CPU per cycle ({cycles} cycles, every cluster ticked at once, "
        f"{args.regions} regions each; sim in a child process)"
    )
    print(
        f"{'clusters':>8} {'stores':>6} | {'req/cycle':>9} | {'CPU ms p50':>10} {'mean':>6} "
        f"{'max':>6} {'/cluster':>8} | {'wall ms':>7} | {'RSS MiB':>7}"
    )
    for clusters, stores in sizes:
        r = await measure_monitors(clusters, stores, args.regions, cycles)
        print(
            f"{clusters:>8} {stores:>6} | {r['requests']:>9.1f} | {r['cpu_ms']:>10.1f} "
            f"{r['cpu_mean_ms']:>6.1f} {r['cpu_max_ms']:>6.1f} {r['per_cluster_ms']:>8.2f} | "
            f"{r['wall_ms']:>7.1f} | {r['rss']:>7.0f}",
            flush=True,
        )
    if not (args.ack or args.long):
        return 0
    print(
        f"   click to ack: {args.burst} concurrent Approve clicks, then {rounds} burst(s) of "
        f"{args.burst} /tikv status, monitors every {args.poll:g} s"
    )
    for clusters, stores in sizes:
        results = await measure_acks(clusters, stores, args.regions, args.burst, rounds, args.poll)
        for kind, label in (("click", "Approve clicks"), ("command", "/tikv status")):
            s = summary(results[kind])
            print(
                f"   {clusters:>2} x {stores:<3} {label:<15} n={int(s['n']):>4}  "
                f"p50 {s['p50']:7.1f} ms  p99 {s['p99']:7.1f} ms  max {s['max']:7.1f} ms",
                flush=True,
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--stores", type=int, default=10)
    parser.add_argument("--regions", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--ack", action="store_true", help="also measure click-to-ack")
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--poll", type=float, default=1.0)
    parser.add_argument("--long", action="store_true", help="200 cycles, ack with 3 rounds")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
