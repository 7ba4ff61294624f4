"""Acknowledging and silencing incidents through the real bot (Bolt over Socket Mode) against
the Slack stand-in: the card's buttons and menu, `/tikv ack|silence|unsilence`, the card edited
in place, the thread lines, a silenced thread kept quiet, a higher severity breaking the
silence, expiry, reminders paused for an owned incident, policy refusals and forged clicks."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot import callbacks
from engine.attending import Attending
from engine.clock import FakeClock
from engine.events import EventKind
from engine.model import AuditOutcome, Incident, ProposalOrigin, Severity
from tests.bot.conftest import ALICE, BOB, CHANNEL, Harness
from tests.bot.render_text import text_of
from tests.plugins.storage import make_incident

Make = Callable[..., Awaitable[Harness]]

CARD_BUTTONS = [callbacks.ACK, callbacks.SILENCE, callbacks.SILENCE_FOR]


async def open_card(h: Harness, **changes: object) -> tuple[Incident, str]:
    """An open incident created as the monitor does (its event posts the card)."""
    now = h.runtime.clock.now()
    incident = make_incident(id=await h.runtime.repos.incidents.next_id(), at=now, **changes)
    await h.runtime.repos.incidents.create(incident)
    await h.settle()
    [card] = [m for m in h.top() if incident.id in text_of(m.blocks)]
    assert card.action_ids() == CARD_BUTTONS
    return incident, card.ts


def card_text(h: Harness, ts: str) -> str:
    message = h.fake.message(CHANNEL, ts)
    assert message is not None
    return text_of(message.blocks)


def thread_texts(h: Harness, ts: str) -> list[str]:
    return [text_of(r.blocks) or r.text for r in h.thread(ts)]


def told(h: Harness, user: str) -> str:
    last = h.fake.ephemerals(user=user)[-1]
    return text_of(last.blocks) or last.text


async def test_im_on_it_button_makes_the_clicker_owner_once_and_is_audited(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    incident, ts = await open_card(h)
    await h.fake.click(user=BOB, channel=CHANNEL, message_ts=ts, action_id=callbacks.ACK)
    await h.settle()

    assert f"Owner:* <@{BOB}>" in card_text(h, ts)
    assert h.fake.message(CHANNEL, ts).edited  # type: ignore[union-attr]
    assert len(h.top()) == 1  # edited in place, nothing new in the channel
    [line] = thread_texts(h, ts)
    assert f"<@{BOB}> is on it" in line
    assert f"You own {incident.id}" in told(h, BOB)
    [audit] = await h.runtime.repos.audit.list_recent(action_prefix="incident.acknowledge")
    assert audit.actor.id == BOB and audit.subject == incident.id

    # Again by bob: nothing changes, and he is told so.
    await h.fake.click(user=BOB, channel=CHANNEL, message_ts=ts, action_id=callbacks.ACK)
    await h.settle()
    assert "already own" in told(h, BOB)
    assert len(thread_texts(h, ts)) == 1

    # By alice (slash command): she takes it over, and the thread says from whom.
    await h.fake.slash_command(user=ALICE, text=f"ack {incident.id}", channel=CHANNEL)
    await h.settle()
    assert f"over from <@{BOB}>" in told(h, ALICE)
    assert f"Owner:* <@{ALICE}>" in card_text(h, ts)
    assert f"taken over from <@{BOB}>" in thread_texts(h, ts)[-1]


async def test_silence_button_and_menu_silence_the_thread_until_it_gets_worse(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    incident, ts = await open_card(h, severity=Severity.WARNING, worst_severity=Severity.WARNING)
    await h.fake.click(user=ALICE, channel=CHANNEL, message_ts=ts, action_id=callbacks.SILENCE)
    await h.settle()
    card = card_text(h, ts)
    assert "Silenced* until" in card and f"by <@{ALICE}>" in card
    assert h.fake.message(CHANNEL, ts).action_ids() == [  # type: ignore[union-attr]
        callbacks.ACK,
        callbacks.UNSILENCE,
    ]
    assert f"<@{ALICE}> silenced {incident.id} until" in thread_texts(h, ts)[-1]
    silenced = await h.runtime.repos.incidents.get(incident.id)
    assert silenced is not None and silenced.attention.silenced_until is not None
    assert silenced.attention.silenced_at is not None
    assert silenced.attention.silenced_until - silenced.attention.silenced_at == timedelta(hours=1)
    assert "silenced until" in told(h, ALICE)
    replies = len(thread_texts(h, ts))

    # The monitor keeps tracking it: the card is edited, the thread stays quiet.
    repos = h.runtime.repos
    current = await repos.incidents.get(incident.id)
    assert current is not None
    moved = current.model_copy(update={"value": 7.0, "updated_at": h.runtime.clock.now()})
    current = await repos.incidents.update(moved, announce=EventKind.INCIDENT_UPDATED)
    # A diagnosis reply would be quiet too; the worsened reply below is not.
    await h.settle()
    assert len(thread_texts(h, ts)) == replies
    assert "Silenced* until" in card_text(h, ts)

    # Worse than when it was silenced: the reply is posted, and the silence ends with a line.
    worse = current.model_copy(
        update={"severity": Severity.CRITICAL, "worst_severity": Severity.CRITICAL}
    )
    await repos.incidents.update(
        worse, announce=EventKind.INCIDENT_UPDATED, previous_severity=Severity.WARNING
    )
    await h.settle()
    assert "Worsened" in thread_texts(h, ts)[-1]
    await h.engine.attending.end_due()
    await h.settle()
    assert "it got worse (warning → critical)" in thread_texts(h, ts)[-1]
    assert "Silenced" not in card_text(h, ts)
    assert h.fake.message(CHANNEL, ts).action_ids() == CARD_BUTTONS  # type: ignore[union-attr]

    # The menu offers 4 h.
    four = callbacks.IncidentValue(incident.id, 4 * 3600).encode()
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=ts, action_id=callbacks.SILENCE_FOR, value=four
    )
    await h.settle()
    stored = await repos.incidents.get(incident.id)
    assert stored is not None and stored.attention.silenced_until is not None
    assert stored.attention.silenced_at is not None
    assert stored.attention.silenced_until - stored.attention.silenced_at == timedelta(hours=4)


async def test_silence_commands_expiry_and_unsilence(bot_harness: Make) -> None:
    h = await bot_harness()
    incident, ts = await open_card(h)
    await h.fake.slash_command(
        user=ALICE, text=f"silence {incident.id} 2h rolling restart", channel=CHANNEL
    )
    await h.settle()
    assert "rolling restart" in card_text(h, ts) and "Silenced* until" in card_text(h, ts)

    await h.fake.slash_command(user=ALICE, text=f"unsilence {incident.id}", channel=CHANNEL)
    await h.settle()
    assert "silence of" in told(h, ALICE) and "over" in told(h, ALICE)
    assert "ended the silence" in thread_texts(h, ts)[-1]
    assert "Silenced" not in card_text(h, ts)

    await h.fake.slash_command(user=ALICE, text=f"silence {incident.id} 30m", channel=CHANNEL)
    await h.settle()
    # Half an hour later (an injected clock), the scheduled check ends it: one line, card edited.
    later = FakeClock(h.runtime.clock.now() + timedelta(minutes=31))
    expiry = Attending(
        incidents=h.runtime.repos.incidents,
        attention=h.runtime.repos.attention,
        audit=h.runtime.repos.audit,
        policy=h.runtime.policy,
        clock=later,
    )
    assert [i.id for i in await expiry.end_due()] == [incident.id]
    assert await expiry.end_due() == []
    await h.settle()
    assert "ran out" in thread_texts(h, ts)[-1]
    assert sum("ran out" in t for t in thread_texts(h, ts)) == 1
    assert "Silenced" not in card_text(h, ts)


async def test_bad_attention_commands_say_what_to_do(bot_harness: Make) -> None:
    h = await bot_harness()
    incident, ts = await open_card(h)
    cases = {
        f"silence {incident.id} 2x": "like 30m, 2h or 1d",
        f"silence {incident.id} 0h": "at least 1 minute",
        f"silence {incident.id} 8d": "at most 7 days",
        f"silence {incident.id}": "missing silence duration",
        "ack I-99": "no incident I-99",
        "ack P-3": "incident ID looks like I-3",
        "unsilence": "missing incident ID",
    }
    for text, expected in cases.items():
        await h.fake.slash_command(user=ALICE, text=text, channel=CHANNEL)
        await h.settle()
        assert expected in told(h, ALICE), (text, told(h, ALICE))
    resolved = make_incident(
        id=await h.runtime.repos.incidents.next_id(),
        subject="store:5",
        status="resolved",
        resolved_at=h.runtime.clock.now(),
    )
    await h.runtime.repos.incidents.create(resolved)
    await h.fake.slash_command(user=ALICE, text=f"silence {resolved.id} 1h", channel=CHANNEL)
    await h.settle()
    assert "was resolved" in told(h, ALICE)
    stored = await h.runtime.repos.incidents.get(incident.id)
    assert stored is not None and stored.attention.silenced_until is None
    assert thread_texts(h, ts) == []


async def test_a_non_approver_may_not_silence_but_may_take_the_incident(bot_harness: Make) -> None:
    h = await bot_harness()  # approvers: carol and the on-call group (alice)
    incident, ts = await open_card(h)
    await h.fake.click(user=BOB, channel=CHANNEL, message_ts=ts, action_id=callbacks.SILENCE)
    await h.settle()
    assert "not an approver" in told(h, BOB) and "acknowledge it instead" in told(h, BOB)
    stored = await h.runtime.repos.incidents.get(incident.id)
    assert stored is not None and stored.attention.silenced_until is None
    [refused] = await h.runtime.repos.audit.list_recent(action_prefix="incident.silence")
    assert refused.action == "incident.silence.refused" and refused.outcome is AuditOutcome.REFUSED
    assert thread_texts(h, ts) == []

    await h.fake.slash_command(user=BOB, text=f"ack {incident.id}", channel=CHANNEL)
    await h.settle()
    assert f"Owner:* <@{BOB}>" in card_text(h, ts)


async def test_a_forged_incident_click_is_refused_and_audited(bot_harness: Make) -> None:
    h = await bot_harness()
    first, first_ts = await open_card(h)
    second, _ = await open_card(h, subject="store:5")
    forged = callbacks.IncidentValue(second.id).encode()
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=first_ts, action_id=callbacks.ACK, value=forged
    )
    await h.settle()
    assert "could not be used" in told(h, ALICE)
    [event] = await h.runtime.repos.audit.list_recent(action_prefix="slack.button")
    assert event.action == "slack.button.ack.refused" and event.subject == second.id
    for incident in (first, second):
        stored = await h.runtime.repos.incidents.get(incident.id)
        assert stored is not None and stored.attention.owner is None

    junk = json.dumps({"i": first.id, "s": 10**9})
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=first_ts, action_id=callbacks.SILENCE, value=junk
    )
    await h.settle()
    assert "no valid silence length" in told(h, ALICE)


async def test_reminders_stop_once_someone_owns_the_incident(bot_harness: Make) -> None:
    from engine.model import Identity
    from tikvops.scheduling import ProposalReminders

    h = await bot_harness()
    incident, ts = await open_card(h)
    created = await h.engine.propose(
        "drain",
        {"store_id": 4},
        actor=Identity.slack(BOB, name="bob"),
        origin=ProposalOrigin.USER,
        incident_id=incident.id,
    )
    assert created.result == "proposal_created", created
    await h.settle()
    reminders = ProposalReminders(
        proposals=h.runtime.repos.proposals,
        audit=h.runtime.repos.audit,
        clock=FakeClock(h.runtime.clock.now() + timedelta(minutes=11)),
        after=600,
        incidents=h.runtime.repos.incidents,
    )
    assert [p.id for p in await reminders.run()] == [created.proposal.id]
    await h.settle()
    before = len(thread_texts(h, ts))

    await h.fake.click(user=BOB, channel=CHANNEL, message_ts=ts, action_id=callbacks.ACK)
    await h.settle()
    reminders.clock = FakeClock(h.runtime.clock.now() + timedelta(minutes=30))
    assert await reminders.run() == []
    await h.settle()
    assert len(thread_texts(h, ts)) == before + 1  # only the "is on it" line
    assert not any("Reminder" in t for t in thread_texts(h, ts)[before:])


async def test_owner_and_silence_survive_a_bot_restart(bot_harness: Make) -> None:
    first = await bot_harness()
    incident, ts = await open_card(first)
    await first.fake.click(user=BOB, channel=CHANNEL, message_ts=ts, action_id=callbacks.ACK)
    await first.fake.slash_command(
        user=ALICE, text=f"silence {incident.id} 4h deploy", channel=CHANNEL
    )
    await first.settle()
    await first.stop()

    second = await bot_harness()
    await second.fake.slash_command(user=ALICE, text="incidents", channel=CHANNEL)
    await second.settle()
    listing = told(second, ALICE)
    assert incident.id in listing and f"owner <@{BOB}>" in listing and "silenced until" in listing
    # The restarted bot still keeps the thread quiet.
    stored = await second.runtime.repos.incidents.get(incident.id)
    assert stored is not None
    replies = len(thread_texts(second, ts))
    await second.runtime.repos.incidents.update(
        stored.model_copy(update={"value": 9.0}), announce=EventKind.INCIDENT_UPDATED
    )
    await second.settle()
    assert len(thread_texts(second, ts)) == replies
