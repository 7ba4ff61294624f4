"""The brief region-list parse (`parse_regions_brief`, over the raw body
`PDClient.get_region_check_body` reads): it reads the same facts as the full `Region` models, on
PD's fixtures, on the simulator's answers and on generated lists, and refuses bodies of the wrong
shape with ValueError."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from operator_tikv.models import RegionCheckState, RegionsInfo
from operator_tikv.models.region import RegionBrief, parse_regions_brief
from operator_tikv.observation import RegionCheck, RegionProblem
from operator_tikv.pd import PDClient
from sim.server import SimServer

BASE = "http://pd.test:2379"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"
FULL = TypeAdapter(RegionsInfo)


def briefs_of_full(body: bytes) -> tuple[RegionBrief, ...]:
    return tuple(RegionBrief.of(r) for r in FULL.validate_json(body).regions)


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE) as router:
        yield router


@pytest.fixture
async def pd() -> AsyncIterator[PDClient]:
    async with httpx.AsyncClient() as http:
        yield PDClient(http, BASE, backoff=0, retries=0)


@pytest.mark.parametrize(
    "name", ["regions_check_down_peer.json", "regions_check_miss_peer.json", "regions.json"]
)
def test_fixture_lists_read_the_same_as_full_models(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    brief = parse_regions_brief(body)
    assert brief.regions == briefs_of_full(body)
    assert brief.count == json.loads(body)["count"]


def test_without_peers_only_down_and_pending_stores_are_read() -> None:
    body = (FIXTURES / "regions_check_down_peer.json").read_bytes()
    full = parse_regions_brief(body)
    slim = parse_regions_brief(body, peers=False)
    assert slim.count == full.count
    assert [(r.id, r.down_store_ids, r.pending_store_ids) for r in slim.regions] == [
        (r.id, r.down_store_ids, r.pending_store_ids) for r in full.regions
    ]
    assert all(r.voter_store_ids == () and r.leader_store_id is None for r in slim.regions)
    # a bad peer list is not even looked at
    bad = b'{"count":1,"regions":[{"id":3,"peers":"nonsense","pending_peers":[{"store_id":2}]}]}'
    assert parse_regions_brief(bad, peers=False).regions[0].pending_store_ids == (2,)


def test_down_peer_fixture_facts() -> None:
    brief = parse_regions_brief((FIXTURES / "regions_check_down_peer.json").read_bytes())
    first = brief.regions[0]
    assert first.id == 2008
    assert first.down_store_ids == (5,)
    assert first.pending_store_ids == (5,)
    assert first.leader_store_id == 1
    assert 5 in first.voter_store_ids and not first.quorum_lost


def test_leaderless_learner_and_null_lists() -> None:
    body = json.dumps(
        {
            "count": 1,
            "regions": [
                {
                    "id": 7,
                    "peers": [
                        {"id": 8, "store_id": 1},
                        {"id": 9, "store_id": 2, "role": 1, "role_name": "Learner"},
                        {"id": 10, "store_id": 3, "is_learner": True},
                        {"id": 11, "store_id": 4, "role_name": "IncomingVoter"},
                    ],
                    "leader": {"role_name": ""},
                    "down_peers": [{"peer": {"id": 8, "store_id": 1}, "down_seconds": 5}],
                    "pending_peers": None,
                }
            ],
        }
    )
    [region] = parse_regions_brief(body).regions
    assert region.voter_store_ids == (1, 4)
    assert region.leader_store_id is None
    assert region.pending_store_ids == ()
    assert region.down_voter_count == 1
    assert region.quorum_lost  # one of two voters is down: no majority left
    assert parse_regions_brief(b'{"count":0,"regions":null}').regions == ()


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[]",
        b'{"count":1,"regions":[{"peers":[]}]}',  # no id
        b'{"count":1,"regions":[{"id":"x"}]}',
        b'{"count":1,"regions":[{"id":1,"peers":[{"store_id":"two"}]}]}',
        b'{"count":1,"regions":[{"id":1,"down_peers":[{}]}]}',
        b'{"count":1,"regions":[{"id":1',  # truncated
        b"<html>bad gateway</html>",
    ],
)
async def test_bad_bodies_are_refused_not_misread(
    mock: respx.MockRouter, pd: PDClient, body: bytes
) -> None:
    mock.get("/pd/api/v1/regions/check/down-peer").respond(200, content=body)
    raw = await pd.get_region_check_body(RegionCheckState.DOWN_PEER)
    assert raw == body  # read as it came
    with pytest.raises(ValueError):
        parse_regions_brief(raw)


async def test_counts_as_one_request_under_the_check_template(
    mock: respx.MockRouter, pd: PDClient
) -> None:
    route = mock.get("/pd/api/v1/regions/check/pending-peer").respond(
        200,
        content=(FIXTURES / "regions_check_down_peer.json").read_bytes(),
        headers={"Content-Type": "application/octet-stream"},
    )
    brief = parse_regions_brief(await pd.get_region_check_body("pending-peer"))
    assert route.call_count == 1 and brief.count == 3
    assert pd.request_count("GET", "/pd/api/v1/regions/check/{state}") == 1


async def test_simulator_lists_with_a_store_down_match_full_models(
    sim_factory: Any,
) -> None:
    sim: SimServer = await sim_factory(stores=4, regions=400)
    sim.faults.stop_store(4)
    sim.cluster.advance(700)
    async with httpx.AsyncClient() as http:
        pd = PDClient(http, sim.pd_url)
        for state in ("down-peer", "pending-peer", "miss-peer", "extra-peer"):
            response = await http.get(f"{sim.pd_url}/pd/api/v1/regions/check/{state}")
            expected = briefs_of_full(response.content)
            brief = parse_regions_brief(await pd.get_region_check_body(state))
            assert brief.regions == expected
        down = parse_regions_brief(await pd.get_region_check_body("down-peer"))
        assert down.count > 0 and all(r.down_store_ids == (4,) for r in down.regions)
        full = await pd.check_regions("down-peer")
        problem = RegionProblem.DOWN_PEER
        assert RegionCheck.from_briefs(problem, down.regions) == RegionCheck.from_regions(
            problem, full.regions
        )


_ids = st.integers(min_value=1, max_value=9)
_peer = st.fixed_dictionaries(
    {"id": st.integers(1, 10_000), "store_id": _ids},
    optional={
        "role_name": st.sampled_from(["Voter", "Learner", "IncomingVoter", "DemotingVoter"]),
        "is_learner": st.booleans(),
    },
)
_region = st.fixed_dictionaries(
    {"id": st.integers(1, 10**12)},
    optional={
        "peers": st.none() | st.lists(_peer, max_size=5),
        "leader": st.none() | _peer | st.just({"role_name": ""}),
        "down_peers": st.none()
        | st.lists(
            st.fixed_dictionaries({"peer": _peer, "down_seconds": st.integers(0, 10**6)}),
            max_size=3,
        ),
        "pending_peers": st.none() | st.lists(_peer, max_size=3),
        "approximate_size": st.integers(0, 10**6),
        "start_key": st.text(max_size=8),
    },
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_region, max_size=6))
def test_generated_lists_read_the_same_as_full_models(regions: list[dict[str, Any]]) -> None:
    body = json.dumps({"count": len(regions), "regions": regions}).encode()
    brief = parse_regions_brief(body)
    assert brief.regions == briefs_of_full(body)
    slim = parse_regions_brief(body, peers=False).regions
    for problem in RegionProblem:
        full = RegionCheck.from_regions(problem, FULL.validate_json(body).regions)
        assert RegionCheck.from_briefs(problem, brief.regions) == full
        if problem is not RegionProblem.DOWN_PEER:  # the observation reads these without peers
            assert RegionCheck.from_briefs(problem, slim) == full


@st.composite
def _consistent_region(draw: st.DrawFn) -> dict[str, Any]:
    """A region as PD builds it: one peer per store, down/pending peers among its peers."""
    stores = draw(st.lists(_ids, min_size=1, max_size=5, unique=True))
    peers = [
        {"id": 100 + s, "store_id": s, "role_name": draw(st.sampled_from(["Voter", "Learner"]))}
        for s in stores
    ]
    down = draw(st.lists(st.sampled_from(peers), unique_by=lambda p: p["id"]))
    return {
        "id": draw(st.integers(1, 10**6)),
        "peers": peers,
        "down_peers": [{"peer": p, "down_seconds": 60} for p in down],
    }


@settings(max_examples=150, deadline=None)
@given(_consistent_region())
def test_quorum_by_store_matches_quorum_by_peer_id(region: dict[str, Any]) -> None:
    voters = {p["id"] for p in region["peers"] if p["role_name"] != "Learner"}
    down_voters = {d["peer"]["id"] for d in region["down_peers"]} & voters
    by_peer_id = bool(voters) and 2 * len(down_voters) >= len(voters)
    [brief] = parse_regions_brief(json.dumps({"count": 1, "regions": [region]})).regions
    assert brief.quorum_lost is by_peer_id
