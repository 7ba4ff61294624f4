"""Helpers for the simulator tests: a plain httpx client on the PD port and exact-body checks.

The tests talk to the running simulator over real HTTP with httpx only (never our PD client), so
they check the wire format itself.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sim.server import SimServer

JSON = "application/json; charset=UTF-8"
DATA = "application/octet-stream"
TEXT = "text/plain; charset=utf-8"
V1 = "/pd/api/v1"


@pytest.fixture
async def pd(sim: SimServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.pd_url, timeout=10.0) as client:
        yield client


def expect_raw(response: httpx.Response, status: int, raw: str, content_type: str = JSON) -> None:
    """Status, Content-Type and the exact bytes of the body."""
    assert (response.status_code, response.text) == (status, raw)
    assert response.headers["content-type"] == content_type


def expect_message(response: httpx.Response, status: int, message: str) -> None:
    """A PD message body: a JSON string literal, 2-space renderer, trailing newline."""
    expect_raw(response, status, json.dumps(message) + "\n")


def expect_errcode(response: httpx.Response, msg: str, data: dict[str, Any]) -> None:
    """400 with a pingcap/errcode object and the TiDB-Error-Code header."""
    assert response.status_code == 400
    assert response.headers["content-type"] == JSON
    assert response.headers["tidb-error-code"] == "input"
    assert response.text.endswith("}\n")
    assert response.json() == {"code": "input", "msg": msg, "data": data}


async def post_operator(pd: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await pd.post(f"{V1}/operators", json=body)


async def region(pd: httpx.AsyncClient, region_id: int) -> dict[str, Any]:
    response = await pd.get(f"{V1}/region/id/{region_id}")
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def leader_store(info: dict[str, Any]) -> int:
    return int(info["leader"]["store_id"])


def peer_stores(info: dict[str, Any]) -> list[int]:
    return sorted(int(p["store_id"]) for p in info.get("peers", []))
