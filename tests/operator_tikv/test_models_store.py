"""Store models against PD v8.5.5 JSON: omitted enums, size strings, ns heartbeats, durations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from operator_tikv.models import (
    NodeState,
    StoreInfo,
    StoresInfo,
    StoreState,
    StoreStateName,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "pd"
GIB = 1024**3


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def stores_by_id(name: str = "stores.json") -> dict[int, StoreInfo]:
    info = StoresInfo.model_validate(load(name))
    assert info.count == len(info.stores)
    return {store.id: store for store in info.stores}


def test_up_store_without_state_key_is_up() -> None:
    raw = load("stores.json")
    up = next(s for s in raw["stores"] if s["store"]["id"] == 1)
    assert "state" not in up["store"]  # omitempty: the fixture is faithful to PD
    store = stores_by_id()[1]
    assert store.state is StoreState.UP
    assert store.state_name is StoreStateName.UP
    assert store.store.node_state is NodeState.SERVING
    assert store.is_up


def test_down_and_disconnected_are_state_names_of_up_stores() -> None:
    stores = stores_by_id()
    assert stores[4].state_name is StoreStateName.DISCONNECTED
    assert stores[5].state_name is StoreStateName.DOWN
    assert stores[4].state is StoreState.UP and stores[5].state is StoreState.UP
    assert not stores[4].is_up and not stores[5].is_up


def test_tombstone_store() -> None:
    store = stores_by_id("stores_all_states.json")[3]
    assert store.state is StoreState.TOMBSTONE
    assert store.store.node_state is NodeState.REMOVED
    assert store.state_name is StoreStateName.TOMBSTONE
    assert store.labels == {}
    assert store.capacity_bytes == 0
    assert store.used_ratio is None


def test_flat_fields_of_the_down_store() -> None:
    store = StoreInfo.model_validate(load("store.json"))
    assert store.id == 5
    assert store.address == "127.0.0.1:20162"
    assert store.status_address == "127.0.0.1:20182"
    assert store.labels == {"zone": "z3", "host": "tikv-5"}
    assert store.version == "8.5.5"
    assert store.capacity_bytes == 500 * GIB
    assert store.available_bytes == 125 * GIB
    assert store.used_bytes == 375 * GIB
    assert store.used_ratio == pytest.approx(0.75)
    assert store.leader_count == 0
    assert store.region_count == 3610
    assert store.leader_weight == 1.0 and store.region_weight == 1.0
    assert store.leader_score == 0
    assert store.region_score == pytest.approx(1051937.4477139413)
    assert store.status.pending_peer_count == 3610
    assert store.status.region_size == 338964


def test_heartbeat_is_an_aware_datetime_from_nanoseconds() -> None:
    store = StoreInfo.model_validate(load("store.json"))
    assert store.last_heartbeat == datetime(2026, 11, 23, 13, 45, 51, 277031, tzinfo=UTC)
    assert store.last_heartbeat == store.status.last_heartbeat_ts
    assert store.store.start_timestamp == datetime(2026, 11, 23, 3, 58, 16, tzinfo=UTC)


def test_uptime_is_a_go_duration() -> None:
    store = StoreInfo.model_validate(load("store.json"))
    assert store.uptime == timedelta(hours=9, minutes=47, seconds=35, microseconds=277032)


def test_disconnected_store_sizes_with_fractions() -> None:
    store = stores_by_id()[4]
    assert store.capacity_bytes == round(1.819 * 1024**4)
    assert store.available_bytes == round(1.5 * 1024**4)
    assert store.status.sending_snap_count == 1


def test_missing_optional_fields_take_pd_zero_values() -> None:
    store = StoreInfo.model_validate(
        {"store": {"id": 9, "state_name": "Up"}, "status": {"capacity": "0B"}}
    )
    assert store.last_heartbeat is None
    assert store.uptime is None
    assert store.status.is_busy is False
    assert store.status.slow_score == 0


def test_extra_fields_are_ignored() -> None:
    raw = load("store.json")
    raw["store"]["new_field_in_v27"] = {"x": 1}
    raw["status"]["pause_leader_transfer_in"] = True
    assert StoreInfo.model_validate(raw).id == 5


def test_unknown_state_name_does_not_validate() -> None:
    raw = load("store.json")
    raw["store"]["state_name"] = "Serving"  # a node_state name, never a state_name
    with pytest.raises(ValidationError):
        StoreInfo.model_validate(raw)


def test_null_store_list() -> None:
    assert StoresInfo.model_validate({"count": 0, "stores": None}).stores == []
