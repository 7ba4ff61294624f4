"""Small builders over slack_sdk's block models, each clipping its strings to Slack's limits, and
`Rendered`: a finished message (notification text, block dicts, plain-text version).

Every renderer in `bot.render` builds its blocks with these helpers and finishes with
`rendered(...)`, which turns the models into dicts (slack_sdk validates them there), fits the
message into our extra limits (`limits.fit_blocks`) and derives the plain-text version used
when Slack refuses the blocks. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.render import limits
from bot.render.limits import clip, clip_lines

JsonBlock = dict[str, Any]

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MENTION = re.compile(r"^[UWB][A-Z0-9]{2,30}$")
_ESCAPED_MENTION = re.compile(
    r"&lt;(@[UW][A-Z0-9]{2,30}|!subteam\^S[A-Z0-9]{2,30}|#[CG][A-Z0-9]{2,30})&gt;"
)


def esc(text: object) -> str:
    """Text from outside (PD, Claude, users) made safe for mrkdwn: `&`, `<` and `>` are escaped
    so nothing in it can become a link, a mention or `@channel`."""
    return str(text).translate(_ESCAPES)


def sentence(text: object) -> str:
    """A sentence made by the engine, made safe for mrkdwn like `esc`, except that the user,
    user-group and channel mentions the engine writes on purpose (`<@U123>`,
    `<!subteam^S123>`, `<#C123>`) stay mentions. Nothing else can become a link or `@here`."""
    return _ESCAPED_MENTION.sub(r"<\1>", esc(text))


def mention(user_id: str) -> str:
    """`<@U123>` for a well-formed Slack user ID; the escaped text otherwise."""
    return f"<@{user_id}>" if _MENTION.match(user_id) else esc(user_id)


def code_span(text: object) -> str:
    """Inline code: backticks inside are replaced so the span cannot break."""
    inner = esc(text).replace("`", "'")
    return f"`{inner}`" if inner else "` `"


def _nonempty(text: str) -> str:
    return text if text.strip() else " "


def mrkdwn(text: str, limit: int = limits.MAX_SECTION_TEXT) -> MarkdownTextObject:
    return MarkdownTextObject(text=_nonempty(clip_lines(text, limit)))


def plain(text: str, limit: int) -> PlainTextObject:
    return PlainTextObject(text=_nonempty(clip(text, limit)), emoji=True)


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=plain(text.replace("\n", " "), limits.MAX_HEADER_TEXT))


def section(
    text: str,
    *,
    noun: str = "lines",
    accessory: ButtonElement | None = None,
    block_id: str | None = None,
) -> SectionBlock:
    """A mrkdwn section; over 3,000 characters it is cut at a line boundary with a note saying
    how many `noun` were left out."""
    body = clip_lines(text, limits.MAX_SECTION_TEXT, noun)
    return SectionBlock(
        text=MarkdownTextObject(text=_nonempty(body)),
        accessory=accessory,
        block_id=_block_id(block_id),
    )


def fields(pairs: Sequence[tuple[str, str]]) -> list[SectionBlock]:
    """`*label*` over its value, two columns; ten fields per section (Slack's limit), each at
    most 2,000 characters."""
    items = [
        MarkdownTextObject(text=_nonempty(clip_lines(f"*{label}*\n{value}", limits.MAX_FIELD_TEXT)))
        for label, value in pairs
    ]
    return [
        SectionBlock(fields=items[start : start + limits.MAX_FIELDS])
        for start in range(0, len(items), limits.MAX_FIELDS)
    ]


def context(*texts: str) -> ContextBlock:
    shown = [t for t in texts if t.strip()] or [" "]
    shown = limits.cap_items(shown, limits.MAX_CONTEXT_ELEMENTS, "notes")
    return ContextBlock(elements=[mrkdwn(t, limits.MAX_CONTEXT_TEXT) for t in shown])


def divider() -> DividerBlock:
    return DividerBlock()


def code(lines: Sequence[str], noun: str = "lines", limit: int = limits.MAX_SECTION_TEXT) -> str:
    """A preformatted block (monospace table) that fits in `limit` characters, cut at a line
    boundary with "… N more <noun>" inside it when needed."""
    body = "\n".join(esc(line).replace("```", "'''") for line in lines) or " "
    return "```\n" + clip_lines(body, limit - 8, noun) + "\n```"


def confirm(
    *, title: str, text: str, ok: str, deny: str = "Cancel", danger: bool = False
) -> ConfirmObject:
    return ConfirmObject(
        title=plain(title, limits.MAX_CONFIRM_TITLE),
        text=MarkdownTextObject(text=_nonempty(clip(text, limits.MAX_CONFIRM_TEXT))),
        confirm=plain(ok, limits.MAX_CONFIRM_BUTTON),
        deny=plain(deny, limits.MAX_CONFIRM_BUTTON),
        style="danger" if danger else "primary",
    )


def button(
    text: str,
    *,
    action_id: str,
    value: str,
    style: str | None = None,
    confirm_with: ConfirmObject | None = None,
) -> ButtonElement:
    if len(value) > limits.MAX_BUTTON_VALUE:
        raise ValueError(f"button value of {len(value)} characters is over Slack's limit")
    return ButtonElement(
        text=plain(text, limits.MAX_BUTTON_TEXT),
        action_id=action_id,
        value=value,
        style=style,
        confirm=confirm_with,
    )


def actions(block_id: str, buttons: Sequence[ButtonElement]) -> ActionsBlock:
    return ActionsBlock(
        block_id=_block_id(block_id),
        elements=list(buttons[: limits.MAX_ACTIONS_ELEMENTS]),
    )


def _block_id(block_id: str | None) -> str | None:
    return None if block_id is None else block_id[: limits.MAX_BLOCK_ID]


# --------------------------------------------------------------------------- finished messages


@dataclass(frozen=True)
class Rendered:
    """A message ready to send: `text` is the notification text sent with the blocks,
    `blocks` the Block Kit dicts, `plain` the whole message as text (sent alone when Slack
    refuses the blocks)."""

    text: str
    blocks: list[JsonBlock] = field(default_factory=list)
    plain: str = ""

    def payload(self) -> dict[str, Any]:
        """Keyword arguments for chat.postMessage / chat.update / respond."""
        return {"text": self.text, "blocks": self.blocks}


def rendered(text: str, blocks: Iterable[Block | JsonBlock]) -> Rendered:
    """Finish a message: validate the models (slack_sdk), fit our extra limits, and derive the
    plain-text version. `text` is the raw notification text (escaped here, mentions kept)."""
    fitted = limits.fit_blocks(list(blocks))
    note = clip(sentence(text.strip() or "tikvops"), limits.MAX_FALLBACK_TEXT)
    return Rendered(text=note, blocks=fitted, plain=plain_text(fitted, fallback=note))


def plain_text(blocks: Sequence[JsonBlock], fallback: str = "") -> str:
    """The text of blocks, one paragraph per block, buttons as `[Label]`; under 40,000."""
    parts: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            parts.append(str(block["text"]["text"]))
        elif kind == "section":
            if block.get("text"):
                parts.append(str(block["text"]["text"]))
            for item in block.get("fields") or []:
                parts.append(str(item["text"]))
        elif kind == "context":
            parts.append(" · ".join(str(e.get("text", "")) for e in block.get("elements") or []))
        elif kind == "actions":
            labels = [
                f"[{e['text']['text']}]" for e in block.get("elements") or [] if e.get("text")
            ]
            if labels:
                parts.append(" ".join(labels))
        elif kind == "divider":
            parts.append("—")
    body = "\n".join(p for p in parts if p.strip()) or fallback or "tikvops"
    return clip(body, limits.MAX_PLAIN_TEXT)


__all__ = [
    "JsonBlock",
    "Rendered",
    "actions",
    "button",
    "code",
    "code_span",
    "confirm",
    "context",
    "divider",
    "esc",
    "fields",
    "header",
    "mention",
    "mrkdwn",
    "plain",
    "plain_text",
    "rendered",
    "section",
    "sentence",
]
