"""Slack text to safe HTML for the page: mrkdwn basics and plain_text, escaping everything.

Pure functions. Every character that comes from a message ends up HTML-escaped; the only markup
in the output is what this module writes itself (b, i, s, code, pre, blockquote, a, span, br), and
links are emitted only for http(s) and mailto URLs.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from slackfake.dates import parse_token, render

EMOJI: dict[str, str] = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "rotating_light": "🚨",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "yellow_circle": "🟡",
    "large_orange_circle": "🟠",
    "hourglass": "⌛",
    "hourglass_flowing_sand": "⏳",
    "stopwatch": "⏱️",
    "lock": "🔒",
    "unlock": "🔓",
    "fire": "🔥",
    "thumbsup": "👍",
    "+1": "👍",
    "thumbsdown": "👎",
    "-1": "👎",
    "eyes": "👀",
    "robot_face": "🤖",
    "wrench": "🔧",
    "hammer_and_wrench": "🛠️",
    "mag": "🔍",
    "information_source": "ℹ️",
    "no_entry": "⛔",
    "no_entry_sign": "🚫",
    "arrow_right": "➡️",
    "leftwards_arrow_with_hook": "↩️",
    "rewind": "⏪",
    "tada": "🎉",
    "bulb": "💡",
    "chart_with_upwards_trend": "📈",
    "floppy_disk": "💾",
    "bow": "🙇",
    "raised_hand": "✋",
    "octagonal_sign": "🛑",
    "arrow_forward": "▶️",
    "large_blue_circle": "🔵",
    "blue_circle": "🔵",
    "white_circle": "⚪",
    "heavy_minus_sign": "➖",
    "grey_question": "❔",
    "question": "❓",
    "bell": "🔔",
    "no_bell": "🔕",
    "bust_in_silhouette": "👤",
    "gear": "⚙️",
    "clipboard": "📋",
    "scroll": "📜",
    "brain": "🧠",
}

_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_PLACEHOLDER = re.compile(r"\x00(\d+)\x00")
_PRE = re.compile(r"```\n?(.*?)```", re.DOTALL)
_CODE = re.compile(r"`([^`\n]+)`")
_CONTROL = re.compile(r"<([^<>\n]+)>")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])")
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")
_QUOTE = re.compile(r"^&gt; ?(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Names:
    """How to show ids inside text: user, channel and user-group names."""

    user: Callable[[str], str]
    channel: Callable[[str], str]
    usergroup: Callable[[str], str]
    tz: str = "UTC"
    """The reader's timezone: `<!date^…>` tokens are shown in it."""


def _identity(value: str) -> str:
    return value


PLAIN_NAMES = Names(user=_identity, channel=_identity, usergroup=_identity)


def esc(text: str) -> str:
    """HTML-escape text, quotes included (safe in element content and attribute values)."""
    return html.escape(text, quote=True)


def unescape_slack(text: str) -> str:
    """Slack text carries &amp; &lt; &gt; escaped; show the characters they stand for."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def emoji(html_text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), html_text)


def plain_to_html(text: str, *, with_emoji: bool = True) -> str:
    """plain_text objects: no formatting at all, only escaping, emoji and line breaks."""
    out = esc(text)
    if with_emoji:
        out = emoji(out)
    return out.replace("\n", "<br>")


def _control(inner: str, names: Names) -> str:
    target, _, label = inner.partition("|")
    label = unescape_slack(label)
    if target.startswith("@"):
        user_id = target[1:]
        shown = label.lstrip("@") or names.user(user_id) or user_id
        return f'<span class="mention" data-user-id="{esc(user_id)}">@{esc(shown)}</span>'
    if target.startswith("#"):
        channel_id = target[1:]
        shown = label or names.channel(channel_id) or channel_id
        return f'<span class="channel-ref" data-channel-id="{esc(channel_id)}">#{esc(shown)}</span>'
    if target.startswith("!subteam^"):
        group_id = target.removeprefix("!subteam^")
        shown = label.lstrip("@") or names.usergroup(group_id) or group_id
        return f'<span class="mention" data-usergroup-id="{esc(group_id)}">@{esc(shown)}</span>'
    if target.startswith("!date^"):
        return _date(inner, names.tz)
    if target in ("!here", "!channel", "!everyone"):
        return f'<span class="mention">@{esc(target[1:])}</span>'
    if target.startswith("!"):
        return esc(label or target[1:])
    url = unescape_slack(target)
    shown = label or url
    if url.lower().startswith(_SAFE_SCHEMES):
        return f'<a href="{esc(url)}" target="_blank" rel="noopener noreferrer">{esc(shown)}</a>'
    return esc(shown)


def _date(inner: str, tz: str) -> str:
    token = parse_token(unescape_slack(inner))
    if token is None:
        _, _, label = inner.partition("|")
        return esc(unescape_slack(label))
    shown = esc(render(token, tz))
    if token.link and token.link.lower().startswith(_SAFE_SCHEMES):
        shown = f'<a href="{esc(token.link)}" target="_blank" rel="noopener noreferrer">{shown}</a>'
    stamp = esc(str(token.epoch))
    title = esc(token.fallback)
    return f'<time class="date-token" data-epoch="{stamp}" title="{title}">{shown}</time>'


def mrkdwn_to_html(text: str, names: Names = PLAIN_NAMES) -> str:
    """Render Slack mrkdwn: *bold*, _italic_, ~strike~, `code`, ```pre```, > quotes,
    <url|text> links, <@U…>/<#C…>/<!subteam^S…>/<!here> mentions, :emoji: and line breaks.
    """
    held: list[str] = []

    def hold(fragment: str) -> str:
        held.append(fragment)
        return f"\x00{len(held) - 1}\x00"

    work = text.replace("\x00", "")
    work = _PRE.sub(lambda m: hold(f"<pre>{esc(unescape_slack(m.group(1)))}</pre>"), work)
    work = _CODE.sub(lambda m: hold(f"<code>{esc(unescape_slack(m.group(1)))}</code>"), work)
    work = _CONTROL.sub(lambda m: hold(_control(m.group(1), names)), work)
    work = esc(unescape_slack(work))
    work = _BOLD.sub(r"<b>\1</b>", work)
    work = _ITALIC.sub(r"<i>\1</i>", work)
    work = _STRIKE.sub(r"<s>\1</s>", work)
    work = _QUOTE.sub(r"<blockquote>\1</blockquote>", work)
    work = emoji(work)
    work = work.replace("</blockquote>\n", "</blockquote>").replace("\n", "<br>")
    return _PLACEHOLDER.sub(lambda m: held[int(m.group(1))], work)


def text_object_to_html(obj: object, names: Names = PLAIN_NAMES) -> str:
    """A Block Kit text object (plain_text or mrkdwn) as safe HTML; anything else → ''."""
    if not isinstance(obj, dict):
        return ""
    value = obj.get("text")
    if not isinstance(value, str):
        return ""
    if obj.get("type") == "mrkdwn":
        return mrkdwn_to_html(value, names)
    return plain_to_html(value, with_emoji=obj.get("emoji", True) is not False)


def plain_text_of(obj: object) -> str:
    """The raw string of a text object (for button labels and dialog titles)."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return ""
