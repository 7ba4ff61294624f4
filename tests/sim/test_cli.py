"""`python -m sim` and `tikvops sim` run the simulator in the foreground and stop cleanly."""

from __future__ import annotations

import argparse
import signal

import httpx
import pytest

from tests.sim.processes import start_sim, stop_sim
from tikvops.cli import COMMAND_MODULES
from tikvops.commands import sim as sim_command
from tikvops.commands.sim import register


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tikvops")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_tikvops_sim_is_registered_with_the_simulator_options() -> None:
    assert "sim" in COMMAND_MODULES
    args = parse(["sim", "--stores", "5", "--regions", "20000", "--port", "0", "--speed", "30"])
    assert (args.stores, args.regions, args.port, args.speed) == (5, 20000, 0, 30.0)
    assert args.handler is sim_command.run
    assert parse(["sim", "--scenario", "slow-store"]).scenario == "slow-store"


def test_invalid_arguments_exit_2_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_command.run(parse(["sim", "--stores", "0"])) == 2
    assert "--stores must be between 1 and 200, got 0" in capsys.readouterr().err
    assert sim_command.run(parse(["sim", "--regions", "1000001"])) == 2
    assert "--regions must be between 1 and 1000000" in capsys.readouterr().err
    assert sim_command.run(parse(["sim", "--speed", "0"])) == 2
    assert "--speed must be positive" in capsys.readouterr().err


def test_python_m_sim_prints_addresses_serves_and_stops_on_sigterm() -> None:
    proc, lines = start_sim("--port", "0", "--regions", "50", "--speed", "30")
    try:
        assert proc.stdout is not None
        pd_url = next(line.split(": ", 1)[1] for line in lines if line.startswith("PD URL: "))
        statuses = [line for line in lines if " status address: 127.0.0.1:" in line]
        assert len(statuses) == 3
        stores = httpx.get(f"{pd_url}/pd/api/v1/stores", timeout=5).json()
        assert stores["count"] == 3
        address = statuses[0].rsplit(": ", 1)[1]
        assert httpx.get(f"http://{address}/metrics", timeout=5).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert "simulator stopped" in (proc.stdout.read() or "")
    finally:
        stop_sim(proc)
