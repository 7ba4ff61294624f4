"""Simulator scale benchmark: start-up time, memory and API latency by cluster size.

For each size (3/10/100 stores x 1k/20k/200k regions) a child process builds and serves the
simulated cluster; this process measures the child's resident memory (VmRSS, and the peak VmHWM)
and the latency of `/stores`, `/regions/check/down-peer` and `/region/id/{id}` over real HTTP
(median and p99 of 50 requests each, after 3 warm-up requests).

    .venv/bin/python bench/sim_scale.py                 # full matrix
    .venv/bin/python bench/sim_scale.py --sizes 3x1000 100x200000

Targets: 200k regions fit in 1 GiB RSS and start in under 10 s; the three endpoints answer in
under 50 ms at 200k regions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_SIZES = [
    (stores, regions) for stores in (3, 10, 100) for regions in (1_000, 20_000, 200_000)
]
REQUESTS = 50


def serve(stores: int, regions: int) -> None:
    """Child: build and serve a cluster, print its URL, stop when stdin closes."""
    from sim.server import SimServer

    async def main() -> None:
        started = time.perf_counter()
        server = SimServer(stores=stores, regions=regions, auto_tick=True, speed=1.0)
        await server.start()
        startup = time.perf_counter() - started
        rng = random.Random(1)
        ids = rng.sample(sorted(server.cluster.regions), min(REQUESTS, regions))
        print(json.dumps({"pd_url": server.pd_url, "startup_s": startup, "ids": ids}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await server.stop()

    asyncio.run(main())


def memory_mib(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def measure(client: httpx.Client, paths: list[str]) -> tuple[float, float]:
    for path in paths[:3]:
        client.get(path).raise_for_status()
    times = []
    for path in paths[:REQUESTS]:
        start = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    times.sort()
    p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
    return statistics.median(times), p99


def run_one(stores: int, regions: int, heavy: bool = False) -> dict[str, float]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(stores), str(regions)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        info = json.loads(child.stdout.readline())
        rss, _ = memory_mib(child.pid)
        result: dict[str, float] = {"startup_s": info["startup_s"], "rss_mib": rss}
        with httpx.Client(base_url=info["pd_url"], timeout=60) as client:
            result["stores"], result["stores_p99"] = measure(
                client, ["/pd/api/v1/stores"] * REQUESTS
            )
            result["down"], result["down_p99"] = measure(
                client, ["/pd/api/v1/regions/check/down-peer"] * REQUESTS
            )
            ids = info["ids"]
            region_paths = [f"/pd/api/v1/region/id/{ids[i % len(ids)]}" for i in range(REQUESTS)]
            result["region"], result["region_p99"] = measure(client, region_paths)
        result["peak_mib"] = memory_mib(child.pid)[1]
        if heavy:
            with httpx.Client(base_url=info["pd_url"], timeout=600) as client:
                start = time.perf_counter()
                client.get("/pd/api/v1/regions").raise_for_status()
                result["all_regions_s"] = time.perf_counter() - start
                client.post(f"/sim/stores/{stores}/stop").raise_for_status()
                client.post("/sim/advance", json={"seconds": 601}).raise_for_status()
                start = time.perf_counter()
                down = client.get("/pd/api/v1/regions/check/down-peer")
                result["down_store_s"] = time.perf_counter() - start
                result["down_regions"] = down.json()["count"]
            result["heavy_peak_mib"] = memory_mib(child.pid)[1]
        child.stdin.close()
        child.wait(timeout=60)
        return result
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="*", help="sizes as STORESxREGIONS, e.g. 3x1000")
    parser.add_argument(
        "--heavy",
        action="store_true",
        help="also time GET /regions and down-peer with one store down (server peak memory)",
    )
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    sizes = DEFAULT_SIZES
    if args.sizes:
        sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes]  # type: ignore[misc]
    header = (
        f"{'stores':>6} {'regions':>8} {'start s':>8} {'RSS MiB':>8} {'peak MiB':>8} "
        f"{'/stores ms':>14} {'down-peer ms':>14} {'region/id ms':>14}"
    )
    print(header)
    print("-" * len(header))
    for stores, regions in sizes:
        r = run_one(stores, regions, args.heavy)
        print(
            f"{stores:>6} {regions:>8} {r['startup_s']:>8.2f} {r['rss_mib']:>8.0f} "
            f"{r['peak_mib']:>8.0f} {r['stores']:>6.1f} / {r['stores_p99']:>5.1f} "
            f"{r['down']:>6.1f} / {r['down_p99']:>5.1f} "
            f"{r['region']:>6.1f} / {r['region_p99']:>5.1f}",
            flush=True,
        )
        if args.heavy:
            print(
                f"{'':>16} GET /regions {r['all_regions_s']:.2f} s; with store {stores} down "
                f"10 min: down-peer lists {int(r['down_regions'])} regions in "
                f"{r['down_store_s']:.2f} s; server peak {r['heavy_peak_mib']:.0f} MiB",
                flush=True,
            )
    print("(latencies: median / p99 over 50 requests, over HTTP from another process)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
