"""The web page: static files, the /ui/state model and the /ui/* actions."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncSay

from slackfake.server import SlackFake
from tests.slackfake.conftest import BoltRig, web_client

INCIDENT_BLOCKS: list[dict[str, Any]] = [
    {
        "type": "header",
        "block_id": "incident:42",
        "text": {"type": "plain_text", "text": "Store 4 down"},
    },
    {
        "type": "section",
        "block_id": "facts",
        "text": {"type": "mrkdwn", "text": "*Store 4* lost heartbeats <@U0ALICE>"},
        "fields": [{"type": "mrkdwn", "text": "*Since*\n12:00"}],
        "accessory": {
            "type": "button",
            "action_id": "details",
            "text": {"type": "plain_text", "text": "Details"},
            "value": "i-42",
        },
    },
    {"type": "divider"},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "risk: _medium_"}]},
    {
        "type": "actions",
        "block_id": "approval:p-7",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "p-7",
                "style": "primary",
                "confirm": {
                    "title": {"type": "plain_text", "text": "Drain store 4?"},
                    "text": {"type": "mrkdwn", "text": "Leaders move *off* store 4."},
                    "confirm": {"type": "plain_text", "text": "Drain"},
                    "deny": {"type": "plain_text", "text": "Cancel"},
                    "style": "danger",
                },
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "p-7",
                "style": "danger",
            },
        ],
    },
]


async def get(fake: SlackFake, path: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as session, session.get(fake.base_url + path) as r:
        return r.status, dict(r.headers), await r.text()


async def ui_post(fake: SlackFake, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, json=body) as r,
    ):
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


async def state(fake: SlackFake, user: str = "U0ALICE") -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{fake.base_url}/ui/state", params={"user": user, "channel": "C0OPS"}) as r,
    ):
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


async def test_page_and_static_files_are_served(slack_fake: SlackFake) -> None:
    status, headers, html = await get(slack_fake, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    for testid in ("user-picker", "composer-input", "messages", "thread-panel", "app-status"):
        assert f'data-testid="{testid}"' in html
    assert '<script src="/static/app.js"' in html

    status, headers, js = await get(slack_fake, "/static/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    for hook in ('"data-action-id"', '"confirm-dialog"', '"reply-count"', '"ephemeral-label"'):
        assert hook in js
    assert (await get(slack_fake, "/static/app.css"))[0] == 200
    assert (await get(slack_fake, "/static/../server.py"))[0] == 404
    assert (await get(slack_fake, "/archives/C0OPS/p1716900100000200"))[0] == 200


async def test_state_is_ready_to_render(slack_fake: SlackFake) -> None:
    client = web_client(slack_fake)
    ts = (
        await client.chat_postMessage(channel="C0OPS", text="Store 4 down", blocks=INCIDENT_BLOCKS)
    )["ts"]
    await client.chat_postMessage(channel="C0OPS", text="*diagnosis*", thread_ts=ts)
    await client.chat_update(channel="C0OPS", ts=ts, text="Store 4 down (ack)")
    await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="only alice")
    await client.reactions_add(channel="C0OPS", name="eyes", timestamp=ts)

    alice = await state(slack_fake, "U0ALICE")
    assert alice["me"] == {"id": "U0ALICE", "name": "alice", "groups": ["oncall"]}
    assert [u["name"] for u in alice["users"]] == ["alice", "bob"]
    assert alice["channel"] == {"id": "C0OPS", "name": "tikv-ops", "topic": ""}
    assert alice["app_connected"] is False

    incident, ephemeral = alice["messages"]
    assert incident["ts"] == ts and incident["author"]["is_bot"] is True
    assert incident["edited"] is True
    assert incident["reply_count"] == 1
    assert [r["html"] for r in incident["replies"]] == ["<b>diagnosis</b>"]
    assert incident["reactions"][0]["emoji"] == "👀"
    kinds = [b["kind"] for b in incident["blocks"]]
    assert kinds == ["header", "section", "divider", "context", "actions"]
    header, section, _, context, actions = incident["blocks"]
    assert header["block_id"] == "incident:42" and header["html"] == "Store 4 down"
    assert section["html"] == (
        '<b>Store 4</b> lost heartbeats <span class="mention" data-user-id="U0ALICE">@alice</span>'
    )
    assert section["fields"] == ["<b>Since</b><br>12:00"]
    assert section["accessory"]["action_id"] == "details"
    assert context["elements"] == [{"kind": "text", "html": "risk: <i>medium</i>"}]
    approve, reject = actions["elements"]
    assert (approve["label"], approve["style"], approve["block_id"]) == (
        "Approve",
        "primary",
        "approval:p-7",
    )
    assert approve["confirm"] == {
        "title": "Drain store 4?",
        "html": "Leaders move <b>off</b> store 4.",
        "confirm": "Drain",
        "deny": "Cancel",
        "style": "danger",
    }
    assert reject["confirm"] is None and reject["style"] == "danger"
    assert ephemeral["kind"] == "ephemeral" and ephemeral["html"] == "only alice"

    bob = await state(slack_fake, "U0BOB")
    assert [m["kind"] for m in bob["messages"]] == ["message"], "alice's ephemeral is hidden"
    assert bob["me"]["groups"] == []


async def test_state_escapes_message_content(slack_fake: SlackFake) -> None:
    client = web_client(slack_fake)
    evil = '<script>alert(1)</script> &lt;img src=x onerror="alert(2)"&gt;'
    await client.chat_postMessage(
        channel="C0OPS",
        text=evil,
        blocks=[{"type": "section", "text": {"type": "plain_text", "text": "<b onclick=x>hi</b>"}}],
    )
    [message] = (await state(slack_fake))["messages"]
    assert "<script" not in message["html"] and "<img" not in message["html"]
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in message["html"]
    assert message["blocks"][0]["html"] == "&lt;b onclick=x&gt;hi&lt;/b&gt;"


async def test_unknown_user_or_channel_in_state(slack_fake: SlackFake) -> None:
    assert (await get(slack_fake, "/ui/state?user=U0NOBODY"))[0] == 404
    assert (await get(slack_fake, "/ui/state?user=U0ALICE&channel=C0NOPE"))[0] == 404
    status, _, _ = await get(slack_fake, "/ui/state")
    assert status == 200, "no user means the first human user"


async def test_page_actions_go_through_socket_mode(bolt: BoltRig) -> None:
    clicks: list[dict[str, Any]] = []

    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck, command: dict[str, Any], say: AsyncSay) -> None:
        await ack(text="on it")
        await say(text="incident", blocks=INCIDENT_BLOCKS)

    @bolt.app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        clicks.append(body)

    @bolt.app.event("app_mention")
    async def mention(ack: AsyncAck, event: dict[str, Any], say: AsyncSay) -> None:
        await ack()
        await say(text=f"hi <@{event['user']}>", thread_ts=event["ts"])

    await bolt.connect()
    fake = bolt.fake
    result = await ui_post(
        fake, "/ui/command", {"user": "U0ALICE", "channel": "C0OPS", "text": "/tikv drain 4"}
    )
    assert result == {"ok": True, "ack": {"text": "on it"}}
    [incident] = await fake.wait_for(lambda: fake.messages("C0OPS"))
    assert (await state(fake))["app_connected"] is True

    result = await ui_post(
        fake,
        "/ui/click",
        {
            "user": "U0BOB",
            "channel": "C0OPS",
            "message_ts": incident.ts,
            "action_id": "approve",
            "block_id": "approval:p-7",
        },
    )
    assert result["ok"] is True
    await fake.wait_for(lambda: clicks)
    assert clicks[0]["user"]["id"] == "U0BOB"
    assert clicks[0]["actions"][0]["value"] == "p-7"

    result = await ui_post(
        fake, "/ui/message", {"user": "U0BOB", "channel": "C0OPS", "text": "@tikv-ops status"}
    )
    assert result["ok"] is True
    mention_msg = fake.messages("C0OPS")[-1]
    assert mention_msg.text == "<@U0TIKVBOT> status" and mention_msg.user == "U0BOB"
    await fake.wait_for(lambda: fake.thread("C0OPS", mention_msg.ts))
    assert fake.thread("C0OPS", mention_msg.ts)[0].text == "hi <@U0BOB>"


async def test_page_reports_an_offline_app(
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
) -> None:
    fake = await make_slack_fake(connect_timeout=0.1)
    result = await ui_post(fake, "/ui/command", {"user": "U0ALICE", "text": "/tikv status"})
    assert result["ok"] is False and result["error"] == "app_offline"
    assert "not connected" in result["message"]
    result = await ui_post(fake, "/ui/click", {"user": "U0ALICE", "message_ts": "1.000001"})
    assert result["ok"] is False and result["error"] == "invalid_request"
    # Like Slack, a message is posted even when the app cannot get the mention event.
    result = await ui_post(fake, "/ui/message", {"user": "U0BOB", "text": "@tikv-ops hello"})
    assert result == {"ok": True}
    assert [m.text for m in fake.messages()] == ["<@U0TIKVBOT> hello"]


async def test_dismiss_hides_an_ephemeral(slack_fake: SlackFake) -> None:
    response = await web_client(slack_fake).chat_postEphemeral(
        channel="C0OPS", user="U0ALICE", text="tmp"
    )
    result = await ui_post(
        slack_fake, "/ui/dismiss", {"user": "U0ALICE", "ts": response["message_ts"]}
    )
    assert result == {"ok": True}
    assert slack_fake.ephemerals(user="U0ALICE") == []


async def test_the_bots_messages_show_emoji_as_characters(slack_fake: SlackFake) -> None:
    """Every message kind the bot sends (its golden records), posted and read back through the
    page's state: no `:arrow_forward:`-style code is left in what the page shows."""
    from tests.bot.records import all_messages
    from tests.slackfake.test_mrkdwn import emoji_codes_the_bot_uses

    client = web_client(slack_fake)
    messages = all_messages()
    for message in messages.values():
        await client.chat_postMessage(channel="C0OPS", text=message.text, blocks=message.blocks)
    shown = json.dumps((await state(slack_fake))["messages"], ensure_ascii=False)
    assert len((await state(slack_fake))["messages"]) == len(messages)
    left = [code for code in emoji_codes_the_bot_uses() if f":{code}:" in shown]
    assert left == []
    assert "▶️ <b>P-7 started</b>" in shown  # execution_started's :arrow_forward:
    assert "⚙️" in shown  # a running proposal's :gear:
