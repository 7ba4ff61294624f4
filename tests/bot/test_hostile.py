"""Input built to break the bot, through the real socket against the stand-in: numbers too long
for Python, deeply nested button values and form metadata, slash commands that name no user,
clicks whose value names another proposal than the message they sit on, and requests that
name no app or workspace. Each is answered with what was wrong (never "internal error"),
audited where it was a refusal, and never reaches PD."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot import callbacks
from engine.model import AuditOutcome, ProposalState
from slackfake import ids, payloads
from tests.bot.conftest import ALICE, BOB, CHANNEL, Harness
from tests.bot.render_text import unescape

Make = Callable[..., Awaitable[Harness]]
S = ProposalState

DEEP = "[" * 50_000  # json.loads raises RecursionError on this


def writes(h: Harness) -> list[Any]:
    """Every request that could change the cluster (anything but a read)."""
    return [r for r in h.sim.requests if r.method not in ("GET", "HEAD")]


async def propose(h: Harness, text: str, proposal_id: str) -> Any:
    await h.fake.slash_command(user=BOB, text=text, channel=CHANNEL)
    await h.settle()
    proposal = await h.runtime.repos.proposals.get(proposal_id)
    assert proposal is not None and proposal.state is S.PROPOSED
    [message] = [m for m in h.top() if f"{proposal_id}" in m.text]
    return message


async def refusals(h: Harness) -> list[Any]:
    return await h.runtime.repos.audit.list_recent(action_prefix="slack.button")


# ---------------------------------------------------------------------------- item 9


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("drain " + "9" * 3_000, "store ID is too large (3000 digits; at most 20)"),
        ("store " + "1" * 200, "store ID is too large (200 digits; at most 20)"),
        ("audit " + "0" * 3_000 + "7", None),  # leading zeros: the number 7
        ("transfer-leader 2 " + "4" * 25, "target store ID is too large"),
        ("approve P-" + "7" * 3_000, "proposal ID looks like P-7"),
    ],
)
async def test_numbers_too_long_get_usage_not_internal_error(
    bot_harness: Make, words: str, expected: str | None
) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text=words, channel=CHANNEL)
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert "internal error" not in answer.text
    if expected is None:
        assert "audit" in answer.text.lower()
    else:
        assert expected in answer.text and "Usage: /tikv" in answer.text
    assert writes(h) == []


async def test_a_number_beyond_pythons_int_string_limit_gets_usage(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain " + "9" * 10_000, channel=CHANNEL)
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert "10,006 characters long" in answer.text and "at most 4,000" in answer.text
    assert "Usage: `/tikv drain <store-id> [--dry-run]`" in unescape(answer.text)
    assert "internal error" not in answer.text
    assert await h.runtime.repos.proposals.get("P-1") is None and writes(h) == []


async def test_a_slash_command_without_a_user_is_answered_and_does_nothing(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    body = payloads.slash_command(
        team_id="T0TIKV",
        team_domain="tikvops-dev",
        app_id="A0TIKVOPS",
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        user_id=BOB,
        user_name="bob",
        command="/tikv",
        text="drain 4",
        response_url=h.fake.response_url_for(user=BOB, channel=CHANNEL, kind="commands"),
        trigger_id=h.fake.trigger_for(user=BOB, channel=CHANNEL),
    )
    del body["user_id"], body["user_name"]
    ack = await h.fake.push(
        payloads.envelope(
            "slash_commands", body, envelope_id=ids.envelope_id(), accepts_response_payload=True
        )
    )
    assert dict(ack) == {}
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert answer.text.startswith("Slack did not say who sent")
    assert "/tikv drain 4" in answer.text and "Send it again" in answer.text
    assert "internal error" not in answer.text
    assert await h.runtime.repos.proposals.get("P-1") is None and h.top() == []


async def test_a_command_text_too_long_to_read_is_answered(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain " + "4 " * 3_000, channel=CHANNEL)
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert "6,006 characters long" in answer.text and "at most 4,000" in answer.text
    assert "Usage: `/tikv drain <store-id> [--dry-run]`" in unescape(answer.text)
    assert await h.runtime.repos.proposals.get("P-1") is None


@pytest.mark.parametrize("action_id", [callbacks.APPROVE, callbacks.REJECT])
async def test_a_deeply_nested_button_value_is_refused_told_and_audited(
    bot_harness: Make, action_id: str
) -> None:
    h = await bot_harness()
    message = await propose(h, "drain 4", "P-1")
    ack = await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=action_id, value=DEEP
    )
    assert dict(ack) == {}
    await h.settle()
    [told] = h.fake.ephemerals(user=ALICE)
    assert told.text.startswith("This button could not be used")
    assert "50000 characters long" in told.text
    assert h.fake.views(user=ALICE) == []  # no rejection modal for a value that is not ours
    [event] = await refusals(h)
    assert event.outcome is AuditOutcome.REFUSED and event.actor.key == f"slack:{ALICE}"
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED and writes(h) == []


async def test_a_rejection_form_with_broken_metadata_says_so_in_the_form(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    await propose(h, "drain 4", "P-1")
    opened = await h.bot.client.views_open(
        trigger_id=h.fake.trigger_for(user=ALICE, channel=CHANNEL),
        view={
            "type": "modal",
            "callback_id": callbacks.REJECT_VIEW,
            "private_metadata": "[" * 2_999,
            "title": {"type": "plain_text", "text": "Reject proposal"},
            "submit": {"type": "plain_text", "text": "Reject"},
            "blocks": [
                {
                    "type": "input",
                    "block_id": callbacks.REJECT_REASON_BLOCK,
                    "label": {"type": "plain_text", "text": "Reason"},
                    "element": {
                        "type": "plain_text_input",
                        "action_id": callbacks.REJECT_REASON_INPUT,
                    },
                }
            ],
        },
    )
    ack = await h.fake.submit_view(
        user=ALICE, view_id=str(opened["view"]["id"]), values={"reason": "no"}
    )
    assert ack["response_action"] == "errors"
    shown = ack["errors"][callbacks.REJECT_REASON_BLOCK]
    assert "could not be used" in shown and "/tikv reject" in shown
    await h.settle()
    [event] = await refusals(h)
    assert event.action == "slack.button.reject.refused"
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED


# ---------------------------------------------------------------------------- item 10


async def test_a_click_naming_another_proposal_than_its_message_is_refused(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    first = await propose(h, "drain 4", "P-1")
    await propose(h, "drain 3", "P-2")
    forged = json.dumps({"p": "P-2", "v": 1})  # the live version of P-2
    ack = await h.fake.click(
        user=ALICE,
        channel=CHANNEL,
        message_ts=first.ts,
        action_id=callbacks.APPROVE,
        value=forged,
    )
    assert dict(ack) == {}
    await h.settle()
    [told] = h.fake.ephemerals(user=ALICE)
    assert told.text.startswith("This button could not be used")
    assert "message of P-1 but names P-2" in told.text
    [event] = await refusals(h)
    assert event.action == "slack.button.approve.refused" and event.subject == "P-2"
    assert event.detail["rule"] == "message" and event.detail["message_ts"] == first.ts
    for proposal_id in ("P-1", "P-2"):
        proposal = await h.runtime.repos.proposals.get(proposal_id)
        assert proposal is not None and proposal.state is S.PROPOSED
    assert writes(h) == []


async def test_a_reject_click_naming_another_proposal_opens_no_form(bot_harness: Make) -> None:
    h = await bot_harness()
    first = await propose(h, "drain 4", "P-1")
    await propose(h, "drain 3", "P-2")
    await h.fake.click(
        user=ALICE,
        channel=CHANNEL,
        message_ts=first.ts,
        action_id=callbacks.REJECT,
        value=json.dumps({"p": "P-2", "v": 1}),
    )
    await h.settle()
    assert h.fake.views(user=ALICE) == []
    assert "names P-2" in h.fake.ephemerals(user=ALICE)[-1].text
    proposal = await h.runtime.repos.proposals.get("P-2")
    assert proposal is not None and proposal.state is S.PROPOSED


async def test_a_tikvops_button_on_a_message_that_is_not_the_proposals_is_refused(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    await propose(h, "drain 4", "P-1")
    copy = await h.bot.client.chat_postMessage(
        channel=CHANNEL,
        text="looks like a proposal",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": callbacks.APPROVE,
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": json.dumps({"p": "P-1", "v": 1}),
                    }
                ],
            }
        ],
    )
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=str(copy["ts"]), action_id=callbacks.APPROVE
    )
    await h.settle()
    told = h.fake.ephemerals(user=ALICE)[-1]
    assert "it is not on the message of P-1" in unescape(told.text)
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED and writes(h) == []


def slash(h: Harness, **drop: bool) -> dict[str, Any]:
    body = payloads.slash_command(
        team_id="T0TIKV",
        team_domain="tikvops-dev",
        app_id="A0TIKVOPS",
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        user_id=BOB,
        user_name="bob",
        command="/tikv",
        text="drain 4",
        response_url=h.fake.response_url_for(user=BOB, channel=CHANNEL, kind="commands"),
        trigger_id=h.fake.trigger_for(user=BOB, channel=CHANNEL),
    )
    for key in drop:
        del body[key]
    return body


@pytest.mark.parametrize(
    "drop",
    [
        pytest.param({"api_app_id": True}, id="no app ID"),
        pytest.param({"team_id": True}, id="no team ID"),
        pytest.param({"api_app_id": True, "team_id": True}, id="neither"),
    ],
)
async def test_a_request_naming_no_app_or_workspace_is_ignored_when_both_are_configured(
    bot_harness: Make, drop: dict[str, bool]
) -> None:
    h = await bot_harness()  # app A0TIKVOPS and team T0TIKV configured
    ack = await h.fake.push(
        payloads.envelope(
            "slash_commands",
            slash(h, **drop),
            envelope_id=ids.envelope_id(),
            accepts_response_payload=True,
        )
    )
    assert dict(ack) == {}  # acknowledged, so Slack does not retry, and nothing else
    await h.settle()
    assert h.fake.ephemerals(user=BOB) == [] and h.fake.response_posts() == []
    assert await h.runtime.repos.proposals.get("P-1") is None and h.top() == []


async def test_a_click_naming_no_workspace_is_ignored(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose(h, "drain 4", "P-1")
    click = payloads.block_actions(
        team_id="T0TIKV",
        team_domain="tikvops-dev",
        app_id="A0TIKVOPS",
        user_id=ALICE,
        user_name="alice",
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        container=payloads.message_container(
            CHANNEL, message.ts, is_ephemeral=False, thread_ts=None
        ),
        message=None,
        action={
            "action_id": callbacks.APPROVE,
            "block_id": callbacks.block_id("decide", "P-1", 1),
            "type": "button",
            "value": json.dumps({"p": "P-1", "v": 1}),
            "action_ts": "1700000000.000100",
        },
        response_url=h.fake.response_url_for(user=ALICE, channel=CHANNEL),
        trigger_id=h.fake.trigger_for(user=ALICE, channel=CHANNEL),
    )
    del click["team"]
    del click["user"]["team_id"]
    ack = await h.fake.push_interactive(click)
    assert dict(ack) == {}
    await h.settle()
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED
    assert h.fake.ephemerals(user=ALICE) == [] and writes(h) == []


async def test_an_undo_click_naming_another_proposal_is_refused(bot_harness: Make) -> None:
    h = await bot_harness()
    first = await propose(h, "drain 4", "P-1")
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=first.ts, action_id=callbacks.APPROVE
    )
    for _ in range(300):
        await h.settle()
        done = await h.runtime.repos.proposals.get("P-1")
        if done is not None and done.state is S.SUCCEEDED:
            break
        await asyncio.sleep(0.02)
    await h.settle()
    outcome = h.fake.thread(CHANNEL, first.ts)[-1]
    assert callbacks.UNDO in outcome.action_ids()
    await h.fake.slash_command(user=BOB, text="limit leader 8", channel=CHANNEL)
    await h.settle()
    second = await h.runtime.repos.proposals.get("P-2")
    assert second is not None and second.state is S.PROPOSED
    await h.fake.click(
        user=ALICE,
        channel=CHANNEL,
        message_ts=outcome.ts,
        action_id=callbacks.UNDO,
        value=json.dumps({"p": "P-2", "v": 1}),
    )
    await h.settle()
    assert "message of P-1 but names P-2" in h.fake.ephemerals(user=ALICE)[-1].text
    assert await h.runtime.repos.proposals.get("P-3") is None  # no undo proposed
    # the real undo button still works
    await h.fake.click(user=ALICE, channel=CHANNEL, message_ts=outcome.ts, action_id=callbacks.UNDO)
    await h.settle()
    undo = await h.runtime.repos.proposals.get("P-3")
    assert undo is not None and undo.action == "undrain"
