"""`tikvops sim --tls-dir DIR`: PD and every store's /metrics over HTTPS, client certificates
required (throwaway CA from `trustme`), and a clear exit 2 for an unusable directory."""

from __future__ import annotations

import argparse
import signal
import ssl
from pathlib import Path

import httpx
import pytest

from tests.sim.processes import start_sim, stop_sim
from tests.tls_certs import make_certs
from tikvops.commands import sim as sim_command
from tikvops.commands.sim import register


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="tikvops")
    register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_a_tls_dir_without_its_files_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = parse(["sim", "--port", "0", "--tls-dir", str(tmp_path)])
    assert sim_command.run(args) == 2
    assert capsys.readouterr().err.strip() == (
        f"sim: {tmp_path / 'ca.pem'} is missing: --tls-dir needs ca.pem, server.pem and "
        "server-key.pem"
    )


def test_the_simulator_serves_https_and_requires_client_certificates(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "certs")
    proc, lines = start_sim(
        "--port", "0", "--regions", "50", "--stores", "2", "--tls-dir", str(certs.server_dir)
    )
    try:
        pd_url = next(line.split(": ", 1)[1] for line in lines if line.startswith("PD URL: "))
        assert pd_url.startswith("https://127.0.0.1:")
        assert any(line.startswith("TLS: HTTPS on every port") for line in lines)
        address = next(line.rsplit(": ", 1)[1] for line in lines if " status address: " in line)
        client = ssl.create_default_context(cafile=str(certs.ca))
        client.load_cert_chain(str(certs.client_cert), str(certs.client_key))
        with httpx.Client(verify=client, timeout=5) as http:
            assert http.get(f"{pd_url}/pd/api/v1/stores").json()["count"] == 2
            assert http.get(f"https://{address}/metrics").status_code == 200
        anonymous = ssl.create_default_context(cafile=str(certs.ca))
        with httpx.Client(verify=anonymous, timeout=5) as http, pytest.raises(httpx.HTTPError):
            http.get(f"{pd_url}/pd/api/v1/stores")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://{pd_url.removeprefix('https://')}/pd/api/v1/stores", timeout=5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        stop_sim(proc)
