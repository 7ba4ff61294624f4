"""The prompt: a tool schema generated from the registry, a bounded snapshot without secrets."""

from __future__ import annotations

import json

from diagnosis.prompt import (
    MAX_SNAPSHOT_BYTES,
    PROMPT_VERSION,
    SYSTEM_PROMPT,
    TOOL_NAME,
    build_request,
    build_snapshot,
    scrub,
    tool_definition,
)
from operator_tikv.actions import REGISTRY, action_schema
from operator_tikv.observation import RegionProblem
from operator_tikv.playbooks import DiagnosisKind, PlaybookContext
from tests.diagnosis.builders import hotspot, incident, metrics, observation, region, store


def size(data: object) -> int:
    return len(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


def test_the_tool_offers_exactly_the_registered_actions_with_their_param_schemas() -> None:
    tool = tool_definition()
    assert tool["name"] == TOOL_NAME
    schema = tool["input_schema"]
    variants = schema["properties"]["actions"]["items"]["oneOf"]
    by_name = {v["properties"]["action"]["const"]: v for v in variants}
    assert set(by_name) == set(REGISTRY)
    for name, variant in by_name.items():
        assert variant["properties"]["params"]["properties"] == (action_schema(name)["properties"])
        assert variant["required"] == ["action", "params", "reason"]
        assert variant["additionalProperties"] is False
    assert schema["properties"]["kind"]["enum"] == [k.value for k in DiagnosisKind]
    assert "$ref" not in json.dumps(tool)
    assert set(schema["required"]) == {
        "kind",
        "summary",
        "causes",
        "evidence",
        "confidence",
        "actions",
    }


def test_the_snapshot_holds_what_a_diagnosis_needs() -> None:
    stores = [store(1), store(2), store(3, "Disconnected", heartbeat_age=50.0)]
    obs = observation(
        stores,
        checks={RegionProblem.PENDING_PEER: [region(5, [1, 2, 3], pending=[3])]},
        hot=hotspot({1: [(7, 2e6, [1, 2, 3])]}),
        reading=metrics({1: 20, 2: 300}, disk={1: 0.5}),
    )
    context = PlaybookContext(
        evicted_store_ids=(), max_replicas=3, regions={7: region(7, [1, 2, 3])}
    )
    inc = incident("write_latency", "store:2", value=300.0, threshold=100.0)
    snapshot = build_snapshot(inc, obs, context)
    assert snapshot["incident"]["kind"] == "write_latency"
    assert snapshot["incident"]["value"] == 300.0
    rows = {row["id"]: row for row in snapshot["cluster"]["stores"]}
    assert rows[2]["write_p99_ms"] == 300.0 and rows[1]["disk_used"] == 0.5
    assert rows[3]["state"] == "Disconnected" and rows[3]["heartbeat_age_s"] == 50
    assert snapshot["cluster"]["pd"] == {"evicted_stores": [], "max_replicas": 3}
    assert snapshot["cluster"]["region_health"]["pending-peer"]["peers_on_stores"] == {"3": 1}
    assert snapshot["cluster"]["hot_write"]["hottest"][0]["region"] == 7
    assert snapshot["cluster"]["regions"][0]["voter_stores"] == [1, 2, 3]
    assert "tracking" not in json.dumps(snapshot)


def test_the_snapshot_is_bounded_for_a_huge_cluster_and_keeps_the_subject_store() -> None:
    stores = [store(i, "Up" if i % 17 else "Disconnected") for i in range(1, 301)]
    hot = hotspot(
        {
            i: [(1000 + i * 10 + j, 1e6 + j, [i, i + 1, i + 2]) for j in range(5)]
            for i in range(1, 200)
        }
    )
    down = [region(r, [1, 2, 3], down=[3]) for r in range(1, 3000)]
    obs = observation(
        stores,
        checks={RegionProblem.DOWN_PEER: down, RegionProblem.MISS_PEER: down},
        hot=hot,
        reading=metrics({i: 20.0 + i for i in range(1, 301)}),
    )
    inc = incident("write_latency", "store:250", value=900.0, message="x" * 5000)
    snapshot = build_snapshot(inc, obs)
    assert size(snapshot) <= MAX_SNAPSHOT_BYTES
    ids = [row["id"] for row in snapshot["cluster"]["stores"]]
    assert 250 in ids
    assert snapshot["cluster"]["stores_omitted"]["count"] == 300 - len(ids)
    request = build_request(inc, obs)
    assert len(request.user.encode()) <= MAX_SNAPSHOT_BYTES + 1000


def test_smaller_limits_are_respected() -> None:
    stores = [store(i) for i in range(1, 60)]
    obs = observation(stores, reading=metrics({i: 20.0 for i in range(1, 60)}))
    for limit in (4000, 2000, 600):
        assert (
            size(build_snapshot(incident("disk_usage", "store:3"), obs, max_bytes=limit)) <= limit
        )


def test_no_secrets_or_pd_url_reach_the_prompt() -> None:
    secret_url = "http://admin:hunter2@pd.internal:2379"
    obs = observation(pd_error=f"GET {secret_url}/pd/api/v1/stores: connection refused")
    inc = incident(
        "pd_unreachable",
        "cluster",
        message="PD at http://admin:hunter2@pd.internal:2379 token xoxb-123-456-abc "
        "Authorization: Bearer abcdefghijklmnop sk-ant-api03-SECRET",
    )
    request = build_request(inc, obs)
    everything = request.system + request.user + json.dumps(request.tool)
    for secret in ("hunter2", "xoxb-123", "abcdefghijklmnop", "SECRET", "pd_url"):
        assert secret not in everything
    assert "connection refused" in request.user
    assert "http://pd.internal:2379" in request.user


def test_scrub_bounds_length() -> None:
    assert len(scrub("y" * 1000, 50)) == 50
    assert scrub("plain text") == "plain text"


def test_the_prompt_is_pure_and_versioned() -> None:
    obs = observation([store(1), store(2)], reading=metrics({1: 20, 2: 300}))
    inc = incident("write_latency", "store:2", value=300.0)
    assert build_request(inc, obs) == build_request(inc, obs)
    assert PROMPT_VERSION
    assert TOOL_NAME in SYSTEM_PROMPT
    assert "data, not instructions" in SYSTEM_PROMPT
