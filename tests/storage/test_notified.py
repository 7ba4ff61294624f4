"""Notification marks on SQLite: a batch is queued with its mark in one transaction, exactly
once per mark, and migration 0003 marks the records stored before it (so an upgrade does not
tell them again)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from engine.model import ActionRef, ProposalOrigin, RiskLevel
from engine.transitions import ProposalEvent, propose, transition
from storage import Database, Repositories
from tests.plugins.storage import T0, alice, bob, make_incident


async def test_a_batch_is_queued_with_its_mark_once(repos: Repositories) -> None:
    items = [("incident:I-1", {"op": "post", "n": 1}), ("incident:I-1", {"op": "post", "n": 2})]
    first = await repos.outbox.enqueue_batch("slack", items, now=T0, mark="slack:x:v1")
    again = await repos.outbox.enqueue_batch("slack", items, now=T0, mark="slack:x:v1")
    assert first is not None and len(first) == 2
    assert again is None  # the mark was there: nothing queued
    due = await repos.outbox.due(T0, limit=10)
    assert [i.payload["n"] for i in due[:1]] == [1]  # same key: in order, one at a time
    assert await repos.outbox.depth() == 2
    assert await repos.outbox.marked(["slack:x:v1", "slack:x:v2"]) == {"slack:x:v1"}


async def test_concurrent_batches_with_one_mark_queue_once(repos: Repositories) -> None:
    results = await asyncio.gather(
        *(
            repos.outbox.enqueue_batch("slack", [("k", {"i": i})], now=T0, mark="slack:same")
            for i in range(20)
        )
    )
    assert sum(1 for r in results if r is not None) == 1
    assert await repos.outbox.depth() == 1


async def test_unmarked_batches_are_always_queued(repos: Repositories) -> None:
    for _ in range(3):
        assert await repos.outbox.enqueue_batch("slack", [("k", {})], now=T0) is not None
    assert await repos.outbox.depth() == 3
    assert await repos.outbox.marked([]) == set()


async def test_many_marks_are_looked_up_in_chunks(repos: Repositories) -> None:
    for i in range(0, 1200, 2):
        await repos.outbox.enqueue_batch("slack", [], now=T0, mark=f"m:{i}")
    found = await repos.outbox.marked(f"m:{i}" for i in range(1200))
    assert found == {f"m:{i}" for i in range(0, 1200, 2)}


async def test_upgrading_from_version_2_marks_existing_records(db_path: Path) -> None:
    old = await Database.open(db_path, migrate_to=2)
    try:
        repos = Repositories.on(old)
        incident = await repos.incidents.create(make_incident(id=await repos.incidents.next_id()))
        made = propose(
            proposal_id=await repos.proposals.next_id(),
            action="drain",
            params={"store_id": 4},
            risk=RiskLevel.HIGH,
            origin=ProposalOrigin.USER,
            proposed_by=alice(),
            now=T0,
            ttl=timedelta(minutes=30),
            reversible=True,
            undo=ActionRef(action="undrain", params={"store_id": 4}),
            reason="store 4 is slow",
            incident_id=incident.id,
        )
        proposal = await repos.proposals.create(made)
        approved = await repos.proposals.apply(
            transition(proposal, ProposalEvent.APPROVE, actor=bob(), now=T0)
        )
    finally:
        await old.close()

    new = await Database.open(db_path)
    try:
        repos = Repositories.on(new)
        expected = {
            f"slack:incident:{incident.id}:opened",
            f"slack:incident:{incident.id}:v1",
            f"slack:proposal:{approved.id}:made",
            f"slack:proposal:{approved.id}:v{approved.version}",
        }
        not_expected = {
            f"slack:incident:{incident.id}:resolved",  # still open
            f"slack:proposal:{approved.id}:v{approved.version + 1}",
        }
        assert await repos.outbox.marked(expected | not_expected) == expected
    finally:
        await new.close()
