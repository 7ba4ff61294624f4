"""Our Prometheus client and PromQL against a real Prometheus scraping the simulator.

Starts Debian's `prometheus` binary on 127.0.0.1 (free port, temporary config and TSDB, 1 s
scrapes of the simulated stores' status addresses), waits until every target is up, and checks
that the queries see the slow store (P99 over the threshold on that store only) and the full
disk. The process is stopped by PID in a finalizer. Without the binary the test is skipped,
except in CI (env `CI` set), where `.ci/run` installs it and its absence is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from operator_tikv.invariants import Thresholds, ViolationKind, evaluate
from operator_tikv.metrics import MetricsReading, PrometheusQueryError, StoreTarget
from operator_tikv.observation import observe
from operator_tikv.pd import PDClient
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import PrometheusSource
from sim.server import SimServer
from tests.plugins.sim import SimFactory

pytestmark = pytest.mark.prometheus

SLOW_STORE = 2
FULL_STORE = 3
T = TypeVar("T")


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(
            "the prometheus binary is missing in CI; .ci/run should have installed Debian's "
            "`prometheus` package"
        )
    pytest.skip(
        "Debian's prometheus binary is not installed; run "
        "`apt-get install -y --no-install-recommends prometheus` to include this test"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture
async def live_sim(sim_factory: SimFactory) -> SimServer:
    server = await sim_factory(auto_tick=True, speed=1)
    server.faults.slow_store(SLOW_STORE, write_p99_ms=250)
    server.faults.fill_disk(FULL_STORE, 0.85)
    return server


@pytest.fixture
def prometheus(
    request: pytest.FixtureRequest, tmp_path: Path, live_sim: SimServer
) -> RunningPrometheus:
    binary = prometheus_binary()
    targets = ", ".join(f'"{a}"' for a in live_sim.status_addresses.values())
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 900ms\n"
        "  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tikv\n"
        "    honor_labels: true\n"
        "    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )
    port = free_port()
    log_path = tmp_path / "prometheus.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            "--storage.tsdb.retention.time=1h",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()

    request.addfinalizer(stop)
    return RunningPrometheus(url=f"http://127.0.0.1:{port}", process=process, log=log_path)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        yield client


async def until(
    what: str,
    probe: Callable[[], Awaitable[T | None]],
    prom: RunningPrometheus,
    seconds: float,
) -> T:
    """Poll `probe` until it returns a value, failing with Prometheus's log after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        if prom.process.poll() is not None:
            pytest.fail(f"prometheus exited ({prom.process.returncode}):\n{prom.log_tail()}")
        result = await probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{prom.log_tail()}")
        await asyncio.sleep(0.25)


async def test_queries_see_the_slow_store_and_the_full_disk(
    prometheus: RunningPrometheus, live_sim: SimServer, http: httpx.AsyncClient
) -> None:
    async def ready() -> bool | None:
        try:
            response = await http.get(prometheus.url + "/-/ready")
        except httpx.HTTPError:
            return None
        return True if response.status_code == 200 else None

    await until("/-/ready", ready, prometheus, 10)
    client = PrometheusClient(prometheus.url, http, timeout=5)

    async def all_up() -> bool | None:
        result = await client.query_vector('count(up{job="tikv"} == 1)')
        return True if result.series and result.series[0].value == 3 else None

    await until("every simulated store to be scraped", all_up, prometheus, 20)

    targets = [
        StoreTarget(store_id=sid, address=f"unused:{sid}", status_address=address)
        for sid, address in live_sim.status_addresses.items()
    ]
    source = PrometheusSource(client, window="5s")

    async def p99_everywhere() -> MetricsReading | None:
        reading = await source.read(targets, at=time.time())
        if all(m.write_p99_seconds is not None for m in reading.stores.values()):
            return reading
        return None

    reading = await until("a write P99 for every store", p99_everywhere, prometheus, 20)
    assert reading.unmatched_instances == ()
    p99 = {sid: m.write_p99_seconds for sid, m in reading.stores.items()}
    slow = p99[SLOW_STORE]
    assert slow is not None and slow > 0.1, p99
    for sid in (1, 3):
        value = p99[sid]
        assert value is not None and value < 0.1, p99
    disk = {sid: m.disk_used_ratio for sid, m in reading.stores.items()}
    assert disk[FULL_STORE] == pytest.approx(0.85, abs=0.01)
    for sid in (1, 2):
        value = disk[sid]
        assert value is not None and value < 0.7, disk
    for metrics in reading.stores.values():
        assert metrics.up is True
        assert metrics.leader_count is not None and metrics.leader_count > 0
        assert metrics.capacity_bytes is not None and metrics.capacity_bytes > 0

    # The same through observe() and the invariants, joined to PD's store list.
    pd = PDClient(http, live_sim.pd_url, retries=0)
    obs = await observe(pd, source, at=live_sim.cluster.now, pd_url=live_sim.pd_url)
    result = evaluate(obs, Thresholds(), ignore_grace=True)
    assert {(v.kind, v.store_id) for v in result.violations} == {
        (ViolationKind.WRITE_LATENCY, SLOW_STORE),
        (ViolationKind.DISK_USAGE, FULL_STORE),
    }

    # Range queries and Prometheus's own error envelope.
    now = time.time()
    matrix = await client.query_range('up{job="tikv"}', start=now - 4, end=now, step=1)
    assert len(matrix.series) == 3
    assert all(s.samples and s.samples[-1].value == 1 for s in matrix.series)
    with pytest.raises(PrometheusQueryError) as info:
        await client.query("sum(rate(up[1m]")
    assert info.value.status_code == 400
    assert info.value.error_type == "bad_data"
    assert info.value.detail is not None and "parse error" in info.value.detail


def test_missing_binary_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        prometheus_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        prometheus_binary()
