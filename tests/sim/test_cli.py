"""`python -m sim` and `tikvops sim` run the simulator in the foreground and stop cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tikvops.cli import main as tikvops_main


def test_invalid_arguments_exit_2_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert tikvops_main(["sim", "--stores", "0"]) == 2
    assert "--stores must be between 1 and 100, got 0" in capsys.readouterr().err
    assert tikvops_main(["sim", "--regions", "300000"]) == 2
    assert "--regions must be between 1 and 200000" in capsys.readouterr().err
    assert tikvops_main(["sim", "--speed", "0"]) == 2
    assert "--speed must be positive" in capsys.readouterr().err


def test_python_m_sim_prints_addresses_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim", "--port", "0", "--regions", "50", "--speed", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith("Press Ctrl-C"):
                break
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
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
