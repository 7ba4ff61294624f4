"""Region-list cost: one observation with a store down, full `Region` models vs `RegionBrief`s.

With one of 3 stores down for 10 minutes, PD's down-peer and pending-peer lists hold every
region with a peer on it (two thirds of the cluster). The simulator runs in a child process;
this process reads the four `/regions/check/{state}` lists and measures, at 20k and 200k
regions:

- parse CPU of the down-peer list alone: `RegionsInfo` models (the path the monitor used
  before) vs `parse_regions_brief` (the path it uses now);
- one whole `observe()` (stores, four lists, hot regions; no metrics source): wall time and
  this process's CPU time, with the lists read through the full models and through briefs.

    .venv/bin/python bench/region_lists.py [--regions 20000 200000] [--stores 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import cpu_seconds, no_proxy, print_facts, sim_process
from operator_tikv.models import (
    HotspotInfo,
    RegionCheckState,
    RegionsInfo,
    StoreInfo,
)
from operator_tikv.models.region import (
    RegionBrief,
    RegionsBrief,
    parse_regions_brief,
)
from operator_tikv.observation import ObservationPD, RegionProblem, observe
from operator_tikv.pd import PDClient, open_pd_client


class FullModelPD:
    """The observation's PD reads with the lists parsed into full models, as before the brief
    path existed (the result is reduced to briefs afterwards, which costs little)."""

    def __init__(self, pd: PDClient) -> None:
        self.pd = pd

    async def list_stores(self) -> list[StoreInfo]:
        return await self.pd.list_stores()

    async def get_hotspot_write(self) -> HotspotInfo:
        return await self.pd.get_hotspot_write()

    async def check_regions_brief(
        self, state: RegionCheckState, *, peers: bool = True
    ) -> RegionsBrief:
        info = await self.pd.check_regions(state)
        return RegionsBrief(info.count, tuple(RegionBrief.of(r) for r in info.regions))


def best_of(times: int, fn: Callable[[], object]) -> tuple[float, float]:
    best_cpu = best_wall = float("inf")
    for _ in range(times):
        wall, cpu = time.perf_counter(), cpu_seconds()
        fn()
        best_cpu = min(best_cpu, cpu_seconds() - cpu)
        best_wall = min(best_wall, time.perf_counter() - wall)
    return best_wall, best_cpu


async def observe_once(pd: ObservationPD, url: str) -> tuple[float, float, int]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    obs = await observe(pd, None, at=time.time(), pd_url=url)
    return (
        time.perf_counter() - wall,
        cpu_seconds() - cpu,
        obs.region_checks[RegionProblem.DOWN_PEER].count,
    )


async def run(stores: int, regions: int, repeats: int) -> dict[str, float]:
    async with sim_process(stores=stores, regions=regions) as sim:
        await sim.control("POST", f"/stores/{stores}/stop")
        await sim.control("POST", "/advance", {"seconds": 700})
        body = (await sim.http.get(f"{sim.pd_url}/pd/api/v1/regions/check/down-peer")).content
        full_adapter = RegionsInfo.model_validate_json
        result: dict[str, float] = {"bytes": len(body)}
        result["listed"] = len(parse_regions_brief(body).regions)
        parse_repeats = 1 if regions > 50_000 else repeats
        result["full_parse_wall"], result["full_parse_cpu"] = best_of(
            parse_repeats, lambda: full_adapter(body)
        )
        result["brief_parse_wall"], result["brief_parse_cpu"] = best_of(
            repeats, lambda: parse_regions_brief(body)
        )
        async with open_pd_client(sim.pd_url, http_timeout=300) as pd:
            sources: list[tuple[str, ObservationPD]] = [("full", FullModelPD(pd)), ("brief", pd)]
            for label, source in sources:
                walls, cpus = [], []
                for _ in range(1 if label == "full" and regions > 50_000 else repeats):
                    wall, cpu, count = await observe_once(source, sim.pd_url)
                    walls.append(wall)
                    cpus.append(cpu)
                    result["observed_down"] = count
                result[f"{label}_observe_wall"] = min(walls)
                result[f"{label}_observe_cpu"] = min(cpus)
        return result


async def main_async(args: argparse.Namespace) -> int:
    no_proxy()
    print_facts("region lists: full models vs briefs (one of the stores down for 10 min)")
    print(
        f"{'regions':>8} {'listed':>7} {'MB':>6} | {'down-peer parse CPU s':>22} | "
        f"{'observe() wall s':>17} | {'observe() CPU s':>16}"
    )
    print(
        f"{'':>24} | {'full':>10} {'brief':>11} | {'full':>8} {'brief':>8} | {'full':>7} "
        f"{'brief':>8}"
    )
    for regions in args.regions:
        r = await run(args.stores, regions, args.repeats)
        print(
            f"{regions:>8} {int(r['listed']):>7} {r['bytes'] / 1e6:>6.1f} | "
            f"{r['full_parse_cpu']:>10.3f} {r['brief_parse_cpu']:>11.3f} | "
            f"{r['full_observe_wall']:>8.2f} {r['brief_observe_wall']:>8.2f} | "
            f"{r['full_observe_cpu']:>7.2f} {r['brief_observe_cpu']:>8.2f}",
            flush=True,
        )
    print(
        f"(stores: {args.stores}; best of {args.repeats} runs, one run for the full path at "
        "200k; CPU is this process's user+system time, the simulator runs in a child process)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regions", type=int, nargs="*", default=[20_000, 200_000])
    parser.add_argument("--stores", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
