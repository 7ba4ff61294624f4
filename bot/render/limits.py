"""Slack's Block Kit limits in one place, and the truncation that keeps every message inside them.

slack_sdk's block models check most per-element limits when a block is turned into a dict
(`to_dict()` raises `SlackObjectFormationError`). They do not check: 50 blocks per message,
2,000 characters per section field, that a header is plain text, the 40,000-character message
text, or the cumulative size of all blocks (`msg_blocks_too_long`). This module enforces those,
and clips every string before it reaches a model, visibly ("… 312 more regions"), so that Slack
never rejects a message we render. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from slack_sdk.models.blocks import Block

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_CONTEXT_ELEMENTS = 10
MAX_CONTEXT_TEXT = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_MESSAGE_TEXT = 40_000

MAX_TOTAL_TEXT = 12_000
"""Our budget for the text of all blocks together. Slack rejects messages whose blocks are too
large in total (`msg_blocks_too_long`) without documenting the limit; staying well under the
size of a markdown block (12,000) keeps us clear of it."""

MAX_FALLBACK_TEXT = 4000
"""The notification text sent with blocks (shown in notifications and by clients that cannot
show blocks). Far below Slack's 40,000 so notifications stay readable."""

MAX_PLAIN_TEXT = 39_000
"""The plain-text version sent when Slack refuses the blocks (under the 40,000 limit)."""

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in "…" when cut."""
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit == 1:
        return ELLIPSIS
    return text[: limit - 1].rstrip() + ELLIPSIS


def clip_lines(text: str, limit: int, noun: str = "lines") -> str:
    """`text` cut at a line boundary to at most `limit` characters, with a last line saying how
    many lines were left out ("… 312 more regions"). A single line that is too long is clipped."""
    if len(text) <= limit:
        return text
    lines = text.split("\n")
    kept: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        remaining = len(lines) - index
        note = more_note(remaining, noun)
        cost = len(line) + (1 if kept else 0)
        if used + cost + 1 + len(note) > limit:
            if not kept:
                return clip(text.replace("\n", " "), limit)
            kept.append(note)
            return "\n".join(kept)
        kept.append(line)
        used += cost
    return "\n".join(kept)


def more_note(count: int, noun: str) -> str:
    """ "… 312 more regions"."""
    return f"{ELLIPSIS} {count:,} more {noun}"


def cap_items(items: Sequence[str], limit: int, noun: str) -> list[str]:
    """At most `limit` items; when some are left out the last one says how many."""
    if len(items) <= limit:
        return list(items)
    if limit <= 1:
        return [more_note(len(items), noun)]
    return [*items[: limit - 1], more_note(len(items) - limit + 1, noun)]


def block_text_size(block: dict[str, Any]) -> int:
    """Characters of text in one block dict (every `text` string, recursively)."""
    return _text_size(block)


def _text_size(value: Any) -> int:
    if isinstance(value, dict):
        total = 0
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                total += len(item)
            else:
                total += _text_size(item)
        return total
    if isinstance(value, list):
        return sum(_text_size(item) for item in value)
    return 0


def _is_kept(block: dict[str, Any]) -> bool:
    """Blocks that must survive trimming: the buttons and the title."""
    return block.get("type") in ("actions", "header")


def fit_blocks(
    blocks: Sequence[Block | dict[str, Any]],
    *,
    max_blocks: int = MAX_BLOCKS,
    max_total_text: int = MAX_TOTAL_TEXT,
) -> list[dict[str, Any]]:
    """Block dicts (models are validated by slack_sdk's `to_dict()`) that fit in one message:
    at most `max_blocks` blocks and `max_total_text` characters of text. Headers and action
    blocks are always kept; other blocks are dropped from the end of the message first, and a
    context block says how many were left out."""
    dicts = [b.to_dict() if isinstance(b, Block) else dict(b) for b in blocks]
    sizes = [block_text_size(b) for b in dicts]
    if len(dicts) <= max_blocks and sum(sizes) <= max_total_text:
        return dicts
    note_reserve = 80
    kept_count = sum(1 for b in dicts if _is_kept(b))
    kept_size = sum(s for b, s in zip(dicts, sizes, strict=True) if _is_kept(b))
    slots = max_blocks - kept_count - 1
    budget = max_total_text - kept_size - note_reserve
    out: list[dict[str, Any]] = []
    dropped = 0
    first_dropped_at: int | None = None
    for block, size in zip(dicts, sizes, strict=True):
        if _is_kept(block):
            out.append(block)
            continue
        if slots > 0 and size <= budget and dropped == 0:
            out.append(block)
            slots -= 1
            budget -= size
            continue
        dropped += 1
        if first_dropped_at is None:
            first_dropped_at = len(out)
    if dropped:
        note = {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"{more_note(dropped, 'blocks')} not shown (too long for Slack)",
                }
            ],
        }
        out.insert(first_dropped_at if first_dropped_at is not None else len(out), note)
    return out


def check_blocks(blocks: Iterable[dict[str, Any]]) -> list[str]:
    """Our own checks of the limits slack_sdk does not enforce; empty when the message fits."""
    problems: list[str] = []
    items = list(blocks)
    if len(items) > MAX_BLOCKS:
        problems.append(f"{len(items)} blocks, more than {MAX_BLOCKS}")
    total = sum(block_text_size(b) for b in items)
    if total > MAX_TOTAL_TEXT:
        problems.append(f"{total} characters of block text, more than {MAX_TOTAL_TEXT}")
    seen_ids: set[str] = set()
    for index, block in enumerate(items):
        where = f"block {index} ({block.get('type')})"
        block_id = block.get("block_id")
        if isinstance(block_id, str):
            if block_id in seen_ids:
                problems.append(f"{where}: duplicate block_id {block_id}")
            seen_ids.add(block_id)
        if block.get("type") == "header":
            text = block.get("text") or {}
            if text.get("type") != "plain_text":
                problems.append(f"{where}: header text must be plain_text")
            if len(str(text.get("text", ""))) > MAX_HEADER_TEXT:
                problems.append(f"{where}: header longer than {MAX_HEADER_TEXT}")
        if block.get("type") == "section":
            text = block.get("text")
            if text is not None and not str(text.get("text", "")):
                problems.append(f"{where}: empty section text")
            if text is not None and len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
                problems.append(f"{where}: section text longer than {MAX_SECTION_TEXT}")
            fields = block.get("fields") or []
            if len(fields) > MAX_FIELDS:
                problems.append(f"{where}: {len(fields)} fields, more than {MAX_FIELDS}")
            for field in fields:
                value = str(field.get("text", ""))
                if not value:
                    problems.append(f"{where}: empty field")
                if len(value) > MAX_FIELD_TEXT:
                    problems.append(f"{where}: field longer than {MAX_FIELD_TEXT}")
        if block.get("type") == "context":
            for element in block.get("elements") or []:
                if not str(element.get("text", "")):
                    problems.append(f"{where}: empty context element")
    return problems


def check_text(text: str) -> list[str]:
    """Problems with a message's top-level `text`."""
    if not text:
        return ["empty message text"]
    if len(text) > MAX_MESSAGE_TEXT:
        return [f"message text longer than {MAX_MESSAGE_TEXT}"]
    return []


__all__ = [
    "ELLIPSIS",
    "MAX_ACTIONS_ELEMENTS",
    "MAX_ACTION_ID",
    "MAX_BLOCKS",
    "MAX_BLOCK_ID",
    "MAX_BUTTON_TEXT",
    "MAX_BUTTON_VALUE",
    "MAX_CONFIRM_BUTTON",
    "MAX_CONFIRM_TEXT",
    "MAX_CONFIRM_TITLE",
    "MAX_CONTEXT_ELEMENTS",
    "MAX_CONTEXT_TEXT",
    "MAX_FALLBACK_TEXT",
    "MAX_FIELDS",
    "MAX_FIELD_TEXT",
    "MAX_HEADER_TEXT",
    "MAX_MESSAGE_TEXT",
    "MAX_PLAIN_TEXT",
    "MAX_SECTION_TEXT",
    "MAX_TOTAL_TEXT",
    "block_text_size",
    "cap_items",
    "check_blocks",
    "check_text",
    "clip",
    "clip_lines",
    "fit_blocks",
    "more_note",
]
