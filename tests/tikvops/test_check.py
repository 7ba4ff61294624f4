"""`tikvops check` end to end with PD v8.5.5 JSON (respx at the httpx client, whatever its
transport) and TiKV /metrics text served over loopback HTTP (the scrape uses aiohttp)."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from operator_tikv import queries
from tikvops.cli import main

FIXTURES = Path(__file__).parent.parent / "fixtures"
PD = "http://pd.test:2379"
API = f"{PD}/pd/api/v1"
PROM = "http://prom.test:9090"
PAGE1 = (FIXTURES / "metrics" / "tikv_v8.5_store1_scrape1.txt").read_text()
PAGE2 = (FIXTURES / "metrics" / "tikv_v8.5_store1_scrape2.txt").read_text()
# The same page with 400 GiB of 500 GiB free: 20 % used.
ROOMY = PAGE1.replace(
    'tikv_store_size_bytes{type="available"} 134217728000',
    'tikv_store_size_bytes{type="available"} 429496729600',
)
EMPTY_REGIONS = {"count": 0, "regions": []}
# Mocks PD and Prometheus at the httpx client, whatever transport it goes over (aiohttp).
http = respx.mock(using="httpx", assert_all_called=False)


def pd_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "pd" / name).read_text())


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("TIKVOPS_", "SLACK_", "ANTHROPIC_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env


def healthy_stores() -> dict[str, Any]:
    body = pd_fixture("stores.json")
    for item in body["stores"]:
        item["store"]["state_name"] = "Up"
        item["status"]["available"] = "400GiB"
        item["status"]["capacity"] = "500GiB"
    return body


# Store status ports of the fixtures (127.0.0.1:20180-20182) -> the loopback port serving them.
PORTS: dict[int, int] = {}
SERVERS: list[ThreadingHTTPServer] = []


@pytest.fixture(autouse=True)
def status_servers() -> Iterator[None]:
    yield
    for server in SERVERS:
        server.shutdown()
        server.server_close()
    SERVERS.clear()
    PORTS.clear()


def _remapped(body: Any) -> bytes:
    text = json.dumps(body)
    for fixture_port, port in PORTS.items():
        text = text.replace(f"127.0.0.1:{fixture_port}", f"127.0.0.1:{port}")
    return text.encode()


def mock_pd(stores: Any = None, down_peer: Any = None) -> None:
    body = stores if stores is not None else pd_fixture("stores.json")
    http.get(f"{API}/stores").mock(
        side_effect=lambda _request: httpx.Response(
            200, content=_remapped(body), headers={"Content-Type": "application/json"}
        )
    )
    for state in ("down-peer", "pending-peer", "miss-peer", "extra-peer"):
        body_ = down_peer if state == "down-peer" and down_peer is not None else EMPTY_REGIONS
        http.get(f"{API}/regions/check/{state}").respond(
            content=json.dumps(body_).encode(), headers={"Content-Type": "application/octet-stream"}
        )
    http.get(f"{API}/hotspot/regions/write").respond(json=pd_fixture("hotspot_write.json"))
    # no region counts on PD's /metrics: the lists are read and counted (the fallback)
    http.get(API.removesuffix("/pd/api/v1") + "/metrics").respond(404, text="404 page not found")


def _serve(pages: list[str]) -> int:
    """A loopback HTTP server answering /metrics with the pages in turn (the last repeats)."""
    served = list(pages)

    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            page = served.pop(0) if len(served) > 1 else served[0]
            data = page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    SERVERS.append(server)
    return int(server.server_address[1])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def mock_metrics(pages: dict[int, str | list[str] | None]) -> None:
    for fixture_port, page in pages.items():
        if page is None:
            PORTS[fixture_port] = _closed_port()  # nothing listens: connection refused
        else:
            PORTS[fixture_port] = _serve(page if isinstance(page, list) else [page])


def run_check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--env-file", "missing.env", "check", "--pd", PD, *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@http
def test_fixture_cluster_reports_down_disconnected_disk_and_regions(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mock_pd(down_peer=pd_fixture("regions_check_down_peer.json"))
    mock_metrics({20180: PAGE1, 20181: None, 20182: None})
    code, out, _ = run_check(capsys, "--json", "--window", "0")
    assert code == 1
    report = json.loads(out)
    assert set(report) >= {"stores", "violations"}

    stores = {s["id"]: s for s in report["stores"]}
    assert [s["id"] for s in report["stores"]] == [1, 4, 5]
    assert stores[1]["state"] == "Up"
    assert stores[4]["state"] == "Disconnected"
    assert stores[5]["state"] == "Down"
    assert stores[1]["address"] == "127.0.0.1:20160"
    assert stores[1]["leaders"] == 1805 and stores[1]["regions"] == 3610
    assert stores[1]["disk_used_ratio"] == pytest.approx(0.75)
    assert stores[1]["disk_source"] == "metrics"
    assert stores[5]["disk_used_ratio"] == pytest.approx(0.75)  # PD: 125 GiB free of 500
    assert stores[5]["disk_source"] == "pd"
    assert stores[1]["write_p99_ms"] is None  # one scrape: no data
    refused = stores[5]["metrics_error"]
    assert refused.startswith(f"could not read http://127.0.0.1:{PORTS[20182]}/metrics: ")
    assert "Cannot connect to host" in refused

    found = {(v["kind"], v["store_id"]): v for v in report["violations"]}
    assert set(found) == {
        ("store_down", 5),
        ("store_disconnected", 4),
        ("disk_usage", 1),
        ("disk_usage", 5),
        ("region_down_peer", None),
    }
    assert found[("store_down", 5)]["severity"] == "critical"
    assert found[("store_disconnected", 4)]["severity"] == "warning"
    disk = found[("disk_usage", 1)]
    assert disk["value"] == pytest.approx(0.75) and disk["threshold"] == 0.7
    regions = found[("region_down_peer", None)]
    assert regions["value"] == 3
    assert regions["region_ids"] == [2008, 2716, 3325]
    assert "store 5 (3)" in regions["message"]
    for v in report["violations"]:
        assert {
            "kind",
            "severity",
            "store_id",
            "region_id",
            "value",
            "threshold",
            "message",
        } <= set(v)
    # Critical first.
    assert report["violations"][0]["severity"] == "critical"


@http
def test_table_is_readable(capsys: pytest.CaptureFixture[str]) -> None:
    mock_pd(down_peer=pd_fixture("regions_check_down_peer.json"))
    mock_metrics({20180: PAGE1, 20181: None, 20182: None})
    code, out, _ = run_check(capsys, "--window", "0")
    assert code == 1
    lines = out.splitlines()
    header = next(line for line in lines if line.startswith("ID"))
    for column in ("ADDRESS", "STATE", "LEADERS", "REGIONS", "DISK USED", "WRITE P99"):
        assert column in header
    row5 = next(line for line in lines if line.lstrip().startswith("5 "))
    assert "127.0.0.1:20162" in row5 and "Down" in row5 and "75.0% (PD)" in row5
    assert "no data" in row5
    assert "Violations (5):" in out
    assert "CRITICAL" in out and "store_down" in out


@http
def test_healthy_cluster_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    mock_pd(stores=healthy_stores())
    mock_metrics({20180: ROOMY, 20181: ROOMY, 20182: ROOMY})
    code, out, _ = run_check(capsys, "--window", "0")
    assert code == 0, out
    assert "No violations" in out
    code, out, _ = run_check(capsys, "--window", "0", "--json")
    assert code == 0
    assert json.loads(out)["violations"] == []


@http
def test_write_p99_from_two_scrapes_is_reported_without_grace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mock_pd(stores=healthy_stores())
    slow = PAGE2.replace(
        'tikv_store_size_bytes{type="available"} 133143986176',
        'tikv_store_size_bytes{type="available"} 429496729600',
    )
    mock_metrics({20180: [ROOMY, slow], 20181: [ROOMY, ROOMY], 20182: [ROOMY, ROOMY]})
    code, out, _ = run_check(capsys, "--window", "0.01", "--json")
    assert code == 1
    report = json.loads(out)
    (violation,) = report["violations"]
    assert violation["kind"] == "write_latency"
    assert violation["store_id"] == 1
    assert violation["value"] == pytest.approx(122.88)
    assert violation["threshold"] == 100.0
    assert any("grace period" in note for note in report["notes"])
    stores = {s["id"]: s for s in report["stores"]}
    assert stores[4]["write_p99_ms"] is None  # no writes between the scrapes


@http
def test_pd_unreachable_is_a_violation_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    http.get(f"{API}/stores").mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))
    code, out, err = run_check(capsys, "--window", "0")
    assert code == 1
    assert "pd_unreachable" in out
    assert "PD at http://pd.test:2379 is unreachable" in out
    assert "Traceback" not in out + err
    code, out, _ = run_check(capsys, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["stores"] == []
    assert [v["kind"] for v in report["violations"]] == ["pd_unreachable"]
    assert report["violations"][0]["severity"] == "critical"


def prometheus_answers(request: httpx.Request) -> httpx.Response:
    query = parse_qs(request.content.decode())["query"][0]

    def vector(points: list[tuple[dict[str, str], str]]) -> httpx.Response:
        result = [{"metric": m, "value": [1795443600.0, v]} for m, v in points]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    def inst(port: int, **labels: str) -> dict[str, str]:
        return {"instance": f"127.0.0.1:{port}", "job": "tikv", **labels}

    if query == queries.store_up():
        return vector([(inst(20180), "1"), (inst(20181), "1"), (inst(20182), "1")])
    if query == queries.write_p99():
        return vector(
            [(inst(20180), "0.0189"), (inst(20181), "0.2784700862029649"), (inst(20182), "NaN")]
        )
    if query == queries.disk_used_ratio():
        return vector([(inst(p), "0.2") for p in (20180, 20181, 20182)])
    return vector([])


@http
def test_prometheus_source(capsys: pytest.CaptureFixture[str]) -> None:
    mock_pd(stores=healthy_stores())
    http.post(f"{PROM}/api/v1/query").mock(side_effect=prometheus_answers)
    code, out, _ = run_check(capsys, "--prometheus", PROM, "--json")
    assert code == 1
    report = json.loads(out)
    assert report["metrics_source"] == "prometheus"
    assert [(v["kind"], v["store_id"]) for v in report["violations"]] == [("write_latency", 4)]
    stores = {s["id"]: s for s in report["stores"]}
    assert stores[4]["write_p99_ms"] == pytest.approx(278.47, abs=0.01)
    assert stores[5]["write_p99_ms"] is None  # NaN: no writes
    assert stores[1]["disk_used_ratio"] == pytest.approx(0.2)


@http
def test_prometheus_down_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    mock_pd(stores=healthy_stores())
    http.post(f"{PROM}/api/v1/query").mock(side_effect=httpx.ConnectError("refused"))
    code, out, _ = run_check(capsys, "--prometheus", PROM, "--json")
    assert code == 1
    report = json.loads(out)
    assert [v["kind"] for v in report["violations"]] == ["metrics_unavailable"]
    assert PROM in report["violations"][0]["message"]


def test_bad_configuration_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--env-file", "missing.env", "check", "--pd", "pd.test:2379"])
    assert code == 2
    assert "TIKVOPS_PD_URL" in capsys.readouterr().err


def test_bad_config_file_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", "nope.toml", "check"])
    assert code == 2
    assert "nope.toml" in capsys.readouterr().err


def test_bad_arguments_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["check", "--window", "-1"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["check", "--frobnicate"])
    assert info.value.code == 2


@http
def test_default_pd_url(capsys: pytest.CaptureFixture[str]) -> None:
    route = http.get("http://127.0.0.1:2379/pd/api/v1/stores").mock(
        side_effect=httpx.ConnectError("refused")
    )
    code = main(["--env-file", "missing.env", "check", "--json"])
    assert code == 1
    assert route.called
    assert json.loads(capsys.readouterr().out)["pd_url"] == "http://127.0.0.1:2379"
