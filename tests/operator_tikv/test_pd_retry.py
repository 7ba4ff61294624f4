"""Retries (GETs only), transport failures, request accounting, the hook, and the factory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import respx

from operator_tikv.errors import (
    OperatorNotFoundError,
    PDRejectedError,
    PDUnavailableError,
)
from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import PDClient, open_pd_client

BASE = "http://pd.test:2379"
API = "/pd/api/v1"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"
STORES = (FIXTURES / "stores.json").read_bytes()


class FakeSleep:
    """Records the backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        yield router


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def pd(sleep: FakeSleep) -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient() as http:
        yield PDClient(http, BASE, retries=2, backoff=0.2, sleep=sleep)


async def test_get_is_retried_on_5xx_then_succeeds(
    mock: respx.MockRouter, pd: PDClient, sleep: FakeSleep
) -> None:
    route = mock.get(f"{API}/stores").mock(
        side_effect=[
            httpx.Response(503, text="Service Unavailable"),
            httpx.Response(500, content=b'"[PD:apiutil:ErrRedirect]redirect failed"\n'),
            httpx.Response(200, content=STORES),
        ]
    )
    stores = await pd.list_stores()
    assert len(stores) == 3
    assert route.call_count == 3
    assert sleep.delays == [0.2, 0.4]  # exponential backoff
    assert pd.stats == {
        ("GET", f"{API}/stores", "503"): 1,
        ("GET", f"{API}/stores", "500"): 1,
        ("GET", f"{API}/stores", "200"): 1,
    }


async def test_get_is_retried_on_connection_errors_and_timeouts(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    route = mock.get(f"{API}/stores").mock(
        side_effect=[
            httpx.ConnectError("connection refused"),
            httpx.ReadTimeout("timed out"),
            httpx.Response(200, content=STORES),
        ]
    )
    assert len(await pd.list_stores()) == 3
    assert route.call_count == 3
    assert pd.stats[("GET", f"{API}/stores", "ConnectError")] == 1
    assert pd.stats[("GET", f"{API}/stores", "ReadTimeout")] == 1


async def test_get_gives_up_after_the_retries(mock: respx.MockRouter, pd: PDClient) -> None:
    route = mock.get(f"{API}/stores").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(PDUnavailableError) as info:
        await pd.list_stores()
    assert route.call_count == 3
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert "connection refused" in info.value.message
    assert not info.value.outcome_unknown
    assert not info.value.from_pd and "PD said" not in str(info.value)
    assert "Check that PD is running" in str(info.value)


async def test_get_gives_up_on_persistent_5xx_with_pd_message(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    route = mock.get(f"{API}/stores").mock(return_value=httpx.Response(503, text="etcd down"))
    with pytest.raises(PDUnavailableError) as info:
        await pd.list_stores()
    assert route.call_count == 3
    assert info.value.status == 503 and info.value.message == "etcd down"


async def test_recognised_5xx_is_not_retried(
    mock: respx.MockRouter, pd: PDClient, sleep: FakeSleep
) -> None:
    route = mock.get(f"{API}/operators/2008").mock(
        return_value=httpx.Response(
            500, content=b'"[PD:operator:ErrOperatorNotFound]operator not found"\n'
        )
    )
    with pytest.raises(OperatorNotFoundError):
        await pd.get_operator(2008)
    assert route.call_count == 1 and sleep.delays == []


async def test_post_is_never_retried_on_5xx(
    mock: respx.MockRouter, pd: PDClient, sleep: FakeSleep
) -> None:
    route = mock.post(f"{API}/operators").mock(return_value=httpx.Response(503, text="busy"))
    with pytest.raises(PDUnavailableError):
        await pd.execute(PDWrite.transfer_leader(2008, 4))
    assert route.call_count == 1 and sleep.delays == []


async def test_post_with_an_unknown_pd_refusal_is_rejected_once(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    route = mock.post(f"{API}/operators").mock(
        return_value=httpx.Response(500, content=b'"some new refusal"\n')
    )
    with pytest.raises(PDRejectedError) as info:
        await pd.execute(PDWrite.transfer_leader(2008, 4))
    assert route.call_count == 1 and info.value.message == "some new refusal"


async def test_post_connection_refused_was_not_applied(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    route = mock.post(f"{API}/operators").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(PDUnavailableError) as info:
        await pd.execute(PDWrite.transfer_leader(2008, 4))
    assert route.call_count == 1
    assert info.value.outcome_unknown is False


@pytest.mark.parametrize(
    "exc", [httpx.ReadTimeout("slow"), httpx.RemoteProtocolError("closed"), httpx.ReadError("x")]
)
async def test_write_failing_after_sending_has_unknown_outcome(
    mock: respx.MockRouter, pd: PDClient, exc: Exception
) -> None:
    route = mock.delete(f"{API}/schedulers/evict-leader-scheduler-5").mock(side_effect=exc)
    with pytest.raises(PDUnavailableError) as info:
        await pd.execute(PDWrite.remove_evict_leader_store(5))
    assert route.call_count == 1
    assert info.value.outcome_unknown is True
    assert info.value.__cause__ is exc


async def test_zero_retries(mock: respx.MockRouter, sleep: FakeSleep) -> None:
    route = mock.get(f"{API}/stores").mock(return_value=httpx.Response(502))
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, BASE, retries=0, sleep=sleep)
        with pytest.raises(PDUnavailableError):
            await pd.list_stores()
    assert route.call_count == 1 and sleep.delays == []


async def test_request_counter_shows_a_fixed_cost_per_cycle(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    mock.get(f"{API}/stores").mock(return_value=httpx.Response(200, content=STORES))
    mock.get(url__regex=rf"{API}/region/id/\d+").mock(
        return_value=httpx.Response(200, content=(FIXTURES / "region.json").read_bytes())
    )
    for _cycle in range(3):
        await pd.list_stores()
        for region_id in (2008, 2716):
            await pd.get_region(region_id)
    assert pd.request_count() == 9
    assert pd.request_count("GET", f"{API}/region/id/{{region_id}}") == 6
    assert pd.stats[("GET", f"{API}/region/id/{{region_id}}", "200")] == 6
    pd.reset_stats()
    assert pd.request_count() == 0


async def test_on_request_hook(mock: respx.MockRouter, sleep: FakeSleep) -> None:
    seen: list[tuple[str, str, int | str, float]] = []
    mock.get(f"{API}/stores").mock(
        side_effect=[httpx.ConnectError("refused"), httpx.Response(200, content=STORES)]
    )
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, BASE, sleep=sleep, on_request=lambda *args: seen.append(args))
        await pd.list_stores()
    assert [(m, t, o) for m, t, o, _ in seen] == [
        ("GET", f"{API}/stores", "ConnectError"),
        ("GET", f"{API}/stores", 200),
    ]
    assert all(seconds >= 0 for *_, seconds in seen)


async def test_a_failing_hook_does_not_break_requests(
    mock: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object) -> None:
        raise RuntimeError("metrics backend down")

    mock.get(f"{API}/stores").mock(return_value=httpx.Response(200, content=STORES))
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, BASE, on_request=broken)
        assert len(await pd.list_stores()) == 3
    assert "on_request hook failed" in caplog.text


async def test_open_pd_client_over_a_transport() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=json.dumps({"ok": True}).encode())

    async with open_pd_client(
        "http://127.0.0.1:2379/pd/api/v1/", transport=httpx.MockTransport(handler)
    ) as pd:
        await pd.ping()
        assert pd.base_url == "http://127.0.0.1:2379"
        http = pd._http
        assert http.timeout.connect == 3.0 and http.timeout.read == 10.0
    assert http.is_closed
    assert str(seen[0].url) == "http://127.0.0.1:2379/pd/api/v1/ping"


@pytest.mark.parametrize("url", ["127.0.0.1:2379", "", "ftp://pd"])
async def test_base_url_must_be_http(url: str) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError):
            PDClient(http, url)


async def test_negative_retries_are_refused() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ValueError):
            PDClient(http, BASE, retries=-1)
