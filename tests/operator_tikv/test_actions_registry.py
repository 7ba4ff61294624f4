"""The action registry's pure declarations: names, params validation, exact PD writes,
descriptions, undo from a before snapshot, and the Claude tool schema."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from operator_tikv.actions import (
    REGISTRY,
    ActionCall,
    DrainParams,
    InvalidParams,
    LimitParams,
    Risk,
    Snapshot,
    SpaceRatioParams,
    SplitParams,
    TransferLeaderParams,
    TransferPeerParams,
    UndrainParams,
    UnknownAction,
    action_call_schema,
    action_schema,
    get_action,
    parse_action_call,
    parse_tool_input,
    tool_input_schema,
    validate_call,
    validate_params,
)
from operator_tikv.actions.base import RegionState


def test_catalogue() -> None:
    assert list(REGISTRY) == [
        "transfer-leader",
        "transfer-peer",
        "drain",
        "undrain",
        "split",
        "limit",
        "space-ratio",
    ]
    risks = {name: action.risk for name, action in REGISTRY.items()}
    assert risks == {
        "transfer-leader": Risk.MEDIUM,
        "transfer-peer": Risk.HIGH,
        "drain": Risk.HIGH,
        "undrain": Risk.MEDIUM,
        "split": Risk.MEDIUM,
        "limit": Risk.MEDIUM,
        "space-ratio": Risk.MEDIUM,
    }
    assert not REGISTRY["split"].reversible
    assert REGISTRY["drain"].undo_action == "undrain"
    for action in REGISTRY.values():
        assert action.deadline_seconds > 0 and action.poll_interval > 0
        if action.undo_action is not None:
            assert action.undo_action in REGISTRY
        assert isinstance(action.example, action.params_model)


def test_unknown_action_lists_known_names_and_guesses() -> None:
    with pytest.raises(UnknownAction) as caught:
        get_action("drian")
    assert caught.value.suggestion == "drain"
    assert "Did you mean 'drain'?" in str(caught.value)
    assert "transfer-leader, transfer-peer, drain, undrain, split, limit, space-ratio" in str(
        caught.value
    )


@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        ("drain", {}, "store ID is required"),
        ("drain", {"store_id": "4"}, "store ID must be a whole number, got '4'"),
        ("drain", {"store_id": True}, "store ID must be a whole number, got True"),
        ("drain", {"store_id": 0}, "store ID must be at least 1, got 0"),
        ("drain", {"store_id": 4, "force": True}, "force is not a parameter of this action"),
        (
            "transfer-leader",
            {"region_id": 2008, "store_id": 1},
            "target store ID is required",
        ),
        (
            "transfer-peer",
            {"region_id": 1, "from_store_id": 3, "to_store_id": 3},
            "source and target store are both 3",
        ),
        ("limit", {"kind": "leader", "value": 2000}, "leader limit must be between 0 and 1024"),
        ("limit", {"kind": "leader", "value": 4.5}, "limit value must be a whole number"),
        ("limit", {"kind": "speed", "value": 4}, "limit must be 'leader', 'region' or 'replica'"),
        ("space-ratio", {"which": "low", "ratio": 1.0}, "space ratio must be less than 1"),
        ("space-ratio", {"which": "low", "ratio": float("nan")}, "space ratio must be a finite"),
        ("split", {"region_id": 1, "policy": "usekey"}, "split policy must be"),
    ],
)
def test_invalid_params_are_sentences(name: str, raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        validate_params(name, raw)
    assert any(problem in sentence for sentence in caught.value.problems), caught.value.problems
    assert str(caught.value).startswith(f"Invalid parameters for {name}: ")


def test_region_limit_may_go_higher_than_leader_limit() -> None:
    assert validate_params("limit", {"kind": "region", "value": 4096}) == LimitParams(
        kind="region", value=4096
    )
    with pytest.raises(InvalidParams):
        validate_params("limit", {"kind": "region", "value": 4097})


@pytest.mark.parametrize(
    ("name", "params", "method", "path", "body"),
    [
        (
            "transfer-leader",
            TransferLeaderParams(region_id=2008, to_store_id=1),
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-leader", "region_id": 2008, "to_store_id": 1},
        ),
        (
            "transfer-peer",
            TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6),
            "POST",
            "/pd/api/v1/operators",
            {"name": "transfer-peer", "region_id": 2008, "from_store_id": 5, "to_store_id": 6},
        ),
        (
            "drain",
            DrainParams(store_id=4),
            "POST",
            "/pd/api/v1/schedulers",
            {"name": "evict-leader-scheduler", "store_id": 4},
        ),
        (
            "undrain",
            UndrainParams(store_id=4),
            "DELETE",
            "/pd/api/v1/schedulers/evict-leader-scheduler-4",
            None,
        ),
        (
            "split",
            SplitParams(region_id=2008),
            "POST",
            "/pd/api/v1/operators",
            {"name": "split-region", "region_id": 2008, "policy": "approximate"},
        ),
        (
            "limit",
            LimitParams(kind="replica", value=32),
            "POST",
            "/pd/api/v1/config/schedule",
            {"replica-schedule-limit": 32},
        ),
        (
            "space-ratio",
            SpaceRatioParams(which="high", ratio=0.6),
            "POST",
            "/pd/api/v1/config/schedule",
            {"high-space-ratio": 0.6},
        ),
    ],
)
def test_exact_pd_requests(
    name: str, params: object, method: str, path: str, body: dict[str, object] | None
) -> None:
    (write,) = REGISTRY[name].requests(params)
    assert (write.method, write.path, write.body) == (method, path, body)


def test_descriptions_and_presentation() -> None:
    drain = REGISTRY["drain"]
    assert drain.describe(DrainParams(store_id=4)) == (
        "Drain store 4: evict all its leaders (evict-leader-scheduler)"
    )
    text = drain.present(DrainParams(store_id=4))
    assert text.title == "Drain store 4: evict all its leaders (evict-leader-scheduler)"
    assert text.params == (("store ID", "4"),)
    assert text.risk is Risk.HIGH and text.reversible
    assert text.undo.startswith("undrain 4: remove store 4 from evict-leader-scheduler")
    assert text.requests == (
        'POST /pd/api/v1/schedulers {"name": "evict-leader-scheduler", "store_id": 4}',
    )
    peer = REGISTRY["transfer-peer"].present(
        TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6)
    )
    assert peer.params == (
        ("region ID", "2008"),
        ("source store ID", "5"),
        ("target store ID", "6"),
    )
    limit = REGISTRY["limit"]
    assert "turns region scheduling off" in limit.describe(LimitParams(kind="region", value=0))
    assert "off" not in limit.describe(LimitParams(kind="region", value=10))


def _region(leader: int) -> RegionState:
    return RegionState(id=2008, leader_store_id=leader, peer_store_ids=(1, 4, 5))


def test_undo_calls_from_the_before_snapshot() -> None:
    before = Snapshot(
        region=_region(4),
        config={"leader-schedule-limit": 4, "low-space-ratio": 0.8, "high-space-ratio": 0.7},
    )
    leader = REGISTRY["transfer-leader"]
    assert leader.undo(TransferLeaderParams(region_id=2008, to_store_id=1), before) == (
        ActionCall(action="transfer-leader", params={"region_id": 2008, "to_store_id": 4})
    )
    assert REGISTRY["transfer-peer"].undo(
        TransferPeerParams(region_id=2008, from_store_id=5, to_store_id=6), before
    ) == ActionCall(
        action="transfer-peer", params={"region_id": 2008, "from_store_id": 6, "to_store_id": 5}
    )
    assert REGISTRY["drain"].undo(DrainParams(store_id=4), Snapshot()) == ActionCall(
        action="undrain", params={"store_id": 4}
    )
    # a store that was already drained before we started is not undrained by our undo
    assert REGISTRY["drain"].undo(DrainParams(store_id=4), Snapshot(evicted_store_ids=(4,))) is None
    assert REGISTRY["undrain"].undo(
        UndrainParams(store_id=4), Snapshot(evicted_store_ids=(4,))
    ) == ActionCall(action="drain", params={"store_id": 4})
    assert REGISTRY["limit"].undo(LimitParams(kind="leader", value=16), before) == ActionCall(
        action="limit", params={"kind": "leader", "value": 4}
    )
    assert REGISTRY["limit"].undo(LimitParams(kind="region", value=16), before) is None
    assert REGISTRY["space-ratio"].undo(
        SpaceRatioParams(which="low", ratio=0.9), before
    ) == ActionCall(action="space-ratio", params={"which": "low", "ratio": 0.8})
    assert REGISTRY["split"].undo(SplitParams(region_id=2008), before) is None
    # every undo call is itself valid for its action
    _action, params = validate_call({"action": "limit", "params": {"kind": "leader", "value": 4}})
    assert params == LimitParams(kind="leader", value=4)


def test_snapshot_round_trips_through_json() -> None:
    snapshot = Snapshot(
        region=_region(4),
        store_leader_counts={1: 10, 4: 1203},
        evicted_store_ids=(5,),
        config={"low-space-ratio": 0.8},
    )
    assert Snapshot.model_validate_json(snapshot.model_dump_json()) == snapshot


# ------------------------------------------------------------------ tool schema


def test_tool_input_schema_is_one_object_with_a_discriminated_union() -> None:
    schema = tool_input_schema()
    text = json.dumps(schema)  # serialisable as-is
    assert "$ref" not in text and "$defs" not in text  # self-contained, embeddable
    assert schema["type"] == "object"
    assert schema["required"] == ["action"]
    union = schema["properties"]["action"]
    assert union["discriminator"] == {"propertyName": "action"}
    consts = {}
    for option in union["oneOf"]:
        assert option["required"] == ["action", "params"]
        assert option["additionalProperties"] is False
        consts[option["properties"]["action"]["const"]] = option
    assert list(consts) == list(REGISTRY)
    # the params of each option are that action's params model
    for name, option in consts.items():
        assert option["properties"]["params"]["properties"] == action_schema(name)["properties"]
        assert f"Risk: {REGISTRY[name].risk.value}" in option["description"]
    drain = consts["drain"]["properties"]["params"]["properties"]["store_id"]
    assert drain["type"] == "integer" and drain["minimum"] == 1
    assert action_call_schema() == {k: v for k, v in union.items() if k != "description"}


def test_per_action_schemas() -> None:
    schema = action_schema("transfer-leader")
    assert schema["required"] == ["region_id", "to_store_id"]
    assert schema["additionalProperties"] is False
    assert action_schema("split")["properties"]["policy"]["enum"] == ["approximate", "scan"]
    with pytest.raises(UnknownAction):
        action_schema("reboot")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_example_validates_through_the_tool_schema_models(name: str) -> None:
    action = REGISTRY[name]
    call = action.call(action.example)
    parsed = parse_tool_input({"action": call.model_dump(mode="json")})
    assert parsed == call


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"action": {"action": "drain", "params": {"store_id": "4"}}}, "store ID must be"),
        ({"action": {"action": "drain", "params": {}}}, "store ID is required"),
        ({"action": {"action": "drain"}}, "params is required"),
        ({"action": {"action": "drain", "params": 4}}, "params must be an object"),
        (
            {"action": {"action": "drain", "params": {"store_id": 4}, "why": "x"}},
            "unexpected key 'why'",
        ),
        ({"action": {"params": {"store_id": 4}}}, "action must be the name of a registered"),
        ({"action": "drain 4"}, "an action call must be an object"),
        ({"action": {"action": "drain", "params": {"store_id": 4}}, "extra": 1}, "exactly one"),
        ([], "exactly one key"),
    ],
)
def test_bad_tool_input_is_refused_with_sentences(data: object, problem: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        parse_tool_input(data)
    assert any(problem in sentence for sentence in caught.value.problems), caught.value.problems


def test_unknown_action_in_tool_input() -> None:
    with pytest.raises(UnknownAction):
        parse_action_call({"action": "reboot-store", "params": {"store_id": 4}})


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_CALLS = st.fixed_dictionaries(
    {"action": st.sampled_from([*REGISTRY, "reboot"]) | st.text(max_size=8)},
    optional={
        "params": st.dictionaries(
            st.sampled_from(
                ["store_id", "region_id", "to_store_id", "from_store_id", "kind", "value",
                 "which", "ratio", "policy", "x"]
            ),
            _JSON | st.sampled_from(["leader", "low", "scan", 4, 2008, 0.85]),
            max_size=4,
        )
        | _JSON
    },
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.one_of(_JSON, _CALLS.map(lambda call: {"action": call})))
def test_tool_input_never_raises_anything_but_our_errors(data: object) -> None:
    try:
        call = parse_tool_input(data)
    except (InvalidParams, UnknownAction) as exc:
        assert str(exc)
        return
    action, params = validate_call(call)
    assert action.call(params) == call
