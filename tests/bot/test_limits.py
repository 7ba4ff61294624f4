"""Unit tests of the truncation helpers and our extra limit checks (`bot.render.limits`), and of
the builders in `bot.render.kit`."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import ButtonElement, SectionBlock

from bot.render import kit, limits
from slackfake.limits import check_blocks as slack_check_blocks


def test_clip_keeps_short_text_and_marks_cuts() -> None:
    assert limits.clip("short", 10) == "short"
    cut = limits.clip("x" * 50, 10)
    assert len(cut) == 10 and cut.endswith("…")
    assert limits.clip("abc", 1) == "…"
    assert limits.clip("abc", 0) == ""


def test_clip_lines_says_how_many_lines_were_left_out() -> None:
    text = "\n".join(f"region {i}" for i in range(1000))
    cut = limits.clip_lines(text, 300, "regions")
    assert len(cut) <= 300
    kept = cut.split("\n")[:-1]
    assert kept == [f"region {i}" for i in range(len(kept))]
    assert cut.split("\n")[-1] == f"… {1000 - len(kept):,} more regions"


def test_clip_lines_of_one_long_line_clips_it() -> None:
    cut = limits.clip_lines("y" * 5000, 100)
    assert len(cut) == 100 and cut.endswith("…")


def test_cap_items() -> None:
    items = [str(i) for i in range(10)]
    assert limits.cap_items(items, 10, "x") == items
    assert limits.cap_items(items, 4, "stores") == ["0", "1", "2", "… 7 more stores"]


def test_fit_blocks_keeps_buttons_and_header_and_says_what_was_dropped() -> None:
    blocks = [kit.header("title")]
    blocks += [kit.section(f"line {i}") for i in range(80)]
    blocks.append(kit.actions("b", [kit.button("Approve", action_id="a", value="v")]))
    fitted = limits.fit_blocks(blocks)
    assert len(fitted) == limits.MAX_BLOCKS
    assert fitted[0]["type"] == "header" and fitted[-1]["type"] == "actions"
    notes = [b for b in fitted if b["type"] == "context"]
    assert len(notes) == 1 and "33 more blocks not shown" in notes[0]["elements"][0]["text"]
    assert limits.check_blocks(fitted) == []
    assert slack_check_blocks(fitted) == []


def test_fit_blocks_enforces_the_total_text_budget() -> None:
    blocks = [kit.section("z" * 2900) for _ in range(10)]
    fitted = limits.fit_blocks(blocks)
    assert sum(limits.block_text_size(b) for b in fitted) <= limits.MAX_TOTAL_TEXT
    assert fitted[-1]["type"] == "context"


def test_check_blocks_finds_what_slack_sdk_does_not_check() -> None:
    too_many = [{"type": "divider"}] * 51
    assert limits.check_blocks(too_many)
    long_field = [{"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]}]
    assert limits.check_blocks(long_field)
    mrkdwn_header = [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}]
    assert limits.check_blocks(mrkdwn_header)
    duplicate_ids = [{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}]
    assert limits.check_blocks(duplicate_ids)
    assert limits.check_text("") and limits.check_text("t" * 40_001)


def test_builders_clip_to_slacks_limits() -> None:
    assert len(kit.header("h" * 500).to_dict()["text"]["text"]) == limits.MAX_HEADER_TEXT
    section = kit.section("s" * 10_000).to_dict()
    assert len(section["text"]["text"]) <= limits.MAX_SECTION_TEXT
    field = kit.fields([("label", "v" * 5000)])[0].to_dict()["fields"][0]["text"]
    assert len(field) <= limits.MAX_FIELD_TEXT
    button = kit.button("b" * 200, action_id="a", value="v").to_dict()
    assert len(button["text"]["text"]) <= limits.MAX_BUTTON_TEXT
    confirm = kit.confirm(title="t" * 300, text="x" * 900, ok="o" * 99).to_dict()
    assert len(confirm["title"]["text"]) <= limits.MAX_CONFIRM_TITLE
    assert len(confirm["text"]["text"]) <= limits.MAX_CONFIRM_TEXT
    assert len(confirm["confirm"]["text"]) <= limits.MAX_CONFIRM_BUTTON
    assert kit.section("").to_dict()["text"]["text"].strip() == ""  # never empty: a space
    assert kit.section("").to_dict()["text"]["text"] == " "


def test_slack_sdk_models_are_validated_when_rendered() -> None:
    """The models raise before anything is sent (the reason we build with them)."""
    bad = SectionBlock(text="x", accessory=ButtonElement(text="b" * 76, action_id="a"))
    with pytest.raises(SlackObjectFormationError):
        kit.rendered("t", [bad])
    with pytest.raises(ValueError, match="button value"):
        kit.button("b", action_id="a", value="v" * 2001)


def test_escaping_keeps_engine_mentions_only() -> None:
    assert kit.esc("<@U1> & <!here>") == "&lt;@U1&gt; &amp; &lt;!here&gt;"
    text = kit.sentence("<@U0ALICE> asks <!subteam^S0ONCALL> in <#C0OPS>; <!here> <http://x|y>")
    assert text.startswith("<@U0ALICE> asks <!subteam^S0ONCALL> in <#C0OPS>;")
    assert "&lt;!here&gt;" in text and "&lt;http://x|y&gt;" in text
    assert kit.mention("U0ALICE") == "<@U0ALICE>"
    assert kit.mention("not a user") == "not a user"
    assert kit.code_span("a`b<c") == "`a'b&lt;c`"


def test_plain_text_version_contains_every_block() -> None:
    message = kit.rendered(
        "note",
        [
            kit.header("Title"),
            kit.section("body"),
            *kit.fields([("Risk", "high")]),
            kit.context("footer"),
            kit.actions("b", [kit.button("Approve", action_id="a", value="v")]),
        ],
    )
    assert message.plain.split("\n") == ["Title", "body", "*Risk*", "high", "footer", "[Approve]"]
