"""Block Kit limits (reference slack.md §4) as the stand-in enforces them."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from slackfake.limits import check_blocks, truncate_text


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(**overrides: Any) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "action_id": "approve",
        "text": {"type": "plain_text", "text": "Approve"},
        "value": "p1",
    }
    element.update(overrides)
    return element


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "block_id": "a", "elements": list(elements)}


def test_a_typical_sdk_built_incident_message_is_accepted() -> None:
    blocks = [
        HeaderBlock(text="Store 4 is down"),
        SectionBlock(
            text=MarkdownTextObject(text="*Store 4* stopped sending heartbeats."),
            fields=[MarkdownTextObject(text=f"*k{i}*\nv{i}") for i in range(10)],
            accessory=ButtonElement(text="Details", action_id="details", value="i-1"),
        ),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="opened 12:00")]),
        ActionsBlock(
            block_id="approval:p1",
            elements=[
                ButtonElement(
                    text="Approve",
                    action_id="approve",
                    value="p1",
                    style="primary",
                    confirm=ConfirmObject(title="Drain store 4?", text="Leaders move off."),
                ),
                ButtonElement(text="Reject", action_id="reject", value="p1", style="danger"),
            ],
        ),
    ]
    assert check_blocks([b.to_dict() for b in blocks]) == []


@pytest.mark.parametrize(("count", "ok"), [(50, True), (51, False)], ids=["50 blocks", "51 blocks"])
def test_at_most_50_blocks_per_message(count: int, ok: bool) -> None:
    errors = check_blocks([{"type": "divider"}] * count)
    assert (errors == []) is ok
    if not ok:
        assert errors == ["no more than 50 items allowed [json-pointer:/blocks]"]


def test_views_allow_100_blocks() -> None:
    assert check_blocks([{"type": "divider"}] * 100, max_blocks=100) == []
    assert check_blocks([{"type": "divider"}] * 101, max_blocks=100) != []


@pytest.mark.parametrize(
    ("blocks", "pointer", "limit"),
    [
        ([section("x" * 3001)], "/blocks/0/text/text", 3000),
        (
            [{"type": "section", "fields": [{"type": "mrkdwn", "text": "y" * 2001}]}],
            "/blocks/0/fields/0/text",
            2000,
        ),
        (
            [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
            "/blocks/0/text/text",
            150,
        ),
        (
            [actions(button(text={"type": "plain_text", "text": "b" * 76}))],
            "/blocks/0/elements/0/text/text",
            75,
        ),
        ([actions(button(action_id="a" * 256))], "/blocks/0/elements/0/action_id", 255),
        ([actions(button(value="v" * 2001))], "/blocks/0/elements/0/value", 2000),
        ([actions(button(url="https://x/" + "u" * 2991))], "/blocks/0/elements/0/url", 3000),
        ([{"type": "divider", "block_id": "b" * 256}], "/blocks/0/block_id", 255),
    ],
    ids=["section", "field", "header", "button text", "action_id", "value", "url", "block_id"],
)
def test_length_limits_report_slack_style_errors(
    blocks: list[dict[str, Any]], pointer: str, limit: int
) -> None:
    assert check_blocks(blocks) == [
        f"must be less than {limit + 1} characters [json-pointer:{pointer}]"
    ]


def test_lengths_exactly_at_the_limit_are_accepted() -> None:
    blocks = [
        section("x" * 3000, block_id="b" * 255),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "y" * 2000}] * 10},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        actions(
            button(
                text={"type": "plain_text", "text": "b" * 75},
                action_id="a" * 255,
                value="v" * 2000,
            )
        ),
    ]
    assert check_blocks(blocks) == []


def test_more_than_ten_fields_is_rejected() -> None:
    block = {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}
    assert check_blocks([block]) == [
        "no more than 10 items allowed [json-pointer:/blocks/0/fields]"
    ]


def test_header_must_be_plain_text_which_the_sdk_does_not_check() -> None:
    block = {"type": "header", "text": {"type": "mrkdwn", "text": "*Store 4*"}}
    assert check_blocks([block]) == [
        "must be a valid enum value [json-pointer:/blocks/0/text/type]"
    ]


def test_button_style_and_confirm_are_checked() -> None:
    confirm = {
        "title": {"type": "plain_text", "text": "t" * 101},
        "text": {"type": "mrkdwn", "text": "ok"},
        "confirm": {"type": "plain_text", "text": "c" * 31},
        "deny": {"type": "plain_text", "text": "No"},
        "style": "loud",
    }
    errors = check_blocks([actions(button(style="green", confirm=confirm))])
    assert errors == [
        "must be a valid enum value [json-pointer:/blocks/0/elements/0/style]",
        "must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]",
        "must be less than 31 characters [json-pointer:/blocks/0/elements/0/confirm/confirm/text]",
        "must be a valid enum value [json-pointer:/blocks/0/elements/0/confirm/style]",
    ]


def test_duplicate_ids_and_unknown_types_are_rejected() -> None:
    errors = check_blocks(
        [
            {"type": "divider", "block_id": "same"},
            {"type": "divider", "block_id": "same"},
            actions(button(), button()),
            {"type": "sparkles"},
        ]
    )
    assert errors == [
        "duplicate block_id: same [json-pointer:/blocks/1/block_id]",
        "duplicate action_id: approve [json-pointer:/blocks/2/elements/1/action_id]",
        "unsupported type: sparkles [json-pointer:/blocks/3/type]",
    ]


def test_structural_errors() -> None:
    assert check_blocks("not a list") == ["must provide an array [json-pointer:/blocks]"]
    assert check_blocks([{"type": "section"}]) == [
        "must provide either text or fields [json-pointer:/blocks/0]"
    ]
    assert check_blocks([section("")]) == [
        "must be more than 0 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert check_blocks([{"type": "actions", "elements": [button()] * 26}])[0] == (
        "no more than 25 items allowed [json-pointer:/blocks/0/elements]"
    )


def test_long_text_is_truncated_not_rejected() -> None:
    assert truncate_text("a" * 40_000) == ("a" * 40_000, False)
    assert truncate_text("a" * 40_001) == ("a" * 40_000, True)
