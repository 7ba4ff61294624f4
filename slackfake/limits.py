"""Block Kit limits as Slack enforces them server-side (reference slack.md §4).

``check_blocks`` returns Slack-style error strings with a JSON pointer, e.g.
``"must be less than 3001 characters [json-pointer:/blocks/0/text/text]"``; an empty list means
the blocks are accepted. The Web API answers ``invalid_blocks`` with these strings. This module is
pure and written from the documented limits, not from slack_sdk's partial validators.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_VIEW = 100
MAX_MESSAGE_TEXT = 40_000
MAX_BLOCK_ID = 255
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_CONFIRM_TITLE = 100
MAX_CONFIRM_TEXT = 300
MAX_CONFIRM_BUTTON = 30
MAX_SELECT_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
MAX_OVERFLOW_OPTIONS = 5
MAX_ALT_TEXT = 2000
MAX_INPUT_LABEL = 2000
MAX_MARKDOWN_BLOCK = 12_000

BUTTON_STYLES = ("primary", "danger")
TEXT_TYPES = ("plain_text", "mrkdwn")

_SELECT_TYPES = (
    "static_select",
    "multi_static_select",
    "external_select",
    "multi_external_select",
    "users_select",
    "multi_users_select",
    "conversations_select",
    "multi_conversations_select",
    "channels_select",
    "multi_channels_select",
)
_OTHER_INTERACTIVE = (
    "overflow",
    "datepicker",
    "timepicker",
    "datetimepicker",
    "checkboxes",
    "radio_buttons",
    "plain_text_input",
    "email_text_input",
    "url_text_input",
    "number_input",
    "rich_text_input",
    "file_input",
    "workflow_button",
)
ACCESSORY_TYPES = frozenset(
    {"button", "image", "overflow", "datepicker", "timepicker", "checkboxes", "radio_buttons"}
    | set(_SELECT_TYPES)
)
ACTIONS_ELEMENT_TYPES = frozenset(
    {"button", "overflow", "datepicker", "timepicker", "datetimepicker", "checkboxes"}
    | {"radio_buttons", "rich_text_input", "workflow_button"}
    | set(_SELECT_TYPES)
)
INPUT_ELEMENT_TYPES = frozenset(set(_SELECT_TYPES) | set(_OTHER_INTERACTIVE))
BLOCK_TYPES = frozenset(
    (
        "section",
        "header",
        "divider",
        "context",
        "actions",
        "image",
        "input",
        "rich_text",
        "markdown",
        "file",
        "video",
        "table",
        "context_actions",
    )
)


class _Checker:
    """Collects errors while walking one blocks array."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, message: str, pointer: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    # ----- primitives ------------------------------------------------------------------
    def max_len(self, value: object, limit: int, pointer: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(f"missing required field: {pointer.rsplit('/', 1)[-1]}", pointer)
            return
        if not isinstance(value, str):
            self.fail("must be a string", pointer)
            return
        if len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", pointer)

    def text(
        self,
        obj: object,
        pointer: str,
        limit: int,
        *,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.fail(f"missing required field: {pointer.rsplit('/', 1)[-1]}", pointer)
            return
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else TEXT_TYPES
        if kind not in allowed:
            self.fail("must be a valid enum value", f"{pointer}/type")
        value = obj.get("text")
        if not isinstance(value, str):
            self.fail("missing required field: text", f"{pointer}/text")
        elif not value:
            self.fail("must be more than 0 characters", f"{pointer}/text")
        elif len(value) > limit:
            self.fail(f"must be less than {limit + 1} characters", f"{pointer}/text")

    def array(
        self, value: object, pointer: str, limit: int, *, minimum: int = 1
    ) -> list[Any] | None:
        if not isinstance(value, list):
            self.fail("must provide an array", pointer)
            return None
        if len(value) < minimum:
            self.fail(f"must provide at least {minimum} items", pointer)
        if len(value) > limit:
            self.fail(f"no more than {limit} items allowed", pointer)
        return value

    # ----- composition objects ---------------------------------------------------------
    def confirm(self, obj: object, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        self.text(obj.get("title"), f"{pointer}/title", MAX_CONFIRM_TITLE, plain_only=True)
        self.text(obj.get("text"), f"{pointer}/text", MAX_CONFIRM_TEXT)
        self.text(obj.get("confirm"), f"{pointer}/confirm", MAX_CONFIRM_BUTTON, plain_only=True)
        self.text(obj.get("deny"), f"{pointer}/deny", MAX_CONFIRM_BUTTON, plain_only=True)
        if "style" in obj and obj["style"] not in BUTTON_STYLES:
            self.fail("must be a valid enum value", f"{pointer}/style")

    def option(self, obj: object, pointer: str) -> None:
        if not isinstance(obj, dict):
            self.fail("must provide an object", pointer)
            return
        self.text(obj.get("text"), f"{pointer}/text", MAX_OPTION_TEXT)
        self.max_len(obj.get("value"), MAX_OPTION_VALUE, f"{pointer}/value")

    # ----- elements --------------------------------------------------------------------
    def element(self, el: object, pointer: str, allowed: frozenset[str]) -> str | None:
        """Check one element; returns its action_id (if any) for uniqueness checks."""
        if not isinstance(el, dict):
            self.fail("must provide an object", pointer)
            return None
        kind = el.get("type")
        if kind not in allowed:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return None
        action_id = el.get("action_id")
        self.max_len(action_id, MAX_ACTION_ID, f"{pointer}/action_id")
        if kind == "button":
            self.text(el.get("text"), f"{pointer}/text", MAX_BUTTON_TEXT, plain_only=True)
            self.max_len(el.get("value"), MAX_BUTTON_VALUE, f"{pointer}/value")
            self.max_len(el.get("url"), MAX_URL, f"{pointer}/url")
            if "style" in el and el["style"] not in BUTTON_STYLES:
                self.fail("must be a valid enum value", f"{pointer}/style")
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        elif kind == "image":
            if "image_url" not in el and "slack_file" not in el:
                self.fail("missing required field: image_url", pointer)
            self.max_len(el.get("image_url"), MAX_URL, f"{pointer}/image_url")
            self.max_len(el.get("alt_text"), MAX_ALT_TEXT, f"{pointer}/alt_text", required=True)
        elif kind in ("static_select", "multi_static_select"):
            self.text(
                el.get("placeholder"),
                f"{pointer}/placeholder",
                MAX_PLACEHOLDER,
                plain_only=True,
                required=False,
            )
            if "option_groups" not in el:
                options = self.array(el.get("options"), f"{pointer}/options", MAX_SELECT_OPTIONS)
                for i, opt in enumerate(options or []):
                    self.option(opt, f"{pointer}/options/{i}")
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        elif kind == "overflow":
            options = self.array(
                el.get("options"), f"{pointer}/options", MAX_OVERFLOW_OPTIONS, minimum=1
            )
            for i, opt in enumerate(options or []):
                self.option(opt, f"{pointer}/options/{i}")
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        elif kind in ("checkboxes", "radio_buttons"):
            options = self.array(el.get("options"), f"{pointer}/options", 10)
            for i, opt in enumerate(options or []):
                self.option(opt, f"{pointer}/options/{i}")
        elif isinstance(kind, str) and kind in _SELECT_TYPES:
            self.confirm(el.get("confirm"), f"{pointer}/confirm")
        return action_id if isinstance(action_id, str) else None

    # ----- blocks ----------------------------------------------------------------------
    def block(self, block: object, pointer: str, seen_block_ids: set[str]) -> None:
        if not isinstance(block, dict):
            self.fail("must provide an object", pointer)
            return
        kind = block.get("type")
        if not isinstance(kind, str):
            self.fail("missing required field: type", pointer)
            return
        if kind not in BLOCK_TYPES:
            self.fail(f"unsupported type: {kind}", f"{pointer}/type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.max_len(block_id, MAX_BLOCK_ID, f"{pointer}/block_id")
            if isinstance(block_id, str):
                if block_id in seen_block_ids:
                    self.fail(f"duplicate block_id: {block_id}", f"{pointer}/block_id")
                seen_block_ids.add(block_id)
        check = _BLOCK_CHECKS.get(kind)
        if check is not None:
            check(self, block, pointer)


def _section(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    if block.get("text") is None and block.get("fields") is None:
        c.fail("must provide either text or fields", ptr)
    c.text(block.get("text"), f"{ptr}/text", MAX_SECTION_TEXT, required=False)
    if block.get("fields") is not None:
        fields = c.array(block["fields"], f"{ptr}/fields", MAX_SECTION_FIELDS)
        for i, f in enumerate(fields or []):
            c.text(f, f"{ptr}/fields/{i}", MAX_FIELD_TEXT)
    if block.get("accessory") is not None:
        c.element(block["accessory"], f"{ptr}/accessory", ACCESSORY_TYPES)


def _header(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    c.text(block.get("text"), f"{ptr}/text", MAX_HEADER_TEXT, plain_only=True)


def _context(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    elements = c.array(block.get("elements"), f"{ptr}/elements", MAX_CONTEXT_ELEMENTS)
    for i, el in enumerate(elements or []):
        p = f"{ptr}/elements/{i}"
        if isinstance(el, dict) and el.get("type") == "image":
            c.element(el, p, frozenset({"image"}))
        else:
            c.text(el, p, MAX_SECTION_TEXT)


def _actions(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    elements = c.array(block.get("elements"), f"{ptr}/elements", MAX_ACTIONS_ELEMENTS)
    seen: set[str] = set()
    for i, el in enumerate(elements or []):
        action_id = c.element(el, f"{ptr}/elements/{i}", ACTIONS_ELEMENT_TYPES)
        if action_id is not None:
            if action_id in seen:
                c.fail(f"duplicate action_id: {action_id}", f"{ptr}/elements/{i}/action_id")
            seen.add(action_id)


def _image(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    if "image_url" not in block and "slack_file" not in block:
        c.fail("missing required field: image_url", ptr)
    c.max_len(block.get("image_url"), MAX_URL, f"{ptr}/image_url")
    c.max_len(block.get("alt_text"), MAX_ALT_TEXT, f"{ptr}/alt_text", required=True)
    c.text(block.get("title"), f"{ptr}/title", MAX_ALT_TEXT, plain_only=True, required=False)


def _input(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    c.text(block.get("label"), f"{ptr}/label", MAX_INPUT_LABEL, plain_only=True)
    c.text(block.get("hint"), f"{ptr}/hint", MAX_INPUT_LABEL, plain_only=True, required=False)
    if block.get("element") is None:
        c.fail("missing required field: element", ptr)
    else:
        c.element(block["element"], f"{ptr}/element", INPUT_ELEMENT_TYPES)


def _markdown(c: _Checker, block: dict[str, Any], ptr: str) -> None:
    c.max_len(block.get("text"), MAX_MARKDOWN_BLOCK, f"{ptr}/text", required=True)


_BLOCK_CHECKS: dict[str, Callable[[_Checker, dict[str, Any], str], None]] = {
    "section": _section,
    "header": _header,
    "context": _context,
    "actions": _actions,
    "image": _image,
    "input": _input,
    "markdown": _markdown,
}


def check_blocks(blocks: object, *, max_blocks: int = MAX_BLOCKS_MESSAGE) -> list[str]:
    """Validate a ``blocks`` array; returns Slack-style error strings (empty when valid)."""
    checker = _Checker()
    items = checker.array(blocks, "/blocks", max_blocks, minimum=0)
    seen: set[str] = set()
    for i, block in enumerate(items or []):
        checker.block(block, f"/blocks/{i}", seen)
    return checker.errors


def truncate_text(text: str) -> tuple[str, bool]:
    """Slack truncates message text over 40,000 characters and warns ``message_truncated``."""
    if len(text) > MAX_MESSAGE_TEXT:
        return text[:MAX_MESSAGE_TEXT], True
    return text, False
