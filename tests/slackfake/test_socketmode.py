"""Socket Mode against the real slack_bolt AsyncApp + AsyncSocketModeHandler (aiohttp)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck, AsyncBoltContext, AsyncRespond, AsyncSay
from slack_sdk.web.async_client import AsyncWebClient

from slackfake.errors import AckTimeout, NoSocketConnection, UnknownAction
from slackfake.server import SlackFake
from tests.slackfake.conftest import APP_TOKEN, BoltRig, web_client

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": "Drain 4?"}},
    {
        "type": "actions",
        "block_id": "approval:p-7",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": '{"proposal_id":"p-7","version":1}',
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": '{"proposal_id":"p-7","version":1}',
                "style": "danger",
            },
        ],
    },
]


async def test_hello_comes_first_and_unknown_tickets_are_refused(slack_fake: SlackFake) -> None:
    url = (await web_client(slack_fake).apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url) as ws:
            hello = await ws.receive_json(timeout=2)
            assert hello["type"] == "hello"
            assert hello["num_connections"] == 1
            assert hello["connection_info"] == {"app_id": "A0TIKVOPS"}
            assert slack_fake.active_sockets == 1
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(url.replace("ticket=", "ticket=forged"))
        assert info.value.status == 401
    assert slack_fake.socket_connections == 1


async def test_raw_client_sees_envelope_and_its_ack_payload_is_returned(
    slack_fake: SlackFake,
) -> None:
    url = (await web_client(slack_fake).apps_connections_open(app_token=APP_TOKEN))["url"]
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        await ws.receive_json(timeout=2)  # hello
        pushed = asyncio.create_task(slack_fake.slash_command(user="U0BOB", text="status 4"))
        envelope = await ws.receive_json(timeout=2)
        assert envelope["type"] == "slash_commands"
        assert envelope["accepts_response_payload"] is True
        assert "retry_attempt" not in envelope
        payload = envelope["payload"]
        assert payload["command"] == "/tikv" and payload["text"] == "status 4"
        assert (payload["user_id"], payload["user_name"]) == ("U0BOB", "bob")
        assert (payload["channel_id"], payload["channel_name"]) == ("C0OPS", "tikv-ops")
        assert payload["response_url"].startswith(f"{slack_fake.base_url}/commands/T0TIKV/")
        await ws.send_str(json.dumps({"envelope_id": envelope["envelope_id"], "payload": {}}))
        ack = await pushed
    assert ack == {} and ack.envelope_id == envelope["envelope_id"]


async def test_slash_command_ack_respond_and_say(bolt: BoltRig) -> None:
    seen: list[dict[str, Any]] = []

    @bolt.app.command("/tikv")
    async def tikv(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, say: AsyncSay
    ) -> None:
        await ack(text=f"Received `{command['text']}`")
        seen.append(command)
        await say(text="Drain requested by <@U0ALICE>", blocks=APPROVAL_BLOCKS)
        await respond(text="Approval requested", response_type="ephemeral")

    await bolt.connect()
    fake = bolt.fake
    ack = await fake.slash_command(user="U0ALICE", text="drain 4", channel="C0OPS")
    assert ack == {"text": "Received `drain 4`"}
    await fake.wait_for(lambda: len(fake.ephemerals(user="U0ALICE")) == 2)

    assert seen[0]["user_id"] == "U0ALICE" and seen[0]["text"] == "drain 4"
    [message] = fake.messages("C0OPS")
    assert message.blocks == APPROVAL_BLOCKS and message.bot_id == "B0TIKVBOT"
    # Ack payload and respond() both become ephemeral messages for the invoking user only.
    assert sorted((e.source, e.text) for e in fake.ephemerals(user="U0ALICE")) == [
        ("ack", "Received `drain 4`"),
        ("response_url", "Approval requested"),
    ]
    assert fake.ephemerals(user="U0BOB") == []
    [post] = fake.response_posts("commands")
    assert post.body == {"text": "Approval requested", "response_type": "ephemeral"}
    assert post.status == 200
    # Bolt fetched the bot identity once, lazily, on the first envelope.
    assert [c.method for c in fake.calls()][:2] == ["apps.connections.open", "auth.test"]


async def test_unhandled_command_times_out_and_slack_tells_the_user(bolt: BoltRig) -> None:
    await bolt.connect()
    with pytest.raises(AckTimeout) as info:
        await bolt.fake.slash_command(user="U0BOB", text="nope", ack_timeout=0.5)
    assert info.value.envelope_type == "slash_commands"
    assert not info.value.lost
    assert bolt.fake.ack_timeouts == [info.value.envelope_id]
    [notice] = bolt.fake.notices(user="U0BOB")
    assert notice.text == '/tikv failed with the error "operation_timeout"'
    assert bolt.fake.ephemerals(user="U0BOB") == []


async def test_click_approve_updates_and_threads(bolt: BoltRig) -> None:
    bodies: list[dict[str, Any]] = []

    @bolt.app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        bodies.append(body)
        channel, ts = body["channel"]["id"], body["message"]["ts"]
        await client.chat_update(channel=channel, ts=ts, text="Approved", blocks=[])
        await client.chat_postMessage(channel=channel, thread_ts=ts, text="Draining store 4")

    await bolt.connect()
    fake = bolt.fake
    posted = await web_client(fake).chat_postMessage(
        channel="C0OPS", text="Drain 4?", blocks=APPROVAL_BLOCKS
    )
    ts = posted["ts"]
    ack = await fake.click(user="U0ALICE", channel="C0OPS", message_ts=ts, action_id="approve")
    assert ack == {}
    await fake.wait_for(lambda: fake.thread("C0OPS", ts))

    body = bodies[0]
    assert body["type"] == "block_actions"
    assert body["user"]["id"] == "U0ALICE"
    assert body["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0OPS",
        "is_ephemeral": False,
    }
    assert body["message"]["blocks"] == APPROVAL_BLOCKS
    action = body["actions"][0]
    assert action["block_id"] == "approval:p-7"
    assert action["value"] == '{"proposal_id":"p-7","version":1}'
    assert action["style"] == "primary"
    assert action["text"] == {"type": "plain_text", "text": "Approve"}
    assert body["response_url"].startswith(f"{fake.base_url}/actions/")

    [message] = fake.messages("C0OPS")
    assert message.ts == ts and message.text == "Approved" and message.blocks == []
    assert message.edits[0].blocks == APPROVAL_BLOCKS
    assert message.reply_count == 1
    assert [r.text for r in fake.thread("C0OPS", ts)] == ["Draining store 4"]

    # A stale client still shows the old buttons: clicking them sends the current message.
    await fake.click(user="U0BOB", message_ts=ts, action_id="approve")
    await fake.wait_for(lambda: len(bodies) == 2)
    assert bodies[1]["message"]["text"] == "Approved"
    assert bodies[1]["actions"][0]["value"] == '{"proposal_id":"p-7","version":1}'

    with pytest.raises(UnknownAction):
        await fake.click(user="U0BOB", message_ts=ts, action_id="no_such_button")


async def test_duplicate_envelope_is_delivered_twice(bolt: BoltRig) -> None:
    runs: list[str] = []

    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        runs.append(command["text"])

    await bolt.connect()
    fake = bolt.fake
    fake.faults.duplicate_next_envelope()
    ack = await fake.slash_command(user="U0ALICE", text="drain 4")
    await fake.wait_for(lambda: len(fake.acks_for(ack.envelope_id)) == 2)
    assert runs == ["drain 4", "drain 4"]
    assert [d.envelope_id for d in fake.deliveries] == [ack.envelope_id] * 2

    await fake.slash_command(user="U0ALICE", text="status")
    assert runs[-1] == "status" and len(runs) == 3, "only the next envelope is duplicated"


async def test_disconnect_makes_the_client_reconnect(bolt: BoltRig) -> None:
    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck) -> None:
        await ack()

    await bolt.connect()
    fake = bolt.fake
    assert (fake.connections_opened, fake.socket_connections) == (1, 1)
    assert await fake.disconnect("refresh_requested") == 1
    await fake.wait_for(lambda: fake.socket_connections == 2 and fake.active_sockets == 1)
    assert fake.connections_opened == 2
    ack = await fake.slash_command(user="U0ALICE", text="status")
    assert ack.connection_id == 2


async def test_server_side_close_makes_the_client_reconnect(bolt: BoltRig) -> None:
    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck) -> None:
        await ack()

    await bolt.connect()
    fake = bolt.fake
    assert await fake.close_sockets() == 1
    ack = await fake.slash_command(user="U0ALICE", text="status")
    assert ack.connection_id == 2
    assert fake.connections_opened == 2


async def test_dropped_socket_is_noticed_and_replaced(bolt: BoltRig) -> None:
    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck) -> None:
        await ack()

    await bolt.connect()
    fake = bolt.fake
    assert fake.faults.drop_socket() == 1
    ack = await fake.slash_command(user="U0ALICE", text="status")
    assert ack.connection_id == 2
    assert fake.connections_opened == 2


async def test_lost_ack_then_redelivery_of_the_same_event(bolt: BoltRig) -> None:
    seen: list[tuple[str, str | None]] = []

    @bolt.app.event("app_mention")
    async def mention(ack: AsyncAck, event: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        seen.append((event["ts"], context.get("x-slack-retry-num")))

    @bolt.app.middleware
    async def retry_header(context: AsyncBoltContext, req: Any, next: Any) -> None:
        retry = req.headers.get("x-slack-retry-num")
        context["x-slack-retry-num"] = retry[0] if isinstance(retry, list) else retry
        await next()

    await bolt.connect()
    fake = bolt.fake
    fake.faults.lose_next_ack()
    with pytest.raises(AckTimeout) as info:
        await fake.user_message(user="U0BOB", text="<@U0TIKVBOT> status")
    assert info.value.lost
    envelope_id = info.value.envelope_id
    [lost] = fake.acks_for(envelope_id)
    assert lost.lost

    ack = await fake.redeliver(envelope_id, reason="timeout")
    assert ack.envelope_id == envelope_id and not ack.lost
    redelivered = fake.deliveries[-1].envelope
    assert (redelivered["retry_attempt"], redelivered["retry_reason"]) == (1, "timeout")
    assert redelivered["payload"]["event_id"] == fake.deliveries[0].envelope["payload"]["event_id"]
    ts = fake.messages("C0OPS")[0].ts
    assert seen == [(ts, "0"), (ts, "1")]


async def test_no_connection_is_reported(
    make_slack_fake: Any,
) -> None:
    fake = await make_slack_fake(connect_timeout=0.1)
    with pytest.raises(NoSocketConnection):
        await fake.slash_command(user="U0ALICE", text="status")


async def test_modal_open_and_submit_with_errors_then_success(bolt: BoltRig) -> None:
    submissions: list[dict[str, Any]] = []

    @bolt.app.command("/tikv")
    async def tikv(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={
                "type": "modal",
                "callback_id": "reject_reason",
                "private_metadata": "p-7",
                "title": {"type": "plain_text", "text": "Reject"},
                "submit": {"type": "plain_text", "text": "Reject"},
                "blocks": [
                    {
                        "type": "input",
                        "block_id": "reason",
                        "label": {"type": "plain_text", "text": "Reason"},
                        "element": {"type": "plain_text_input", "action_id": "reason_input"},
                    }
                ],
            },
        )

    @bolt.app.view("reject_reason")
    async def reject(ack: AsyncAck, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["reason_input"]["value"]
        submissions.append(view)
        if len(reason) < 5:
            await ack(response_action="errors", errors={"reason": "Say a bit more"})
        else:
            await ack()

    await bolt.connect()
    fake = bolt.fake
    await fake.slash_command(user="U0BOB", text="reject p-7")
    [view] = await fake.wait_for(lambda: fake.views(user="U0BOB"))
    assert view.body["callback_id"] == "reject_reason"

    ack = await fake.submit_view(user="U0BOB", view_id=view.id, values={"reason": "no"})
    assert ack["response_action"] == "errors"
    assert view.errors == {"reason": "Say a bit more"} and not view.closed

    await fake.submit_view(user="U0BOB", view_id=view.id, values={"reason": "disk is fine"})
    assert view.closed
    assert submissions[-1]["private_metadata"] == "p-7"
    assert fake.views(user="U0BOB") == []


async def test_click_on_a_button_in_a_thread_reply(bolt: BoltRig) -> None:
    bodies: list[dict[str, Any]] = []

    @bolt.app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        bodies.append(body)

    await bolt.connect()
    client = web_client(bolt.fake)
    parent = (await client.chat_postMessage(channel="C0OPS", text="incident"))["ts"]
    reply = (
        await client.chat_postMessage(
            channel="C0OPS", text="proposal", blocks=APPROVAL_BLOCKS, thread_ts=parent
        )
    )["ts"]
    await bolt.fake.click(user="U0ALICE", message_ts=reply, action_id="approve")
    await bolt.fake.wait_for(lambda: bodies)
    assert bodies[0]["container"]["thread_ts"] == parent
    assert bodies[0]["container"]["message_ts"] == reply
    assert bodies[0]["message"]["thread_ts"] == parent


async def test_two_approvers_clicking_at_once_send_two_envelopes(bolt: BoltRig) -> None:
    bodies: list[dict[str, Any]] = []

    @bolt.app.action("approve")
    async def approve(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        bodies.append(body)

    await bolt.connect()
    fake = bolt.fake
    ts = (
        await web_client(fake).chat_postMessage(
            channel="C0OPS", text="Drain 4?", blocks=APPROVAL_BLOCKS
        )
    )["ts"]
    assert fake.messages("C0OPS")[0].action_ids() == ["approve", "reject"]
    acks = await asyncio.gather(
        fake.click(user="U0ALICE", message_ts=ts, action_id="approve"),
        fake.click(user="U0BOB", message_ts=ts, action_id="approve"),
    )
    assert len({a.envelope_id for a in acks}) == 2
    assert sorted(b["user"]["id"] for b in bodies) == ["U0ALICE", "U0BOB"]
    assert len({b["actions"][0]["action_ts"] for b in bodies}) == 2
    assert len({b["trigger_id"] for b in bodies}) == 2
