"""parse_reply: real Messages API response shapes in, a typed diagnosis or one clear reason out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from diagnosis.parse import ReplyError, parse_reply
from diagnosis.prompt import MAX_ACTIONS
from operator_tikv.playbooks import DiagnosisKind
from tests.diagnosis.builders import message, proposal, text, tool_use

DRAIN_2 = {"action": "drain", "params": {"store_id": 2}, "reason": "P99 300 ms vs 20 ms"}


def test_a_good_tool_call_becomes_a_typed_diagnosis() -> None:
    reply = parse_reply(message([text("Let me look."), tool_use(proposal([DRAIN_2]))]))
    assert reply.kind is DiagnosisKind.SLOW_STORE
    assert reply.summary.startswith("Writes on store 2 are slow")
    assert [(c.statement, c.confidence) for c in reply.causes] == [
        ("The disk of store 2 is slow", 0.7)
    ]
    assert reply.evidence[0].value == 300.0 and reply.evidence[0].unit == "ms"
    assert reply.confidence == 0.7
    assert [(a.action, a.params, a.reason) for a in reply.actions] == [
        ("drain", {"store_id": 2}, "P99 300 ms vs 20 ms")
    ]
    assert reply.model == "claude-sonnet-4-5-20250929"


def test_registry_defaults_are_filled_in() -> None:
    split = {"action": "split", "params": {"region_id": 7}, "reason": "hot"}
    reply = parse_reply(message([tool_use(proposal([split], kind="hot_region"))]))
    assert reply.actions[0].params == {"region_id": 7, "policy": "approximate"}


def test_no_actions_is_a_valid_answer() -> None:
    reply = parse_reply(message([tool_use(proposal([], kind="store_down"))]))
    assert reply.actions == [] and reply.kind is DiagnosisKind.STORE_DOWN


@pytest.mark.parametrize(
    ("content", "stop", "expected"),
    [
        ([text("Store 2 looks slow; I would drain it.")], "end_turn", "without calling"),
        ([], "refusal", "declined"),
        ([text("I can't help with that.")], "refusal", "declined"),
        ([tool_use(proposal([DRAIN_2]))], "max_tokens", "cut off"),
        ([text("partial")], "max_tokens", "cut off"),
        ([tool_use(proposal([DRAIN_2]), name="restart_store")], "tool_use", "unknown tool"),
    ],
)
def test_unusable_replies_say_why(content: list[dict[str, Any]], stop: str, expected: str) -> None:
    with pytest.raises(ReplyError, match=expected):
        parse_reply(message(content, stop_reason=stop))


def test_text_only_reply_quotes_what_claude_said() -> None:
    with pytest.raises(ReplyError) as caught:
        parse_reply(message([text("Drain store 2.")], stop_reason="end_turn"))
    assert "'Drain store 2.'" in str(caught.value)
    assert "end_turn" in str(caught.value)


def test_a_hallucinated_action_rejects_the_whole_reply() -> None:
    restart = {"action": "restart-store", "params": {"store_id": 2}, "reason": "reboot"}
    with pytest.raises(ReplyError, match="'restart-store', which is not a registered action"):
        parse_reply(message([tool_use(proposal([DRAIN_2, restart]))]))


@pytest.mark.parametrize(
    "params",
    [
        {"store_id": "2"},  # a string, not a JSON number
        {"store_id": 2.5},
        {"store_id": True},
        {"store_id": 0},
        {"store": 2},
        {"store_id": 2, "force": True},
        {},
    ],
)
def test_wrong_parameter_types_reject_the_reply(params: dict[str, Any]) -> None:
    bad = {"action": "drain", "params": params, "reason": "slow"}
    with pytest.raises(ReplyError, match="invalid parameters for drain"):
        parse_reply(message([tool_use(proposal([bad]))]))


def test_too_many_actions_are_refused() -> None:
    many = [DRAIN_2] * (MAX_ACTIONS + 1)
    with pytest.raises(ReplyError, match=f"at most {MAX_ACTIONS}"):
        parse_reply(message([tool_use(proposal(many))]))


@pytest.mark.parametrize("actions", ["drain store 2", {"action": "drain"}, [["drain", 2]]])
def test_malformed_action_lists_are_refused(actions: Any) -> None:
    data = proposal([])
    data["actions"] = actions
    with pytest.raises(ReplyError):
        parse_reply(message([tool_use(data)]))


def test_params_sent_as_a_json_string_are_decoded_and_still_typed() -> None:
    encoded = {"action": "drain", "params": json.dumps({"store_id": 2}), "reason": "x"}
    assert parse_reply(message([tool_use(proposal([encoded]))])).actions[0].params == {
        "store_id": 2
    }
    wrong = {"action": "drain", "params": json.dumps({"store_id": "2"}), "reason": "x"}
    with pytest.raises(ReplyError):
        parse_reply(message([tool_use(proposal([wrong]))]))


def test_descriptive_fields_are_read_tolerantly() -> None:
    data = {
        "kind": "Slow-Store",
        "summary": "  Store 2\nis slow.  ",
        "causes": ["a slow disk", {"statement": "noisy neighbour", "confidence": "40%"}, 7, {}],
        "evidence": ["P99 300 ms", {"fact": "leaders 200", "value": "200"}, None],
        "confidence": 85,
    }
    reply = parse_reply(message([tool_use(data)]))
    assert reply.kind is DiagnosisKind.SLOW_STORE
    assert reply.summary == "Store 2 is slow."
    assert [(c.statement, c.confidence) for c in reply.causes] == [
        ("a slow disk", None),
        ("noisy neighbour", 0.4),
    ]
    assert [(e.fact, e.value) for e in reply.evidence] == [
        ("P99 300 ms", None),
        ("leaders 200", 200.0),
    ]
    assert reply.confidence == 0.85
    assert reply.actions == []


@pytest.mark.parametrize(
    ("given", "expected"), [(None, 0.6), ("high", 0.6), (-1, 0.6), (1.3, 1.0), (1000, 0.6)]
)
def test_unreadable_confidence_falls_back_to_the_best_cause(given: Any, expected: float) -> None:
    data = proposal([])
    data["confidence"] = given
    data["causes"] = [{"statement": "a", "confidence": 0.6}, {"statement": "b", "confidence": 0.2}]
    assert parse_reply(message([tool_use(data)])).confidence == expected


def test_unknown_kind_becomes_unknown_and_keeps_the_raw_text() -> None:
    data = proposal([], kind="cosmic_rays")
    reply = parse_reply(message([tool_use(data)]))
    assert reply.kind is DiagnosisKind.UNKNOWN and reply.raw_kind == "cosmic_rays"


def test_a_reply_without_summary_or_with_a_non_object_input_is_refused() -> None:
    data = proposal([])
    del data["summary"]
    with pytest.raises(ReplyError, match="no summary"):
        parse_reply(message([tool_use(data)]))
    block = tool_use({})
    block["input"] = ["not", "an", "object"]
    with pytest.raises(ReplyError, match="not an object"):
        parse_reply(message([block]))


def test_garbage_messages_do_not_crash() -> None:
    for garbage in ({}, {"content": "text"}, {"content": [1, None, "x"]}):
        with pytest.raises(ReplyError):
            parse_reply(garbage)
