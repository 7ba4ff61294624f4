"""Several PD members (`operator_tikv.members`, `PDClient` over a comma-separated URL list).

Over loopback against the simulator: with three URLs and the first dead, reads succeed through
the second, which is remembered; a write whose answer is lost is sent once and never to
another member (counted in the simulator's request log). With respx (unit tests of the httpx
client): PD's ErrRedirectNoLeader and 503 during an election move reads to the next member and
are retried with back-off; a write answered 503 is not sent elsewhere; a write whose first
member refused the connection (nothing sent) goes to the next one.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import respx

from operator_tikv.errors import PDUnavailableError
from operator_tikv.members import PDMembers, split_members
from operator_tikv.models.writes import PDWrite
from operator_tikv.pd import PDClient
from operator_tikv.transport import open_aiohttp_transport
from sim.server import SimServer
from tests.plugins.sim import SimFactory

API = "/pd/api/v1"
NO_LEADER = b'"[PD:apiutil:ErrRedirectNoLeader]redirect finds no leader"\n'
# A believable store list (an empty one is refused as untrustworthy by the client).
STORES = (Path(__file__).parents[1] / "fixtures" / "pd" / "stores.json").read_bytes()


def dead_url() -> str:
    """A loopback port nobody listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with (
        open_aiohttp_transport() as transport,
        httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(0.5)) as client,
    ):
        yield client


def second_name(server: SimServer) -> str:
    """The same simulator under another URL (a second "member" whose requests it logs)."""
    return f"http://localhost:{server.pd_port}"


async def test_reads_fail_over_to_the_second_member_and_remember_it(
    sim: SimServer, http: httpx.AsyncClient
) -> None:
    dead = dead_url()
    urls = f"{dead},{sim.pd_url},{second_name(sim)}"
    pd = PDClient(http, urls, retries=0)
    assert pd.members.urls == (dead, sim.pd_url, second_name(sim))
    assert pd.base_url == dead

    assert len(await pd.list_stores()) == 3
    assert pd.base_url == sim.pd_url
    assert pd.stats[("GET", f"{API}/stores", "ConnectError")] == 1
    assert pd.stats[("GET", f"{API}/stores", "200")] == 1

    await pd.list_stores()
    await pd.get_store(1)
    # remembered: the dead member is not tried again
    assert pd.request_count(template=None) == 4
    assert sum(n for (_, _, o), n in pd.stats.items() if o == "ConnectError") == 1


async def test_every_member_down_names_each(http: httpx.AsyncClient) -> None:
    first, second = dead_url(), dead_url()
    pd = PDClient(http, f"{first},{second}", retries=0)
    with pytest.raises(PDUnavailableError) as caught:
        await pd.list_stores()
    text = str(caught.value)
    assert "no PD member answered: " in text
    assert f"{first}: ConnectError" in text and f"{second}: ConnectError" in text


async def test_a_write_whose_answer_is_lost_is_not_resent(
    sim_factory: SimFactory, http: httpx.AsyncClient
) -> None:
    sim = await sim_factory(stores=4)
    pd = PDClient(http, f"{sim.pd_url},{second_name(sim)},{dead_url()}", retries=2)
    sim.faults.pd_timeouts()  # PD takes the request and never answers
    try:
        with pytest.raises(PDUnavailableError) as caught:
            await pd.execute(PDWrite.add_evict_leader(4))
    finally:
        sim.faults.heal()
    assert caught.value.outcome_unknown  # the caller looks it up (the engine does)
    posts = [r for r in sim.requests if r.method == "POST"]
    assert [(r.path, r.body) for r in posts] == [
        (f"{API}/schedulers", {"name": "evict-leader-scheduler", "store_id": 4})
    ]
    assert pd.request_count("POST") == 1


async def test_a_write_refused_a_connection_goes_to_the_next_member(
    sim_factory: SimFactory, http: httpx.AsyncClient
) -> None:
    sim = await sim_factory(stores=4)
    pd = PDClient(http, f"{dead_url()},{sim.pd_url}", retries=0)
    await pd.execute(
        PDWrite.add_evict_leader(4)
    )  # nothing reached the dead member: sending it on is safe
    posts = [r for r in sim.requests if r.method == "POST"]
    assert len(posts) == 1 and posts[0].status == 200
    assert pd.base_url == sim.pd_url


# --------------------------------------------------------------------------- respx


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


MEMBERS = ("http://pd-0.test:2379", "http://pd-1.test:2379", "http://pd-2.test:2379")


@respx.mock(assert_all_called=False)
async def test_no_leader_during_an_election_is_retried_for_reads(
    respx_mock: respx.MockRouter,
) -> None:
    routes = [respx_mock.get(f"{m}{API}/stores") for m in MEMBERS]
    for route in routes:
        route.mock(
            side_effect=[
                httpx.Response(503, content=NO_LEADER),
                httpx.Response(200, content=STORES),
            ]
        )
    sleep = FakeSleep()
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, ",".join(MEMBERS), retries=2, backoff=0.2, sleep=sleep)
        assert len(await pd.list_stores()) == 3
    # one round over the three members (no leader anywhere), a back-off, then the first answers
    assert [r.call_count for r in routes] == [2, 1, 1]
    assert sleep.delays == [0.2]
    assert pd.base_url == MEMBERS[0]


@respx.mock(assert_all_called=False)
async def test_a_500_no_leader_moves_a_read_to_the_next_member(
    respx_mock: respx.MockRouter,
) -> None:
    first = respx_mock.get(f"{MEMBERS[0]}{API}/stores").respond(500, content=NO_LEADER)
    second = respx_mock.get(f"{MEMBERS[1]}{API}/stores").respond(200, content=STORES)
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, ",".join(MEMBERS[:2]), retries=0)
        assert len(await pd.list_stores()) == 3
    assert first.call_count == 1 and second.call_count == 1
    assert pd.base_url == MEMBERS[1]


@respx.mock(assert_all_called=False)
async def test_a_write_answered_no_leader_is_not_sent_to_another_member(
    respx_mock: respx.MockRouter,
) -> None:
    routes = [
        respx_mock.post(f"{m}{API}/schedulers").respond(503, content=NO_LEADER) for m in MEMBERS
    ]
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, ",".join(MEMBERS), retries=2)
        with pytest.raises(PDUnavailableError):
            await pd.execute(PDWrite.add_evict_leader(4))
    assert [r.call_count for r in routes] == [1, 0, 0]


def test_member_lists() -> None:
    assert split_members(" http://a:2379 , ,http://b:2379,") == ["http://a:2379", "http://b:2379"]
    members = PDMembers(["http://a:2379", "http://b:2379", "http://a:2379", "http://c:2379"])
    assert members.urls == ("http://a:2379", "http://b:2379", "http://c:2379")
    members.answered("http://c:2379")
    assert members.in_order() == ["http://c:2379", "http://a:2379", "http://b:2379"]
    with pytest.raises(ValueError, match="at least one PD URL"):
        PDMembers([])
    with pytest.raises(ValueError, match="must start with http"):
        PDClient(httpx.AsyncClient(), "http://a:2379,pd-b:2379")
