"""Region, region list, stats and hotspot models against PD's compact easyjson bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from operator_tikv.models import (
    HotspotInfo,
    PeerRole,
    Region,
    RegionsInfo,
    RegionStats,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def test_region_fixture_is_compact_like_easyjson() -> None:
    raw = (FIXTURES / "region.json").read_bytes()
    assert b"\n" not in raw and b": " not in raw


def test_region_fields() -> None:
    region = Region.model_validate(load("region.json"))
    assert region.id == 2008
    assert region.start_key == "7480000000000000FF0500000000000000F8"
    assert region.end_key == "7480000000000000FF0700000000000000F8"
    assert (region.epoch.conf_ver, region.epoch.version) == (5, 61)
    assert region.store_ids == [1, 4, 5]
    assert region.leader is not None and region.leader.id == 2009
    assert region.leader_store_id == 1
    assert region.down_store_ids == [5]
    assert region.down_peers[0].down_seconds == 2009
    assert region.pending_store_ids == [5]
    assert region.approximate_size == 94
    assert region.approximate_keys == 861234
    assert region.written_bytes == 50331648


def test_voter_without_role_key_is_voter() -> None:
    region = Region.model_validate(load("region.json"))
    peer = region.peer_on_store(4)
    assert peer is not None
    assert peer.role == 0 and peer.role_name == PeerRole.VOTER
    assert peer.is_voter and not peer.is_learner
    assert region.peer_on_store(6) is None


def test_learner_peer() -> None:
    region = Region.model_validate(load("region_learner.json"))
    learner = region.peer_on_store(6)
    assert learner is not None
    assert learner.is_learner and learner.role == 1 and learner.role_name == "Learner"
    assert not learner.is_voter
    assert region.voter_store_ids == [1, 4, 5]
    assert region.store_ids == [1, 4, 5, 6]


def test_region_without_leader_has_leader_none() -> None:
    region = Region.model_validate(load("region_no_leader.json"))
    assert region.leader is None
    assert region.leader_store_id is None


def test_zero_region_parses_with_id_zero() -> None:
    # v8.5's answer for an unknown region; the client turns id 0 into RegionNotFoundError
    region = Region.model_validate(load("region_not_found_v85.json"))
    assert region.id == 0
    assert region.peers == [] and region.leader is None


def test_region_that_omits_everything_optional() -> None:
    region = Region.model_validate({"id": 7, "leader": {"role_name": ""}})
    assert region.epoch.version == 0 and region.down_peers == [] and region.end_key == ""


def test_region_list() -> None:
    info = RegionsInfo.model_validate(load("regions.json"))
    assert info.count == 3
    assert [r.id for r in info.regions] == [2008, 2716, 3325]
    assert info.regions[2].end_key == ""
    assert info.regions[1].leader_store_id == 4


def test_empty_region_list_and_count_only() -> None:
    assert RegionsInfo.model_validate(load("regions_check_miss_peer.json")).regions == []
    counted = RegionsInfo.model_validate(load("regions_count.json"))
    assert counted.count == 3610 and counted.regions == []


def test_region_stats_full_and_count_only() -> None:
    stats = RegionStats.model_validate(load("stats_region.json"))
    assert stats.count == 3610
    assert stats.empty_count == 37
    assert stats.store_leader_count == {1: 1805, 4: 1805}
    assert stats.store_peer_count[5] == 3610
    count_only = RegionStats.model_validate(load("stats_region_count.json"))
    assert count_only.count == 3610
    assert count_only.store_leader_count == {}


def test_hotspot_write() -> None:
    hot = HotspotInfo.model_validate(load("hotspot_write.json"))
    assert set(hot.as_peer) == {1}
    assert set(hot.as_leader) == {1, 4}
    peers = hot.as_peer[1]
    assert peers.regions_count == 3
    assert peers.statistics[0].region_id == 2008
    assert peers.statistics[0].stores == [1, 4, 5]
    assert peers.statistics[0].last_update_time is not None
    assert hot.as_leader[4].statistics == []
    hottest = hot.hottest()
    assert [p.region_id for p in hottest] == [2008]
    assert hottest[0].flow_bytes == 838860.8


def test_hotspot_read_with_empty_as_peer() -> None:
    hot = HotspotInfo.model_validate(load("hotspot_read.json"))
    assert hot.as_peer == {}
    assert hot.hottest() == []
