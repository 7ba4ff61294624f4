"""The Web API, driven by the real slack_sdk AsyncWebClient (and raw aiohttp where the SDK
cannot produce the request)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from slackfake.server import SlackFake
from tests.slackfake.conftest import APP_TOKEN, web_client

TS = re.compile(r"^\d{10}\.\d{6}$")


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


async def api_error(call: Awaitable[Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


async def test_auth_test_identifies_the_bot_and_sends_scopes(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    response = await client.auth_test()
    assert response["user_id"] == "U0TIKVBOT"
    assert response["bot_id"] == "B0TIKVBOT"
    assert response["team_id"] == "T0TIKV"
    scopes = response.headers["x-oauth-scopes"].split(",")
    assert {"chat:write", "commands", "usergroups:read", "users:read"} <= set(scopes)
    assert response.headers["content-type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize(
    ("token", "error"),
    [
        (None, "not_authed"),
        ("xoxb-wrong", "invalid_auth"),
        (APP_TOKEN, "not_allowed_token_type"),
    ],
)
async def test_bot_methods_check_the_token(
    slack_fake: SlackFake, token: str | None, error: str
) -> None:
    client = AsyncWebClient(token=token, base_url=slack_fake.api_url)
    err = await api_error(client.chat_postMessage(channel="C0OPS", text="hi"))
    assert err.response["error"] == error
    assert slack_fake.messages("C0OPS") == []


async def test_connections_open_needs_the_app_token(slack_fake: SlackFake) -> None:
    err = await api_error(web_client(slack_fake).apps_connections_open(app_token="xoxb-test"))
    assert err.response["error"] == "not_allowed_token_type"
    err = await api_error(web_client(slack_fake).apps_connections_open(app_token="xapp-nope"))
    assert err.response["error"] == "invalid_auth"
    assert slack_fake.connections_opened == 0

    response = await web_client(slack_fake).apps_connections_open(app_token=APP_TOKEN)
    assert response["url"].startswith(f"ws://127.0.0.1:{slack_fake.port}/link/?ticket=")
    assert slack_fake.connections_opened == 1
    call = slack_fake.calls("apps.connections.open")[-1]
    assert call.token == APP_TOKEN
    assert call.http_method == "POST"


async def test_unknown_methods_and_errors_are_json(slack_fake: SlackFake) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{slack_fake.api_url}nope.nothing", headers={"Authorization": "Bearer xoxb-test"}
        ) as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=utf-8"
        assert await response.json() == {"ok": False, "error": "unknown_method"}


async def test_post_message_shapes_and_strictly_increasing_ts(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    blocks = [section("*Store 4* is down")]
    first = await client.chat_postMessage(channel="C0OPS", text="Store 4 down", blocks=blocks)
    assert first["channel"] == "C0OPS"
    assert TS.match(first["ts"])
    message = first["message"]
    assert message["bot_id"] == "B0TIKVBOT"
    assert message["user"] == "U0TIKVBOT"
    assert message["blocks"] == blocks
    assert message["ts"] == first["ts"]

    stamps = [first["ts"]]
    for i in range(20):
        stamps.append((await client.chat_postMessage(channel="#tikv-ops", text=f"m{i}"))["ts"])
    assert all(TS.match(ts) for ts in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    stored = slack_fake.messages("C0OPS")
    assert [m.ts for m in stored] == stamps
    assert stored[0].blocks == blocks and stored[0].text == "Store 4 down"


async def test_post_message_errors(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    assert (await api_error(client.chat_postMessage(channel="C0NOPE", text="x"))).response[
        "error"
    ] == "channel_not_found"
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        err = await api_error(client.chat_postMessage(channel="C0OPS", text=""))
    assert err.response["error"] == "no_text"
    err = await api_error(client.chat_postMessage(channel="C0OPS", text="x", thread_ts="1.000001"))
    assert err.response["error"] == "thread_not_found"


async def test_threads_replies_and_history(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    parent = (await client.chat_postMessage(channel="C0OPS", text="incident"))["ts"]
    other = (await client.chat_postMessage(channel="C0OPS", text="other"))["ts"]
    r1 = await client.chat_postMessage(channel="C0OPS", text="diagnosis", thread_ts=parent)
    r2 = await client.chat_postMessage(channel="C0OPS", text="executed", thread_ts=parent)
    assert r1["message"]["thread_ts"] == parent

    err = await api_error(
        client.chat_postMessage(channel="C0OPS", text="nested", thread_ts=r1["ts"])
    )
    assert err.response["error"] == "thread_not_found"

    assert [m.ts for m in slack_fake.messages("C0OPS")] == [parent, other]
    head = slack_fake.message("C0OPS", parent)
    assert head is not None and head.reply_count == 2 and head.thread_ts == parent
    assert [m.text for m in slack_fake.thread("C0OPS", parent)] == ["diagnosis", "executed"]

    history = await client.conversations_history(channel="C0OPS")
    assert [m["ts"] for m in history["messages"]] == [other, parent]
    assert history["messages"][1]["reply_count"] == 2
    assert history["messages"][1]["latest_reply"] == r2["ts"]

    replies = await client.conversations_replies(channel="C0OPS", ts=parent)
    assert [m["text"] for m in replies["messages"]] == ["incident", "diagnosis", "executed"]

    page = await client.conversations_history(channel="C0OPS", limit=1)
    assert page["has_more"] is True
    rest = await client.conversations_history(
        channel="C0OPS", limit=1, cursor=page["response_metadata"]["next_cursor"]
    )
    assert [m["ts"] for m in rest["messages"]] == [parent]


async def test_update_keeps_ts_and_records_history(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    blocks = [section("Approve?")]
    ts = (await client.chat_postMessage(channel="C0OPS", text="v1", blocks=blocks))["ts"]
    response = await client.chat_update(channel="C0OPS", ts=ts, text="v2")
    assert response["ts"] == ts
    assert response["text"] == "v2"
    assert response["message"]["edited"]["user"] == "U0TIKVBOT"
    msg = slack_fake.message("C0OPS", ts)
    assert msg is not None
    assert msg.blocks == blocks, "blocks omitted from chat.update are kept"

    await client.chat_update(channel="C0OPS", ts=ts, text="v3", blocks=[section("Approved")])
    assert msg.text == "v3" and msg.blocks == [section("Approved")]
    assert [(e.text, e.blocks) for e in msg.edits] == [("v1", blocks), ("v2", blocks)]
    assert msg.edited and msg.edited_ts is not None and msg.edited_ts > ts
    assert [m.ts for m in slack_fake.messages("C0OPS")] == [ts]

    err = await api_error(client.chat_update(channel="C0OPS", ts="1.000001", text="x"))
    assert err.response["error"] == "message_not_found"


async def test_only_the_bots_messages_can_be_updated(
    bolt_free_user_message: Callable[[], Awaitable[str]], client: AsyncWebClient
) -> None:
    ts = await bolt_free_user_message()
    err = await api_error(client.chat_update(channel="C0OPS", ts=ts, text="hijack"))
    assert err.response["error"] == "cant_update_message"


@pytest.fixture
def bolt_free_user_message(slack_fake: SlackFake) -> Callable[[], Awaitable[str]]:
    async def post() -> str:
        msg = await slack_fake.user_message(user="U0BOB", text="hello")
        return msg.ts

    return post


async def test_ephemeral_messages_are_per_user(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    response = await client.chat_postEphemeral(channel="C0OPS", user="U0ALICE", text="for alice")
    assert TS.match(response["message_ts"])
    await client.chat_postEphemeral(channel="C0OPS", user="U0BOB", text="for bob")
    assert [e.text for e in slack_fake.ephemerals(user="U0ALICE")] == ["for alice"]
    assert [e.text for e in slack_fake.ephemerals(user="U0BOB")] == ["for bob"]
    assert slack_fake.messages("C0OPS") == []
    err = await api_error(client.chat_postEphemeral(channel="C0OPS", user="U0NOBODY", text="x"))
    assert err.response["error"] == "user_not_found"


async def test_directory_methods(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U0ALICE"))["user"]
    assert (user["id"], user["name"], user["is_bot"], user["deleted"]) == (
        "U0ALICE",
        "alice",
        False,
        False,
    )
    assert (await client.usergroups_users_list(usergroup="S0ONCALL"))["users"] == ["U0ALICE"]
    channel = (await client.conversations_info(channel="C0OPS"))["channel"]
    assert (channel["id"], channel["name"], channel["is_member"]) == ("C0OPS", "tikv-ops", True)

    assert (await api_error(client.users_info(user="U0NOBODY"))).response[
        "error"
    ] == "user_not_found"
    assert (await api_error(client.usergroups_users_list(usergroup="S0NOPE"))).response[
        "error"
    ] == "no_such_subteam"
    assert (await api_error(client.conversations_info(channel="C0NOPE"))).response[
        "error"
    ] == "channel_not_found"


async def test_missing_scope(make_slack_fake: Callable[..., Awaitable[SlackFake]]) -> None:
    fake = await make_slack_fake(scopes=["chat:write", "commands"])
    err = await api_error(web_client(fake).users_info(user="U0ALICE"))
    assert err.response["error"] == "missing_scope"
    assert err.response["needed"] == "users:read"
    assert err.response["provided"] == "chat:write,commands"


async def test_form_query_and_json_parameters_are_merged(slack_fake: SlackFake) -> None:
    auth = {"Authorization": "Bearer xoxb-test"}
    blocks = [section("from a form")]
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{slack_fake.api_url}chat.postMessage",
            params={"channel": "C0OPS"},
            data={"text": "form text", "blocks": json.dumps(blocks)},
            headers=auth,
        ) as response:
            body = await response.json()
            assert body["ok"] is True
        async with session.post(
            f"{slack_fake.api_url}chat.postMessage?channel=C0OPS",
            json={"text": "json text", "unfurl_links": False, "team_id": "T0TIKV"},
            headers=auth,
        ) as response:
            assert (await response.json())["ok"] is True
        async with session.get(
            f"{slack_fake.api_url}users.info", params={"user": "U0BOB", "token": "xoxb-test"}
        ) as response:
            assert (await response.json())["user"]["name"] == "bob"
    form_msg, json_msg = slack_fake.messages("C0OPS")
    assert (form_msg.text, form_msg.blocks) == ("form text", blocks)
    assert json_msg.text == "json text"
    recorded = slack_fake.calls("chat.postMessage")[1].params
    assert recorded == {
        "channel": "C0OPS",
        "text": "json text",
        "unfurl_links": False,
        "team_id": "T0TIKV",
    }


async def test_invalid_blocks_are_refused_and_nothing_is_posted(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    err = await api_error(
        client.chat_postMessage(channel="C0OPS", text="x", blocks=[{"type": "divider"}] * 51)
    )
    assert err.response["error"] == "invalid_blocks"
    assert err.response["errors"] == ["no more than 50 items allowed [json-pointer:/blocks]"]

    err = await api_error(
        client.chat_postMessage(channel="C0OPS", text="x", blocks=[section("y" * 3001)])
    )
    assert err.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert err.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert slack_fake.messages("C0OPS") == []

    ts = (await client.chat_postMessage(channel="C0OPS", text="ok"))["ts"]
    err = await api_error(
        client.chat_update(channel="C0OPS", ts=ts, text="x", blocks=[{"type": "divider"}] * 51)
    )
    assert err.response["error"] == "invalid_blocks"
    msg = slack_fake.message("C0OPS", ts)
    assert msg is not None and msg.text == "ok" and msg.edits == []


async def test_very_long_text_is_truncated_with_a_warning(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    response = await client.chat_postMessage(channel="C0OPS", text="z" * 40_010)
    assert response["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(slack_fake.messages("C0OPS")[0].text) == 40_000


async def test_rate_limit_is_retried_after_retry_after_and_posts_once(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    slack_fake.faults.rate_limit("chat.postMessage", times=1, retry_after=1)
    response = await client.chat_postMessage(channel="C0OPS", text="once")
    assert response["ok"] is True
    calls = slack_fake.calls("chat.postMessage")
    assert [(c.status, c.fault) for c in calls] == [(429, "ratelimited"), (200, None)]
    assert calls[0].response == {"ok": False, "error": "ratelimited"}
    assert [m.text for m in slack_fake.messages("C0OPS")] == ["once"]


async def test_rate_limit_without_retry_handler_surfaces_429(slack_fake: SlackFake) -> None:
    slack_fake.faults.rate_limit("chat.postMessage", times=1, retry_after=7)
    err = await api_error(web_client(slack_fake).chat_postMessage(channel="C0OPS", text="x"))
    assert err.response.status_code == 429
    assert err.response.headers["Retry-After"] == "7"
    assert err.response["error"] == "ratelimited"
    assert slack_fake.messages("C0OPS") == []
    assert slack_fake.faults.pending == []


async def test_server_errors_are_retried_by_the_server_error_handler(
    slack_fake: SlackFake,
) -> None:
    slack_fake.faults.server_error("chat.update", times=1, status=503)
    slack_fake.faults.server_error("chat.postMessage", times=1, status=500)
    plain = web_client(slack_fake)
    err = await api_error(plain.chat_update(channel="C0OPS", ts="1.000001", text="x"))
    assert err.response.status_code == 503

    retrying = web_client(
        slack_fake, retry_handlers=[AsyncServerErrorRetryHandler(max_retry_count=1)]
    )
    response = await retrying.chat_postMessage(channel="C0OPS", text="after 500")
    assert response["ok"] is True
    assert [c.status for c in slack_fake.calls("chat.postMessage")] == [500, 200]
    assert len(slack_fake.messages("C0OPS")) == 1


async def test_injected_errors_and_wildcards(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    slack_fake.faults.error("chat.postMessage", "channel_not_found", times=2)
    for _ in range(2):
        err = await api_error(client.chat_postMessage(channel="C0OPS", text="x"))
        assert err.response["error"] == "channel_not_found"
    assert (await client.chat_postMessage(channel="C0OPS", text="x"))["ok"] is True

    slack_fake.faults.error("*", "fatal_error", times=1, detail="boom")
    err = await api_error(client.users_info(user="U0ALICE"))
    assert err.response.data == {"ok": False, "error": "fatal_error", "detail": "boom"}
    assert (await client.users_info(user="U0ALICE"))["ok"] is True


async def test_slow_responses(slack_fake: SlackFake) -> None:
    slack_fake.faults.slow("users.info", delay=2.0)
    impatient = web_client(slack_fake, timeout=0.2)
    with pytest.raises(asyncio.TimeoutError):
        await impatient.users_info(user="U0ALICE")
    # The slow fault fired once; the next call is answered at once.
    assert (await impatient.users_info(user="U0ALICE"))["ok"] is True


async def test_every_call_is_recorded(slack_fake: SlackFake, client: AsyncWebClient) -> None:
    await client.chat_postMessage(channel="C0OPS", text="a")
    await api_error(client.users_info(user="U0NOBODY"))
    calls = slack_fake.calls()
    assert [c.method for c in calls] == ["chat.postMessage", "users.info"]
    assert calls[0].params["text"] == "a"
    assert calls[0].ok and not calls[1].ok
    assert calls[0].token == "xoxb-test"
    assert calls[0].at <= calls[1].at
    assert calls[1].response == {"ok": False, "error": "user_not_found"}


async def test_reactions_permalink_and_delete(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    ts = (await client.chat_postMessage(channel="C0OPS", text="x"))["ts"]
    await client.reactions_add(channel="C0OPS", name="eyes", timestamp=ts)
    err = await api_error(client.reactions_add(channel="C0OPS", name="eyes", timestamp=ts))
    assert err.response["error"] == "already_reacted"
    msg = slack_fake.message("C0OPS", ts)
    assert msg is not None and msg.reactions == {"eyes": ["U0TIKVBOT"]}

    link = (await client.chat_getPermalink(channel="C0OPS", message_ts=ts))["permalink"]
    assert link == f"{slack_fake.page_url}archives/C0OPS/p{ts.replace('.', '')}"

    await client.chat_delete(channel="C0OPS", ts=ts)
    assert slack_fake.messages("C0OPS") == []


# ----- a lost answer: Slack did the work, the caller never heard ---------------------------


async def test_a_post_whose_connection_drops_is_stored_and_the_caller_sees_a_disconnect(
    slack_fake: SlackFake,
) -> None:
    slack_fake.faults.lose_answer("chat.postMessage")
    no_retries = web_client(slack_fake, retry_handlers=[])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await no_retries.chat_postMessage(channel="C0OPS", text="stored")
    [stored] = slack_fake.messages("C0OPS")
    assert stored.text == "stored"
    [call] = slack_fake.calls("chat.postMessage")
    assert call.lost and call.ok and call.fault == "lost_answer"
    assert call.response is not None and call.response["ts"] == stored.ts
    assert slack_fake.faults.pending == []
    # Only the next call was affected.
    assert (await no_retries.chat_postMessage(channel="C0OPS", text="x"))["ok"]


async def test_the_sdks_connection_retry_posts_a_dropped_message_twice(
    slack_fake: SlackFake,
) -> None:
    """Why the bot must not let slack_sdk retry posts blindly: the retry cannot know that
    Slack stored the first one."""
    slack_fake.faults.lose_answer("chat.postMessage")
    retrying = web_client(
        slack_fake, retry_handlers=[AsyncConnectionErrorRetryHandler(max_retry_count=1)]
    )
    assert (await retrying.chat_postMessage(channel="C0OPS", text="twice"))["ok"]
    assert [m.text for m in slack_fake.messages("C0OPS")] == ["twice", "twice"]


async def test_a_gateway_error_page_after_the_post_was_stored(slack_fake: SlackFake) -> None:
    slack_fake.faults.lose_answer("chat.postMessage", how="server_error", status=502)
    plain = web_client(slack_fake, retry_handlers=[])
    err = await api_error(plain.chat_postMessage(channel="C0OPS", text="s"))
    assert err.response.status_code == 502
    assert [m.text for m in slack_fake.messages("C0OPS")] == ["s"]


async def test_a_late_answer_times_the_caller_out_after_the_post_was_stored(
    slack_fake: SlackFake,
) -> None:
    slack_fake.faults.lose_answer("chat.postMessage", how="late", delay=5.0)
    impatient = web_client(slack_fake, timeout=0.3, retry_handlers=[])
    with pytest.raises(asyncio.TimeoutError):
        await impatient.chat_postMessage(channel="C0OPS", text="late")
    assert [m.text for m in slack_fake.messages("C0OPS")] == ["late"]


def test_lose_answer_checks_its_arguments(slack_fake: SlackFake) -> None:
    with pytest.raises(ValueError, match="5xx"):
        slack_fake.faults.lose_answer("chat.postMessage", how="server_error", status=200)
    with pytest.raises(ValueError, match="positive delay"):
        slack_fake.faults.lose_answer("chat.postMessage", how="late", delay=0)
    with pytest.raises(ValueError, match="at least 1"):
        slack_fake.faults.lose_answer("chat.postMessage", times=0)


# ----- message metadata and reading it back ------------------------------------------------

META = {"event_type": "tikvops_message", "event_payload": {"key": "7.1700000000"}}


async def test_metadata_is_stored_and_returned_only_to_readers_who_ask(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C0OPS", text="parent", metadata=META)
    assert parent["message"]["metadata"] == META
    reply = await client.chat_postMessage(
        channel="C0OPS", text="reply", thread_ts=parent["ts"], metadata=META
    )
    plain = await client.conversations_history(channel="C0OPS")
    assert "metadata" not in plain["messages"][0]
    full = await client.conversations_history(channel="C0OPS", include_all_metadata=True)
    assert full["messages"][0]["metadata"] == META
    thread = await client.conversations_replies(
        channel="C0OPS", ts=parent["ts"], include_all_metadata=True
    )
    assert [(m["ts"], m["metadata"]) for m in thread["messages"]] == [
        (parent["ts"], META),
        (reply["ts"], META),
    ]
    bare = await client.conversations_replies(channel="C0OPS", ts=parent["ts"])
    assert all("metadata" not in m for m in bare["messages"])


async def test_chat_update_keeps_metadata_unless_it_is_given(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    ts = (await client.chat_postMessage(channel="C0OPS", text="v1", metadata=META))["ts"]
    await client.chat_update(channel="C0OPS", ts=ts, text="v2")
    msg = slack_fake.message("C0OPS", ts)
    assert msg is not None and msg.metadata == META
    other = {"event_type": "other", "event_payload": {}}
    await client.chat_update(channel="C0OPS", ts=ts, text="v3", metadata=other)
    assert msg.metadata == other


@pytest.mark.parametrize(
    "metadata",
    [
        {"event_payload": {}},
        {"event_type": "", "event_payload": {}},
        {"event_type": 7, "event_payload": {}},
        {"event_type": "x", "event_payload": "not an object"},
        "{not json",
        ["event_type"],
    ],
)
async def test_malformed_metadata_is_refused(
    slack_fake: SlackFake, client: AsyncWebClient, metadata: Any
) -> None:
    err = await api_error(client.chat_postMessage(channel="C0OPS", text="x", metadata=metadata))
    assert err.response["error"] == "invalid_metadata_format"
    assert slack_fake.messages("C0OPS") == []


async def test_history_reads_need_the_history_scope_of_the_channel_type(
    make_slack_fake: Callable[..., Awaitable[SlackFake]],
) -> None:
    fake = await make_slack_fake(
        channels={"C0OPS": "tikv-ops", "G0PRIV": {"name": "secret", "is_private": True}},
        scopes=("chat:write", "channels:history"),
    )
    client = web_client(fake)
    ts = (await client.chat_postMessage(channel="G0PRIV", text="x"))["ts"]
    for call in (
        client.conversations_history(channel="G0PRIV"),
        client.conversations_replies(channel="G0PRIV", ts=ts),
    ):
        err = await api_error(call)
        assert err.response["error"] == "missing_scope"
        assert err.response["needed"] == "groups:history"
    assert (await client.conversations_history(channel="C0OPS"))["ok"]

    public_only = await make_slack_fake(scopes=("chat:write", "groups:history"))
    err = await api_error(web_client(public_only).conversations_history(channel="C0OPS"))
    assert (err.response["error"], err.response["needed"]) == ("missing_scope", "channels:history")


async def test_history_window_and_argument_errors(
    slack_fake: SlackFake, client: AsyncWebClient
) -> None:
    first = (await client.chat_postMessage(channel="C0OPS", text="first"))["ts"]
    second = (await client.chat_postMessage(channel="C0OPS", text="second"))["ts"]
    since = await client.conversations_history(channel="C0OPS", oldest=first)
    assert [m["ts"] for m in since["messages"]] == [second]
    whole_seconds = first.split(".")[0]
    both = await client.conversations_history(channel="C0OPS", oldest=whole_seconds)
    assert [m["ts"] for m in both["messages"]] == [second, first]
    for args, error in (
        ({"oldest": "yesterday"}, "invalid_ts_oldest"),
        ({"latest": "1.2.3"}, "invalid_ts_latest"),
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
    ):
        err = await api_error(client.conversations_history(channel="C0OPS", **args))
        assert err.response["error"] == error
    err = await api_error(client.conversations_history(channel="C0NOWHERE"))
    assert err.response["error"] == "channel_not_found"
