"""Config, scheduler and cluster models, and the config write encoders."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter

from operator_tikv.models import (
    ClusterInfo,
    ClusterStatus,
    EvictLeaderConfig,
    MemberHealth,
    Members,
    PausedScheduler,
    PDStatus,
    ReplicationConfig,
    ScheduleConfig,
    VersionInfo,
    encode_replication_changes,
    encode_schedule_changes,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_schedule_config_kebab_keys_durations_and_string_bools() -> None:
    raw = load("config_schedule.json")
    raw["leader-schedule-limit"] = 6  # differ from the defaults so parsing is really tested
    raw["max-store-down-time"] = "1h2m3.5s"
    raw["halt-scheduling"] = "true"
    raw["low-space-ratio"] = 0.85
    config = ScheduleConfig.model_validate(raw)
    assert config.leader_schedule_limit == 6
    assert config.region_schedule_limit == 2048
    assert config.replica_schedule_limit == 64
    assert config.low_space_ratio == 0.85
    assert config.high_space_ratio == 0.7
    assert config.max_store_down_time == timedelta(hours=1, minutes=2, seconds=3.5)
    assert config.patrol_region_interval == timedelta(milliseconds=10)
    assert config.halt_scheduling is True
    assert config.enable_remove_down_replica is True
    assert config.store_limit[5].add_peer == 15


def test_schedule_config_fixture_values() -> None:
    config = ScheduleConfig.model_validate(load("config_schedule.json"))
    assert config.max_store_down_time == timedelta(minutes=30)
    assert config.halt_scheduling is False
    assert config.max_store_preparing_time == timedelta(hours=48)


def test_replication_config_location_labels_are_one_string() -> None:
    config = ReplicationConfig.model_validate(load("config_replicate.json"))
    assert config.max_replicas == 3
    assert config.location_labels == ["zone", "host"]
    assert config.enable_placement_rules is True
    assert config.strictly_match_label is False


def test_encode_schedule_changes_writes_pd_types() -> None:
    body = encode_schedule_changes(
        {
            "leader-schedule-limit": 8,
            "region_schedule_limit": 1024,  # field names are accepted too
            "low-space-ratio": 0.85,
            "high-space-ratio": 0.6,
            "max-store-down-time": timedelta(hours=1),
            "enable-remove-down-replica": False,
        }
    )
    assert body == {
        "leader-schedule-limit": 8,
        "region-schedule-limit": 1024,
        "low-space-ratio": 0.85,
        "high-space-ratio": 0.6,
        "max-store-down-time": "1h0m0s",
        "enable-remove-down-replica": "false",
    }


def test_encode_accepts_a_go_duration_string() -> None:
    assert encode_schedule_changes({"max-store-down-time": "45m"}) == {"max-store-down-time": "45m"}


@pytest.mark.parametrize(
    "changes",
    [
        {"leader-schedule-limt": 8},  # misspelt: PD would silently ignore it
        {"store-limit": {}},  # read-only here
        {"leader-schedule-limit": "8"},
        {"leader-schedule-limit": True},
        {"leader-schedule-limit": -1},
        {"low-space-ratio": "0.8"},
        {"max-store-down-time": 1800},
        {"max-store-down-time": "30 minutes"},
        {"halt-scheduling": "true"},
        {},
    ],
)
def test_encode_schedule_changes_rejects(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_schedule_changes(changes)


def test_encode_replication_changes() -> None:
    assert encode_replication_changes(
        {"max-replicas": 5, "location-labels": ["zone", "rack", "host"]}
    ) == {"max-replicas": 5, "location-labels": "zone,rack,host"}
    with pytest.raises(ValueError):
        encode_replication_changes({"location-labels": [1, 2]})


def test_evict_leader_config() -> None:
    config = EvictLeaderConfig.model_validate(load("evict_leader_config.json"))
    assert config.store_ids == [5]
    assert config.batch == 3
    assert config.store_id_ranges[5][0].is_full_range


def test_evict_leader_config_before_v85_has_no_batch() -> None:
    config = EvictLeaderConfig.model_validate(
        {"store-id-ranges": {"7": [{"start-key": "", "end-key": ""}], "4": []}}
    )
    assert config.store_ids == [4, 7]
    assert config.batch is None


def test_paused_schedulers() -> None:
    paused = TypeAdapter(list[PausedScheduler]).validate_python(
        load("schedulers_paused_timestamp.json")
    )
    assert paused[0].name == "balance-region-scheduler"
    assert paused[0].resume_at == datetime(2026, 11, 23, 15, tzinfo=UTC)


def test_health_with_member_id_above_2_63() -> None:
    health = TypeAdapter(list[MemberHealth]).validate_python(load("health.json"))
    assert health[1].member_id == 13253812395498102345
    assert [m.health for m in health] == [True, True, False]


def test_members_lift_cluster_id_and_leader() -> None:
    members = Members.model_validate(load("members.json"))
    assert members.cluster_id == 7441233217512372421
    assert members.leader is not None and members.leader.name == "pd-1"
    assert members.members[2].binary_version == "v8.5.5"
    electing = Members.model_validate(load("members_no_leader.json"))
    assert electing.leader is None and len(electing.members) == 3


def test_cluster_status_version_status_cluster() -> None:
    status = ClusterStatus.model_validate(load("cluster_status.json"))
    assert status.is_initialized and status.replication_status == ""
    assert status.raft_bootstrap_time is not None
    assert VersionInfo.model_validate(load("version.json")).version == "v8.5.5"
    assert PDStatus.model_validate(load("status.json")).start_timestamp == 1795405800
    cluster = ClusterInfo.model_validate(load("cluster.json"))
    assert cluster.id == 7441233217512372421 and cluster.max_peer_count == 3
