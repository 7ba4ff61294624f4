"""Slack text to safe HTML for the page."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from slackfake.mrkdwn import Names, mrkdwn_to_html, plain_to_html, text_object_to_html

NAMES = Names(
    user=lambda i: {"U0ALICE": "alice"}.get(i, i),
    channel=lambda i: {"C0OPS": "tikv-ops"}.get(i, i),
    usergroup=lambda i: {"S0ONCALL": "oncall"}.get(i, i),
)


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*Store 4* is _down_", "<b>Store 4</b> is <i>down</i>"),
        ("~old~ new", "<s>old</s> new"),
        ("run `pd-ctl store 4`", "run <code>pd-ctl store 4</code>"),
        ("```a *b*\nc```", "<pre>a *b*\nc</pre>"),
        ("line1\nline2", "line1<br>line2"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("2*3*4", "2*3*4"),
        ("&gt; quoted\nafter", "<blockquote>quoted</blockquote>after"),
        (":white_check_mark: done :unknown_emoji:", "✅ done :unknown_emoji:"),
        ("a &amp; b &lt; c", "a &amp; b &lt; c"),
    ],
)
def test_formatting(text: str, html: str) -> None:
    assert mrkdwn_to_html(text, NAMES) == html


def test_links_mentions_and_groups() -> None:
    html = mrkdwn_to_html(
        "<https://pd.example/x?a=1&amp;b=2|PD> by <@U0ALICE> in <#C0OPS> "
        "for <!subteam^S0ONCALL> <!here>",
        NAMES,
    )
    assert html == (
        '<a href="https://pd.example/x?a=1&amp;b=2" target="_blank" rel="noopener noreferrer">'
        "PD</a> by "
        '<span class="mention" data-user-id="U0ALICE">@alice</span> in '
        '<span class="channel-ref" data-channel-id="C0OPS">#tikv-ops</span> for '
        '<span class="mention" data-usergroup-id="S0ONCALL">@oncall</span> '
        '<span class="mention">@here</span>'
    )


def test_bold_around_a_mention() -> None:
    assert mrkdwn_to_html("*<@U0ALICE>*", NAMES) == (
        '<b><span class="mention" data-user-id="U0ALICE">@alice</span></b>'
    )


@pytest.mark.parametrize(
    "text",
    [
        "<script>alert(1)</script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "<img src=x onerror=alert(1)>",
        "<javascript:alert(1)|click me>",
        '<https://x" onmouseover="alert(1)|x>',
        "`<b>` ```<i>```",
        '<@U1"><script>x</script>>',
    ],
)
def test_message_content_cannot_inject_markup(text: str) -> None:
    html = mrkdwn_to_html(text, NAMES)
    assert "<script" not in html
    assert "<img" not in html
    assert 'href="javascript' not in html
    assert '" onmouseover' not in html


def test_unsafe_link_schemes_render_as_text() -> None:
    assert mrkdwn_to_html("<javascript:alert(1)|click me>") == "click me"


def test_escaped_script_is_shown_literally() -> None:
    assert mrkdwn_to_html("&lt;script&gt;") == "&lt;script&gt;"


def test_plain_text_is_never_formatted() -> None:
    assert plain_to_html("*not bold* <b>") == "*not bold* &lt;b&gt;"
    assert text_object_to_html({"type": "plain_text", "text": ":fire: hot"}) == "🔥 hot"
    assert text_object_to_html({"type": "plain_text", "text": ":fire:", "emoji": False}) == ":fire:"
    assert text_object_to_html({"type": "mrkdwn", "text": "*b*"}) == "<b>b</b>"
    assert text_object_to_html(None) == ""


BOT_SOURCE = Path(__file__).resolve().parents[2] / "bot"


def emoji_codes_the_bot_uses() -> list[str]:
    """Every `:name:` in the bot's source (what its messages can contain)."""
    codes = {
        match
        for path in BOT_SOURCE.rglob("*.py")
        for match in re.findall(r":([a-z_]+):", path.read_text(encoding="utf-8"))
    }
    return sorted(codes)


def test_the_bot_uses_emoji_codes() -> None:
    assert "arrow_forward" in emoji_codes_the_bot_uses()  # the scan finds them


@pytest.mark.parametrize("code", emoji_codes_the_bot_uses())
def test_every_emoji_code_the_bot_uses_is_shown_as_a_character(code: str) -> None:
    shown = mrkdwn_to_html(f"*P-7 started* :{code}: now", NAMES)
    assert f":{code}:" not in shown
    assert shown.endswith(" now") and "<b>P-7 started</b> " in shown
    assert f":{code}:" not in plain_to_html(f":{code}: Approve")


def test_unknown_emoji_codes_stay_as_typed() -> None:
    assert mrkdwn_to_html("see :no_such_emoji_here:", NAMES) == "see :no_such_emoji_here:"
