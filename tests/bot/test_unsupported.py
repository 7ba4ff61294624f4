"""Envelopes nobody listens to, through the real socket: each one is acknowledged within
Slack's limit (the stand-in raises `AckTimeout` otherwise), whoever sent it is told "not
supported" where Slack gives a way to answer, and the bot keeps answering afterwards."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from slackfake import ids, payloads
from slackfake.server import SlackFake
from tests.bot.conftest import BOB, CHANNEL, Harness
from tests.bot.render_text import text_of, unescape

Make = Callable[..., Awaitable[Harness]]


def click_payload(fake: SlackFake, actions: Any, *, message_ts: str = "1.000001") -> dict[str, Any]:
    """A block_actions payload from bob with `actions` as given (possibly broken)."""
    body = payloads.block_actions(
        team_id="T0TIKV",
        team_domain="tikvops-dev",
        app_id="A0TIKVOPS",
        user_id=BOB,
        user_name="bob",
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        container=payloads.message_container(
            CHANNEL, message_ts, is_ephemeral=False, thread_ts=None
        ),
        message=None,
        action={},
        response_url=fake.response_url_for(user=BOB, channel=CHANNEL),
        trigger_id=fake.trigger_for(user=BOB, channel=CHANNEL),
    )
    body["actions"] = actions
    return body


async def still_answers(h: Harness) -> None:
    """The bot still takes commands: `/tikv status` is acked and answered."""
    before = len(h.fake.ephemerals(user=BOB))
    await h.fake.slash_command(user=BOB, text="status", channel=CHANNEL)
    await h.settle()
    assert h.fake.ephemerals(user=BOB)[before:][-1].text.startswith("Cluster status")


async def open_form(h: Harness, callback_id: str, **extra: Any) -> str:
    """A modal opened for bob that tikvops does not know (another app version's form)."""
    opened = await h.bot.client.views_open(
        trigger_id=h.fake.trigger_for(user=BOB, channel=CHANNEL),
        view={
            "type": "modal",
            "callback_id": callback_id,
            "title": {"type": "plain_text", "text": "Old form"},
            "submit": {"type": "plain_text", "text": "Send"},
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "old"}}],
            **extra,
        },
    )
    return str(opened["view"]["id"])


async def test_a_view_submission_nobody_listens_to_is_acked_and_the_modal_says_why(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    view_id = await open_form(h, "legacy.drain_form")
    ack = await h.fake.submit_view(user=BOB, view_id=view_id)
    assert ack.get("response_action") == "update"
    [view] = h.fake.views(user=BOB)  # the same modal, now explaining itself
    shown = unescape(text_of(view.body["blocks"]))
    assert "legacy.drain_form" in shown and "nothing was done" in shown
    assert "/tikv help" in shown
    await still_answers(h)


async def test_a_view_closed_nobody_listens_to_is_acked(bot_harness: Make) -> None:
    h = await bot_harness()
    view_id = await open_form(h, "legacy.form", notify_on_close=True)
    await h.fake.close_view(user=BOB, view_id=view_id)  # raises AckTimeout without an ack
    assert h.fake.ack_timeouts == []
    await still_answers(h)


async def test_a_global_shortcut_is_acked_and_answered_in_a_modal(bot_harness: Make) -> None:
    h = await bot_harness()
    ack = await h.fake.shortcut(user=BOB, callback_id="create_incident")
    assert dict(ack) == {}
    await h.settle()
    [view] = await h.fake.wait_for(lambda: h.fake.views(user=BOB))
    shown = unescape(text_of(view.body["blocks"]))
    assert "create_incident" in shown and "not" in shown and "/tikv help" in shown
    await still_answers(h)


async def test_a_message_shortcut_is_acked_and_answered_ephemerally(bot_harness: Make) -> None:
    h = await bot_harness()
    posted = await h.bot.client.chat_postMessage(channel=CHANNEL, text="something happened")
    ack = await h.fake.message_shortcut(
        user=BOB, message_ts=str(posted["ts"]), callback_id="summarize", channel=CHANNEL
    )
    assert dict(ack) == {}
    await h.settle()
    [told] = h.fake.ephemerals(user=BOB)
    assert "summarize" in unescape(told.text) and "/tikv help" in told.text
    assert h.fake.thread(CHANNEL, str(posted["ts"])) == []  # nothing said in public
    await still_answers(h)


async def test_an_options_request_gets_an_empty_list(bot_harness: Make) -> None:
    h = await bot_harness()
    ack = await h.fake.block_suggestion(user=BOB, action_id="pick_store", value="4")
    assert dict(ack) == {"options": []}
    await still_answers(h)


async def test_a_slash_command_of_another_app_is_acked_with_the_right_command(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    ack = await h.fake.slash_command(user=BOB, text="drain 4", command="/deploy", channel=CHANNEL)
    await h.settle()
    [told] = h.fake.ephemerals(user=BOB)
    assert told.text == ack["text"]
    assert "/deploy" in told.text and "/tikv help" in told.text
    assert await h.runtime.repos.proposals.get("P-1") is None
    await still_answers(h)


BROKEN_ACTIONS = [
    pytest.param([{}], id="no action_id (KeyError)"),
    pytest.param([], id="empty list (IndexError)"),
    pytest.param(None, id="null"),
    pytest.param([1], id="a number"),
    pytest.param("tikvops.approve", id="a string"),
    pytest.param([{"action_id": 7, "value": "{}"}], id="action_id not a string"),
    pytest.param([{"action_id": None}], id="action_id null"),
]


@pytest.mark.parametrize("actions", BROKEN_ACTIONS)
async def test_a_click_whose_actions_list_breaks_the_matcher_is_acked_and_told(
    bot_harness: Make, actions: Any
) -> None:
    h = await bot_harness()
    ack = await h.fake.push_interactive(click_payload(h.fake, actions))
    assert dict(ack) == {}
    await h.settle()
    [told] = h.fake.ephemerals(user=BOB)
    assert told.text.startswith("This button could not be used")
    assert "/tikv proposals" in told.text
    assert "internal error" not in told.text
    await still_answers(h)


async def test_envelopes_of_no_known_shape_are_all_acked(bot_harness: Make) -> None:
    h = await bot_harness()
    raw: list[dict[str, Any]] = [
        # an event nobody subscribed to
        payloads.envelope(
            "events_api",
            payloads.event_callback(
                {"type": "reaction_added", "user": BOB, "reaction": "eyes"},
                team_id="T0TIKV",
                app_id="A0TIKVOPS",
                bot_user_id="U0TIKVBOT",
                event_id="Ev0UNKNOWN1",
                event_time=1,
            ),
            envelope_id=ids.envelope_id(),
            accepts_response_payload=False,
        ),
        # an envelope type that does not exist (yet)
        payloads.envelope(
            "future_thing",
            {"team_id": "T0TIKV", "api_app_id": "A0TIKVOPS"},
            envelope_id=ids.envelope_id(),
            accepts_response_payload=False,
        ),
        # payloads the SDK cannot even turn into a request
        payloads.envelope(
            "interactive", None, envelope_id=ids.envelope_id(), accepts_response_payload=False
        ),
        payloads.envelope(
            "slash_commands", [1, 2], envelope_id=ids.envelope_id(), accepts_response_payload=True
        ),
        {"envelope_id": ids.envelope_id(), "type": "interactive"},  # no payload at all
        {"envelope_id": ids.envelope_id(), "payload": {"type": "block_actions"}},  # no type
        # interactive payloads of kinds tikvops does not use
        payloads.envelope(
            "interactive",
            {"type": "dialog_suggestion", "team": {"id": "T0TIKV"}, "api_app_id": "A0TIKVOPS"},
            envelope_id=ids.envelope_id(),
            accepts_response_payload=True,
        ),
        payloads.envelope(
            "interactive",
            {"type": "something_new", "team": {"id": "T0TIKV"}, "api_app_id": "A0TIKVOPS"},
            envelope_id=ids.envelope_id(),
            accepts_response_payload=False,
        ),
        # a string payload (the SDK wraps it as {"text": ...})
        payloads.envelope(
            "interactive", "hello", envelope_id=ids.envelope_id(), accepts_response_payload=False
        ),
    ]
    for envelope in raw:
        ack = await h.fake.push(envelope)
        assert ack.envelope_id == envelope["envelope_id"], json.dumps(envelope)
    assert h.fake.ack_timeouts == []
    await h.settle()
    assert h.fake.ephemerals(user=BOB) == [] and h.top() == []
    await still_answers(h)
