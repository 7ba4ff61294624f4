"""The note that replaces a message posted twice: Slack stored a post but its answer was lost,
so the same message went out again. The copy that is not the current one is edited to this
note: no buttons, and a link to the message that is current. Pure: no I/O."""

from __future__ import annotations

from bot.render.kit import Rendered, context, rendered, section


def superseded(current_link: str | None) -> Rendered:
    """The inactive copy's new content; `current_link` is the permalink of the current message
    (None when Slack did not give one)."""
    where = (
        f"<{current_link}|the current message>"
        if current_link and current_link.startswith(("https://", "http://"))
        else "the other copy of this message, just above or below"
    )
    text = "Duplicate message: this copy is inactive; use the current one."
    body = (
        f":information_source: *This copy is inactive: use {where}.*\n"
        "Slack stored this message but its answer never reached tikvops, so the message was "
        "sent again. Its buttons were removed here so that nothing is decided twice."
    )
    return rendered(text, [section(body), context("Nothing to do here.")])


__all__ = ["superseded"]
