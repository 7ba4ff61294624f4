"""Counts first, lists on demand: which PD requests an observation makes about regions, and
what it then says (PD mocked with respx; the simulator version is test_observation_sim.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from operator_tikv.invariants import Severity, Thresholds, Violation, ViolationKind, evaluate
from operator_tikv.observation import Observation, RegionProblem, RegionWatch, observe
from operator_tikv.pd import PDClient
from operator_tikv.prometheus import PrometheusClient
from operator_tikv.queries import PrometheusSource

FIXTURES = Path(__file__).parent.parent / "fixtures"
PD = "http://pd.test:2379"
LEADER = "http://pd-2.test:2379"
API = f"{PD}/pd/api/v1"
T0 = 1795443600.0
EMPTY = {"count": 0, "regions": []}


def pd_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "pd" / name).read_text())


def metrics_page(leader: bool = True, **counts: int) -> str:
    lines = ["# HELP pd_regions_status Status of the regions.", "# TYPE pd_regions_status gauge"]
    for problem in RegionProblem:
        value = counts.get(problem.name.lower(), 0)
        lines.append(f'pd_regions_status{{type="{problem.metric_type}"}} {value}')
    lines.append('pd_regions_status{type="empty-region-count"} 7')
    lines.append(f"etcd_server_is_leader {1 if leader else 0}")
    return "\n".join(lines) + "\n"


def region(region_id: int, stores: tuple[int, ...], down: tuple[int, ...]) -> dict[str, Any]:
    return {
        "id": region_id,
        "start_key": "7480",
        "end_key": "7481",
        "epoch": {"conf_ver": 5, "version": 9},
        "peers": [{"id": region_id * 10 + s, "store_id": s} for s in stores],
        "leader": {"id": region_id * 10 + stores[0], "store_id": stores[0]},
        "down_peers": [
            {"peer": {"id": region_id * 10 + s, "store_id": s}, "down_seconds": 600} for s in down
        ],
        "pending_peers": [{"id": region_id * 10 + s, "store_id": s} for s in down],
        "approximate_size": 96,
    }


def down_list(count: int, down: tuple[int, ...] = (5,)) -> dict[str, Any]:
    regions = [region(5000 + i, (1, 4, 5), down) for i in range(count)]
    return {"count": count, "regions": regions}


def stores(*unhealthy: tuple[int, str]) -> dict[str, Any]:
    body = pd_fixture("stores.json")
    states = dict(unhealthy)
    for item in body["stores"]:
        item["store"]["state_name"] = states.get(item["store"]["id"], "Up")
    return body


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def pd() -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient() as http:
        yield PDClient(http, PD, retries=0)


def mock_pd(
    page: str,
    lists: dict[str, Any] | None = None,
    store_list: dict[str, Any] | None = None,
    replicas: int = 3,
) -> dict[str, respx.Route]:
    respx.get(f"{API}/stores").respond(json=store_list or stores((5, "Down")))
    respx.get(f"{API}/hotspot/regions/write").respond(json=pd_fixture("hotspot_write.json"))
    routes = {"metrics": respx.get(f"{PD}/metrics").respond(text=page)}
    routes["replicas"] = respx.get(f"{API}/config/replicate").respond(
        json={"max-replicas": replicas, "location-labels": "", "enable-placement-rules": "true"}
    )
    for problem in RegionProblem:
        body = (lists or {}).get(problem.value, EMPTY)
        routes[problem.value] = respx.get(f"{API}/regions/check/{problem.value}").respond(
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/octet-stream"},
        )
    return routes


def down_peer_violation(obs: Observation) -> Violation:
    found = evaluate(obs, Thresholds()).violations
    return next(v for v in found if v.kind is ViolationKind.REGION_DOWN_PEER)


async def look(pd: PDClient, watch: RegionWatch) -> Observation:
    return await observe(pd, None, at=T0, pd_url=PD, regions=watch)


@respx.mock
async def test_healthy_counts_read_no_list(pd: PDClient) -> None:
    routes = mock_pd(metrics_page())
    obs = await look(pd, RegionWatch())
    assert all(obs.region_checks[p].count == 0 for p in RegionProblem)
    assert obs.region_check_errors == {}
    assert obs.region_counts_source == "PD's pd_regions_status"
    assert routes["metrics"].call_count == 1
    assert all(routes[p.value].call_count == 0 for p in RegionProblem)
    assert routes["replicas"].call_count == 0


@respx.mock
async def test_one_store_down_lists_examples_once_and_says_quorum_is_safe(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=30), {"down-peer": down_list(30)})
    watch = RegionWatch()
    first = await look(pd, watch)
    second = await look(pd, watch)
    assert routes["down-peer"].call_count == 1  # cached while the count is unchanged
    assert routes["pending-peer"].call_count == 0
    for obs in (first, second):
        check = obs.region_checks[RegionProblem.DOWN_PEER]
        assert check.count == 30
        assert len(check.region_ids) == 20 and check.region_ids[0] == 5000
        assert check.peer_stores == {5: 30}
        assert check.quorum_lost_count == 0
    violation = down_peer_violation(second)
    assert violation.severity is Severity.WARNING
    assert violation.region_ids == tuple(range(5000, 5010))
    assert "(e.g. 5000, 5001" in violation.message and "and 20 more" in violation.message
    assert "With max-replicas 3, 1 unhealthy store (store 5) cannot cost any region" in (
        violation.message
    )
    assert "Those peers are on store 5 (30)" in violation.message


@respx.mock
async def test_two_unhealthy_stores_check_quorum_and_report_it_critical(pd: PDClient) -> None:
    lost = down_list(3, down=(4, 5))
    routes = mock_pd(
        metrics_page(down_peer=3),
        {"down-peer": lost},
        store_list=stores((4, "Disconnected"), (5, "Down")),
    )
    obs = await look(pd, RegionWatch())
    check = obs.region_checks[RegionProblem.DOWN_PEER]
    assert check.quorum_lost_count == 3 and check.quorum_lost == (5000, 5001, 5002)
    assert routes["down-peer"].call_count == 1
    violation = next(
        v
        for v in evaluate(obs, Thresholds()).violations
        if v.kind is ViolationKind.REGION_DOWN_PEER
    )
    assert violation.severity is Severity.CRITICAL
    assert "3 of them lost a majority of their voters" in violation.message


@respx.mock
async def test_a_second_unhealthy_store_reads_the_list_again_for_quorum(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=3), {"down-peer": down_list(3)})
    watch = RegionWatch()
    await look(pd, watch)
    respx.get(f"{API}/stores").respond(json=stores((4, "Disconnected"), (5, "Down")))
    obs = await look(pd, watch)
    assert routes["down-peer"].call_count == 2
    assert obs.region_checks[RegionProblem.DOWN_PEER].note == ""  # quorum was checked


@respx.mock
async def test_one_replica_means_one_store_can_cost_quorum(pd: PDClient) -> None:
    body = {"count": 1, "regions": [region(7, (5,), (5,))]}
    mock_pd(metrics_page(down_peer=1), {"down-peer": body}, replicas=1)
    obs = await look(pd, RegionWatch())
    assert obs.region_checks[RegionProblem.DOWN_PEER].quorum_lost == (7,)


@respx.mock
async def test_changed_counts_reread_the_list_only_after_refresh(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=30), {"down-peer": down_list(30)})
    clock = Clock()
    watch = RegionWatch(refresh_after=60, monotonic=clock)
    await look(pd, watch)
    routes["metrics"].respond(text=metrics_page(down_peer=25))
    clock.now += 30
    obs = await look(pd, watch)
    assert routes["down-peer"].call_count == 1
    check = obs.region_checks[RegionProblem.DOWN_PEER]
    assert check.count == 25 and check.listed_count == 30 and check.listed_age == 30
    violation = next(
        v
        for v in evaluate(obs, Thresholds()).violations
        if v.kind is ViolationKind.REGION_DOWN_PEER
    )
    assert violation.message.startswith("25 regions have a down peer")
    assert "When last listed (30 s ago, 30 regions), those peers were on store 5 (30)" in (
        violation.message
    )
    clock.now += 31
    await look(pd, watch)
    assert routes["down-peer"].call_count == 2


@respx.mock
async def test_counts_back_to_zero_forget_the_list(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=30), {"down-peer": down_list(30)})
    watch = RegionWatch()
    await look(pd, watch)
    routes["metrics"].respond(text=metrics_page())
    assert (await look(pd, watch)).region_checks[RegionProblem.DOWN_PEER].count == 0
    routes["metrics"].respond(text=metrics_page(down_peer=30))
    await look(pd, watch)
    assert routes["down-peer"].call_count == 2


@respx.mock
async def test_a_slow_list_does_not_hold_the_observation(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=30))
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, content=json.dumps(down_list(30)).encode())

    routes["down-peer"].mock(side_effect=slow)
    watch = RegionWatch(list_budget=0.05)
    first = await look(pd, watch)
    check = first.region_checks[RegionProblem.DOWN_PEER]
    assert check.count == 30 and check.region_ids == () and not check.listed
    assert "Examples are still being listed." in check.note
    assert any(
        v.kind is ViolationKind.REGION_DOWN_PEER for v in evaluate(first, Thresholds()).violations
    )
    release.set()
    await watch.wait_reads()
    second = await look(pd, watch)
    assert second.region_checks[RegionProblem.DOWN_PEER].region_ids[0] == 5000
    assert routes["down-peer"].call_count == 1
    await watch.close()


@respx.mock
async def test_a_failed_list_keeps_the_count_and_says_why(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(pending_peer=4))
    routes["pending-peer"].respond(200, content=b'{"count": 4, "regions": [{"id": "x"}]}')
    obs = await look(pd, RegionWatch())
    check = obs.region_checks[RegionProblem.PENDING_PEER]
    assert check.count == 4
    assert "Examples could not be listed" in check.note and "not an integer" in check.note


@respx.mock
async def test_a_follower_points_to_the_leader(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(leader=False))
    respx.get(f"{API}/members").respond(
        json={"members": [], "leader": {"name": "pd-2", "client_urls": [LEADER]}}
    )
    leader = respx.get(f"{LEADER}/metrics").respond(text=metrics_page(miss_peer=2))
    respx.get(f"{API}/regions/check/miss-peer").respond(json=down_list(2, down=()))
    obs = await look(pd, RegionWatch())
    assert leader.call_count == 1 and routes["metrics"].call_count == 1
    assert obs.region_checks[RegionProblem.MISS_PEER].count == 2
    assert obs.region_counts_source == "PD leader pd-2's pd_regions_status"


@respx.mock
async def test_without_counts_every_list_is_read(pd: PDClient) -> None:
    routes = mock_pd("# no region statistics yet\netcd_server_is_leader 1\n")
    routes["down-peer"].respond(json=down_list(3))
    obs = await look(pd, RegionWatch())
    assert all(routes[p.value].call_count == 1 for p in RegionProblem)
    assert obs.region_checks[RegionProblem.DOWN_PEER].count == 3
    assert obs.region_counts_error is not None
    assert "no pd_regions_status for down-peer-region-count" in obs.region_counts_error


@respx.mock
async def test_without_counts_a_slow_list_is_unknown_not_healthy(pd: PDClient) -> None:
    routes = mock_pd("")
    routes["metrics"].respond(404, text="404 page not found")
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, json=EMPTY)

    routes["extra-peer"].mock(side_effect=slow)
    watch = RegionWatch(list_budget=0.05)
    obs = await look(pd, watch)
    assert RegionProblem.EXTRA_PEER not in obs.region_checks
    assert "still being read" in obs.region_check_errors[RegionProblem.EXTRA_PEER]
    release.set()
    await watch.wait_reads()
    # the read that finished in the background counts on the next observation (a slow list
    # is not read from scratch every cycle, forever unknown)
    later = await look(pd, watch)
    assert later.region_checks[RegionProblem.EXTRA_PEER].count == 0
    assert routes["extra-peer"].call_count == 2
    await watch.close()


@respx.mock
async def test_a_refresh_goes_on_in_the_background(pd: PDClient) -> None:
    routes = mock_pd(metrics_page(down_peer=30), {"down-peer": down_list(30)})
    clock = Clock()
    watch = RegionWatch(refresh_after=60, monotonic=clock)
    await look(pd, watch)
    release = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, content=json.dumps(down_list(20)).encode())

    routes["down-peer"].mock(side_effect=slow)
    routes["metrics"].respond(text=metrics_page(down_peer=20))
    clock.now += 61
    during = await look(pd, watch)  # returns at once: the old examples, the fresh count
    check = during.region_checks[RegionProblem.DOWN_PEER]
    assert check.count == 20 and check.listed_count == 30
    release.set()
    await watch.wait_reads()
    after = await look(pd, watch)
    assert after.region_checks[RegionProblem.DOWN_PEER].listed_count == 20
    assert routes["down-peer"].call_count == 2  # the first read and one refresh
    await watch.close()


PROM = "http://prom.test:9090"


def prometheus_vector(counts: dict[str, int]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"type": kind}, "value": [T0, str(value)]}
                for kind, value in counts.items()
            ],
        },
    }


@respx.mock
async def test_without_pd_counts_prometheus_counts_are_used(pd: PDClient) -> None:
    routes = mock_pd("")
    routes["metrics"].respond(404, text="404 page not found")
    query = respx.post(f"{PROM}/api/v1/query").respond(
        json=prometheus_vector(
            {p.metric_type: 0 for p in RegionProblem} | {"down-peer-region-count": 30}
        )
    )
    routes["down-peer"].respond(json=down_list(30))
    async with httpx.AsyncClient() as http:
        source = PrometheusSource(PrometheusClient(PROM, http))
        obs = await look(pd, RegionWatch(counts_fallback=source))
    assert query.call_count == 1
    sent = dict(httpx.QueryParams(query.calls[0].request.content.decode()))
    assert "pd_regions_status" in sent["query"] and "etcd_server_is_leader" in sent["query"]
    assert obs.region_counts_source == "Prometheus's pd_regions_status (PD leader)"
    assert obs.region_checks[RegionProblem.DOWN_PEER].count == 30
    assert routes["down-peer"].call_count == 1
    assert all(routes[p.value].call_count == 0 for p in RegionProblem if p.value != "down-peer")


@respx.mock
async def test_when_both_count_sources_fail_the_lists_are_read_and_both_reasons_kept(
    pd: PDClient,
) -> None:
    routes = mock_pd("")
    routes["metrics"].respond(404, text="404 page not found")
    respx.post(f"{PROM}/api/v1/query").mock(side_effect=httpx.ConnectError("refused"))
    async with httpx.AsyncClient() as http:
        source = PrometheusSource(PrometheusClient(PROM, http))
        obs = await look(pd, RegionWatch(counts_fallback=source))
    assert all(routes[p.value].call_count == 1 for p in RegionProblem)
    assert obs.region_counts_error is not None
    assert "PD's /metrics could not be read" in obs.region_counts_error
    assert "Prometheus:" in obs.region_counts_error
