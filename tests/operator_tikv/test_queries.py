"""PromQL builders, the instance -> store join, and PrometheusSource against respx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from operator_tikv import queries
from operator_tikv.metrics import PrometheusQueryError, StoreTarget
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import InstanceIndex, PrometheusSource

BASE = "http://prom.test:9090"

TARGETS = [
    StoreTarget(store_id=1, address="127.0.0.1:20160", status_address="127.0.0.1:20180"),
    StoreTarget(store_id=4, address="127.0.0.1:20161", status_address="127.0.0.1:20181"),
    StoreTarget(store_id=5, address="127.0.0.1:20162", status_address="127.0.0.1:20182"),
]


def test_write_p99_follows_the_reference_query() -> None:
    assert queries.write_p99() == (
        "histogram_quantile(0.99, sum by (instance, le) (rate("
        'tikv_storage_engine_async_request_duration_seconds_bucket{job="tikv",type="write"}[1m])))'
    )
    assert '{job="tikv-a",type="write"}[10s]' in queries.write_p99("tikv-a", "10s")


def test_disk_ratio_uses_available_over_capacity_per_instance() -> None:
    assert queries.disk_used_ratio() == (
        '1 - sum by (instance) (tikv_store_size_bytes{job="tikv",type="available"})'
        ' / sum by (instance) (tikv_store_size_bytes{job="tikv",type="capacity"})'
    )


def test_job_label_is_escaped() -> None:
    assert queries.store_up('ti"kv') == 'up{job="ti\\"kv"}'


def test_pd_side_queries_use_hyphenated_types_and_the_pd_leader() -> None:
    text = queries.unhealthy_region_counts()
    assert "down-peer-region-count" in text
    assert "miss-peer-region-count" in text
    assert "miss_peer" not in text
    assert "etcd_server_is_leader" in text
    assert 'type="hot_write_region_as_leader"' in queries.hot_write_leaders()


@pytest.mark.parametrize(
    "builder",
    [
        queries.store_up,
        queries.write_p99,
        queries.disk_used_ratio,
        queries.store_capacity_bytes,
        queries.region_counts,
        queries.hot_write_leaders,
        queries.unhealthy_region_counts,
    ],
)
def test_queries_are_balanced(builder: Callable[[], str]) -> None:
    text = builder()
    for open_, close in ("()", "{}", "[]"):
        depth = 0
        for char in text:
            depth += (char == open_) - (char == close)
            assert depth >= 0
        assert depth == 0
    assert text.count('"') % 2 == 0


def test_instance_index_joins_status_address_then_address_then_pod_name() -> None:
    index = InstanceIndex.build(
        [
            *TARGETS,
            StoreTarget(
                store_id=7,
                address="basic-tikv-0.basic-tikv-peer.tidb.svc:20160",
                status_address="basic-tikv-0.basic-tikv-peer.tidb.svc:20180",
            ),
        ]
    )
    assert index.store_for("127.0.0.1:20181") == 4
    assert index.store_for("127.0.0.1:20162") == 5  # blackbox probing the gRPC port
    assert index.store_for("basic-tikv-0") == 7  # tidb-operator relabels instance to the pod
    assert index.store_for("basic-tikv-0.basic-tikv-peer.tidb.svc:20180") == 7


def test_instance_index_never_joins_by_host_alone() -> None:
    index = InstanceIndex.build(TARGETS)
    assert index.store_for("127.0.0.1") is None
    assert index.store_for("127.0.0.1:9100") is None  # node_exporter on the same host
    one_per_host = InstanceIndex.build(
        [StoreTarget(store_id=9, address="10.0.1.5:20160", status_address="10.0.1.5:20180")]
    )
    assert one_per_host.store_for("10.0.1.5:9100") is None


def test_ambiguous_pod_names_are_not_joined() -> None:
    index = InstanceIndex.build(
        [
            StoreTarget(store_id=1, address="tikv-0.a.svc:20160"),
            StoreTarget(store_id=2, address="tikv-0.b.svc:20160"),
        ]
    )
    assert index.store_for("tikv-0") is None


def vector(points: list[tuple[dict[str, str], str]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1795441567.8, v]} for m, v in points],
        },
    }


def inst(port: int, **extra: str) -> dict[str, str]:
    return {"instance": f"127.0.0.1:{port}", "job": "tikv", **extra}


ANSWERS: dict[str, dict[str, Any]] = {
    queries.store_up(): vector(
        [(inst(20180), "1"), (inst(20181), "1"), (inst(20182), "0"), (inst(20199), "1")]
    ),
    queries.write_p99(): vector(
        [
            (inst(20180), "0.01895013488531327"),
            (inst(20181), "0.2784700862029649"),
            (inst(20199), "NaN"),
        ]
    ),
    queries.disk_used_ratio(): vector([(inst(20180), "0.412"), (inst(20181), "0.75")]),
    queries.store_capacity_bytes(): vector(
        [
            (inst(20180, type="capacity"), "536870912000"),
            (inst(20180, type="available"), "315680096256"),
        ]
    ),
    queries.region_counts(): vector(
        [(inst(20180, type="leader"), "1203"), (inst(20180, type="region"), "3610")]
    ),
}


def answer(request: httpx.Request) -> httpx.Response:
    query = parse_qs(request.content.decode())["query"][0]
    return httpx.Response(200, json=ANSWERS[query])


@pytest.fixture
async def source() -> AsyncIterator[PrometheusSource]:
    async with httpx.AsyncClient() as http:
        yield PrometheusSource(PrometheusClient(BASE, http))


@respx.mock
async def test_source_joins_every_quantity_to_store_ids(source: PrometheusSource) -> None:
    route = respx.post(f"{BASE}/api/v1/query").mock(side_effect=answer)
    reading = await source.read(TARGETS, at=1795441567.0)
    assert route.call_count == 5
    one, four, five = reading.stores[1], reading.stores[4], reading.stores[5]
    assert one.up is True
    assert one.write_p99_seconds == pytest.approx(0.01895013488531327)
    assert one.disk_used_ratio == pytest.approx(0.412)
    assert one.capacity_bytes == 536870912000
    assert one.leader_count == 1203
    assert one.region_count == 3610
    assert four.write_p99_seconds == pytest.approx(0.2784700862029649)
    assert four.disk_used_ratio == pytest.approx(0.75)
    assert four.leader_count is None
    # Store 5's target is down: its other series went stale, so it has no data, not zeros.
    assert five.up is False
    assert five.write_p99_seconds is None
    assert five.disk_used_ratio is None
    assert five.error is not None and "up == 0" in five.error
    assert not five.has_data
    assert reading.unmatched_instances == ("127.0.0.1:20199",)
    assert reading.source == "prometheus"
    # A P99 series that is NaN (all-zero rates: no writes served) is idle; no series is not.
    assert (one.write_idle, four.write_idle, five.write_idle) == (False, False, False)


@respx.mock
async def test_store_without_up_series_is_no_data(source: PrometheusSource) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(side_effect=answer)
    extra = StoreTarget(store_id=6, address="127.0.0.1:20163", status_address="127.0.0.1:20183")
    reading = await source.read([*TARGETS, extra], at=0)
    assert reading.stores[6].up is None
    assert reading.stores[6].error is not None and "no up" in reading.stores[6].error


@respx.mock
async def test_nan_p99_means_no_writes_served(source: PrometheusSource) -> None:
    respx.post(f"{BASE}/api/v1/query").mock(side_effect=answer)
    idle = StoreTarget(store_id=9, address="127.0.0.1:20169", status_address="127.0.0.1:20199")
    reading = await source.read([*TARGETS, idle], at=0)
    assert reading.stores[9].write_p99_seconds is None
    assert reading.stores[9].write_idle is True


@respx.mock
async def test_one_failed_query_fails_the_read(source: PrometheusSource) -> None:
    def fail_disk(request: httpx.Request) -> httpx.Response:
        query = parse_qs(request.content.decode())["query"][0]
        if query == queries.disk_used_ratio():
            return httpx.Response(
                422, json={"status": "error", "errorType": "execution", "error": "many-to-many"}
            )
        return answer(request)

    route = respx.post(f"{BASE}/api/v1/query").mock(side_effect=fail_disk)
    with pytest.raises(PrometheusQueryError, match="many-to-many"):
        await source.read(TARGETS, at=0)
    assert route.call_count == 5  # the other queries finished; none was left running
