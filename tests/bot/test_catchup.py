"""Lost notifications: a change stored but never queued for Slack (the bot stopped between the
two) is told by the start-up catch-up, once; a change reported twice is queued once; records
older than the window are left alone. The real bot, engine and SQLite, with the Slack stand-in."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot import callbacks
from bot.catchup import CatchUp
from engine.clock import FakeClock
from engine.model import (
    SYSTEM,
    AuditEvent,
    Diagnosis,
    DiagnosisSource,
    IncidentStatus,
    ProposalState,
)
from tests.bot.conftest import ALICE, CHANNEL, Harness
from tests.bot.render_text import text_of
from tests.bot.test_app import propose_drain, wait_state
from tests.plugins.storage import make_incident

Make = Callable[..., Awaitable[Harness]]


def catch_up(h: Harness, clock: Any = None, **options: Any) -> CatchUp:
    return CatchUp(h.notifier, h.bot.outbox, h.runtime.repos, clock or h.runtime.clock, **options)


async def outbox_rows(h: Harness) -> int:
    row = await h.runtime.repos.db.fetchone("SELECT count(*) FROM outbox")
    assert row is not None
    return int(row[0])


def thread_texts(h: Harness, ts: str) -> list[str]:
    return [text_of(m.blocks) or m.text for m in h.thread(ts)]


async def test_an_outcome_never_queued_is_told_after_restart_once(
    bot_harness: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = await bot_harness()
    message = await propose_drain(h)
    # The window the catch-up closes: the engine stores each change, then the process dies
    # before the notifier queues its messages. Here the notifier drops every proposal change.
    lost: list[str] = []

    async def dropped(proposal: Any, event: AuditEvent) -> None:
        lost.append(event.action)

    monkeypatch.setattr(h.notifier, "proposal_changed", dropped)
    await h.fake.click(
        user=ALICE, channel=CHANNEL, message_ts=message.ts, action_id=callbacks.APPROVE
    )
    proposal = await wait_state(h, "P-1", ProposalState.SUCCEEDED, ProposalState.FAILED)
    assert proposal.state is ProposalState.SUCCEEDED, proposal.outcome
    assert lost == ["proposal.approve", "proposal.start", "proposal.succeed"], lost
    assert not any("P-1 succeeded" in t for t in thread_texts(h, message.ts))
    monkeypatch.undo()

    report = await catch_up(h).run()
    await h.settle()
    assert report.proposals == 1 and report.incidents == 0
    replies = thread_texts(h, message.ts)
    assert sum("P-1 succeeded" in r for r in replies) == 1, replies
    edited = h.fake.message(CHANNEL, message.ts)
    assert edited is not None and edited.action_ids() == []  # buttons gave way to the outcome
    assert "Succeeded" in text_of(edited.blocks)

    # Once told, never again: a second catch-up (the next restart) queues nothing.
    rows = await outbox_rows(h)
    assert (await catch_up(h).run()).total == 0
    assert await outbox_rows(h) == rows


async def test_a_change_reported_twice_is_queued_once(bot_harness: Make) -> None:
    h = await bot_harness()
    await propose_drain(h)
    proposal = await h.runtime.repos.proposals.get("P-1")
    assert proposal is not None
    rows = await outbox_rows(h)
    await h.notifier.proposal_made(proposal)  # already told when it was made
    assert await outbox_rows(h) == rows
    event = AuditEvent(
        at=proposal.updated_at, actor=SYSTEM, action="proposal.approve", subject="P-1"
    )
    changed = proposal.model_copy(update={"version": proposal.version + 1})
    await h.notifier.proposal_changed(changed, event)
    once = await outbox_rows(h)
    assert once > rows
    await h.notifier.proposal_changed(changed, event)
    assert await outbox_rows(h) == once


async def test_an_incident_and_its_diagnosis_never_told_are_posted(bot_harness: Make) -> None:
    h = await bot_harness()
    repos = h.runtime.repos
    now = h.runtime.clock.now()
    incident = await repos.incidents.create(
        make_incident(id=await repos.incidents.next_id(), at=now)
    )
    await repos.diagnoses.add(
        Diagnosis(
            incident_id=incident.id,
            source=DiagnosisSource.PLAYBOOK,
            summary="Store 4 stopped heartbeating: its host is probably down.",
            created_at=now,
        )
    )
    assert h.top() == []
    report = await catch_up(h).run()
    await h.settle()
    assert (report.incidents, report.diagnoses) == (1, 1)
    [parent] = h.top()
    assert incident.title in (text_of(parent.blocks) or parent.text)
    replies = thread_texts(h, parent.ts)
    assert any("host is probably down" in r for r in replies), replies
    assert (await catch_up(h).run()).total == 0


async def test_records_older_than_the_window_are_left_alone(bot_harness: Make) -> None:
    h = await bot_harness()
    repos = h.runtime.repos
    now = h.runtime.clock.now()
    await repos.incidents.create(make_incident(id=await repos.incidents.next_id(), at=now))
    await repos.incidents.create(
        make_incident(
            id=await repos.incidents.next_id(),
            kind="disk-full",
            subject="store:2",
            at=now - timedelta(days=3),
            status=IncidentStatus.RESOLVED,
            resolved_at=now - timedelta(days=2),
            updated_at=now - timedelta(days=2),
        )
    )
    report = await catch_up(h, FakeClock(now), window=timedelta(hours=24)).run()
    await h.settle()
    assert report.incidents == 1  # the open one; the resolved one from days ago is stale news
    assert len(h.top()) == 1
