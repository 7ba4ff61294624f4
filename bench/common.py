"""Shared helpers for the benchmark scripts (not a benchmark itself).

- `SimProcess`: the simulator in a child process (`python -m sim`), so its CPU time is not
  counted against the bot's; controlled over its HTTP control API (`/sim/...`).
- `machine_facts()`: nproc, memory, Python, load average, date: printed with every figure.
- `percentile()`, `summary()`: order statistics of a list of durations.
- `rss_mib()`, `open_fds()`: this process's resident memory and open file descriptors.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine_facts() -> dict[str, str]:
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    load = os.getloadavg()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
        "kernel": platform.release(),
    }


def print_facts(title: str) -> None:
    print(f"== {title}")
    for key, value in machine_facts().items():
        print(f"   {key}: {value}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": float(len(values)),
        "p50": statistics.median(values),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def rss_mib(pid: int | None = None) -> float:
    status = Path(f"/proc/{pid or os.getpid()}/status").read_text()
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int | None = None) -> int:
    return len(os.listdir(f"/proc/{pid or os.getpid()}/fd"))


def no_proxy() -> None:
    """slack_sdk and httpx would send loopback traffic to a configured proxy."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = "127.0.0.1,localhost"


@dataclass
class SimProcess:
    """A simulator running in a child process."""

    process: asyncio.subprocess.Process
    pd_url: str
    status_addresses: dict[int, str]
    http: httpx.AsyncClient

    async def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.http.request(method, f"{self.pd_url}/sim{path}", json=body)
        response.raise_for_status()
        return response.json()

    async def requests(self, prefix: str = "/pd/") -> list[dict[str, Any]]:
        data = await self.control("GET", f"/requests?prefix={prefix}")
        records: list[dict[str, Any]] = data["requests"]
        return records

    async def clear_requests(self) -> None:
        await self.control("DELETE", "/requests")


@contextlib.asynccontextmanager
async def sim_process(
    *, stores: int = 3, regions: int = 1000, speed: float = 1.0, seed: int = 0
) -> AsyncIterator[SimProcess]:
    """Start `python -m sim` on free ports; stop it (SIGTERM, then SIGKILL) on exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim",
        "--stores",
        str(stores),
        "--regions",
        str(regions),
        "--port",
        "0",
        "--speed",
        str(speed),
        "--seed",
        str(seed),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        pd_url = ""
        addresses: dict[int, str] = {}
        async with asyncio.timeout(300):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError("the simulator exited before it was ready")
                if line.startswith("PD URL:"):
                    pd_url = line.split(":", 1)[1].strip()
                elif line.startswith("store ") and "status address:" in line:
                    sid = int(line.split()[1])
                    addresses[sid] = line.rsplit(" ", 1)[1].strip()
                elif line.startswith("Press Ctrl-C"):
                    break
        async with httpx.AsyncClient(timeout=120) as http:
            yield SimProcess(process, pd_url, addresses, http)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(20):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()


def cpu_seconds() -> float:
    """CPU time (user + system, all threads) of this process so far, in nanosecond resolution
    (`os.times()` counts in 10 ms clock ticks)."""
    return time.process_time()
