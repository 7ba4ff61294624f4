"""PrometheusClient against respx: result shapes, string samples, error envelopes, transport."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from operator_tikv.metrics import (
    PrometheusProtocolError,
    PrometheusQueryError,
    PrometheusUnavailable,
)
from operator_tikv.prometheus import (
    MatrixResult,
    PrometheusClient,
    ScalarResult,
    StringResult,
    VectorResult,
    parse_value,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "prometheus"
BASE = "http://prom.test:9090"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
async def client() -> AsyncIterator[PrometheusClient]:
    async with httpx.AsyncClient() as http:
        yield PrometheusClient(BASE + "/", http, timeout=5)


@respx.mock
async def test_vector_result_keeps_labels_and_parses_string_values(
    client: PrometheusClient,
) -> None:
    route = respx.post(f"{BASE}/api/v1/query").respond(json=fixture("query_vector.json"))
    result = await client.query("histogram_quantile(0.99, x)")
    assert isinstance(result, VectorResult)
    values = {s.labels["instance"]: s.value for s in result.series}
    assert values == {
        "127.0.0.1:20180": 0.01895013488531327,
        "127.0.0.1:20181": 0.2784700862029649,
        "127.0.0.1:20182": 0.018951046659953022,
    }
    assert result.series[0].sample.timestamp == 1795441567.843
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["query"] == ["histogram_quantile(0.99, x)"]
    assert form["timeout"] == ["5s"]
    assert "time" not in form


@respx.mock
async def test_instant_query_sends_time(client: PrometheusClient) -> None:
    route = respx.post(f"{BASE}/api/v1/query").respond(json=fixture("query_empty.json"))
    result = await client.query_vector("up", at=1795441567.5)
    assert result.series == ()
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["time"] == ["1795441567.5"]


@respx.mock
async def test_nan_and_infinities_become_floats(client: PrometheusClient) -> None:
    body = fixture("query_vector_nan.json")
    body["data"]["result"].append({"metric": {"type": "inf"}, "value": [1.0, "+Inf"]})
    body["data"]["result"].append({"metric": {"type": "neg"}, "value": [1.0, "-Inf"]})
    respx.post(f"{BASE}/api/v1/query").respond(json=body)
    result = await client.query_vector("q")
    by_type = {s.labels["type"]: s.sample for s in result.series}
    assert by_type["raw_put"].is_nan
    assert not by_type["kv_commit"].is_nan
    assert by_type["kv_prewrite"].value == pytest.approx(0.11682909090908992)
    assert by_type["inf"].value == math.inf
    assert by_type["neg"].value == -math.inf


def test_parse_value_accepts_go_exponent_form() -> None:
    assert parse_value("2.7854297965714236e-01") == pytest.approx(0.27854297965714236)
    with pytest.raises(PrometheusProtocolError):
        parse_value("fast")


@respx.mock
async def test_matrix_from_range_query(client: PrometheusClient) -> None:
    route = respx.post(f"{BASE}/api/v1/query_range").respond(json=fixture("query_matrix.json"))
    result = await client.query_range("up", start=1795441550, end=1795441590, step=10)
    assert isinstance(result, MatrixResult)
    (series,) = result.series
    assert [s.value for s in series.samples] == [1, 1, 1, 0, 0]
    assert [s.timestamp for s in series.samples][-1] == 1795441590
    form = parse_qs(route.calls.last.request.content.decode())
    assert form["start"] == ["1795441550"]
    assert form["end"] == ["1795441590"]
    assert form["step"] == ["10"]


@respx.mock
async def test_scalar_and_string(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(
        side_effect=[
            httpx.Response(200, json=fixture("query_scalar.json")),
            httpx.Response(200, json=fixture("query_string.json")),
        ]
    )
    scalar = await client.query("scalar(0)")
    assert isinstance(scalar, ScalarResult)
    assert scalar.sample.value == 0.0
    text = await client.query('"hello"')
    assert isinstance(text, StringResult)
    assert text.text == "hello"


@respx.mock
async def test_query_vector_refuses_other_shapes(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").respond(json=fixture("query_scalar.json"))
    with pytest.raises(PrometheusProtocolError, match="expected a vector"):
        await client.query_vector("scalar(0)")


@respx.mock
async def test_warnings_are_kept(client: PrometheusClient) -> None:
    body = fixture("query_empty.json") | {"warnings": ["PromQL info: metric might not be ..."]}
    respx.post(f"{BASE}/api/v1/query").respond(json=body)
    result = await client.query_vector("q")
    assert result.warnings == ("PromQL info: metric might not be ...",)


@pytest.mark.parametrize(
    ("status", "name", "error_type"),
    [
        (400, "error_400_parse.json", "bad_data"),
        (400, "error_400_resolution.json", "bad_data"),
        (422, "error_422_execution.json", "execution"),
    ],
)
@respx.mock
async def test_rejected_queries(
    client: PrometheusClient, status: int, name: str, error_type: str
) -> None:
    body = fixture(name)
    respx.post(f"{BASE}/api/v1/query").respond(status, json=body)
    with pytest.raises(PrometheusQueryError) as info:
        await client.query("bad(")
    assert info.value.status_code == status
    assert info.value.error_type == error_type
    assert info.value.detail == body["error"]
    assert body["error"] in str(info.value)


@respx.mock
async def test_503_timeout_is_unavailable(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").respond(503, json=fixture("error_503_timeout.json"))
    with pytest.raises(PrometheusUnavailable) as info:
        await client.query("up")
    assert info.value.status_code == 503
    assert info.value.error_type == "timeout"
    assert "timed out" in str(info.value)


@respx.mock
async def test_proxy_error_page_is_unavailable(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").respond(502, text="<html>Bad Gateway</html>")
    with pytest.raises(PrometheusUnavailable, match="HTTP 502") as info:
        await client.query("up")
    assert info.value.status_code == 502


@respx.mock
async def test_success_status_with_garbage_is_protocol_error(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(
        side_effect=[
            httpx.Response(200, text="not json"),
            httpx.Response(200, json={"status": "success", "data": {"resultType": "vector"}}),
            httpx.Response(200, json={"status": "success", "data": {"resultType": "histo"}}),
            httpx.Response(
                200,
                json={
                    "status": "success",
                    "data": {"resultType": "vector", "result": [{"value": [1, "x"]}]},
                },
            ),
        ]
    )
    for _ in range(4):
        with pytest.raises(PrometheusProtocolError):
            await client.query("up")


@respx.mock
async def test_connection_refused_is_unavailable(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(PrometheusUnavailable, match="could not reach Prometheus") as info:
        await client.query("up")
    assert info.value.status_code is None
    assert isinstance(info.value.__cause__, httpx.ConnectError)


@respx.mock
async def test_timeout_is_unavailable(client: PrometheusClient) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(PrometheusUnavailable, match="did not answer in time"):
        await client.query("up")


@respx.mock
async def test_a_deeply_nested_body_is_a_protocol_error_not_a_crash(
    client: PrometheusClient,
) -> None:
    respx.post(f"{BASE}/api/v1/query").respond(
        200, content=b"[" * 200_000 + b"]" * 200_000, headers={"content-type": "application/json"}
    )
    with pytest.raises(PrometheusProtocolError, match="nested too deeply"):
        await client.query("up")
