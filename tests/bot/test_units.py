"""Small pure pieces of the Slack edge: button values, payload questions, the channel rule, and
the user-group cache of the identity resolver (against the stand-in)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.web.async_client import AsyncWebClient

from bot import payload
from bot.callbacks import BadButtonValue, ButtonValue, block_id, proposal_of_block
from bot.config import BotConfig
from bot.handlers.commands import channel_allowed
from bot.handlers.unsupported import reply_for
from bot.identity import IdentityResolver
from bot.socket import unreadable
from slackfake.server import SlackFake

MakeClient = Callable[[BotConfig], AsyncWebClient]


def test_button_value_round_trip_is_compact() -> None:
    value = ButtonValue("P-12", 3)
    assert value.encode() == '{"p":"P-12","v":3}'
    assert ButtonValue.decode(value.encode()) == value


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "not json",
        "[1]",
        '{"p": "P-1"}',
        '{"p": "P-1", "v": 0}',
        '{"p": "P-1", "v": true}',
        '{"p": "DROP TABLE", "v": 1}',
        '{"action": "drain", "store_id": 4}',
    ],
)
def test_foreign_button_values_are_refused(raw: str | None) -> None:
    with pytest.raises(BadButtonValue):
        ButtonValue.decode(raw)


@given(st.text(max_size=300))
def test_decoding_any_text_never_crashes(raw: str) -> None:
    try:
        value = ButtonValue.decode(raw)
    except BadButtonValue:
        return
    assert value.proposal_id.startswith("P-") and value.version >= 1


def test_payload_questions() -> None:
    slash = {
        "team_id": "T1",
        "api_app_id": "A1",
        "user_id": "U1",
        "user_name": "alice",
        "channel_id": "C1",
        "command": "/tikv",
        "trigger_id": "tr-1",
    }
    assert payload.app_id(slash) == "A1" and payload.team_ids(slash) == {"T1"}
    assert payload.user_id(slash) == "U1" and payload.channel_id(slash) == "C1"
    assert payload.request_key(slash) == "command:tr-1"
    click = {
        "type": "block_actions",
        "api_app_id": "A1",
        "team": {"id": "T1"},
        "user": {"id": "U2", "username": "bob", "team_id": "T9"},  # a guest from elsewhere
        "container": {"channel_id": "C1"},
        "actions": [{"action_id": "x", "action_ts": "171.5"}],
    }
    assert payload.team_ids(click) == {"T1", "T9"}
    assert payload.user_name(click) == "bob" and payload.channel_id(click) == "C1"
    assert payload.request_key(click) == "action:171.5:U2"
    event = {"event_id": "Ev1", "event": {"type": "message", "bot_id": "B1", "user": "U9"}}
    assert payload.request_key(event) == "event:Ev1"
    assert payload.is_own_event(event, "UBOT", "B1")
    assert not payload.is_own_event(event, "UBOT", "B2")
    assert payload.header({"x-tikvops-envelope-id": ["e-1"]}, "x-tikvops-envelope-id") == "e-1"


def test_command_channels_by_id_or_name() -> None:
    assert channel_allowed((), "C1", "random")
    assert channel_allowed(("C1",), "C1", "ops")
    assert channel_allowed(("#tikv-ops",), "C2", "tikv-ops")
    assert not channel_allowed(("tikv-ops",), "C3", "random")


def test_config_refuses_wrong_tokens() -> None:
    with pytest.raises(ValueError, match="xoxb-"):
        BotConfig(bot_token="xoxp-1", app_token="xapp-1", channel="C")
    with pytest.raises(ValueError, match="xapp-"):
        BotConfig(bot_token="xoxb-1", app_token="xoxb-2", channel="C")
    assert (
        BotConfig(
            bot_token="xoxb-1", app_token="xapp-1", channel="C", api_url="http://x/api"
        ).api_url
        == "http://x/api/"
    )


def _config(fake: SlackFake) -> BotConfig:
    return BotConfig(
        bot_token="xoxb-test",
        app_token="xapp-1-A0TIKVOPS-1-test",
        channel="C0OPS",
        api_url=fake.api_url,
        rate_limit_retries=0,
        server_error_retries=0,
        connection_retries=0,
    )


async def test_group_members_are_cached_for_the_ttl(
    slack_fake: SlackFake, make_web_client: MakeClient
) -> None:
    now = [0.0]
    resolver = IdentityResolver(
        make_web_client(_config(slack_fake)), ["S0ONCALL", "U0CAROL"], monotonic=lambda: now[0]
    )
    assert resolver.groups == ("S0ONCALL",)  # user IDs are not groups
    alice = await resolver.resolve("U0ALICE", "alice")
    assert alice.groups == ("S0ONCALL",) and alice.key == "slack:U0ALICE"
    assert (await resolver.resolve("U0BOB")).groups == ()
    assert len(slack_fake.calls("usergroups.users.list")) == 1  # cached
    now[0] = 301.0
    await resolver.resolve("U0BOB")
    assert len(slack_fake.calls("usergroups.users.list")) == 2  # the TTL passed


async def test_group_lookup_fails_closed(
    slack_fake: SlackFake, caplog: pytest.LogCaptureFixture, make_web_client: MakeClient
) -> None:
    slack_fake.faults.error("usergroups.users.list", "missing_scope", needed="usergroups:read")
    resolver = IdentityResolver(make_web_client(_config(slack_fake)), ["S0ONCALL"])
    alice = await resolver.resolve("U0ALICE")
    assert alice.groups == ()  # unknown membership is no membership
    assert "missing_scope" in caplog.text
    again = await resolver.resolve("U0ALICE")  # the failure is not cached
    assert again.groups == ("S0ONCALL",)


def test_button_values_fit_slack() -> None:
    assert len(json.dumps({"p": "P-" + "9" * 18, "v": 2**31})) < 2000


def test_account_refusals() -> None:
    from bot.identity import account_refusal

    assert account_refusal("U1", {"deleted": False, "is_bot": False}) is None
    assert "deactivated" in (account_refusal("U1", {"deleted": True}) or "")
    assert "bot or app" in (account_refusal("U1", {"is_bot": True}) or "")
    assert "guest" in (account_refusal("U1", {"is_ultra_restricted": True}) or "")


async def test_account_lookup_failure_leaves_the_decision_to_the_policy(
    slack_fake: SlackFake, make_web_client: MakeClient
) -> None:
    slack_fake.faults.error("users.info", "missing_scope", needed="users:read")
    resolver = IdentityResolver(make_web_client(_config(slack_fake)), [])
    assert await resolver.refusal("U0ALICE") is None  # unknown: the approver list decides
    assert await resolver.refusal("U0ALICE") is None
    assert len(slack_fake.calls("users.info")) == 2  # a failure is not cached


# ---------------------------------------------------------------------------- hostile shapes


@pytest.mark.parametrize(
    "raw", ["[" * 50_000, "{" * 3_000, '{"p":' * 1_000, " " * 201 + '{"p":"P-1","v":1}']
)
def test_button_values_too_long_or_too_deep_are_bad_values_not_crashes(raw: str) -> None:
    with pytest.raises(BadButtonValue):
        ButtonValue.decode(raw)


def test_block_ids_name_their_proposal() -> None:
    assert proposal_of_block(block_id("decide", "P-7", 3)) == "P-7"
    assert proposal_of_block(block_id("undo", "P-12", 1)) == "P-12"
    for other in (None, 7, "", "decide:P-7", "decide:P-7:v3:x", "other:P-7:v3", "decide:Q-7:v3"):
        assert proposal_of_block(other) is None


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"type": "block_actions", "actions": [{"action_id": "a"}]}, None),
        ({"type": "block_actions", "actions": [{}]}, "no action_id"),
        ({"type": "block_actions", "actions": []}, "no list of actions"),
        ({"type": "block_actions", "actions": None}, "no list of actions"),
        ({"type": "block_actions", "actions": [1]}, "not an object"),
        ({"type": "block_actions", "actions": [{"action_id": 7}]}, "no action_id"),
        ({"type": "interactive_message", "actions": []}, "no list of actions"),
        ({"type": "event_callback", "event": "type"}, "event is not an object"),
        ({"type": "view_submission", "view": "callback_id"}, "no view"),
        ({"type": "view_closed"}, "no view"),
        ({"type": "view_submission", "view": {"callback_id": "x"}}, None),
        ({"command": "/tikv", "text": "status"}, None),
    ],
)
def test_malformed_names_what_bolt_could_not_read(body: dict[str, object], why: str | None) -> None:
    found = payload.malformed(body)
    assert (found is None) if why is None else (found is not None and why in found)


def test_payload_questions_ignore_values_of_the_wrong_type() -> None:
    body = {"team_id": ["T1"], "user": {"id": {"x": 1}, "team_id": 5}, "api_app_id": 3}
    assert payload.team_ids(body) == set()
    assert payload.user_id(body) is None and payload.app_id(body) is None
    assert payload.request_key({"type": "block_actions", "actions": "x"}) is None


def test_only_envelopes_the_sdk_cannot_read_are_acked_early() -> None:
    assert unreadable({"envelope_id": "e", "type": "interactive", "payload": None})
    assert unreadable({"envelope_id": "e", "type": "interactive", "payload": [1]})
    assert unreadable({"envelope_id": "e", "type": "interactive"})
    assert unreadable({"envelope_id": "e", "payload": {}})
    assert not unreadable({"envelope_id": "e", "type": "interactive", "payload": {}})
    assert not unreadable({"envelope_id": "e", "type": "interactive", "payload": "text"})
    assert not unreadable({"type": "hello"}) and not unreadable({"type": "disconnect"})
    assert not unreadable({"envelope_id": "", "type": "x"}) and not unreadable([1])


@pytest.mark.parametrize(
    ("body", "ack", "via"),
    [
        ({"command": "/deploy"}, "text", "none"),
        ({"type": "block_actions", "actions": []}, None, "message"),
        ({"type": "message_action", "callback_id": "x"}, None, "message"),
        ({"type": "shortcut", "callback_id": "x"}, None, "modal"),
        ({"type": "block_suggestion", "action_id": "a"}, "options", "none"),
        ({"type": "view_submission", "view": {"callback_id": "f"}}, "response_action", "none"),
        ({"type": "view_closed", "view": {}}, None, "none"),
        ({"type": "event_callback", "event": {"type": "reaction_added"}}, None, "none"),
        ({}, None, "none"),
    ],
)
def test_each_unsupported_request_gets_the_ack_its_kind_expects(
    body: dict[str, object], ack: str | None, via: str
) -> None:
    reply = reply_for(body, "/tikv", unhandled=True)
    assert (reply.ack is None) if ack is None else (reply.ack is not None and ack in reply.ack)
    assert reply.via == via
    assert (reply.text is None) == (via == "none")
