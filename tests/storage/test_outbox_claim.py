"""Claiming owed messages (`Outbox.claim`), on both backends: a claimed item is leased to one
deliverer, the next item of the same thread waits for it, a lapsed lease gives the item to
another deliverer with the interrupted attempt counted, and concurrent claims from several
connections never take the same item."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from engine.model import OutboxStatus
from storage import PostgresUrl, Repositories, SqlDatabase, open_database
from storage.outbox import CLAIMED
from tests.plugins.storage import T0

LEASE = timedelta(seconds=30)


async def test_a_claim_leases_items_in_order_and_holds_back_their_threads(
    repos: Repositories,
) -> None:
    first = await repos.outbox.enqueue("slack", "thread-a", {"n": 1}, now=T0)
    second = await repos.outbox.enqueue("slack", "thread-a", {"n": 2}, now=T0)
    other = await repos.outbox.enqueue("slack", "thread-b", {"n": 3}, now=T0)
    claimed = await repos.outbox.claim(T0, lease=LEASE)
    assert [i.id for i in claimed] == [first, other]  # `second` waits behind `first`
    assert all(i.last_error is not None and i.last_error.startswith(CLAIMED) for i in claimed)
    assert all(i.attempts == 0 for i in claimed)
    # Leased: nobody else takes them, and `second` still waits.
    assert await repos.outbox.claim(T0 + timedelta(seconds=5), lease=LEASE) == []
    await repos.outbox.mark_delivered(first, now=T0 + timedelta(seconds=1))
    after = await repos.outbox.claim(T0 + timedelta(seconds=2), lease=LEASE)
    assert [i.id for i in after] == [second]
    assert await repos.outbox.depth() == 2


async def test_a_lapsed_lease_is_claimed_again_with_the_attempt_counted(
    repos: Repositories,
) -> None:
    item = await repos.outbox.enqueue("slack", "thread-a", {"n": 1}, now=T0)
    assert [i.attempts for i in await repos.outbox.claim(T0, lease=LEASE)] == [0]
    # The deliverer died: nothing happens until the lease lapses.
    assert await repos.outbox.claim(T0 + LEASE - timedelta(seconds=1), lease=LEASE) == []
    again = await repos.outbox.claim(T0 + LEASE, lease=LEASE)
    assert [(i.id, i.attempts) for i in again] == [(item, 1)]
    # A failure reported by the new holder replaces the claim note.
    await repos.outbox.mark_failed(item, "slack: ratelimited", next_attempt_at=T0 + LEASE * 3)
    stored = await repos.outbox.get(item)
    assert stored is not None and stored.last_error == "slack: ratelimited"
    assert stored.attempts == 2 and stored.status is OutboxStatus.PENDING


async def test_concurrent_claims_from_five_connections_take_each_item_once(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    here = Repositories.on(db)
    ids = [await here.outbox.enqueue("slack", f"thread-{n}", {"n": n}, now=T0) for n in range(60)]
    others = [await open_database(db_target) for _ in range(4)]
    try:
        outboxes = [here.outbox, *(Repositories.on(o).outbox for o in others)]

        async def drain(index: int) -> list[int]:
            mine: list[int] = []
            while True:
                batch = await outboxes[index].claim(T0, lease=LEASE, limit=3)
                if not batch:
                    return mine
                mine.extend(i.id for i in batch)
                await asyncio.sleep(0)

        taken = await asyncio.gather(*(drain(i) for i in range(len(outboxes))))
        flat = [item for part in taken for item in part]
        assert sorted(flat) == ids  # every item once, none twice
    finally:
        for other in others:
            await other.close()
