"""response_url endpoints, driven by Bolt's respond() from a button click."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncRespond

from slackfake.server import SlackFake
from tests.slackfake.conftest import BoltRig, web_client

BUTTON_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "actions",
        "block_id": "b",
        "elements": [
            {
                "type": "button",
                "action_id": "go",
                "text": {"type": "plain_text", "text": "Go"},
                "value": "v",
            }
        ],
    }
]


async def post_buttons(fake: SlackFake) -> str:
    response = await web_client(fake).chat_postMessage(
        channel="C0OPS", text="buttons", blocks=BUTTON_BLOCKS
    )
    return str(response["ts"])


@pytest.fixture
async def responder(bolt: BoltRig) -> list[dict[str, Any]]:
    """A Bolt app whose 'go' button answers with whatever the test put in the list."""
    replies: list[dict[str, Any]] = []

    @bolt.app.action("go")
    async def go(ack: AsyncAck, respond: AsyncRespond) -> None:
        await ack()
        await respond(**replies.pop(0))

    await bolt.connect()
    return replies


async def click_and_wait(fake: SlackFake, ts: str, user: str = "U0BOB") -> None:
    before = len(fake.response_posts())
    await fake.click(user=user, message_ts=ts, action_id="go")
    await fake.wait_for(lambda: len(fake.response_posts()) > before)


async def test_replace_original_edits_the_message_in_place(
    slack_fake: SlackFake, responder: list[dict[str, Any]]
) -> None:
    ts = await post_buttons(slack_fake)
    responder.append({"text": "Approved by bob", "replace_original": True})
    await click_and_wait(slack_fake, ts)
    [message] = slack_fake.messages("C0OPS")
    assert (message.ts, message.text, message.blocks) == (ts, "Approved by bob", [])
    assert message.edits[0].blocks == BUTTON_BLOCKS
    assert slack_fake.response_posts("actions")[0].outcome == "replaced"


async def test_delete_original_removes_the_message(
    slack_fake: SlackFake, responder: list[dict[str, Any]]
) -> None:
    ts = await post_buttons(slack_fake)
    responder.append({"delete_original": True})
    await click_and_wait(slack_fake, ts)
    assert slack_fake.messages("C0OPS") == []


async def test_in_channel_and_default_ephemeral(
    slack_fake: SlackFake, responder: list[dict[str, Any]]
) -> None:
    ts = await post_buttons(slack_fake)
    responder.append({"text": "bob approved", "response_type": "in_channel", "thread_ts": ts})
    await click_and_wait(slack_fake, ts)
    assert [m.text for m in slack_fake.thread("C0OPS", ts)] == ["bob approved"]

    responder.append({"text": "You may not approve this", "replace_original": False})
    await click_and_wait(slack_fake, ts)
    assert [e.text for e in slack_fake.ephemerals(user="U0BOB")] == ["You may not approve this"]
    assert slack_fake.ephemerals(user="U0ALICE") == []
    [message] = slack_fake.messages("C0OPS")
    assert message.text == "buttons" and not message.edited


async def test_invalid_blocks_in_a_response_are_refused(
    slack_fake: SlackFake, responder: list[dict[str, Any]]
) -> None:
    ts = await post_buttons(slack_fake)
    responder.append({"text": "x", "blocks": [{"type": "divider"}] * 51})
    await click_and_wait(slack_fake, ts)
    [post] = slack_fake.response_posts()
    assert (post.status, post.outcome) == (400, "invalid_blocks")
    assert post.errors == ["no more than 50 items allowed [json-pointer:/blocks]"]
    assert slack_fake.ephemerals() == []


async def test_buttons_on_ephemeral_messages(bolt: BoltRig) -> None:
    bodies: list[dict[str, Any]] = []

    @bolt.app.action("go")
    async def go(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        bodies.append(body)
        await respond(text="done", replace_original=True)

    await bolt.connect()
    fake = bolt.fake
    response = await web_client(fake).chat_postEphemeral(
        channel="C0OPS", user="U0ALICE", text="choose", blocks=BUTTON_BLOCKS
    )
    ts = response["message_ts"]
    await fake.click(user="U0ALICE", message_ts=ts, action_id="go")
    await fake.wait_for(fake.response_posts)
    body = bodies[0]
    assert body["container"]["is_ephemeral"] is True
    assert "message" not in body
    [eph] = fake.ephemerals(user="U0ALICE")
    assert (eph.ts, eph.text, eph.blocks) == (ts, "done", [])


async def test_unknown_response_url_is_404(slack_fake: SlackFake) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{slack_fake.base_url}/commands/T0TIKV/1/forged", json={"text": "x"}) as r,
    ):
        assert r.status == 404
    assert slack_fake.response_posts() == []
