"""The stand-in's upload flow (driven by slack_sdk's files_upload_v2 and raw requests), its App
Home (views.publish, app_home_opened, clicks from a view), and `<!date^…>` tokens rendered in
the viewer's timezone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from slack_bolt.async_app import AsyncAck
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from slackfake.dates import parse_token, render
from slackfake.mrkdwn import PLAIN_NAMES, mrkdwn_to_html
from slackfake.server import SlackFake
from slackfake.ui import build_state
from tests.slackfake.conftest import BoltRig, web_client

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 500


async def test_files_upload_v2_shares_an_image_in_a_thread(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C0OPS", text="incident")
    answer = await client.files_upload_v2(
        channel="C0OPS",
        thread_ts=parent["ts"],
        file=PNG,
        filename="I-1-opened.png",
        title="I-1 chart",
        alt_txt="write P99 per store",
    )
    file = answer["file"]
    assert file["name"] == "I-1-opened.png" and file["title"] == "I-1 chart"
    assert file["mimetype"] == "image/png" and file["size"] == len(PNG)
    [reply] = slack_fake.thread("C0OPS", parent["ts"])
    assert reply.files[0]["id"] == file["id"] and reply.files[0]["alt_txt"] == "write P99 per store"
    assert file["shares"]["public"]["C0OPS"][0]["ts"] == reply.ts
    # The page shows it as an image, served by the stand-in.
    state = build_state(slack_fake, "U0ALICE", "C0OPS")
    [shown] = state["messages"][0]["replies"][0]["files"]
    assert shown["image"] is True and shown["alt"] == "write P99 per store"
    async with aiohttp.ClientSession() as http, http.get(slack_fake.base_url + shown["url"]) as r:
        assert r.status == 200 and r.content_type == "image/png"
        assert await r.read() == PNG


async def error_of(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def test_upload_checks(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    missing = await error_of(client.api_call("files.getUploadURLExternal", params={"length": 3}))
    assert missing.response["error"] == "invalid_arguments"
    zero = await error_of(client.files_getUploadURLExternal(filename="a.png", length=0))
    assert zero.response["error"] == "invalid_arguments"
    started = await client.files_getUploadURLExternal(filename="a.png", length=4)
    file_id = started["file_id"]
    # Not uploaded yet: it cannot be completed.
    early = await error_of(client.files_completeUploadExternal(files=[{"id": file_id}]))
    assert early.response["error"] == "invalid_arguments"
    unknown = await error_of(client.files_completeUploadExternal(files=[{"id": "F0NOPE"}]))
    assert unknown.response["error"] == "file_not_found"
    async with aiohttp.ClientSession() as http:
        async with http.post(started["upload_url"], data=b"toolong") as wrong:
            assert wrong.status == 400  # not the declared length
        async with http.post(started["upload_url"], data=b"abcd") as right:
            assert right.status == 200 and await right.text() == "OK - 4"
        async with http.post(started["upload_url"], data=b"abcd") as again:
            assert again.status == 404  # an upload URL is used once
    parent = await client.chat_postMessage(channel="C0OPS", text="p")
    reply = await client.chat_postMessage(channel="C0OPS", text="r", thread_ts=parent["ts"])
    in_reply = await error_of(
        client.files_completeUploadExternal(
            files=[{"id": file_id}], channel_id="C0OPS", thread_ts=reply["ts"]
        )
    )
    assert in_reply.response["error"] == "thread_not_found"  # a reply's ts is not a thread
    done = await client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="C0OPS")
    assert done["files"][0]["id"] == file_id
    twice = await error_of(client.files_completeUploadExternal(files=[{"id": file_id}]))
    assert twice.response["error"] == "invalid_arguments"


async def test_uploads_need_files_write(make_slack_fake: Any) -> None:
    fake = await make_slack_fake(scopes=("chat:write",))
    client = web_client(fake)
    err = await error_of(client.files_upload_v2(channel="C0OPS", file=PNG, filename="a.png"))
    assert err.response["error"] == "missing_scope" and err.response["needed"] == "files:write"


async def test_views_publish_checks_and_stores_one_home_per_user(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    home = {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
    }
    first = await client.views_publish(user_id="U0ALICE", view=home)
    again = await client.views_publish(user_id="U0ALICE", view=home)
    assert first["view"]["id"] == again["view"]["id"] and first["view"]["type"] == "home"
    assert slack_fake.home("U0ALICE") is not None and slack_fake.home("U0BOB") is None
    modal = await error_of(client.views_publish(user_id="U0ALICE", view={**home, "type": "modal"}))
    assert modal.response["error"] == "invalid_arguments"
    nobody = await error_of(client.views_publish(user_id="U0NOBODY", view=home))
    assert nobody.response["error"] == "user_not_found"
    stale = await error_of(client.views_publish(user_id="U0ALICE", view=home, hash="old"))
    assert stale.response["error"] == "hash_conflict"


async def test_opening_home_sends_app_home_opened_and_clicks_come_from_the_view(
    bolt: BoltRig,
) -> None:
    opened: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []

    async def on_open(ack: AsyncAck, event: dict[str, Any]) -> None:
        await ack()
        opened.append(event)

    async def on_click(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        clicks.append(body)

    bolt.app.event("app_home_opened")(on_open)
    bolt.app.action("go")(on_click)
    await bolt.connect()
    await bolt.fake.open_home(user="U0ALICE")
    assert opened[0]["user"] == "U0ALICE" and opened[0]["tab"] == "home"
    assert "view" not in opened[0]  # nothing published yet
    button = {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}}
    await bolt.app.client.views_publish(
        user_id="U0ALICE",
        view={
            "type": "home",
            "blocks": [{"type": "actions", "block_id": "b1", "elements": [button]}],
        },
    )
    await bolt.fake.click_home(user="U0ALICE", action_id="go")
    [body] = clicks
    assert body["container"]["type"] == "view" and body["view"]["type"] == "home"
    assert body["actions"][0]["block_id"] == "b1" and "channel" not in body


def test_date_tokens_render_in_the_viewers_timezone() -> None:
    epoch = 1714572180  # 2024-05-01 14:03 UTC
    token = parse_token(f"!date^{epoch}^{{date_short_pretty}} {{time}}|14:03 UTC")
    assert token is not None and token.fallback == "14:03 UTC"
    same_day = epoch + 3600
    assert render(token, "Europe/Amsterdam", now=same_day) == "Today 4:03 PM"
    assert render(token, "America/Los_Angeles", now=same_day) == "Today 7:03 AM"
    assert render(token, "Asia/Tokyo", now=epoch + 86400 * 3) == "May 1, 2024 11:03 PM"
    assert render(token, "Europe/Amsterdam", now=epoch + 86400) == "Yesterday 4:03 PM"
    full = parse_token(f"!date^{epoch}^{{date_num}} {{time_secs}} ({{ago}})|x")
    assert full is not None
    assert render(full, "UTC", now=epoch + 180) == "2024-05-01 2:03:00 PM (3 minutes ago)"


def test_mrkdwn_shows_date_tokens_for_the_reader_and_keeps_the_fallback_as_title() -> None:
    text = "since <!date^1714572180^{time}|14:03 UTC>"
    tokyo = mrkdwn_to_html(text, replace(PLAIN_NAMES, tz="Asia/Tokyo"))
    assert ">11:03 PM</time>" in tokyo and 'title="14:03 UTC"' in tokyo
    assert ">2:03 PM</time>" in mrkdwn_to_html(text)  # UTC for no one in particular
    assert mrkdwn_to_html("<!date^abc^{time}|fallback &lt;b&gt;>") == "fallback &lt;b&gt;"
