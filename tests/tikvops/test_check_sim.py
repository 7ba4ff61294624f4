"""`tikvops check` end to end against the simulator (real sockets, the CLI in a thread)."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest

from sim.server import SimServer
from tests.plugins.sim import SimFactory
from tikvops.cli import main


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


async def run_check(
    server: SimServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str]:
    argv = ["--env-file", "missing.env", "check", "--pd", server.pd_url, *args]
    code = await asyncio.to_thread(main, argv)
    return code, capsys.readouterr().out


@pytest.fixture
async def live(sim_factory: SimFactory) -> SimServer:
    # Virtual time runs 30x wall time, so the check's 0.5 s scrape window sees 15 s of writes.
    return await sim_factory(auto_tick=True, speed=30)


async def test_healthy_simulated_cluster_exits_zero(
    live: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = await run_check(live, capsys, "--json", "--window", "0.5")
    report = json.loads(out)
    assert code == 0, report["violations"]
    assert [s["id"] for s in report["stores"]] == [1, 2, 3]
    for store in report["stores"]:
        assert store["state"] == "Up"
        assert store["status_address"] == live.status_addresses[store["id"]]
        assert store["write_p99_ms"] is not None and store["write_p99_ms"] < 100
        assert store["disk_source"] == "metrics"


async def test_faults_are_reported(live: SimServer, capsys: pytest.CaptureFixture[str]) -> None:
    live.faults.stop_store(3)
    live.cluster.advance(1900)  # past max-store-down-time (30 min)
    live.faults.slow_store(2, write_p99_ms=250)
    live.faults.fill_disk(1, 0.85)
    code, out = await run_check(live, capsys, "--json", "--window", "0.5")
    assert code == 1
    report = json.loads(out)
    found: dict[tuple[str, Any], dict[str, Any]] = {
        (v["kind"], v["store_id"]): v for v in report["violations"]
    }
    assert found[("store_down", 3)]["severity"] == "critical"
    assert found[("write_latency", 2)]["value"] > 150
    assert ("write_latency", 1) not in found
    assert found[("disk_usage", 1)]["value"] == pytest.approx(0.85, abs=0.01)
    assert found[("disk_usage", 1)]["severity"] == "critical"
    down_peers = found[("region_down_peer", None)]
    assert down_peers["value"] > 0
    assert "store 3" in down_peers["message"]
    stores = {s["id"]: s for s in report["stores"]}
    assert stores[3]["state"] == "Down"
    assert stores[3]["write_p99_ms"] is None
    assert stores[3]["metrics_error"]


async def test_partitioned_pd_is_reported_in_the_table(
    live: SimServer, capsys: pytest.CaptureFixture[str]
) -> None:
    live.faults.partition()
    code, out = await run_check(live, capsys, "--window", "0")
    assert code == 1
    assert "pd_unreachable" in out
    assert f"PD at {live.pd_url} is unreachable" in out
