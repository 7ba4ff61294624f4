"""A TLS cluster end to end: the simulator with `--tls-dir` semantics (HTTPS on PD and every
store's /metrics, client certificates required), throwaway CAs from `trustme`.

With the right certificates `tikvops check`, the monitor and an approved action work. Every
way TLS fails gives one line: `tikvops check` prints it and exits 1; the monitor opens a
"PD unreachable" incident carrying the reason. Never a traceback.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from sim import tls as sim_tls
from sim.server import SimServer
from tests.tls_certs import Certs, make_certs
from tikvops import cli, connect
from tikvops.commands import actions
from tikvops.commands.monitor import run_monitor
from tikvops.settings import load_settings

pytestmark = pytest.mark.timeout(120)

TLSSim = Callable[..., Coroutine[Any, Any, SimServer]]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def certs(tmp_path: Path) -> Certs:
    return make_certs(tmp_path / "certs")


@pytest.fixture
async def tls_sim() -> Any:
    servers: list[SimServer] = []

    async def start(tls_dir: Path, **options: Any) -> SimServer:
        server = SimServer(
            **({"stores": 3, "regions": 200, "auto_tick": True, "speed": 30} | options)
        )
        await server.start(host="127.0.0.1", port=0, ssl_context=sim_tls.server_context(tls_dir))
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


def use(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


async def check(server: SimServer, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    argv = ["--env-file", "missing.env", "check", "--pd", server.pd_url, *args]
    code = await asyncio.to_thread(cli.main, argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_check_works_with_the_right_certificates(
    certs: Certs, tls_sim: TLSSim, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server = await tls_sim(certs.server_dir)
    assert server.pd_url.startswith("https://127.0.0.1:")
    use(monkeypatch, certs.env())
    code, out, err = await check(server, capsys, "--json", "--window", "0.5")
    assert code == 0, (out, err)
    report = json.loads(out)
    assert [s["id"] for s in report["stores"]] == [1, 2, 3]
    # /metrics read over https with the client certificate: disk and a write P99 from them
    for store in report["stores"]:
        assert store["metrics_error"] is None
        assert store["disk_source"] == "metrics"
        assert store["write_p99_ms"] is not None
    scrapes = [r for r in server.requests if r.store_id is not None]
    assert len(scrapes) >= 6 and all(r.status == 200 for r in scrapes)


# (name, server directory attribute, environment from certs, the one line a user sees)
FAILURES: dict[str, tuple[str, Callable[[Certs], dict[str, str]], str]] = {
    "unknown CA": (
        "server_dir",
        lambda c: c.env() | {"TIKVOPS_TLS_CA": str(c.other_ca)},
        "the TLS certificate of 127.0.0.1:{port} is not signed by a CA we trust "
        "(self-signed certificate in certificate chain; trusted: TIKVOPS_TLS_CA file {other_ca}); "
        "check that TIKVOPS_TLS_CA is the CA that signed the cluster's certificates",
    ),
    "expired certificate": (
        "expired_dir",
        lambda c: c.env(),
        "the TLS certificate of 127.0.0.1:{port} has expired; renew the server's certificate "
        "(or check this machine's clock)",
    ),
    "hostname mismatch": (
        "wrong_name_dir",
        lambda c: c.env(),
        "the TLS certificate of 127.0.0.1:{port} is not issued for 127.0.0.1:{port} (IP address "
        "mismatch, certificate is not valid for '127.0.0.1'); use an address the certificate "
        "names, or reissue it with this one in its subject alternative names",
    ),
    "no client certificate": (
        "server_dir",
        lambda c: {"TIKVOPS_TLS_CA": str(c.ca)},
        "127.0.0.1:{port} requires a TLS client certificate and none is configured; set "
        "TIKVOPS_TLS_CERT and TIKVOPS_TLS_KEY (a certificate signed by the cluster CA)",
    ),
    "client certificate from another CA": (
        "server_dir",
        lambda c: (
            c.env()
            | {
                "TIKVOPS_TLS_CERT": str(c.other_client_cert),
                "TIKVOPS_TLS_KEY": str(c.other_client_key),
            }
        ),
        "127.0.0.1:{port} refused our TLS client certificate (TIKVOPS_TLS_CERT file "
        "{other_client_cert}); it must be signed by the CA the server trusts, and its CN "
        "allowed by cert-allowed-cn",
    ),
}

FILE_FAILURES: dict[str, tuple[Callable[[Certs], dict[str, str]], str]] = {
    "key does not match the certificate": (
        lambda c: c.env() | {"TIKVOPS_TLS_KEY": str(c.other_client_key)},
        "tikvops check: TIKVOPS_TLS_KEY file {other_client_key} does not match the certificate "
        "in TIKVOPS_TLS_CERT file {client_cert}; give the key the certificate was issued for",
    ),
    "unreadable file": (
        lambda c: c.env() | {"TIKVOPS_TLS_CA": str(c.root / "missing-ca.pem")},
        "tikvops check: cannot read TIKVOPS_TLS_CA file {root}/missing-ca.pem: "
        "No such file or directory",
    ),
}


def expected(template: str, certs: Certs, port: int = 0) -> str:
    return template.format(
        port=port,
        other_ca=certs.other_ca,
        other_client_cert=certs.other_client_cert,
        other_client_key=certs.other_client_key,
        client_cert=certs.client_cert,
        root=certs.root,
    )


@pytest.mark.parametrize("case", list(FAILURES))
async def test_each_tls_failure_is_one_line_and_exit_1(
    case: str, certs: Certs, tls_sim: TLSSim, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    directory, env, message = FAILURES[case]
    server = await tls_sim(getattr(certs, directory))
    use(monkeypatch, env(certs))
    monkeypatch.setenv("TIKVOPS_PD_RETRIES", "0")
    code, out, err = await check(server, capsys, "--window", "0")
    assert code == 1
    assert "Traceback" not in out + err
    reason = expected(message, certs, server.pd_port)
    [line] = err.splitlines()
    assert line.startswith("tikvops check: PD unreachable: PD is unavailable: ")
    assert reason in line
    assert "pd_unreachable" in out
    assert "".join(reason.split()) in "".join(out.split())  # the table wraps it
    assert not any(r.store_id is None and r.status == 200 for r in server.requests)


@pytest.mark.parametrize("case", list(FILE_FAILURES))
async def test_unusable_certificate_files_are_one_line_and_exit_1(
    case: str, certs: Certs, tls_sim: TLSSim, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    env, message = FILE_FAILURES[case]
    server = await tls_sim(certs.server_dir)
    use(monkeypatch, env(certs))
    code, out, err = await check(server, capsys)
    assert code == 1 and out == ""
    assert err.splitlines() == [expected(message, certs)]
    assert server.requests == []  # nothing was attempted with half a configuration


async def test_insecure_skip_verify_is_explicit_and_warned(
    certs: Certs, tls_sim: TLSSim, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server = await tls_sim(certs.wrong_name_dir)
    monkeypatch.setattr(connect, "_WARNED", set())  # warned once per process
    use(monkeypatch, certs.env() | {"TIKVOPS_TLS_INSECURE_SKIP_VERIFY": "true"})
    code, out, err = await check(server, capsys, "--window", "0")
    assert code == 0, (out, err)
    assert err.count("NOT verified") == 1
    assert (
        "tikvops: warning: TIKVOPS_TLS_INSECURE_SKIP_VERIFY=true: the certificates of PD and "
        "the TiKV stores are NOT verified"
    ) in err


async def monitor_lines(certs: Certs, server: SimServer, db: Path, until: str) -> str:
    """Run the monitor in-process until a line containing `until` is printed; the output."""
    settings = load_settings(
        env_file=None,
        tls_ca=certs.ca,
        tls_cert=certs.client_cert,
        tls_key=certs.client_key,
        pd_url=server.pd_url,
        db=db,
        poll_interval=0.3,
        health_addr="127.0.0.1:0",
        latency_grace=0.0,
        pd_retries=0,
    )
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(run_monitor(settings, out=out, stop=stop))
    try:
        deadline = time.monotonic() + 60
        while until not in out.getvalue():
            assert not task.done(), out.getvalue()
            assert time.monotonic() < deadline, out.getvalue()
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return out.getvalue()


async def test_the_monitor_watches_a_tls_cluster(
    certs: Certs, tls_sim: TLSSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await tls_sim(certs.server_dir, speed=1.0)
    server.apply_scenario("slow-store")
    output = await monitor_lines(certs, server, tmp_path / "m.db", " OPENED ")
    opened = [line for line in output.splitlines() if " OPENED " in line]
    assert "High write latency on store 2" in opened[0], output
    assert "PD unreachable" not in output


async def test_the_monitor_reports_a_tls_failure_as_pd_unreachable(
    certs: Certs, tls_sim: TLSSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await tls_sim(certs.expired_dir, speed=1.0)
    output = await monitor_lines(certs, server, tmp_path / "m.db", " OPENED ")
    [opened] = [line for line in output.splitlines() if " OPENED " in line]
    assert "CRITICAL PD unreachable" in opened
    assert f"the TLS certificate of 127.0.0.1:{server.pd_port} has expired" in opened
    assert "Traceback" not in output


async def test_an_approved_action_runs_over_tls(
    certs: Certs, tls_sim: TLSSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    server = await tls_sim(certs.server_dir, stores=4, speed=100, start_time=time.time())
    use(monkeypatch, certs.env())
    monkeypatch.setattr(
        actions,
        "ENGINE_OPTIONS",
        {"poll_intervals": {name: 0.05 for name in ("drain", "undrain", "limit")}},
    )
    argv = ["drain", "4", "--yes", "--pd", server.pd_url, "--db", str(tmp_path / "a.db")]
    code = await asyncio.to_thread(cli.main, argv)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "P-1 succeeded: leaders on store 4: " in out
    writes = [
        (r.method, r.path) for r in server.requests if r.store_id is None and r.method != "GET"
    ]
    assert writes == [("POST", "/pd/api/v1/schedulers")]
    assert server.cluster.store(4).leader_count == 0


async def test_the_monitor_refuses_to_start_with_unusable_certificate_files(
    certs: Certs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    use(monkeypatch, certs.env() | {"TIKVOPS_TLS_CA": str(certs.root / "gone.pem")})
    argv = ["--env-file", "missing.env", "monitor", "--pd", "https://127.0.0.1:1"]
    code = await asyncio.to_thread(cli.main, [*argv, "--db", str(tmp_path / "m.db")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines() == [
        f"tikvops: configuration: cannot read TIKVOPS_TLS_CA file {certs.root / 'gone.pem'}: "
        "No such file or directory"
    ]
