"""observe(): what one observation reads, how failures are recorded, and what it costs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from operator_tikv.metrics import (
    MetricsReading,
    PrometheusUnavailable,
    SourceName,
    StoreTarget,
)
from operator_tikv.observation import Observation, RegionProblem, observe
from operator_tikv.pd import PDClient
from operator_tikv.scrape import ScrapeSource

FIXTURES = Path(__file__).parent.parent / "fixtures"
PD = "http://pd.test:2379"
API = f"{PD}/pd/api/v1"
T0 = 1795443600.0


def pd_fixture(name: str) -> Any:
    return json.loads((FIXTURES / "pd" / name).read_text())


METRICS_PAGE = (FIXTURES / "metrics" / "tikv_v8.5_store1_scrape1.txt").read_text()
EMPTY_REGIONS = {"count": 0, "regions": []}


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def pd(http: httpx.AsyncClient) -> PDClient:
    return PDClient(http, PD, retries=1, sleep=_no_sleep)


def mock_pd(
    stores: Any = None,
    checks: dict[str, Any] | None = None,
    hotspot: Any = None,
    pd_metrics: str | None = None,
) -> None:
    """PD's answers. Without `pd_metrics` PD's /metrics is a 404, so the region counts come
    from the lists (the fallback path, which reads every list)."""
    respx.get(f"{API}/stores").respond(json=stores or pd_fixture("stores.json"))
    if pd_metrics is None:
        respx.get(f"{PD}/metrics").respond(404, text="404 page not found")
    else:
        respx.get(f"{PD}/metrics").respond(text=pd_metrics)
    checks = checks or {}
    for problem in RegionProblem:
        body = checks.get(problem.value, EMPTY_REGIONS)
        if isinstance(body, httpx.Response):
            respx.get(f"{API}/regions/check/{problem.value}").mock(return_value=body)
        else:
            respx.get(f"{API}/regions/check/{problem.value}").respond(
                content=json.dumps(body, separators=(",", ":")).encode(),
                headers={"Content-Type": "application/octet-stream"},
            )
    respx.get(f"{API}/hotspot/regions/write").respond(
        json=hotspot or pd_fixture("hotspot_write.json")
    )


def mock_scrapes(up: Sequence[str] = ("127.0.0.1:20180",)) -> None:
    for port in (20180, 20181, 20182):
        address = f"127.0.0.1:{port}"
        route = respx.get(f"http://{address}/metrics")
        if address in up:
            route.respond(text=METRICS_PAGE)
        else:
            route.mock(side_effect=httpx.ConnectError("[Errno 111] Connection refused"))


@respx.mock
async def test_observation_of_the_fixture_cluster(pd: PDClient, http: httpx.AsyncClient) -> None:
    mock_pd(checks={"down-peer": pd_fixture("regions_check_down_peer.json")})
    mock_scrapes()
    obs = await observe(pd, ScrapeSource(http), at=T0, pd_url=PD)

    assert obs.pd_reachable
    assert sorted(s.id for s in obs.stores) == [1, 4, 5]
    down = obs.region_checks[RegionProblem.DOWN_PEER]
    assert down.region_ids == (2008, 2716, 3325)
    assert down.peer_stores == {5: 3}
    assert down.quorum_lost == ()
    assert obs.region_checks[RegionProblem.MISS_PEER].count == 0
    assert obs.region_check_errors == {}
    assert obs.hot_write is not None and obs.hot_write.as_leader[1].regions_count == 1
    assert obs.metrics is not None
    assert obs.metrics.stores[1].disk_used_ratio == pytest.approx(0.75)
    assert obs.metrics.stores[5].up is False
    assert obs.metrics_source == "scrape"
    assert obs.at == T0


@respx.mock
async def test_pd_unreachable_stops_early(pd: PDClient, http: httpx.AsyncClient) -> None:
    stores = respx.get(f"{API}/stores").mock(side_effect=httpx.ConnectError("refused"))
    others = respx.get(url__startswith=f"{API}/regions").respond(json=EMPTY_REGIONS)
    scrapes = respx.get(url__regex=r"http://127\.0\.0\.1:\d+/metrics").respond(text="")
    obs = await observe(pd, ScrapeSource(http), at=T0, pd_url=PD)
    assert not obs.pd_reachable
    assert obs.pd_error is not None and "PD is unavailable" in obs.pd_error
    assert stores.call_count == 2  # one retry
    assert others.call_count == 0
    assert scrapes.call_count == 0
    assert obs.stores == ()


@respx.mock
async def test_failing_parts_are_recorded_separately(pd: PDClient) -> None:
    mock_pd(
        checks={
            "pending-peer": httpx.Response(
                500, json="[PD:cluster:ErrNotBootstrapped]TiKV cluster not bootstrapped"
            )
        }
    )
    respx.get(f"{API}/hotspot/regions/write").respond(200, text="<html>")

    class DownPrometheus:
        name: SourceName = "prometheus"

        async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading:
            raise PrometheusUnavailable("could not reach Prometheus at http://prom:9090")

    obs = await observe(pd, DownPrometheus(), at=T0, pd_url=PD)
    assert obs.pd_reachable
    assert set(obs.region_checks) == {
        RegionProblem.DOWN_PEER,
        RegionProblem.MISS_PEER,
        RegionProblem.EXTRA_PEER,
    }
    assert "not bootstrapped" in obs.region_check_errors[RegionProblem.PENDING_PEER]
    assert obs.hot_write is None
    assert obs.hot_write_error is not None
    assert obs.metrics is None
    assert obs.metrics_error == "could not reach Prometheus at http://prom:9090"


@respx.mock
async def test_bugs_are_not_swallowed(pd: PDClient) -> None:
    mock_pd()

    class Broken:
        name: SourceName = "scrape"

        async def read(self, targets: Sequence[StoreTarget], at: float) -> MetricsReading:
            raise KeyError("bug")

    with pytest.raises(KeyError):
        await observe(pd, Broken(), at=T0, pd_url=PD)


def regions_list(count: int) -> dict[str, Any]:
    template = pd_fixture("regions_check_down_peer.json")["regions"][0]
    regions = []
    for i in range(count):
        region = dict(template)
        region["id"] = 10_000 + i
        regions.append(region)
    return {"count": count, "regions": regions}


def stores_with_regions(count: int) -> dict[str, Any]:
    body = pd_fixture("stores.json")
    for item in body["stores"]:
        item["status"]["region_count"] = count
    return body


async def cost(http: httpx.AsyncClient, regions: int, unhealthy: int) -> tuple[int, Observation]:
    with respx.mock:
        mock_pd(
            stores=stores_with_regions(regions),
            checks={"pending-peer": regions_list(unhealthy)},
        )
        mock_scrapes(up=("127.0.0.1:20180", "127.0.0.1:20181", "127.0.0.1:20182"))
        obs = await observe(PDClient(http, PD, retries=0), ScrapeSource(http), at=T0, pd_url=PD)
        return len(respx.calls), obs


async def test_request_count_does_not_grow_with_regions(http: httpx.AsyncClient) -> None:
    small, small_obs = await cost(http, regions=1_000, unhealthy=10)
    large, large_obs = await cost(http, regions=20_000, unhealthy=2_000)
    # 1 store list + PD's /metrics (a 404 here) + 4 region checks + 1 hotspot + 1 scrape
    # per store (3).
    assert small == large == 10
    assert small_obs.region_checks[RegionProblem.PENDING_PEER].count == 10
    assert large_obs.region_checks[RegionProblem.PENDING_PEER].count == 2_000
    assert all(s.region_count == 20_000 for s in large_obs.stores)
