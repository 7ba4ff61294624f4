"""Several simulated clusters in one process: own ports, own request logs, own faults."""

from __future__ import annotations

import signal

import httpx
import pytest

from sim.fleet import SimFleet, fleet_names
from tests.sim.processes import start_sim, stop_sim
from tikvops.commands import sim as sim_command
from tikvops.commands.sim import register


def test_fleet_names_start_with_prod_and_staging_then_number() -> None:
    assert fleet_names(1) == ["prod"]
    assert fleet_names(2) == ["prod", "staging"]
    assert fleet_names(4) == ["prod", "staging", "c3", "c4"]
    with pytest.raises(ValueError, match="between 1 and 100, got 0"):
        fleet_names(0)


def test_bad_or_duplicate_names_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="'prod' appears twice"):
        SimFleet(["prod", "prod"])
    with pytest.raises(ValueError, match="'Prod!' is not valid"):
        SimFleet(["Prod!"])
    fleet = SimFleet(["a", "b"], auto_tick=False)
    with pytest.raises(KeyError, match="the fleet has a, b"):
        fleet["c"]


async def test_clusters_have_own_ports_logs_and_faults() -> None:
    async with SimFleet(["prod", "staging"], stores=3, regions=60, auto_tick=False) as fleet:
        prod, staging = fleet["prod"], fleet["staging"]
        assert prod.pd_port != staging.pd_port
        assert set(prod.status_addresses.values()).isdisjoint(staging.status_addresses.values())
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(
                f"{prod.pd_url}/pd/api/v1/schedulers",
                json={"name": "evict-leader-scheduler", "store_id": 2},
            )
            assert response.status_code == 200
            # the write reached prod only
            assert [r.path for r in prod.requests if r.method == "POST"] == [
                "/pd/api/v1/schedulers"
            ]
            assert [r for r in staging.requests if r.method == "POST"] == []
            assert "evict-leader-scheduler" in prod.cluster.schedulers.names()
            assert "evict-leader-scheduler" not in staging.cluster.schedulers.names()
            # a fault in one cluster leaves the other reachable
            prod.faults.partition()
            async with httpx.AsyncClient(timeout=5) as fresh:
                with pytest.raises(httpx.ConnectError):
                    await fresh.get(f"{prod.pd_url}/pd/api/v1/stores")
            answer = await client.get(f"{staging.pd_url}/pd/api/v1/stores")
            assert answer.json()["count"] == 3


async def test_a_failed_start_stops_the_clusters_already_started() -> None:
    first = SimFleet(["one"], auto_tick=False)
    await first.start()
    try:
        taken = first["one"].pd_port
        clash = SimFleet(["x", "y"], auto_tick=False)
        # x takes taken-1 (free or not, irrelevant), y takes `taken`: y cannot listen
        with pytest.raises(OSError):
            await clash.start(base_port=taken - 1)
        assert clash._started == []
    finally:
        await first.stop()


def parse(argv: list[str]) -> object:
    import argparse

    parser = argparse.ArgumentParser(prog="tikvops")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_refuses_a_bad_cluster_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_command.run(parse(["sim", "--clusters", "0"])) == 2  # type: ignore[arg-type]
    assert "--clusters must be between 1 and 100, got 0" in capsys.readouterr().err


def test_python_m_sim_with_two_clusters_serves_both_and_stops() -> None:
    proc, lines = start_sim("--port", "0", "--regions", "40", "--clusters", "2")
    try:
        urls = {
            line.split()[1]: line.split(": ", 1)[1]
            for line in lines
            if line.startswith("cluster ") and " PD URL: " in line
        }
        assert set(urls) == {"prod", "staging"}
        assert urls["prod"] != urls["staging"]
        for url in urls.values():
            assert httpx.get(f"{url}/pd/api/v1/stores", timeout=5).json()["count"] == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        stop_sim(proc)
