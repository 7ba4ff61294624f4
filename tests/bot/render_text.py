"""A short text form of Block Kit blocks for assertions and reports, written independently of
the bot's own plain-text rendering: one line per header/section/field/context, buttons as
`[Label]`, HTML entities decoded (as Slack shows them)."""

from __future__ import annotations

import html
from typing import Any


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        return html.unescape(str(obj.get("text", "")))
    return ""


def text_of(blocks: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"# {_text(block.get('text'))}")
        elif kind == "section":
            if block.get("text"):
                lines.append(_text(block["text"]))
            lines.extend(_text(f).replace("\n", ": ", 1) for f in block.get("fields") or [])
            accessory = block.get("accessory")
            if accessory and accessory.get("type") == "button":
                lines.append(f"[{_text(accessory.get('text'))}]")
        elif kind == "context":
            lines.append("  " + " | ".join(_text(e) for e in block.get("elements") or []))
        elif kind == "actions":
            lines.append(" ".join(f"[{_text(e.get('text'))}]" for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("---")
    return "\n".join(lines)


def unescape(text: str) -> str:
    return html.unescape(text)
