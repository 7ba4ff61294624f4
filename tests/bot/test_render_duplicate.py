"""The note a second copy of a message is edited into: no buttons, says it is inactive and
why, and links to the message that counts."""

from __future__ import annotations

from bot.render.duplicate import superseded
from bot.render.kit import plain_text


def _buttons(blocks: list[dict[str, object]]) -> list[object]:
    return [b for b in blocks if b.get("type") == "actions" or b.get("accessory")]


def test_the_note_links_to_the_current_message_and_has_no_buttons() -> None:
    link = "https://example.slack.com/archives/C0OPS/p1700000000000100"
    note = superseded(link)
    assert _buttons(note.blocks) == []
    body = plain_text(note.blocks)
    assert f"<{link}|the current message>" in body
    assert "inactive" in body and "answer never reached tikvops" in body
    assert "inactive" in note.text and "<" not in note.text


def test_without_a_permalink_the_note_says_where_to_look() -> None:
    for link in (None, "", "javascript:alert(1)"):
        body = plain_text(superseded(link).blocks)
        assert "the other copy of this message" in body and "javascript" not in body
