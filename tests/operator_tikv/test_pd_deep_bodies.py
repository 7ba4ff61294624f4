"""Bodies nested deeper than Python's JSON parser follows (`[[[[...`) are protocol errors, on
success and error statuses and for writes, never a RecursionError out of the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from operator_tikv.errors import PDProtocolError
from operator_tikv.models import PDWrite
from operator_tikv.models.region import parse_regions_brief
from operator_tikv.pd import PDClient

DEEP = b"[" * 200_000


@pytest.fixture
async def http_for() -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    made: dict[str, httpx.AsyncClient] = {}
    yield made
    for http in made.values():
        await http.aclose()


def pd_answering(status: int, body: bytes, made: dict[str, httpx.AsyncClient]) -> PDClient:
    http = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=body))
    )
    made[f"{status}-{len(made)}"] = http
    return PDClient(http, "http://pd.test:2379", retries=1, backoff=0)


@pytest.mark.parametrize("status", [200, 400, 500, 503])
async def test_deep_bodies_on_reads(status: int, http_for: dict[str, httpx.AsyncClient]) -> None:
    pd = pd_answering(status, DEEP, http_for)
    with pytest.raises(PDProtocolError, match="nests too deeply"):
        await pd.list_stores()


@pytest.mark.parametrize("status", [200, 500])
async def test_deep_bodies_on_writes(status: int, http_for: dict[str, httpx.AsyncClient]) -> None:
    pd = pd_answering(status, DEEP, http_for)
    with pytest.raises(PDProtocolError, match="nests too deeply"):
        await pd.execute(PDWrite.add_evict_leader(4))


async def test_deep_region_lists_on_the_brief_path(
    http_for: dict[str, httpx.AsyncClient],
) -> None:
    pd = pd_answering(200, b'{"regions":' + DEEP, http_for)
    body = await pd.get_region_check_body("down-peer")
    with pytest.raises(ValueError):
        parse_regions_brief(body)
