"""Monitor cost vs cluster size: requests, bot CPU and bot memory per monitor cycle.

The simulator (`python -m sim`) runs in a child process, so its CPU is not counted. This
process is the bot side, built as `tikvops run` builds it (`open_runtime`, `ClusterSource` over
`open_metrics_source`: the direct scrape of every store's `/metrics`, or Prometheus,
`build_monitor`, `BotMetrics`, the SQLite database), without Slack and without a diagnoser.
For each size (3/10/100 stores x 1k/20k/200k regions, healthy cluster), with the metrics read
by scraping every store and again through a Prometheus stand-in (`bench/fake_prometheus.py`,
5 instant queries per cycle, in its own process), it runs warm-up cycles, then `--cycles`
cycles back to back, and reports per cycle: requests (PD requests and store scrapes counted by the
simulator; "metrics" is the scrapes, or the 5 Prometheus queries), this process's CPU time
(user + system, all threads: median, mean with the garbage collector's full passes, max),
wall time, and resident memory after the cycles. As `tikvops run` does once started, the
heap left after the warm-up is frozen (`gc.freeze()`, `--no-freeze` to leave it). Then `--long`
cycles at one size, sampling memory, open file descriptors and asyncio tasks every 100 cycles.

Targets: requests per cycle independent of the region count; under 20 ms of bot CPU per cycle
at 100 stores; memory flat over 1,000 cycles.

    .venv/bin/python bench/monitor_cost.py [--sizes 3x1000 100x200000] [--cycles 20]
        [--long 1000 --long-size 10x20000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.common import (
    cpu_seconds,
    no_proxy,
    open_fds,
    print_facts,
    rss_mib,
    sim_process,
)
from engine.clock import SystemClock
from engine.monitor import ClusterSource, Monitor
from tikvops.observability import BotMetrics
from tikvops.runtime import build_monitor, open_runtime
from tikvops.settings import Settings
from tikvops.wiring import open_metrics_source, pd_request_recorder

DEFAULT_SIZES = [(s, r) for s in (3, 10, 100) for r in (1_000, 20_000, 200_000)]
CPU_TARGET_MS = 20.0


@contextlib.asynccontextmanager
async def fake_prometheus(addresses: dict[int, str]) -> AsyncIterator[str]:
    """The Prometheus stand-in in a child process; yields its URL."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("fake_prometheus.py")),
        json.dumps({str(k): v for k, v in addresses.items()}),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        url = (await process.stdout.readline()).decode().strip()
        yield url
    finally:
        if process.stdin is not None:
            process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def monitor_for(  # type: ignore[no-untyped-def]
    pd_url: str, db: Path, prometheus_url: str | None = None
):
    settings = Settings(
        _env_file=None,
        pd_url=pd_url,
        prometheus_url=prometheus_url,
        db=db,
        region_health_grace=600,
        anthropic_api_key=None,
    )
    bot_metrics = BotMetrics()
    async with (
        open_runtime(
            settings, metrics=bot_metrics, on_request=pd_request_recorder(bot_metrics)
        ) as rt,
        open_metrics_source(settings) as metrics,
    ):
        source = ClusterSource(rt.pd, metrics, pd_url=pd_url)
        monitor: Monitor = build_monitor(
            rt, source, clock=SystemClock(), diagnoser=None, metrics=bot_metrics
        )
        try:
            yield monitor
        finally:
            await monitor.close()


async def measure_size(
    stores: int, regions: int, cycles: int, prometheus: bool = False, freeze: bool = True
) -> dict[str, float]:
    async with contextlib.AsyncExitStack() as exits:
        sim = await exits.enter_async_context(sim_process(stores=stores, regions=regions))
        prom_url = None
        if prometheus:
            prom_url = await exits.enter_async_context(fake_prometheus(sim.status_addresses))
        with tempfile.TemporaryDirectory() as tmp:
            async with monitor_for(sim.pd_url, Path(tmp) / "bench.db", prom_url) as monitor:
                for _ in range(3):
                    await monitor.tick()
                await sim.clear_requests()
                gc.collect()
                if freeze:  # as `tikvops run` does once started (tikvops.stack, freeze_heap)
                    gc.freeze()
                cpu_per, wall_per = [], []
                try:
                    for _ in range(cycles):
                        wall, cpu = time.perf_counter(), cpu_seconds()
                        await monitor.tick()
                        cpu_per.append((cpu_seconds() - cpu) * 1000)
                        wall_per.append((time.perf_counter() - wall) * 1000)
                finally:
                    gc.unfreeze()
                data = await sim.control("GET", "/requests")
                pd_requests = sum(1 for r in data["requests"] if r["store_id"] is None)
                scrapes = data["count"] - pd_requests
                return {
                    "prometheus": 5.0 if prometheus else 0.0,
                    "pd_requests": pd_requests / cycles,
                    "scrapes": scrapes / cycles,
                    "cpu_ms": statistics.median(cpu_per),
                    "cpu_mean_ms": statistics.fmean(cpu_per),
                    "cpu_max_ms": max(cpu_per),
                    "wall_ms": statistics.median(wall_per),
                    "rss": rss_mib(),
                }


async def long_run(stores: int, regions: int, cycles: int) -> list[tuple[int, float, int, int]]:
    samples: list[tuple[int, float, int, int]] = []
    async with sim_process(stores=stores, regions=regions) as sim:
        with tempfile.TemporaryDirectory() as tmp:
            async with monitor_for(sim.pd_url, Path(tmp) / "bench.db") as monitor:
                for n in range(1, cycles + 1):
                    await monitor.tick()
                    if n % 100 == 0 or n == 10:
                        gc.collect()
                        samples.append((n, rss_mib(), open_fds(), len(asyncio.all_tasks())))
                    if n % 200 == 0:
                        await sim.clear_requests()  # the simulator's own log grows, not ours
    return samples


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    print_facts("monitor cost per cycle (healthy cluster; sim in a child process)")
    sizes = DEFAULT_SIZES
    if args.sizes:
        sizes = [tuple(int(x) for x in s.split("x")) for s in args.sizes]  # type: ignore[misc]
    print(
        f"{'stores':>6} {'regions':>8} {'source':>6} | {'PD req':>6} {'metrics':>7} | "
        f"{'CPU ms p50':>10} {'mean':>6} {'max':>6} | {'wall ms':>7} | {'RSS MiB':>7}"
    )
    by_store: dict[tuple[int, bool], set[float]] = {}
    worst_100 = 0.0
    worst_prom = 0.0
    for stores, regions in sizes:
        for prometheus in (False, True) if args.prometheus else (False,):
            r = await measure_size(stores, regions, args.cycles, prometheus, args.freeze)
            key = (stores, prometheus)
            by_store.setdefault(key, set()).add(r["pd_requests"] + r["scrapes"])
            if stores >= 100:
                if prometheus:
                    worst_prom = max(worst_prom, r["cpu_ms"])
                else:
                    worst_100 = max(worst_100, r["cpu_ms"])
            print(
                f"{stores:>6} {regions:>8} {'prom' if prometheus else 'scrape':>6} | "
                f"{r['pd_requests']:>6.1f} {r['scrapes'] + r['prometheus']:>7.1f} | "
                f"{r['cpu_ms']:>10.1f} {r['cpu_mean_ms']:>6.1f} {r['cpu_max_ms']:>6.1f} | "
                f"{r['wall_ms']:>7.1f} | "
                f"{r['rss']:>7.0f}",
                flush=True,
            )
    flat = all(len(v) == 1 for v in by_store.values())
    print(f"   requests per cycle independent of the region count: {'yes' if flat else 'NO'}")
    for label, worst in (("direct scrapes", worst_100), ("Prometheus", worst_prom)):
        if worst:
            verdict = "met" if worst < CPU_TARGET_MS else "MISSED"
            print(
                f"   CPU per cycle at 100 stores < {CPU_TARGET_MS:.0f} ms with {label}: "
                f"{verdict} (worst median {worst:.1f} ms)"
            )
    if args.long:
        stores, regions = (int(x) for x in args.long_size.split("x"))
        print(f"   {args.long} cycles at {stores} stores x {regions} regions:")
        samples = await long_run(stores, regions, args.long)
        for n, rss, fds, tasks in samples:
            print(f"     cycle {n:>5}: RSS {rss:7.1f} MiB, open fds {fds:>4}, tasks {tasks:>3}")
        first, last = samples[0], samples[-1]
        growth = last[1] - first[1]
        print(
            f"   memory from cycle {first[0]} to {last[0]}: {growth:+.1f} MiB "
            f"({'flat' if abs(growth) < 5 else 'GROWING'}; fds {first[2]} -> {last[2]}, "
            f"tasks {first[3]} -> {last[3]})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", help="STORESxREGIONS, e.g. 3x1000 100x200000")
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument(
        "--no-prometheus",
        dest="prometheus",
        action="store_false",
        help="only the direct scrape of each store (default: also through a Prometheus stand-in)",
    )
    parser.add_argument(
        "--no-freeze",
        dest="freeze",
        action="store_false",
        help="leave the start-up heap to the garbage collector (tikvops run freezes it)",
    )
    parser.add_argument("--long", type=int, default=1000, help="cycles of the memory run (0: none)")
    parser.add_argument("--long-size", default="10x20000")
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
