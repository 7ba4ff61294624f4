"""What an incident's thread hears of its changes, through the real bot (Bolt over Socket Mode)
against the Slack stand-in, with the real incident tracker writing the events: a silenced
incident's "Changed" lines (a consequence appearing or clearing) are not posted while its card
still shows them; an escalation to a higher severity is posted, with the severity line, and
breaks the silence, which says so; a notifier that remembers nothing (a restarted bot) words
the severity change from the event alone."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot import callbacks
from bot.notifier import SlackNotifier
from bot.queue import SlackOutbox
from engine.events import ChangeKind, EventKind
from engine.incidents import IncidentTracker
from engine.model import Severity
from operator_tikv.invariants import Evaluation, InvariantMemory, Violation, ViolationKind
from operator_tikv.invariants import Severity as VSeverity
from tests.bot.conftest import ALICE, CHANNEL, Harness
from tests.bot.render_text import text_of

Make = Callable[..., Awaitable[Harness]]
K = ViolationKind


def store(kind: ViolationKind, store_id: int, first_seen: float) -> Violation:
    return Violation(
        kind=kind,
        severity=VSeverity.CRITICAL if kind is K.STORE_DOWN else VSeverity.WARNING,
        store_id=store_id,
        value=30.0,
        unit="s",
        first_seen=first_seen,
        message=f"Store {store_id} is {kind.value}",
    )


def pending(count: int, store_id: int, first_seen: float) -> Violation:
    return Violation(
        kind=K.REGION_PENDING_PEER,
        severity=VSeverity.WARNING,
        value=float(count),
        threshold=1.0,
        unit="regions",
        first_seen=first_seen,
        message=f"{count} regions have a pending peer",
        peer_stores={store_id: count},
    )


class Monitor:
    """The tracker as the monitor runs it, each tick a few seconds after the last."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.tracker = IncidentTracker(h.runtime.repos.incidents, resolve_after=60.0)
        self.at = h.runtime.clock.now()

    async def tick(self, *violations: Violation) -> None:
        self.at += timedelta(seconds=2)
        evaluation = Evaluation(violations=violations, pending=(), memory=InvariantMemory())
        await self.tracker.reconcile(
            evaluation, now=self.at, open_incidents=await self.tracker.open_incidents()
        )
        await self.h.settle()


def thread_texts(h: Harness, ts: str) -> list[str]:
    return [text_of(r.blocks) or r.text for r in h.thread(ts)]


def card_text(h: Harness, ts: str) -> str:
    message = h.fake.message(CHANNEL, ts)
    assert message is not None
    return text_of(message.blocks)


async def test_a_silenced_incident_keeps_its_changes_off_the_thread_until_it_gets_worse(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    monitor = Monitor(h)
    seen = monitor.at.timestamp()
    await monitor.tick(store(K.STORE_DISCONNECTED, 5, seen))
    [incident] = await h.runtime.repos.incidents.list_open()
    [card] = h.top()
    await h.fake.click(user=ALICE, channel=CHANNEL, message_ts=card.ts, action_id=callbacks.SILENCE)
    await h.settle()
    assert "Silenced* until" in card_text(h, card.ts)
    replies = thread_texts(h, card.ts)
    assert "silenced" in replies[-1]

    # A consequence appears, then clears: the card shows it, the thread stays quiet.
    await monitor.tick(store(K.STORE_DISCONNECTED, 5, seen), pending(40, 5, seen))
    assert "40 regions with a pending peer (peers on store 5)" in card_text(h, card.ts)
    await monitor.tick(store(K.STORE_DISCONNECTED, 5, seen))
    assert "pending peer" not in card_text(h, card.ts)
    assert thread_texts(h, card.ts) == replies
    log = await h.runtime.repos.events.after(0, limit=100)
    told = [n.kind for e in log if e.subject == incident.id for n in e.notes]
    assert told == [ChangeKind.CONSEQUENCE_APPEARED, ChangeKind.CONSEQUENCE_CLEARED]

    # Disconnected → Down: critical, worse than it was silenced at. The change is posted with
    # its severity line, and the silence ends saying why.
    await monitor.tick(store(K.STORE_DOWN, 5, seen))
    changed = thread_texts(h, card.ts)[len(replies) :]
    assert len(changed) == 1, changed
    assert "Changed" in changed[0]
    assert "Store 5 disconnected → Store 5 down." in changed[0]
    assert "Severity warning → critical." in changed[0]
    await h.engine.attending.end_due()
    await h.settle()
    assert "it got worse (warning → critical)" in thread_texts(h, card.ts)[-1]
    assert "Silenced" not in card_text(h, card.ts)
    assert len(h.top()) == 1  # one parent throughout


async def test_a_restarted_notifier_words_the_severity_change_from_the_event(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    monitor = Monitor(h)
    seen = monitor.at.timestamp()
    await monitor.tick(store(K.STORE_DISCONNECTED, 5, seen))
    await monitor.tick(store(K.STORE_DOWN, 5, seen))
    log = await h.runtime.repos.events.after(0, limit=100)
    [escalation] = [e for e in log if e.kind is EventKind.INCIDENT_UPDATED and e.notes]
    assert escalation.previous_severity is Severity.WARNING
    # a notifier built after a restart: it never saw the incident open
    fresh = SlackNotifier(
        h.runtime.clock,
        channel=CHANNEL,
        outbox=SlackOutbox(h.runtime.repos.outbox, h.runtime.clock),
        reads=h.runtime.repos,
    )
    batch = await fresh.render(escalation)
    texts = [text_of(p["blocks"]) for _, p in batch.items if p["op"] == "post" and p["thread"]]
    assert len(texts) == 1
    assert "Store 5 disconnected → Store 5 down." in texts[0]
    assert "Severity warning → critical." in texts[0]


async def test_the_incidents_command_lists_each_incident_with_its_consequences(
    bot_harness: Make,
) -> None:
    h = await bot_harness()
    monitor = Monitor(h)
    seen = monitor.at.timestamp()
    await monitor.tick(store(K.STORE_DOWN, 5, seen), pending(40, 5, seen))
    [incident] = await h.runtime.repos.incidents.list_open()
    await h.fake.slash_command(user=ALICE, text="incidents", channel=CHANNEL)
    await h.settle()
    last = h.fake.ephemerals(user=ALICE)[-1]
    answer = text_of(last.blocks) or last.text
    assert f"{incident.id}* Store 5 down" in answer
    assert "↳ 40 regions with a pending peer (peers on store 5)" in answer
