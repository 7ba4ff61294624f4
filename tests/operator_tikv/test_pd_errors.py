"""Every documented PD failure the client can meet becomes the right error, carrying PD's text.

Each case of pd-errors.json (and each version variant) is served at its own path with its
exact status and raw body; the client call that would hit that path is made.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx

from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import PDClient
from tests.operator_tikv.test_errors import CASES, EXPECTED, expected_message

BASE = "http://pd.test:2379"

Call = Callable[[PDClient], Awaitable[object]]


def client_call(method: str, path: str) -> Call | None:
    """The client call that sends ``method path``, or None when the client never sends it."""
    tail = path.removeprefix("/pd/api/v1")
    exact: dict[tuple[str, str], Call] = {
        ("POST", "/operators"): lambda pd: pd.execute(PDWrite.transfer_leader(2008, 4)),
        ("GET", "/operators/2008"): lambda pd: pd.get_operator(2008),
        ("DELETE", "/operators/2008"): lambda pd: pd.execute(PDWrite.cancel_operator(2008)),
        ("POST", "/schedulers"): lambda pd: pd.execute(PDWrite.add_evict_leader(5)),
        ("DELETE", "/schedulers/evict-leader-scheduler"): lambda pd: pd.execute(
            PDWrite.remove_scheduler("evict-leader-scheduler")
        ),
        ("GET", "/store/99"): lambda pd: pd.get_store(99),
        ("GET", "/stores"): lambda pd: pd.list_stores(),
        ("GET", "/region/id/999999"): lambda pd: pd.get_region(999999),
        ("POST", "/config/schedule"): lambda pd: pd.execute(
            PDWrite.set_schedule_config({"leader-schedule-limit": 8})
        ),
    }
    if (method, tail) in exact:
        return exact[(method, tail)]
    if method == "GET" and tail == "/hotspot/regions/write":
        return lambda pd: pd.get_hotspot_write([99])
    if match := re.fullmatch(r"/schedulers/evict-leader-scheduler-(\d+)", tail):
        store = int(match.group(1))
        return lambda pd: pd.execute(PDWrite.remove_evict_leader_store(store))
    if match := re.fullmatch(r"/store/(\d+)/state", tail):
        store = int(match.group(1))
        return lambda pd: pd.execute(PDWrite.set_store_state(store, "Up"))
    if match := re.fullmatch(r"/store/(\d+)/weight", tail):
        store = int(match.group(1))
        return lambda pd: pd.execute(PDWrite.set_store_weight(store, 0, 1))
    return None


def reachable() -> list[tuple[str, dict[str, Any], dict[str, Any], Call]]:
    out = []
    for case in CASES:
        request = case["request"]
        if re.search(r"=x\b|/abc\b", request["path"]):
            continue  # non-numeric ids: the client refuses them before sending
        call = client_call(request["method"], request["path"].split("?")[0])
        if call is None:
            continue
        answers = [("main", case)] + [
            (f"variant{i}", v) for i, v in enumerate(case.get("variants", []))
        ]
        for label, answer in answers:
            if answer["status"] >= 400:
                out.append((f"{case['id']}-{label}", case, answer, call))
    return out


REACHABLE = reachable()


def test_most_documented_failures_are_reachable() -> None:
    ids = {case["id"] for _, case, _, _ in REACHABLE}
    # everything the bot's client sends is covered; only endpoints it never calls are left out
    assert len(ids) >= 55
    assert {"op_already_exists", "sched_evict_store_not_found_update", "region_not_found"} <= ids


@pytest.fixture
async def pd() -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient() as http:
        yield PDClient(http, BASE, retries=2, backoff=0)


@pytest.mark.parametrize(
    ("label", "case", "answer", "call"), REACHABLE, ids=[r[0] for r in REACHABLE]
)
async def test_client_raises_the_documented_error(
    pd: PDClient, label: str, case: dict[str, Any], answer: dict[str, Any], call: Call
) -> None:
    request = case["request"]
    path = request["path"].split("?")[0]
    with respx.mock(base_url=BASE) as mock:
        route = mock.route(method=request["method"], path=path).mock(
            return_value=httpx.Response(
                answer["status"],
                content=answer["raw_body"].encode(),
                headers={"Content-Type": answer["content_type"]},
            )
        )
        with pytest.raises(EXPECTED[case["id"]]) as info:
            await call(pd)
    error = info.value
    assert type(error) is EXPECTED[case["id"]], label
    assert error.status == answer["status"]
    assert error.message == expected_message(answer)
    # writes are never retried; reads are retried only on a 5xx PD did not explain
    retried = request["method"] == "GET" and type(error).__name__ == "PDUnavailableError"
    assert route.call_count == (3 if retried else 1)


async def test_evict_leader_list_404_means_not_running(pd: PDClient) -> None:
    case = next(c for c in CASES if c["id"] == "schedcfg_list_no_scheduler")
    with respx.mock(base_url=BASE) as mock:
        mock.get(case["request"]["path"]).mock(
            return_value=httpx.Response(404, content=case["raw_body"].encode())
        )
        assert await pd.evicted_leader_store_ids() == []
