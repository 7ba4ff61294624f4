"""Events are committed in `seq` order, also by several connections at once (on PostgreSQL
the write transactions take one advisory lock, as SQLite's write lock): a reader that follows
the log after its cursor, while five connections append, sees every event exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from engine.events import Event, EventKind
from storage import PostgresUrl, Repositories, SqlDatabase, open_database
from tests.plugins.storage import T0

WRITERS = 5
EACH = 30


async def test_a_reader_after_its_cursor_misses_no_event_of_concurrent_writers(
    db: SqlDatabase, db_target: Path | PostgresUrl
) -> None:
    others = [await open_database(db_target) for _ in range(WRITERS)]
    try:
        reader = Repositories.on(db).events
        done = asyncio.Event()
        seen: list[int] = []

        async def write(index: int) -> None:
            log = Repositories.on(others[index]).events
            for n in range(EACH):
                at = T0 + timedelta(seconds=n)
                event = Event(at=at, kind=EventKind.INCIDENT_UPDATED, subject=f"I-{index}-{n}")
                await log.append(event)
                await asyncio.sleep(0)

        async def follow() -> None:
            cursor = 0
            while True:
                finished = done.is_set()
                batch = await reader.after(cursor, limit=7)
                for event in batch:
                    assert event.seq is not None
                    seen.append(event.seq)
                    cursor = event.seq
                if finished and not batch:
                    return
                await asyncio.sleep(0)

        following = asyncio.create_task(follow())
        await asyncio.gather(*(write(i) for i in range(WRITERS)))
        done.set()
        await following
        head = await reader.head()
        assert len(seen) == WRITERS * EACH == len(set(seen))
        assert seen == sorted(seen) and seen[-1] == head
    finally:
        for other in others:
            await other.close()
