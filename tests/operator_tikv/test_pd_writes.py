"""PDClient writes: method, path and JSON body exactly as PD reads them; PD's message back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import respx

from operator_tikv.errors import SchedulerNotFoundError
from operator_tikv.models import PDWrite
from operator_tikv.pd import PDClient

BASE = "http://pd.test:2379"
API = "/pd/api/v1"
JSON_TYPE = "application/json; charset=UTF-8"


def pd_message(value: object, status: int = 200) -> httpx.Response:
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


Call = Callable[[PDClient], Awaitable[str]]

WRITES: list[tuple[str, Call, str, str, dict[str, Any] | None, str]] = [
    (
        "transfer-leader",
        lambda pd: pd.execute(PDWrite.transfer_leader(3325, 1)),
        "POST",
        "/operators",
        {"name": "transfer-leader", "region_id": 3325, "to_store_id": 1},
        "The operator is created.",
    ),
    (
        "transfer-peer",
        lambda pd: pd.execute(PDWrite.transfer_peer(2008, 5, 6)),
        "POST",
        "/operators",
        {"name": "transfer-peer", "region_id": 2008, "from_store_id": 5, "to_store_id": 6},
        "The operator is created.",
    ),
    (
        "add-peer",
        lambda pd: pd.execute(PDWrite.add_peer(2008, 6)),
        "POST",
        "/operators",
        {"name": "add-peer", "region_id": 2008, "store_id": 6},
        "The operator is created.",
    ),
    (
        "remove-peer",
        lambda pd: pd.execute(PDWrite.remove_peer(2008, 5)),
        "POST",
        "/operators",
        {"name": "remove-peer", "region_id": 2008, "store_id": 5},
        "The operator is created.",
    ),
    (
        "split-region",
        lambda pd: pd.execute(PDWrite.split_region(2008)),
        "POST",
        "/operators",
        {"name": "split-region", "region_id": 2008, "policy": "approximate"},
        "The operator is created.",
    ),
    (
        "merge-region",
        lambda pd: pd.execute(PDWrite.merge_region(2008, 2716)),
        "POST",
        "/operators",
        {"name": "merge-region", "source_region_id": 2008, "target_region_id": 2716},
        "The operator is created.",
    ),
    (
        "cancel-operator",
        lambda pd: pd.execute(PDWrite.cancel_operator(3325)),
        "DELETE",
        "/operators/3325",
        None,
        "The pending operator is canceled.",
    ),
    (
        "evict-leader-new",
        lambda pd: pd.execute(PDWrite.add_evict_leader(5)),
        "POST",
        "/schedulers",
        {"name": "evict-leader-scheduler", "store_id": 5},
        "The scheduler is created.",
    ),
    (
        "evict-leader-second-store",
        lambda pd: pd.execute(PDWrite.add_evict_leader(4)),
        "POST",
        "/schedulers",
        {"name": "evict-leader-scheduler", "store_id": 4},
        "The scheduler has been applied to the store.",
    ),
    (
        "grant-leader",
        lambda pd: pd.execute(PDWrite.add_scheduler("grant-leader-scheduler", 1)),
        "POST",
        "/schedulers",
        {"name": "grant-leader-scheduler", "store_id": 1},
        "The scheduler is created.",
    ),
    (
        "remove-evict-leader-store",
        lambda pd: pd.execute(PDWrite.remove_evict_leader_store(5)),
        "DELETE",
        "/schedulers/evict-leader-scheduler-5",
        None,
        "",  # PD answers JSON null
    ),
    (
        "remove-scheduler",
        lambda pd: pd.execute(PDWrite.remove_scheduler("evict-leader-scheduler")),
        "DELETE",
        "/schedulers/evict-leader-scheduler",
        None,
        "The scheduler is removed.",
    ),
    (
        "schedule-config",
        lambda pd: pd.execute(
            PDWrite.set_schedule_config(
                {
                    "leader-schedule-limit": 8,
                    "low-space-ratio": 0.85,
                    "max-store-down-time": timedelta(hours=1),
                    "enable-remove-down-replica": True,
                }
            )
        ),
        "POST",
        "/config/schedule",
        {
            "leader-schedule-limit": 8,
            "low-space-ratio": 0.85,
            "max-store-down-time": "1h0m0s",
            "enable-remove-down-replica": "true",
        },
        "The config is updated.",
    ),
    (
        "replicate-config",
        lambda pd: pd.execute(
            PDWrite.set_replication_config({"max-replicas": 5, "location-labels": ["zone"]})
        ),
        "POST",
        "/config/replicate",
        {"max-replicas": 5, "location-labels": "zone"},
        "The config is updated.",
    ),
    (
        "store-weight",
        lambda pd: pd.execute(PDWrite.set_store_weight(5, 0, 1)),
        "POST",
        "/store/5/weight",
        {"leader": 0, "region": 1},
        "The store's weight is updated.",
    ),
]


@pytest.mark.parametrize(
    ("name", "call", "method", "path", "body", "message"), WRITES, ids=[w[0] for w in WRITES]
)
async def test_write_request_and_message(
    mock: respx.MockRouter,
    pd: PDClient,
    name: str,
    call: Call,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    message: str,
) -> None:
    route = mock.route(method=method, path=API + path).mock(
        return_value=pd_message(message or None)
    )
    assert await call(pd) == message
    request = route.calls.last.request
    assert route.call_count == 1
    assert request.url.query == b""
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body
        assert request.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("state", ["Up", "Offline"])
async def test_store_state_is_a_query_without_body(
    mock: respx.MockRouter, pd: PDClient, state: Any
) -> None:
    route = mock.post(f"{API}/store/5/state").mock(
        return_value=pd_message("The store's state is updated.")
    )
    assert await pd.execute(PDWrite.set_store_state(5, state)) == "The store's state is updated."
    request = route.calls.last.request
    assert list(request.url.params.multi_items()) == [("state", state)]
    assert request.content == b""
    assert "force" not in str(request.url)


async def test_removing_a_store_not_under_evict_leader(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    mock.delete(f"{API}/schedulers/evict-leader-scheduler-7").mock(
        return_value=pd_message(None, status=404)
    )
    with pytest.raises(SchedulerNotFoundError) as info:
        await pd.execute(PDWrite.remove_evict_leader_store(7))
    assert info.value.status == 404 and info.value.message == ""


async def test_execute_a_prebuilt_write(mock: respx.MockRouter, pd: PDClient) -> None:
    write = PDWrite.split_region(2008, "usekey", ["7480000000000000FF0600000000000000F8"])
    route = mock.post(f"{API}/operators").mock(return_value=pd_message("The operator is created."))
    assert await pd.execute(write) == "The operator is created."
    assert json.loads(route.calls.last.request.content) == write.body
    assert pd.stats == {("POST", "/pd/api/v1/operators", "200"): 1}


async def test_invalid_write_sends_nothing(pd: PDClient) -> None:
    with pytest.raises(ValueError):
        await pd.execute(PDWrite.set_schedule_config({"leader-schedule-limt": 8}))
    with pytest.raises(ValueError):
        await pd.execute(PDWrite.transfer_leader(2008, 0))
    assert pd.request_count() == 0
