"""PDClient reads: exact request (method, path, query) and parsing of PD v8.5.5 bodies."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import respx
from pydantic import ValidationError

from operator_tikv.errors import PDProtocolError, RegionNotFoundError
from operator_tikv.models import (
    OperatorKindFilter,
    OperatorStatus,
    RegionCheckState,
    StoreState,
    StoreStateName,
)
from operator_tikv.pd import PDClient

BASE = "http://pd.test:2379"
API = "/pd/api/v1"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"
JSON_TYPE = "application/json; charset=UTF-8"
OCTET = "application/octet-stream"


def fixture(name: str, *, status: int = 200, content_type: str = JSON_TYPE) -> httpx.Response:
    return httpx.Response(
        status, content=(FIXTURES / name).read_bytes(), headers={"Content-Type": content_type}
    )


def pd_json(value: object, status: int = 200) -> httpx.Response:
    """A body the way PD's indent renderer writes it."""
    body = json.dumps(value, indent=2) + "\n"
    return httpx.Response(status, content=body.encode(), headers={"Content-Type": JSON_TYPE})


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


@pytest.fixture
async def pd() -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient() as http:
        yield PDClient(http, BASE, backoff=0)


def query(route: respx.Route) -> list[tuple[str, str]]:
    return list(route.calls.last.request.url.params.multi_items())


async def test_list_stores(mock: respx.MockRouter, pd: PDClient) -> None:
    route = mock.get(f"{API}/stores").mock(return_value=fixture("stores.json"))
    stores = await pd.list_stores()
    assert route.calls.last.request.method == "GET"
    assert query(route) == []
    by_id = {s.id: s for s in stores}
    assert set(by_id) == {1, 4, 5}
    assert by_id[1].state_name is StoreStateName.UP
    assert by_id[5].state_name is StoreStateName.DOWN


async def test_list_stores_with_numeric_state_filter(mock: respx.MockRouter, pd: PDClient) -> None:
    route = mock.get(f"{API}/stores").mock(return_value=fixture("stores_all_states.json"))
    stores = await pd.list_stores([StoreState.UP, StoreState.OFFLINE, StoreState.TOMBSTONE])
    assert query(route) == [("state", "0"), ("state", "1"), ("state", "2")]
    assert {s.id for s in stores if s.state is StoreState.TOMBSTONE} == {3}


async def test_get_store(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/store/5").mock(return_value=fixture("store.json"))
    store = await pd.get_store(5)
    assert store.id == 5 and store.capacity_bytes == 500 * 1024**3


async def test_get_region_from_octet_stream(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/region/id/2008").mock(return_value=fixture("region.json", content_type=OCTET))
    region = await pd.get_region(2008)
    assert region.id == 2008 and region.leader_store_id == 1 and region.down_store_ids == [5]


@pytest.mark.parametrize(
    "answer",
    [
        fixture("region_not_found_v85.json", content_type=OCTET),  # v8.5: 200, zero region
        httpx.Response(200, content=b"null\n", headers={"Content-Type": JSON_TYPE}),  # 6.5.0
        httpx.Response(  # v26.3+
            404,
            content=b'"[PD:region:ErrRegionNotFound]region 999999 not found"\n',
            headers={"Content-Type": JSON_TYPE},
        ),
    ],
    ids=["v8.5-zero-region", "v6.5-null", "v26.3-404"],
)
async def test_unknown_region_is_region_not_found_in_every_version(
    mock: respx.MockRouter, pd: PDClient, answer: httpx.Response
) -> None:
    route = mock.get(f"{API}/region/id/999999").mock(return_value=answer)
    with pytest.raises(RegionNotFoundError) as info:
        await pd.get_region(999999)
    assert "999999" in info.value.message
    assert info.value.status == answer.status_code
    assert "does not know this region" in str(info.value)
    assert route.call_count == 1  # not-found is never retried


@pytest.mark.parametrize("state", list(RegionCheckState))
async def test_check_regions_paths(
    mock: respx.MockRouter, pd: PDClient, state: RegionCheckState
) -> None:
    route = mock.get(f"{API}/regions/check/{state.value}").mock(
        return_value=fixture("regions_check_down_peer.json", content_type=OCTET)
    )
    info = await pd.check_regions(state)
    assert route.called
    assert info.count == 3 and info.regions[0].id == 2008


async def test_check_regions_accepts_strings_and_refuses_unknown_states(pd: PDClient) -> None:
    with pytest.raises(ValueError):
        await pd.check_regions("hist-size")


async def test_regions_of_a_store(mock: respx.MockRouter, pd: PDClient) -> None:
    route = mock.get(f"{API}/regions/store/5").mock(
        return_value=fixture("regions_store_5_leader.json", content_type=OCTET)
    )
    info = await pd.get_store_regions(5, "leader")
    assert query(route) == [("type", "leader")]
    assert info.count == 0 and info.regions == []


async def test_hotspots(mock: respx.MockRouter, pd: PDClient) -> None:
    write = mock.get(f"{API}/hotspot/regions/write").mock(
        return_value=fixture("hotspot_write.json")
    )
    hot = await pd.get_hotspot_write([1, 4])
    assert query(write) == [("store_id", "1"), ("store_id", "4")]
    assert hot.hottest()[0].region_id == 2008


async def test_list_operators(mock: respx.MockRouter, pd: PDClient) -> None:
    route = mock.get(f"{API}/operators").mock(
        side_effect=[fixture("operators_list.json"), pd_json(None)]
    )
    ops = await pd.list_operators()
    assert query(route) == []
    assert [op.region_id for op in ops] == [3325, 2716, 2008]
    # with kind and no match PD answers null
    assert await pd.list_operators([OperatorKindFilter.ADMIN, "leader"]) == []
    assert query(route) == [("kind", "admin"), ("kind", "leader")]


async def test_get_operator(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/operators/3325").mock(return_value=fixture("operator_status.json"))
    op = await pd.get_operator(3325)
    assert op.status is OperatorStatus.RUNNING and op.desc == "admin-transfer-leader"


async def test_evicted_leader_stores(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/scheduler-config/evict-leader-scheduler/list").mock(
        side_effect=[
            fixture("evict_leader_config.json"),
            httpx.Response(404, text="404 page not found\n"),
            fixture("evict_leader_config.json"),
        ]
    )
    assert await pd.evicted_leader_store_ids() == [5]
    assert await pd.evicted_leader_store_ids() == []  # scheduler not running
    assert await pd.evicted_leader_store_ids() == [5]


async def test_configs(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/config/schedule").mock(return_value=fixture("config_schedule.json"))
    mock.get(f"{API}/config/replicate").mock(return_value=fixture("config_replicate.json"))
    schedule = await pd.get_schedule_config()
    assert schedule.max_store_down_time == timedelta(minutes=30)
    assert schedule.leader_schedule_limit == 4
    replication = await pd.get_replication_config()
    assert replication.location_labels == ["zone", "host"]


async def test_cluster_endpoints(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/members").mock(return_value=fixture("members.json"))
    ping = mock.get(f"{API}/ping").mock(return_value=httpx.Response(200))
    members = await pd.get_members()
    assert members.leader is not None and members.cluster_id == 7441233217512372421
    await pd.ping()
    assert ping.called


async def test_non_json_success_is_a_protocol_error(mock: respx.MockRouter, pd: PDClient) -> None:
    mock.get(f"{API}/stores").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(PDProtocolError) as info:
        await pd.list_stores()
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.body == "<html>proxy</html>"


async def test_wrong_shape_is_a_protocol_error_with_the_cause(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    mock.get(f"{API}/store/5").mock(return_value=pd_json({"store": {"id": 5}}))
    with pytest.raises(PDProtocolError) as info:
        await pd.get_store(5)
    assert isinstance(info.value.__cause__, ValidationError)
    assert "state_name" in info.value.message
    assert info.value.status == 200


async def test_bad_ids_are_refused_before_any_request(pd: PDClient) -> None:
    for call in (pd.get_store(0), pd.get_region(-1), pd.get_operator(True)):
        with pytest.raises(ValueError):
            await call
    assert pd.request_count() == 0
