"""PDWrite: every write's method, path and body exactly as PD reads them (pd-api.md §1, §2, §8)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from operator_tikv.models import PDWrite


@pytest.mark.parametrize(
    ("write", "method", "path", "body"),
    [
        (
            PDWrite.transfer_leader(3325, 1),
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-leader", "region_id": 3325, "to_store_id": 1},
        ),
        (
            PDWrite.transfer_peer(2008, 5, 6),
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-peer", "region_id": 2008, "from_store_id": 5, "to_store_id": 6},
        ),
        (
            PDWrite.add_peer(2008, 6),
            "POST",
            "/pd/api/v1/operators",
            {"name": "add-peer", "region_id": 2008, "store_id": 6},
        ),
        (
            PDWrite.remove_peer(2008, 5),
            "POST",
            "/pd/api/v1/operators",
            {"name": "remove-peer", "region_id": 2008, "store_id": 5},
        ),
        (
            PDWrite.split_region(2008),
            "POST",
            "/pd/api/v1/operators",
            {"name": "split-region", "region_id": 2008, "policy": "approximate"},
        ),
        (
            PDWrite.split_region(2008, "usekey", ["7480000000000000FF0600000000000000F8"]),
            "POST",
            "/pd/api/v1/operators",
            {
                "name": "split-region",
                "region_id": 2008,
                "policy": "usekey",
                "keys": ["7480000000000000FF0600000000000000F8"],
            },
        ),
        (
            PDWrite.merge_region(2008, 2716),
            "POST",
            "/pd/api/v1/operators",
            {"name": "merge-region", "source_region_id": 2008, "target_region_id": 2716},
        ),
        (PDWrite.cancel_operator(3325), "DELETE", "/pd/api/v1/operators/3325", None),
        (
            PDWrite.add_evict_leader(5),
            "POST",
            "/pd/api/v1/schedulers",
            {"name": "evict-leader-scheduler", "store_id": 5},
        ),
        (
            PDWrite.remove_evict_leader_store(5),
            "DELETE",
            "/pd/api/v1/schedulers/evict-leader-scheduler-5",
            None,
        ),
        (
            PDWrite.remove_scheduler("evict-leader-scheduler"),
            "DELETE",
            "/pd/api/v1/schedulers/evict-leader-scheduler",
            None,
        ),
        (
            PDWrite.set_schedule_config({"leader-schedule-limit": 8}),
            "POST",
            "/pd/api/v1/config/schedule",
            {"leader-schedule-limit": 8},
        ),
        (
            PDWrite.set_replication_config({"max-replicas": 5}),
            "POST",
            "/pd/api/v1/config/replicate",
            {"max-replicas": 5},
        ),
        (PDWrite.set_store_state(5, "Up"), "POST", "/pd/api/v1/store/5/state", None),
        (
            PDWrite.set_store_weight(5, 0.5, 1),
            "POST",
            "/pd/api/v1/store/5/weight",
            {"leader": 0.5, "region": 1},
        ),
    ],
)
def test_write_shapes(write: PDWrite, method: str, path: str, body: dict[str, Any] | None) -> None:
    assert write.method == method
    assert write.path == path
    assert write.body == body
    if body is not None:
        for key, value in body.items():
            if key.endswith("_id"):
                assert type(value) is int  # ids are JSON numbers, never strings


def test_transfer_leader_never_sends_store_id() -> None:
    body = PDWrite.transfer_leader(2008, 4).body
    assert body is not None
    assert "store_id" not in body and body["to_store_id"] == 4


def test_templates_hide_ids() -> None:
    assert PDWrite.cancel_operator(1).template == "/pd/api/v1/operators/{region_id}"
    assert (
        PDWrite.remove_evict_leader_store(9).template
        == "/pd/api/v1/schedulers/evict-leader-scheduler-{store_id}"
    )
    assert PDWrite.set_store_state(9, "Offline").template == "/pd/api/v1/store/{store_id}/state"


def test_store_state_is_a_query_parameter_and_never_force() -> None:
    write = PDWrite.set_store_state(5, "Offline")
    assert write.query == {"state": "Offline"}
    assert "force" not in write.describe()


@pytest.mark.parametrize(
    "build",
    [
        lambda: PDWrite.transfer_leader("5", 1),  # type: ignore[arg-type]
        lambda: PDWrite.transfer_leader(5, True),
        lambda: PDWrite.transfer_leader(0, 1),
        lambda: PDWrite.transfer_peer(5, 1, 1),
        lambda: PDWrite.split_region(5, "half"),  # type: ignore[arg-type]
        lambda: PDWrite.split_region(5, "usekey"),
        lambda: PDWrite.split_region(5, "usekey", ["zz"]),
        lambda: PDWrite.split_region(5, "approximate", ["7480"]),
        lambda: PDWrite.remove_scheduler("evict leader; rm"),
        lambda: PDWrite.set_store_state(5, "Down"),  # type: ignore[arg-type]
        lambda: PDWrite.set_store_weight(5, -1, 1),
        lambda: PDWrite.set_schedule_config({"leader-schedule-limt": 8}),
    ],
)
def test_invalid_writes_are_refused_before_sending(build: Any) -> None:
    with pytest.raises(ValueError):
        build()


def test_describe_and_curl() -> None:
    write = PDWrite.transfer_leader(3325, 1)
    assert write.describe() == (
        'POST /pd/api/v1/operators {"name": "transfer-leader", "region_id": 3325, "to_store_id": 1}'
    )
    curl = write.as_curl("http://127.0.0.1:2379/")
    assert curl.startswith("curl -s -X POST http://127.0.0.1:2379/pd/api/v1/operators -d '{")
    assert write.summary == "transfer the leader of region 3325 to store 1"
    assert PDWrite.cancel_operator(7).as_curl() == 'curl -s -X DELETE "$PD/pd/api/v1/operators/7"'
    state = PDWrite.set_store_state(5, "Up")
    assert state.describe() == "POST /pd/api/v1/store/5/state?state=Up"


def test_schedule_config_write_encodes_duration() -> None:
    write = PDWrite.set_schedule_config({"max-store-down-time": timedelta(minutes=45)})
    assert write.body == {"max-store-down-time": "45m0s"}
