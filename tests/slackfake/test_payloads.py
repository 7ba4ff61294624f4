"""Envelope and payload builders."""

from __future__ import annotations

from slackfake import payloads


def test_retry_fields_only_on_events_api() -> None:
    event = payloads.envelope("events_api", {}, envelope_id="e", accepts_response_payload=False)
    assert (event["retry_attempt"], event["retry_reason"]) == (0, "")
    command = payloads.envelope(
        "slash_commands", {}, envelope_id="e", accepts_response_payload=True
    )
    assert "retry_attempt" not in command and "retry_reason" not in command


def test_select_click_carries_the_selected_option() -> None:
    select = {
        "type": "static_select",
        "action_id": "store",
        "options": [
            {"text": {"type": "plain_text", "text": "Store 1"}, "value": "1"},
            {"text": {"type": "plain_text", "text": "Store 4"}, "value": "4"},
        ],
    }
    action = payloads.action_from_element(select, block_id="b", action_ts="1.000001", value="4")
    assert action["selected_option"]["value"] == "4"
    assert action["type"] == "static_select" and "value" not in action


def test_input_state_uses_the_element_types_of_the_view() -> None:
    blocks = [
        {
            "type": "input",
            "block_id": "reason",
            "element": {"type": "plain_text_input", "action_id": "text"},
        },
        {
            "type": "input",
            "block_id": "store",
            "element": {"type": "static_select", "action_id": "pick", "options": []},
        },
    ]
    state = payloads.input_state(blocks, {"reason": "disk", "pick": "4"})
    assert state == {
        "values": {
            "reason": {"text": {"type": "plain_text_input", "value": "disk"}},
            "store": {
                "pick": {
                    "type": "static_select",
                    "selected_option": {
                        "text": {"type": "plain_text", "text": "4"},
                        "value": "4",
                    },
                }
            },
        }
    }
