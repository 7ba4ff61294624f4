"""The real bot (Bolt `AsyncApp` over a real Socket Mode websocket) against the Slack stand-in,
with the simulator as PD and the real engine and SQLite storage behind it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot import callbacks
from bot.errors import SlackStartError
from engine.events import EventKind, proposal_event
from engine.model import AuditOutcome, Identity, ProposalOrigin, ProposalState
from slackfake import ids, payloads
from tests.bot.conftest import ALICE, BOB, CAROL, CHANNEL, GUEST, Harness
from tests.bot.render_text import text_of, unescape

Make = Callable[..., Awaitable[Harness]]

S = ProposalState


def pd_writes(h: Harness, path: str = "/pd/api/v1/schedulers") -> list[Any]:
    return [r for r in h.sim.requests if r.method == "POST" and r.path == path]


async def propose_drain(h: Harness, user: str = BOB, store: int = 4) -> Any:
    await h.fake.slash_command(user=user, text=f"drain {store}", channel=CHANNEL)
    await h.settle()
    message = h.top()[-1]
    assert callbacks.APPROVE in message.action_ids()
    return message


async def wait_state(h: Harness, proposal_id: str, *states: ProposalState) -> Any:
    for _ in range(300):
        await h.settle()
        proposal = await h.runtime.repos.proposals.get(proposal_id)
        if proposal is not None and proposal.state in states:
            await h.settle()
            return proposal
        await asyncio.sleep(0.02)
    raise AssertionError(f"{proposal_id} never reached {states}")


async def test_read_command_is_acked_at_once_and_answered_ephemerally(bot_harness: Make) -> None:
    h = await bot_harness()
    ack = await h.fake.slash_command(user=BOB, text="stores", channel=CHANNEL)
    assert dict(ack) == {}  # a bare ack; the answer follows
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert answer.text == "4 stores"
    table = text_of(answer.blocks)
    for store_id in (1, 2, 3, 4):
        assert f"\n{store_id}   127.0.0.1:" in table or f"{store_id}  " in table
    assert h.top() == []  # nothing in the channel


async def test_mutating_command_posts_a_proposal_and_sends_nothing_to_pd(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED
    assert proposal.requested_by.key == f"slack:{BOB}"
    assert message.action_ids() == [callbacks.APPROVE, callbacks.REJECT]
    approve = message.blocks[-2]["elements"][0]
    assert json.loads(approve["value"]) == {"p": "P-1", "v": 1}  # the ID and version only
    assert "confirm" in approve  # high risk: a confirm dialog
    assert pd_writes(h) == []
    [told] = h.fake.ephemerals(user=BOB)
    assert "P-1" in told.text and "posted" in text_of(told.blocks)


async def test_approve_by_an_approver_executes_once_and_edits_the_message(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    proposal = await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    assert proposal.state is S.SUCCEEDED, proposal.outcome
    assert len(pd_writes(h)) == 1
    edited = h.fake.message(CHANNEL, message.ts)
    assert edited is not None and edited.edited
    assert edited.action_ids() == []  # the buttons gave way to the outcome
    status = text_of(edited.blocks)
    assert "Succeeded" in status and f"<@{ALICE}>" in status
    replies = [text_of(r.blocks) for r in h.thread(message.ts)]
    assert any("P-1 started" in r for r in replies)
    outcome = replies[-1]
    assert "P-1 succeeded" in outcome and "leaders on store 4:" in outcome and "→ 0" in outcome
    assert callbacks.UNDO in h.thread(message.ts)[-1].action_ids()
    actions = [e.action for e in await h.runtime.repos.audit.list_recent(subject="P-1")]
    assert "proposal.approve" in actions and actions.count("execution.started") == 1


async def test_approve_by_a_non_approver_is_refused_told_and_audited(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    await h.fake.click(
        user=BOB, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.settle()
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED
    told = [e for e in h.fake.ephemerals(user=BOB) if "approver" in e.text]
    assert told and "not an approver" in told[-1].text
    assert told[-1].thread_ts is None or told[-1].thread_ts == message.ts
    refused = await h.runtime.repos.audit.list_recent(
        subject="P-1", actor_key=f"slack:{BOB}", action_prefix="proposal.approve"
    )
    assert [e.action for e in refused] == ["proposal.approve.refused"]
    assert refused[0].outcome is AuditOutcome.REFUSED and "not an approver" in (
        refused[0].reason or ""
    )
    assert pd_writes(h) == []


async def test_the_requester_may_not_approve_their_own_high_risk_proposal(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    message = await propose_drain(h, user=CAROL)  # carol is an approver
    await h.fake.click(
        user=CAROL, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.settle()
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED
    assert any("own" in e.text or "requested" in e.text for e in h.fake.ephemerals(user=CAROL))
    assert pd_writes(h) == []


async def test_a_double_click_executes_once(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    click = h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    again = h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await asyncio.gather(click, again)
    await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    assert len(pd_writes(h)) == 1
    approvals = await h.runtime.repos.audit.list_recent(
        subject="P-1", action_prefix="proposal.approve"
    )
    assert sorted(e.action for e in approvals) == ["proposal.approve", "proposal.approve.refused"]
    answers = [e.text for e in h.fake.ephemerals(user=ALICE)]
    assert any("approved proposal P-1" in a for a in answers)
    assert any("already" in a or "changed" in a for a in answers)


async def test_a_redelivered_envelope_is_handled_once(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    h.fake.faults.duplicate_next_envelope()
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    delivered = [d for d in h.fake.deliveries if d.type == "interactive"]
    assert len(delivered) == 2 and delivered[0].envelope_id == delivered[1].envelope_id
    assert len(pd_writes(h)) == 1
    approvals = await h.runtime.repos.audit.list_recent(
        subject="P-1", action_prefix="proposal.approve"
    )
    assert [e.action for e in approvals] == [
        "proposal.approve"
    ]  # the copy never reached the engine
    assert len([e for e in h.fake.ephemerals(user=ALICE) if "approved" in e.text]) == 1


async def test_a_stale_button_is_refused_with_the_reason(bot_harness: Make) -> None:
    h = await bot_harness(high_risk_approvals=2)
    message = await propose_drain(h)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.settle()
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.version == 2 and proposal.state is S.PROPOSED
    stale = json.dumps({"p": "P-1", "v": 1})  # what the first version of the message carried
    await h.fake.click(
        user=CAROL, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE, value=stale
    )
    await h.settle()
    told = h.fake.ephemerals(user=CAROL)[-1]
    assert "changed" in told.text and "latest message" in told.text
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED and pd_writes(h) == []


async def test_reject_opens_a_modal_and_records_the_reason(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.REJECT
    )
    [view] = await h.fake.wait_for(lambda: h.fake.views(user=ALICE))
    assert view.body["callback_id"] == callbacks.REJECT_VIEW
    await h.fake.submit_view(
        user=ALICE,
        view_id=view.id,
        values={callbacks.REJECT_REASON_BLOCK: "store 4 is being replaced"},
    )
    proposal = await wait_state(h, "P-1", S.REJECTED)
    assert proposal.decision_reason == "store 4 is being replaced"
    assert proposal.decided_by is not None and proposal.decided_by.key == f"slack:{ALICE}"
    edited = h.fake.message(CHANNEL, message.ts)
    assert edited is not None and edited.action_ids() == []
    assert "Rejected" in text_of(edited.blocks) and "store 4 is being replaced" in text_of(
        edited.blocks
    )
    [event] = await h.runtime.repos.audit.list_recent(
        subject="P-1", action_prefix="proposal.reject"
    )
    assert event.reason == "store 4 is being replaced"
    assert pd_writes(h) == []


async def test_reject_by_slash_command_with_reason(bot_harness: Make) -> None:
    h = await bot_harness()
    await propose_drain(h)
    await h.fake.slash_command(user=ALICE, text="reject P-1 not during the sale", channel=CHANNEL)
    proposal = await wait_state(h, "P-1", S.REJECTED)
    assert proposal.decision_reason == "not during the sale"


async def test_undo_button_proposes_the_undo_for_approval(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await wait_state(h, "P-1", S.SUCCEEDED)
    outcome = h.thread(message.ts)[-1]
    await h.fake.click(user=ALICE, channel=CHANNEL, message_ts=outcome.ts, action_id=callbacks.UNDO)
    await h.settle()
    undo = await h.runtime.repos.proposals.get("P-2")
    assert undo is not None and undo.action == "undrain" and undo.params == {"store_id": 4}
    assert undo.state is S.PROPOSED  # needs approval like anything else
    assert any("P-2" in e.text for e in h.fake.ephemerals(user=ALICE))


async def test_dry_run_and_bad_input_answer_ephemerally(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text="drain 4 --dry-run", channel=CHANNEL)
    await h.settle()
    await h.fake.slash_command(user=BOB, text="drain four", channel=CHANNEL)
    await h.settle()
    dry, bad = h.fake.ephemerals(user=BOB)
    assert "Dry run" in dry.text and "would run" in dry.text
    assert "POST /pd/api/v1/schedulers" in text_of(dry.blocks)
    assert "whole number" in bad.text and "Usage: /tikv drain <store-id>" in unescape(bad.text)
    assert await h.runtime.repos.proposals.get("P-1") is None
    assert h.top() == [] and pd_writes(h) == []


async def test_commands_only_in_configured_channels(
    make_slack_fake: Callable[..., Awaitable[Any]], bot_harness: Make
) -> None:
    h = await bot_harness(command_channels=("tikv-ops",))
    await h.fake.slash_command(user=BOB, text="status", channel="C0OTHER")
    await h.settle()
    [refusal] = h.fake.ephemerals(user=BOB)
    assert "not accepted in this channel" in refusal.text and "#tikv-ops" in refusal.text
    [event] = await h.runtime.repos.audit.list_recent(action_prefix="slack.command.refused")
    assert event.actor.key == f"slack:{BOB}" and event.outcome is AuditOutcome.REFUSED
    await h.fake.slash_command(user=BOB, text="status", channel=CHANNEL)
    await h.settle()
    assert h.fake.ephemerals(user=BOB)[-1].text.startswith("Cluster status")


async def test_requests_from_another_workspace_are_ignored(bot_harness: Make) -> None:
    h = await bot_harness()
    foreign = payloads.slash_command(
        team_id="T0ELSEWHERE",
        team_domain="elsewhere",
        app_id="A0TIKVOPS",
        channel_id=CHANNEL,
        channel_name="tikv-ops",
        user_id=BOB,
        user_name="bob",
        command="/tikv",
        text="drain 4",
        response_url=f"{h.fake.base_url}/commands/T0ELSEWHERE/1/x",
        trigger_id="1.2.foreign",
    )
    envelope = payloads.envelope(
        "slash_commands", foreign, envelope_id=ids.envelope_id(), accepts_response_payload=True
    )
    ack = await h.fake.push(envelope)
    assert dict(ack) == {}  # acknowledged, so Slack does not retry, and nothing else
    await h.settle()
    assert h.fake.ephemerals(user=BOB) == [] and h.top() == []
    assert h.fake.response_posts() == []
    assert await h.runtime.repos.proposals.get("P-1") is None


async def test_a_bot_token_of_another_workspace_is_refused_at_start(bot_harness: Make) -> None:
    with pytest.raises(SlackStartError, match="belongs to workspace T0TIKV"):
        await bot_harness(team_id="T0SOMEONEELSE")


async def test_a_rate_limited_post_is_retried_after_retry_after(bot_harness: Make) -> None:
    h = await bot_harness()
    h.fake.faults.rate_limit("chat.postMessage", times=1, retry_after=1)
    await h.fake.slash_command(user=BOB, text="drain 4", channel=CHANNEL)
    await h.fake.wait_for(h.top, timeout=10)
    assert h.top()[0].action_ids() == [callbacks.APPROVE, callbacks.REJECT]
    statuses = [c.status for c in h.fake.calls("chat.postMessage")]
    assert statuses[:2] == [429, 200]


async def test_a_dropped_websocket_reconnects_and_nothing_is_lost(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    opened = h.fake.connections_opened
    assert h.fake.faults.drop_socket() == 1
    # Events keep being told while the socket is down: the outbox does not depend on it.
    await h.runtime.repos.events.append(
        proposal_event(
            EventKind.PROPOSAL_CHANGED,
            (await h.runtime.repos.proposals.get("P-1")),  # type: ignore[arg-type]
            audit=(await h.runtime.repos.audit.list_recent(subject="P-1"))[0],
        )
    )
    await h.fake.wait_for(lambda: h.fake.connections_opened > opened and h.fake.active_sockets, 15)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    proposal = await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    assert proposal.state is S.SUCCEEDED and len(pd_writes(h)) == 1
    assert "P-1 succeeded" in text_of(h.thread(message.ts)[-1].blocks)


async def test_messages_owed_while_slack_is_down_are_delivered_after_a_restart(
    bot_harness: Make,
) -> None:
    first = await bot_harness()
    first.fake.faults.server_error("chat.postMessage", times=10_000, status=503)
    created = await first.engine.propose(
        "drain", {"store_id": 4}, actor=Identity.slack(BOB, name="bob"), origin=ProposalOrigin.USER
    )
    proposal = created.proposal
    await first.runtime.repos.events.append(
        proposal_event(
            EventKind.PROPOSAL_CHANGED,
            proposal,
            audit=(await first.runtime.repos.audit.list_recent(subject=proposal.id))[0],
        )
    )
    await first.settle()
    assert first.top() == []
    assert await first.runtime.repos.outbox.depth() == 2  # the post and its update
    await first.stop()
    first.fake.faults.clear()  # Slack is back
    second = await bot_harness()
    await second.fake.wait_for(second.top, timeout=10)
    await second.settle()
    [posted] = second.top()
    assert posted.action_ids() == [callbacks.APPROVE, callbacks.REJECT] and posted.edited
    assert await second.runtime.repos.outbox.depth() == 0
    await second.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=posted.ts, action_id=callbacks.APPROVE
    )
    done = await wait_state(second, proposal.id, S.SUCCEEDED, S.FAILED)
    assert done.state is S.SUCCEEDED


async def test_kill_switch_blocks_execution_and_is_announced(bot_harness: Make) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=ALICE, text="kill-switch on PD upgrade", channel=CHANNEL)
    await h.settle()
    announced = h.fake.response_posts("commands")[-1]
    assert announced.body.get("response_type") == "in_channel"
    message = await propose_drain(h)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.settle()
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.APPROVED and pd_writes(h) == []
    assert any("kill switch" in e.text for e in h.fake.ephemerals(user=ALICE))


@pytest.mark.parametrize("text", ["", "help", "help drain", "incidents", "proposals", "audit 5"])
async def test_every_read_command_gets_an_answer(bot_harness: Make, text: str) -> None:
    h = await bot_harness()
    await h.fake.slash_command(user=BOB, text=text, channel=CHANNEL)
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert answer.blocks and answer.text


async def test_acks_come_at_once_even_while_pd_hangs(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    h.sim.faults.pd_timeouts()  # every PD request hangs until healed
    # Slack allows 3 s; demand a third of it while PD gives no answer at all.
    await h.fake.slash_command(user=BOB, text="status", channel=CHANNEL, ack_timeout=1.0)
    await h.fake.slash_command(user=BOB, text="drain 3", channel=CHANNEL, ack_timeout=1.0)
    await h.fake.click(
        user=ALICE,
        channel=CHANNEL,
        message_ts=message.ts,
        action_id=callbacks.APPROVE,
        ack_timeout=1.0,
    )
    h.sim.faults.heal()
    await wait_state(h, "P-1", S.SUCCEEDED, S.FAILED)
    await h.settle()
    answers = [e.text for e in h.fake.ephemerals(user=BOB)]
    assert any(a.startswith("Cluster status") or "PD" in a for a in answers)


async def test_an_expired_proposal_says_so_and_offers_no_buttons(bot_harness: Make) -> None:
    h = await bot_harness(proposal_ttl=0.3)
    message = await propose_drain(h)
    await asyncio.sleep(0.4)
    [expired] = await h.engine.expire_due()
    assert expired.id == "P-1"
    await h.settle()
    edited = h.fake.message(CHANNEL, message.ts)
    assert edited is not None and edited.action_ids() == []
    assert "Expired" in text_of(edited.blocks) and "/tikv drain 4" in text_of(edited.blocks)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.settle()
    assert "expired" in h.fake.ephemerals(user=ALICE)[-1].text and pd_writes(h) == []


async def test_a_reminder_is_threaded_under_the_waiting_proposal(bot_harness: Make) -> None:
    from tikvops.scheduling import ProposalReminders

    h = await bot_harness()
    message = await propose_drain(h)
    await asyncio.sleep(0.05)
    reminders = ProposalReminders(
        proposals=h.runtime.repos.proposals,
        audit=h.runtime.repos.audit,
        clock=h.runtime.clock,
        after=0.01,
    )
    assert [p.id for p in await reminders.run()] == ["P-1"]
    await h.settle()
    [reminder] = h.thread(message.ts)
    assert "Reminder" in text_of(reminder.blocks) and "waited" in text_of(reminder.blocks)
    assert h.fake.message(CHANNEL, message.ts).action_ids() == [  # type: ignore[union-attr]
        callbacks.APPROVE,
        callbacks.REJECT,
    ]


async def test_a_forged_button_value_is_refused_and_audited(bot_harness: Make) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    forged = json.dumps({"action": "drain", "store_id": 1})
    await h.fake.click(
        user=ALICE,
        channel=CHANNEL,
        message_ts=message.ts,
        action_id=callbacks.APPROVE,
        value=forged,
    )
    await h.settle()
    assert "could not be used" in h.fake.ephemerals(user=ALICE)[-1].text
    [event] = await h.runtime.repos.audit.list_recent(action_prefix="slack.button")
    assert event.action == "slack.button.approve.refused" and event.outcome is AuditOutcome.REFUSED
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED and pd_writes(h) == []


async def test_a_mention_gets_a_pointer_and_the_bots_own_events_are_ignored(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    asked = await h.fake.user_message(
        user=BOB, text=f"<@{h.fake.bot_user_id}> help?", channel=CHANNEL
    )
    await h.settle()
    [reply] = await h.fake.wait_for(lambda: h.thread(asked.ts))
    assert "/tikv help" in reply.text
    own = {
        "type": "app_mention",
        "user": h.fake.bot_user_id,
        "bot_id": "B0TIKVBOT",
        "text": f"<@{h.fake.bot_user_id}> echo",
        "ts": "1.000001",
        "channel": CHANNEL,
        "event_ts": "1.000001",
    }
    ack = await h.fake.push_event(own)
    await h.settle()
    assert dict(ack) == {} and h.thread(asked.ts) == [reply]
    assert [m.ts for m in h.top()] == [asked.ts]


async def test_a_click_on_an_unknown_element_is_acked_and_explained(bot_harness: Make) -> None:
    h = await bot_harness()
    posted = await h.bot.client.chat_postMessage(
        channel=CHANNEL,
        text="old message",
        blocks=[
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "legacy.retry",
                        "text": {"type": "plain_text", "text": "Retry"},
                        "value": "x",
                    }
                ],
            }
        ],
    )
    ack = await h.fake.click(
        user=BOB, channel=CHANNEL, message_ts=posted["ts"], action_id="legacy.retry"
    )
    await h.settle()
    assert dict(ack) == {}
    assert "legacy.retry" in unescape(h.fake.ephemerals(user=BOB)[-1].text)


async def test_a_guest_account_may_not_act_even_when_listed_as_approver(bot_harness: Make) -> None:
    h = await bot_harness(approvers=[GUEST, CAROL])
    message = await propose_drain(h)
    await h.fake.click(
        user=GUEST, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await h.fake.slash_command(user=GUEST, text="drain 3", channel=CHANNEL)
    await h.settle()
    answers = [unescape(e.text) for e in h.fake.ephemerals(user=GUEST)]
    assert len(answers) == 2 and all("guest account" in a for a in answers)
    refused = await h.runtime.repos.audit.list_recent(actor_key=f"slack:{GUEST}")
    assert sorted(e.action for e in refused) == [
        "proposal.approve.refused",
        "slack.command.refused",
    ]
    assert all(e.outcome is AuditOutcome.REFUSED for e in refused)
    assert await h.runtime.repos.proposals.get("P-2") is None
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None and proposal.state is S.PROPOSED and pd_writes(h) == []
    await h.fake.slash_command(user=GUEST, text="status", channel=CHANNEL)  # reading is fine
    await h.settle()
    assert h.fake.ephemerals(user=GUEST)[-1].text.startswith("Cluster status")


async def test_the_ack_does_not_wait_for_the_database(bot_harness: Make) -> None:
    h = await bot_harness()
    blocker = sqlite3.connect(h.runtime.db.path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        ack = await h.fake.slash_command(user=BOB, text="stores", channel=CHANNEL, ack_timeout=2)
        assert dict(ack) == {}
        await asyncio.sleep(0.2)
        assert h.fake.ephemerals(user=BOB) == []  # no work before the redelivery check
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    await h.settle()
    [answer] = h.fake.ephemerals(user=BOB)
    assert answer.text == "4 stores"


async def test_requests_handled_before_a_restart_are_not_handled_again(
    bot_harness: Make,
) -> None:
    first = await bot_harness()
    message = await propose_drain(first, user=BOB)
    command = first.fake.deliveries[0]
    assert command.type == "slash_commands"
    click = await first.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    await wait_state(first, "P-1", S.SUCCEEDED)
    audited = len(await first.runtime.repos.audit.list_recent(limit=500))
    await first.stop()
    told = {user: len(first.fake.ephemerals(user=user)) for user in (ALICE, BOB)}

    second = await bot_harness()  # a new process: nothing in memory, the same database
    for envelope_id in (command.envelope_id, click.envelope_id):
        again = await second.fake.redeliver(envelope_id, reason="timeout")
        assert dict(again) == {}  # acknowledged, so Slack stops retrying
    await second.settle()
    assert await second.runtime.repos.proposals.get("P-2") is None  # no second proposal
    assert {user: len(second.fake.ephemerals(user=user)) for user in (ALICE, BOB)} == told
    assert len(await second.runtime.repos.audit.list_recent(limit=500)) == audited
    assert len(pd_writes(second)) == 1
    # and a new request after the restart is handled as usual
    await second.fake.slash_command(user=BOB, text="stores", channel=CHANNEL)
    await second.settle()
    assert second.fake.ephemerals(user=BOB)[-1].text == "4 stores"
